"""The member sync DAG through dag.test() against the sandbox, judged by the sandbox's ledger."""

from __future__ import annotations

import pendulum
import pytest

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


def sync(logical_date: pendulum.DateTime | None, *, run_after: pendulum.DateTime | None = None, **conf):
    return runner.run_dag(
        EXAMPLE_DAGS, runner.MEMBER_SYNC_DAG_ID, "sync", logical_date, conf, run_after=run_after
    )


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


def test_without_a_logical_date_the_first_sync_sends_everyone_and_the_next_only_what_changed(
    airflow_db, sandbox, gym
):
    """`airflow dags trigger perkville_member_sync` (no --logical-date), first as a full sync."""
    first = sync(None, run_after=pendulum.datetime(2026, 11, 20, 6, 30, tz="UTC"), full_sync=True)

    assert first.state == "success"
    assert set(_synced_members(sandbox)) == set(gym.valid_members())
    assert first.summary["window"]["until"] == "2026-11-20T06:30:00+00:00"

    posts_before = _member_posts(sandbox)
    quiet = sync(None, run_after=pendulum.datetime(2026, 11, 20, 7, 30, tz="UTC"))

    assert quiet.state == "success"
    assert quiet.summary["total"] == 0
    assert _member_posts(sandbox) == posts_before


def _change(gym, member_id: str, at: pendulum.DateTime, **values: str) -> None:
    assignments = ", ".join(f"{name} = ?" for name in values)
    gym.execute(
        f"UPDATE members SET {assignments}, updated_at = ? WHERE member_id = ?",  # noqa: S608
        *values.values(),
        at.format("YYYY-MM-DD HH:mm:ss"),
        member_id,
    )


def test_after_three_skipped_hourly_runs_the_next_run_sends_every_change_with_its_latest_values(
    airflow_db, sandbox, gym
):
    assert sync(pendulum.datetime(2026, 11, 20, 10, tz="UTC"), full_sync=True).state == "success"
    _change(gym, "M00011", pendulum.datetime(2026, 11, 20, 10, 20, tz="UTC"), last_name="First")
    _change(gym, "M00012", pendulum.datetime(2026, 11, 20, 11, 30, tz="UTC"), membership_status="FROZEN")
    _change(gym, "M00011", pendulum.datetime(2026, 11, 20, 12, 40, tz="UTC"), last_name="Latest")
    _change(gym, "M00013", pendulum.datetime(2026, 11, 20, 13, 10, tz="UTC"), membership_type="Annual")
    # The runs of 11:00, 12:00 and 13:00 never ran; the 14:00 run's own interval is 13:00-14:00.

    run = sync(pendulum.datetime(2026, 11, 20, 14, tz="UTC"))

    assert run.state == "success"
    assert run.summary["total"] == 3
    synced = _synced_members(sandbox)
    assert synced["M00011"]["last_name"] == "Latest"
    assert synced["M00012"]["external_membership_status"] == "FROZEN"
    assert synced["M00013"]["external_membership_type"] == "Annual"

    again = sync(pendulum.datetime(2026, 11, 20, 14, tz="UTC"))

    assert again.state == "success"
    assert _without_mod_time(_synced_members(sandbox)) == _without_mod_time(synced), (
        "same members, same values"
    )


def _without_mod_time(members: dict[str, dict]) -> dict[str, dict]:
    """A repeated upsert touches ``last_mod_dt`` and nothing else."""
    return {key: {k: v for k, v in record.items() if k != "last_mod_dt"} for key, record in members.items()}


def test_more_failures_than_the_threshold_fail_the_run_after_sending_every_valid_member(
    airflow_db, sandbox, gym
):
    run = sync(runner.member_sync_logical_date(gym.spec), full_sync=True, max_failure_ratio=0.05)

    assert run.state == "failed"
    states = task_states(run.run_id)
    assert (states["sync_members"], states["report"]) == ({"success"}, {"failed"})
    assert set(_synced_members(sandbox)) == set(gym.valid_members())


@pytest.mark.soak
def test_a_full_sync_deactivates_who_left_once_and_the_guard_refuses_an_empty_source(
    airflow_db, sandbox, gym
):
    """The example DAG's full_sync Param: a member gone is set INACTIVE; an empty source is refused
    before any write, until the allow_mass_change Param lets that one run through."""
    at = pendulum.datetime(2026, 11, 20, 6, 30, tz="UTC")
    assert sync(None, run_after=at, full_sync=True).state == "success"
    leaver = sorted(gym.valid_members())[-1]
    gym.execute("DELETE FROM members WHERE member_id = ?", leaver)

    left = sync(None, run_after=at.add(hours=1), full_sync=True)
    again = sync(None, run_after=at.add(hours=2), full_sync=True)

    assert (left.state, left.summary["deactivated"], again.summary["deactivated"]) == ("success", 1, 0)
    members = _synced_members(sandbox)
    assert members[leaver]["external_membership_status"] == "INACTIVE"
    assert {m["external_membership_status"] for k, m in members.items() if k != leaver} != {"INACTIVE"}

    gym.execute("DELETE FROM members")
    posts = _member_posts(sandbox)
    refused = sync(None, run_after=at.add(hours=3), full_sync=True)

    assert refused.state == "failed"
    assert _synced_members(sandbox) == members
    assert _member_posts(sandbox) == posts

    allowed = sync(None, run_after=at.add(hours=4), full_sync=True, allow_mass_change=True)

    assert allowed.state == "success"
    assert {m["external_membership_status"] for m in _synced_members(sandbox).values()} == {"INACTIVE"}
