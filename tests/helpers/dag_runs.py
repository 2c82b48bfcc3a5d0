"""Reading what a test DAG run left behind: XComs, task states, report files, the ledger."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any


def xcom_values(run, task_id: str, key: str = "return_value") -> dict[int, Any]:
    """A task's XCom values in a run, by map index (-1 for an unmapped task)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key=key)
        ).all()
        return {row.map_index: XComModel.deserialize_value(row) for row in rows}


def task_states(run) -> dict[tuple[str, int], str]:
    """Each task instance's final state, by (task id, map index)."""
    return {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}


def report_lines(directory: Path) -> list[dict[str, Any]]:
    """Every JSON line of every report file in ``directory``."""
    return [
        json.loads(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def transactions_by_source(sandbox) -> Counter[str]:
    """How many transactions the sandbox's ledger holds per ``trans_source_id``."""
    return Counter(txn["trans_source_id"] for txn in sandbox.admin.ledger()["transactions"])
