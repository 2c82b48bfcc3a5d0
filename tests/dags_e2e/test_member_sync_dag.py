"""The member sync DAG through dag.test() against the sandbox, judged by the sandbox's ledger."""

from __future__ import annotations

import pendulum

from perkville_provider.demo import data, runner
from tests.helpers.dags import EXAMPLE_DAGS
from tests.helpers.e2e import task_states


def _synced_members(sandbox) -> dict[str, dict]:
    """The sandbox's external member records of the demo's source system, by member id."""
    return {
        record["external_member_id"]: record
        for record in sandbox.admin.ledger()["external_members"]
        if record["external_system_id"] == data.SOURCE_SYSTEM
    }


def sync(logical_date: pendulum.DateTime, **conf):
    return runner.run_dag(EXAMPLE_DAGS, runner.MEMBER_SYNC_DAG_ID, "sync", logical_date, conf)


def _member_posts(sandbox) -> int:
    stats = sandbox.admin.stats()["requests"]
    return sum(
        count
        for endpoint, by_status in stats.items()
        if endpoint.startswith("POST /v2/external-members")
        for count in by_status.values()
    )


def test_member_sync_creates_every_valid_member_then_sends_only_the_changed_ones(airflow_db, sandbox, gym):
    first = sync(runner.member_sync_logical_date(gym.spec), full_sync=True)

    assert first.state == "success"
    valid = gym.valid_members()
    synced = _synced_members(sandbox)
    assert set(synced) == set(valid)
    assert {member_id: record["user_email"] for member_id, record in synced.items()} == valid
    assert first.summary["invalid"] == 3  # malformed email, no email, no member id

    changed_at = pendulum.datetime(2026, 11, 20, 14, 25, tz="UTC")
    gym.execute(
        "UPDATE members SET membership_status = 'INACTIVE', cancel_date = '2026-11-20',"
        " last_name = 'Lee-Adams', updated_at = ? WHERE member_id = 'M00010'",
        changed_at.format("YYYY-MM-DD HH:mm:ss"),
    )
    posts_before = _member_posts(sandbox)
    second = sync(pendulum.datetime(2026, 11, 20, 15, tz="UTC"))

    assert second.state == "success"
    assert _member_posts(sandbox) - posts_before == 1
    assert second.summary["total"] == 1
    after = _synced_members(sandbox)
    assert set(after) == set(valid)
    assert after["M00010"]["external_membership_status"] == "INACTIVE"
    assert after["M00010"]["external_cancel_dt"].startswith("2026-11-20")
    assert after["M00010"]["last_name"] == "Lee-Adams"
    assert after["M00010"]["external_member_record_id"] == synced["M00010"]["external_member_record_id"]
    unchanged = {k: v for k, v in after.items() if k != "M00010"}
    assert unchanged == {k: v for k, v in synced.items() if k != "M00010"}


def test_an_hour_with_no_changed_member_sends_nothing(airflow_db, sandbox, gym):
    run = sync(pendulum.datetime(2026, 11, 20, 15, tz="UTC"))

    assert run.state == "success"
    assert _member_posts(sandbox) == 0
    assert _synced_members(sandbox) == {}


def test_more_failures_than_the_threshold_fail_the_run_after_sending_every_valid_member(
    airflow_db, sandbox, gym
):
    run = sync(runner.member_sync_logical_date(gym.spec), full_sync=True, max_failure_ratio=0.05)

    assert run.state == "failed"
    states = task_states(run.run_id)
    assert (states["sync_members"], states["report"]) == ({"success"}, {"failed"})
    assert set(_synced_members(sandbox)) == set(gym.valid_members())
