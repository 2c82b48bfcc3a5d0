"""Fixtures for running the example DAGs (``dags/``) end to end against the sandbox.

The membership database is generated per test from a fixed anchor date (never the wall clock),
and what each day *should* award is worked out here from the database's rows, independently of
the DAGs' own code, so the tests compare the sandbox's ledger with an expectation the code under
test did not compute.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum
import pytest

from perkville_provider.demo import data, runner
from tests.conftest import EXAMPLE_DAGS

ANCHOR = pendulum.Date(2026, 11, 20)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]+$")
CLUB_TIMEZONES = {"DT": "America/New_York", "WS": "America/Los_Angeles"}
CHECKIN_POINTS = 10  # the sandbox's perk 501 "Daily check-in"


@pytest.fixture(autouse=True)
def fresh_pipeline_state(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test starts as a fresh deployment: its own staging root (the DAGs' Param default) and
    no watermark on the example DAGs' Assets (the metadata database is shared by the session)."""
    staging_root = tmp_path / "staging"
    monkeypatch.setenv("PERKVILLE_STAGING_ROOT", str(staging_root))
    if "airflow_db" in request.fixturenames:
        from airflow.models.asset_state_store import AssetStateStoreModel
        from airflow.utils.session import create_session
        from sqlalchemy import delete

        with create_session() as session:
            session.execute(delete(AssetStateStoreModel))
    return staging_root


@pytest.fixture(scope="session")
def example_dags(airflow_db) -> dict[str, Any]:
    """The example DAGs, parsed the way Airflow's DAG processor does."""
    return runner.load_example_dags(EXAMPLE_DAGS)


@dataclass
class Gym:
    """A generated membership database, with the connection pointing at it."""

    path: Path
    spec: data.DemoDataSpec

    def execute(self, sql: str, *params: Any) -> None:
        with sqlite3.connect(self.path) as db:
            db.execute(sql, params)
        db.close()

    def rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        with sqlite3.connect(self.path) as db:
            db.row_factory = sqlite3.Row
            result = db.execute(sql, params).fetchall()
        db.close()
        return result

    def valid_members(self) -> dict[str, str]:
        """member id -> email of the members Perkville can take (an id and a well-formed email)."""
        return {
            row["member_id"]: row["email"]
            for row in self.rows("SELECT member_id, email FROM members")
            if row["member_id"] and row["email"] and EMAIL.match(row["email"])
        }

    def awardable_visits(self, day: pendulum.Date) -> dict[tuple[str, str], set[str]]:
        """(member id, local date) -> the trans_source_ids that may earn that visit's one award.

        A check-in counts on ``day`` in the business's timezone; the once-a-day limit is per
        calendar day at the club; the same check-in exported twice is one candidate.
        """
        start = pendulum.datetime(day.year, day.month, day.day, tz=self.spec.timezone)
        bounds = [
            start.in_timezone("UTC").format("YYYY-MM-DD HH:mm:ss") for start in (start, start.add(days=1))
        ]
        members = self.valid_members()
        visits: dict[tuple[str, str], set[str]] = {}
        for row in self.rows(
            "SELECT * FROM checkins WHERE checked_in_at >= ? AND checked_in_at < ?", *bounds
        ):
            if row["member_id"] not in members:
                continue
            moment = pendulum.parse(row["checked_in_at"], tz="UTC").in_timezone(
                CLUB_TIMEZONES[row["club_code"]]
            )
            key = (row["member_id"], moment.to_date_string())
            visits.setdefault(key, set()).add(f"MYGYM:{row['club_code']}:CHECKIN:{row['checkin_id']}")
        return visits


@pytest.fixture
def make_gym(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Gym]:
    """Generate a membership database (fixed anchor unless given) and point ``gym_source_db`` at it."""

    def make(**spec: Any) -> Gym:
        spec.setdefault("anchor", ANCHOR)
        path = data.generate(tmp_path / "gym.db", data.DemoDataSpec(**spec), overwrite=True)
        monkeypatch.setenv(runner.SOURCE_CONN_ENV_VAR, runner.source_conn_env_value(path))
        return Gym(path, data.read_spec(path))

    return make


@pytest.fixture
def gym(make_gym: Callable[..., Gym]) -> Gym:
    return make_gym()


def awards_in_ledger(sandbox) -> Counter[str]:
    """How many transactions the sandbox holds per trans_source_id of the demo's source system."""
    return Counter(
        txn["trans_source_id"]
        for txn in sandbox.admin.ledger()["transactions"]
        if str(txn.get("trans_source_id")).startswith(f"{data.SOURCE_SYSTEM}:")
    )


def assert_each_visit_awarded_once(awarded: Counter[str], visits: dict[tuple[str, str], set[str]]) -> None:
    """Every awardable visit got exactly one award, and nothing else was awarded."""
    assert all(count == 1 for count in awarded.values()), [k for k, n in awarded.items() if n > 1]
    for key, candidates in visits.items():
        assert len(candidates & set(awarded)) == 1, (key, candidates)
    expected_ids = set().union(*visits.values()) if visits else set()
    assert set(awarded) <= expected_ids, set(awarded) - expected_ids
    assert len(awarded) == len(visits)


def task_states(run_id: str) -> dict[str, set[str]]:
    """The states of each task's instances (a mapped task has several) in one DAG run."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    states: dict[str, set[str]] = {}
    with create_session() as session:
        for ti in session.query(TaskInstance).filter(TaskInstance.run_id == run_id):
            states.setdefault(ti.task_id, set()).add(str(ti.state))
    return states
