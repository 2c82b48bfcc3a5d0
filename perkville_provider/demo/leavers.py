"""The demo's member sync run safely: a member who left is deactivated, an empty source is refused.

Both runs read a copy of the membership database (through their own source connection, the
DAG's ``source_conn_id`` Param), so the gym's own database and the other demo runs are untouched:
one member is deleted from the copy and a full sync sets them ``INACTIVE``; then the copy's
members are all deleted and the mass-change guard refuses the full sync before any write.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import pendulum

__all__ = ["LEAVERS_CONN_ID", "print_leavers", "run_leavers"]

LEAVERS_CONN_ID = "gym_leavers_db"
_LEAVERS_CONN_ENV_VAR = f"AIRFLOW_CONN_{LEAVERS_CONN_ID.upper()}"


def _delete_members(db: Path, where: str, args: tuple[Any, ...] = ()) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(f"DELETE FROM members WHERE {where}", args)  # noqa: S608 (constant clauses)
    connection.close()


def _a_valid_member(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        row = connection.execute(
            "SELECT member_id FROM members WHERE member_id <> '' AND email LIKE '%_@_%' "
            "ORDER BY member_id DESC LIMIT 1"
        ).fetchone()
    connection.close()
    return str(row[0])


def run_leavers(gym_db: Path, dags_folder: Path, conf: Mapping[str, Any] | None = None) -> list[Any]:
    """Two full syncs of a copy of the source: one member gone, then every member gone."""
    from perkville_provider.demo import runner  # runner imports this module

    copy = gym_db.with_name("gym-leavers.db")
    shutil.copyfile(gym_db, copy)
    os.environ[_LEAVERS_CONN_ENV_VAR] = runner.source_conn_env_value(copy)
    try:
        leaver = _a_valid_member(copy)
        _delete_members(copy, "member_id = ?", (leaver,))
        sync_conf = {**(conf or {}), "full_sync": True, "source_conn_id": LEAVERS_CONN_ID}
        now = pendulum.now("UTC")
        left = runner.run_dag(
            dags_folder, runner.MEMBER_SYNC_DAG_ID, f"{leaver} left", None, sync_conf, run_after=now
        )
        _delete_members(copy, "1 = 1")
        later = now.add(seconds=1)
        empty = runner.run_dag(
            dags_folder, runner.MEMBER_SYNC_DAG_ID, "source empty", None, sync_conf, run_after=later
        )
    finally:
        os.environ.pop(_LEAVERS_CONN_ENV_VAR, None)
        copy.unlink(missing_ok=True)
    return [left, empty]


def print_leavers(runs: list[Any], log_path: Path, out: TextIO) -> bool:
    """What the two runs did; True when the leaver was deactivated and the empty source refused."""
    left, empty = runs
    deactivated = (left.summary or {}).get("deactivated", 0)
    print("\nMember sync run safely (a full sync of a copy of the source)", file=out)
    print(f"  {left.label}: {left.state}; deactivated {deactivated} (set INACTIVE in Perkville)", file=out)
    reason = _guard_reason(log_path)
    refused = empty.state == "failed" and empty.summary is None and reason is not None
    verdict = "refused before any write" if refused else "NOT REFUSED by the mass-change guard"
    print(f"  {empty.label}: {empty.state}; {verdict}", file=out)
    if reason:
        print(f"    {reason}", file=out)
    return left.state == "success" and deactivated == 1 and refused


def _guard_reason(log_path: Path) -> str | None:
    """The guard's refusal as the task logged it (its last one in the demo's Airflow log)."""
    marker = "Mass-change guard: "
    found = None
    with log_path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            if marker in line:
                found = marker + line.split(marker, 1)[1].split(". Nothing was sent", 1)[0].strip()
    return found
