"""Fault soak: both example DAGs over 1,100 members and 1,000 check-ins against a faulty sandbox.

The sandbox answers 10% of requests with a 5xx and 5% with a 429 (``Retry-After: 1``), loses
3% of write answers after committing them, and adds latency jitter; the shares are printed.
Those 429s are random, not a rate limit, so the connection turns adaptive pacing off. All
of it seeded. The failure threshold is set just above the known invalid rows, so any record left
failed by a transient fault fails the task and Airflow's retry resends it; the ledger must then
hold every valid member once and every awardable visit exactly once.

The size is what makes every fault kind happen a few dozen times (about 2,300 requests: some 230
5xx, 115 429s and 60 answers lost after commit), asserted below; it runs in `make test-slow`.
"""

from __future__ import annotations

from collections import Counter

import pytest

from perkville_provider.demo import data, runner
from tests.helpers.dags import EXAMPLE_DAGS
from tests.helpers.e2e import assert_each_visit_awarded_once, awards_in_ledger

FAULTS = {
    "error_rate": 0.10,
    "lost_after_commit_rate": 0.03,
    "latency_ms": 2,
    "jitter_ms": 30,
    "throttle_rate": 0.05,
    "seed": 20261122,
}
INVALID_MEMBER_ROWS = 3  # malformed email, no email, no member id
INVALID_CHECKIN_ROWS = 3  # the two members without a usable email, and a check-in without a member id
MEMBERS = 1100
CHECKINS = 1000
FEW_DOZEN = 24


def _threshold(invalid: int, total: int) -> float:
    """Just above the known invalid rows: one transient failure more fails the task."""
    return (invalid + 0.5) / total


@pytest.mark.soak
def test_under_faults_every_valid_checkin_is_awarded_exactly_once_and_no_member_is_lost(
    airflow_db, sandbox, make_gym
):
    gym = make_gym(members=MEMBERS, checkins_per_day=CHECKINS, days=1)
    day = gym.spec.checkin_days[0]
    member_rows = len(gym.rows("SELECT * FROM members"))
    checkin_rows = len(gym.rows("SELECT * FROM checkins"))
    sandbox.admin.set_faults(**FAULTS)
    try:
        sync = runner.run_dag(
            EXAMPLE_DAGS,
            runner.MEMBER_SYNC_DAG_ID,
            "soak sync",
            runner.member_sync_logical_date(gym.spec),
            {"full_sync": True, "max_failure_ratio": _threshold(INVALID_MEMBER_ROWS, member_rows)},
        )
        awards = runner.run_dag(
            EXAMPLE_DAGS,
            runner.AWARDS_DAG_ID,
            "soak awards",
            runner.award_logical_date(day, gym.spec.timezone),
            {"chunk_size": 5000, "max_failure_ratio": _threshold(INVALID_CHECKIN_ROWS, checkin_rows)},
        )
        stats = sandbox.admin.stats()
    finally:
        sandbox.admin.clear_faults()

    requests = sum(sum(by_status.values()) for by_status in stats["requests"].values())
    injected = stats["faults_injected"]
    print(
        f"soak: {requests} requests; 5xx {injected['error'] / requests:.1%}, "
        f"429 {injected['rate_limited'] / requests:.1%}, lost after commit {injected['lost_after_commit']}"
    )
    kinds = ("error", "rate_limited", "lost_after_commit")
    assert {kind: injected[kind] >= FEW_DOZEN for kind in kinds} == dict.fromkeys(kinds, True), injected
    assert (sync.state, awards.state) == ("success", "success")

    ledger = sandbox.admin.ledger()
    synced = [m for m in ledger["external_members"] if m["external_system_id"] == data.SOURCE_SYSTEM]
    assert sorted(m["external_member_id"] for m in synced) == sorted(gym.valid_members())
    user_emails = Counter(email["email"] for user in ledger["users"] for email in user["emails"])
    assert {email: user_emails[email] for email in gym.valid_members().values()} == dict.fromkeys(
        gym.valid_members().values(), 1
    )

    visits = gym.awardable_visits(day)
    assert len(visits) == CHECKINS
    assert_each_visit_awarded_once(awards_in_ledger(sandbox), visits)
