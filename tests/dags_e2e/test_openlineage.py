"""OpenLineage events of the example DAGs, written by OpenLineage's file transport, against the ledger.

The DAGs run in a process of their own (``tests/helpers/lineage_run.py``): OpenLineage's listener
is registered when a process loads its plugins, and only that process has a transport configured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from perkville_provider.demo import data
from tests.helpers.e2e import awards_in_ledger

REPO = Path(__file__).resolve().parents[2]
RUN_SECONDS = 600

pytestmark = pytest.mark.soak


@pytest.fixture
def lineage_run(airflow_db, sandbox, gym, tmp_path: Path) -> dict[str, Any]:
    """Run the member sync, the awards and the export with the file transport; their events."""
    events_file = tmp_path / "openlineage.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "perkville-tests",
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "tests.helpers.lineage_run", str(gym.path), str(tmp_path / "runs.json")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    runs = json.loads((tmp_path / "runs.json").read_text())
    assert {dag_id: run["state"] for dag_id, run in runs.items()} == dict.fromkeys(runs, "success")
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    (tmp_path.parent / "last-openlineage.jsonl").write_text(events_file.read_text())
    return {"runs": runs, "events": events, "namespace": f"perkville://{urlsplit(sandbox.base_url).netloc}"}


def completed(events: list[dict[str, Any]], task: str) -> list[dict[str, Any]]:
    """The COMPLETE events of a task (one per mapped instance)."""
    return [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith(f".{task}")]


def names(datasets: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def rows(dataset: dict[str, Any]) -> int:
    return dataset["outputFacets"]["outputStatistics"]["rowCount"]


def test_the_lineage_runs_from_the_gym_tables_through_the_staged_chunks_to_perkville(
    lineage_run, sandbox, gym
):
    events, perkville = lineage_run["events"], lineage_run["namespace"]
    gym_db = "sqlite://" + str(gym.path)

    (sync,) = completed(events, "sync_members")
    (extract_members,) = completed(events, "extract_changed_members")
    members_out = {d for d in names(sync["outputs"])}
    assert members_out == {(perkville, "business/9823/external_members")}
    in_ledger = [
        m for m in sandbox.admin.ledger()["external_members"] if m["external_system_id"] == data.SOURCE_SYSTEM
    ]
    assert rows(sync["outputs"][0]) == len(in_ledger) > 0
    assert (gym_db, "main.members") in names(extract_members["inputs"])
    assert names(sync["inputs"]) <= names(extract_members["outputs"])
    assert names(sync["inputs"])
    assert all(namespace == "file" for namespace, _ in names(sync["inputs"]))


def check_awards(lineage_run: dict[str, Any], sandbox, gym) -> None:
    events, perkville = lineage_run["events"], lineage_run["namespace"]
    gym_db = "sqlite://" + str(gym.path)
    (extract,) = completed(events, "extract_checkin_awards")
    awards = completed(events, "award_checkin_points")
    assert (gym_db, "main.checkins") in names(extract["inputs"])
    staged = {name for name in names(extract["outputs"])}
    assert awards
    assert all(names(a["outputs"]) == {(perkville, "business/9823/transactions")} for a in awards)
    assert set().union(*(names(a["inputs"]) for a in awards)) <= staged
    awarded = sum(rows(a["outputs"][0]) for a in awards)
    assert awarded == sum(awards_in_ledger(sandbox).values()) > 0
    outcomes = [a["run"]["facets"]["perkville_outcomes"]["outcomes"] for a in awards]
    assert sum(o["awarded"] for o in outcomes) == awarded
    assert (
        sum(sum(o.values()) for o in outcomes)
        == lineage_run["runs"]["perkville_daily_checkin_awards"]["summary"]["total"]
    )


def check_export(lineage_run: dict[str, Any], gym) -> None:
    """The export reads the business's resource and writes the table named as its SQL hook names it."""
    events, perkville = lineage_run["events"], lineage_run["namespace"]
    gym_db = "sqlite://" + str(gym.path)

    (connections,) = completed(events, "export_connections")
    assert names(connections["inputs"]) == {(perkville, "business/9823/connections")}
    assert names(connections["outputs"]) == {(gym_db, "main.perkville_connections")}
    outcomes = connections["run"]["facets"]["perkville_outcomes"]["outcomes"]
    assert rows(connections["outputs"][0]) == outcomes["inserted"] + outcomes["updated"] > 0
    (transactions,) = completed(events, "export_transactions")
    assert names(transactions["inputs"]) == {(perkville, "business/9823/transactions")}
    assert names(transactions["outputs"]) == {(gym_db, "main.perkville_transactions")}
