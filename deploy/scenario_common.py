"""What the cluster scenario's items share: the DAGs and days they run, the checks they record,
what the source database says should happen and what the sandbox's ledger holds (exactly once,
nothing lost).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pendulum
from airflow_rest import AirflowApi, Sandbox
from cluster_state import State
from gym_source import connect

SYNC_DAG = "perkville_member_sync"
AWARDS_DAG = "perkville_daily_checkin_awards"
AWARD_TASK, SYNC_TASK = "award_checkin_points", "sync_members"
TIMEZONE = "America/New_York"
SOURCE_CONN_ENV_VAR = "AIRFLOW_CONN_GYM_SOURCE_DB"
SOURCE_SYSTEM = "MYGYM"
ANCHOR = pendulum.date(2026, 11, 21)
"""The day after the gym source's last day of check-ins."""
DAYS = [ANCHOR.subtract(days=n) for n in (4, 3, 2)]
"""The days of items 2 to 5, in order."""
RATE_DAY = ANCHOR.subtract(days=1)
"""Item 7's fresh day, after the others (an earlier day would be re-read by their lookback)."""
RUN_TIMEOUT = float(os.environ.get("CLUSTER_RUN_TIMEOUT", "900"))


@dataclass
class Check:
    item: str
    name: str
    ok: bool
    figure: str


@dataclass
class Scenario:
    state: State
    api: AirflowApi
    sandbox: Sandbox
    chunk_size: int
    checks: list[Check] = field(default_factory=list)
    perkville_runs: list[tuple[str, str, str]] = field(default_factory=list)
    """(dag_id, run_id, task_id) of every run whose Perkville task processes count for item 6."""

    def check(self, item: str, name: str, ok: bool, figure: str) -> bool:
        self.checks.append(Check(item, name, bool(ok), figure))
        print(f"  [{'ok' if ok else 'FAILED'}] {item} {name}: {figure}", flush=True)
        return bool(ok)


# ---------------------------------------------------------------------------------------------
# What the source says should happen


def day_bounds(day: pendulum.Date) -> tuple[pendulum.DateTime, pendulum.DateTime]:
    start = pendulum.datetime(day.year, day.month, day.day, tz=TIMEZONE)
    return start, start.add(days=1)


def valid_email(email: str | None) -> bool:
    return bool(email) and "@" in email


def source_day(day: pendulum.Date, sample_every: int = 1) -> tuple[set[str], dict[str, str]]:
    """The day's ``trans_source_id``s, and for each valid one the member's email (lower case).

    ``sample_every``: only the check-ins whose id is a multiple of it (a run that sent a sample).
    """
    start, end = day_bounds(day)
    sql = """SELECT c.checkin_id, c.club_code, m.email FROM checkins c
             LEFT JOIN members m ON m.member_id = c.member_id
             WHERE c.checked_in_at >= %s AND c.checked_in_at < %s"""
    with connect() as conn, conn.cursor() as cursor:
        cursor.execute(sql, (start.in_timezone("UTC").naive(), end.in_timezone("UTC").naive()))
        rows = cursor.fetchall()
    ids, valid = set(), {}
    for checkin_id, club, email in rows:
        if checkin_id % sample_every:
            continue
        key = f"{SOURCE_SYSTEM}:{club}:CHECKIN:{checkin_id}"
        ids.add(key)
        if valid_email(email):
            valid[key] = email.lower()
    return ids, valid


def source_members() -> set[str]:
    with connect() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT member_id, email FROM members")
        return {member_id for member_id, email in cursor.fetchall() if member_id and valid_email(email)}


# ---------------------------------------------------------------------------------------------
# What the ledger holds


def user_emails(ledger: dict[str, Any]) -> dict[str, str]:
    emails = {}
    for user in ledger["users"]:
        primary = next((e["email"] for e in user["emails"] if e.get("primary")), None)
        emails[user["resource_uri"]] = (primary or "").lower()
    return emails


def check_day_exactly_once(
    sc: Scenario, item: str, day: pendulum.Date, ledger: dict[str, Any], sample_every: int = 1
) -> int:
    """Exactly once per ``trans_source_id`` and nothing lost, for one day (or the sample of it a
    run sent); the day's award count."""
    ids, valid = source_day(day, sample_every)
    every_id = Counter(t["trans_source_id"] for t in ledger["transactions"])
    day_txns = [t for t in ledger["transactions"] if t["trans_source_id"] in ids]
    emails = user_emails(ledger)
    per_member = Counter(emails.get(t["user"], "?") for t in day_txns)
    expected_members = set(valid.values())
    twice = [key for key, count in every_id.items() if count > 1]
    wrong_member = [
        t["trans_source_id"] for t in day_txns if valid.get(t["trans_source_id"]) != emails.get(t["user"])
    ]
    sc.check(
        item,
        f"{day} exactly once per trans_source_id",
        not twice and max(per_member.values(), default=0) <= 1,
        f"{len(day_txns)} awards for {len(ids)} check-ins, {len(twice)} ids twice, "
        f"max {max(per_member.values(), default=0)} award per member",
    )
    lost = expected_members - set(per_member)
    sc.check(
        item,
        f"{day} nothing lost",
        not lost and not wrong_member,
        f"{len(per_member)}/{len(expected_members)} members who checked in awarded, "
        f"{len(lost)} missing, {len(wrong_member)} awarded to another member",
    )
    return len(day_txns)


def sampled_checkins_sql(api: AirflowApi, every: int) -> str:
    """The awards DAG's ``checkins_sql`` Param narrowed to every ``every``-th check-in (a sample of
    the day with the day's shape, for a run that must be shorter)."""
    sql = api.request("GET", f"/dags/{AWARDS_DAG}/details")["params"]["checkins_sql"]["value"]
    return sql.replace("ORDER BY", f"AND c.checkin_id % {every} = 0\nORDER BY")
