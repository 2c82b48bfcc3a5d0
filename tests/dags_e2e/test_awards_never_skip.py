"""Issues 15 and 16 against the sandbox's ledger: runs without a logical date, members not yet in
Perkville, skipped days, late check-ins, gaps longer than the lookback, and re-runs."""

from __future__ import annotations

import pendulum

from perkville_provider.demo import runner
from tests.helpers.dags import EXAMPLE_DAGS
from tests.helpers.e2e import assert_each_visit_awarded_once, awards_in_ledger, task_states

NEW_YORK = "America/New_York"


def award(
    day: pendulum.Date | None, *, run_after: pendulum.DateTime | None = None, **conf
) -> runner.RunResult:
    """A run for ``day`` as the scheduler makes it, or, with ``day=None``, a run without a logical date."""
    logical_date = (
        None if day is None else pendulum.datetime(day.year, day.month, day.day, tz=NEW_YORK).add(days=1)
    )
    return runner.run_dag(
        EXAMPLE_DAGS, runner.AWARDS_DAG_ID, "award", logical_date, conf, run_after=run_after
    )


def sync_members(at: pendulum.DateTime) -> None:
    run = runner.run_dag(EXAMPLE_DAGS, runner.MEMBER_SYNC_DAG_ID, "sync", at, {"full_sync": True})
    assert run.state == "success"


def visits_of(gym, days) -> dict:
    visits: dict = {}
    for day in days:
        visits.update(gym.awardable_visits(day))
    return visits


def synced_member_ids(sandbox) -> set[str]:
    return {m["external_member_id"] for m in sandbox.admin.ledger()["external_members"]}


def test_a_fresh_deployment_run_without_a_logical_date_awards_yesterday_and_creates_its_members_first(
    airflow_db, sandbox, gym
):
    """Issue 16: no member sync ever ran, and the run has no logical date (CLI/REST/UI trigger)."""
    queued = pendulum.datetime(2026, 11, 20, 3, tz=NEW_YORK)  # yesterday there: 2026-11-19

    run = award(None, run_after=queued)

    assert run.state == "success"
    assert (run.summary["day"], run.summary["day_source"]) == (
        "2026-11-19",
        "yesterday (a run without a logical date)",
    )
    assert run.summary["window"] == ["2026-11-16", "2026-11-19"]
    assert_each_visit_awarded_once(awards_in_ledger(sandbox), visits_of(gym, gym.spec.checkin_days))
    assert {member for member, _ in visits_of(gym, gym.spec.checkin_days)} <= synced_member_ids(sandbox)
    assert run.summary["failed"] == 0, "no pv_user_not_found"


def test_a_member_who_joins_and_checks_in_within_the_hour_is_awarded(airflow_db, sandbox, gym):
    day = gym.spec.checkin_days[-1]
    sync_members(pendulum.datetime(2026, 11, 19, 9, tz="UTC"))  # synced 09:00 UTC that day
    gym.execute(
        "INSERT INTO members VALUES ('M09001', 'new.joiner@example.org', 'New', 'Joiner', 'Monthly',"
        " 'ACTIVE', '2026-11-19', NULL, 'DT', '2026-11-19 09:20:00')"
    )
    gym.execute("INSERT INTO checkins VALUES (99001, 'M09001', 'DT', '2026-11-19 09:45:00')")

    run = award(day)

    assert run.state == "success"
    assert run.summary["members_upserted"]["created"] == 1
    assert awards_in_ledger(sandbox)["MYGYM:DT:CHECKIN:99001"] == 1
    assert_each_visit_awarded_once(awards_in_ledger(sandbox), visits_of(gym, gym.spec.checkin_days))


def test_skipped_days_and_a_late_checkin_are_awarded_exactly_once_and_reruns_award_nothing(
    airflow_db, sandbox, make_gym
):
    """Issue 15 (1), (2), (5): day 1 runs, days 2 and 3 do not, a row of day 3 arrives late, day 4 runs."""
    gym = make_gym(days=4)
    day1, day2, day3, day4 = gym.spec.checkin_days
    sync_members(pendulum.datetime(2026, 11, 16, tz=NEW_YORK))
    assert award(day1).state == "success"
    newcomer = sorted(set(gym.valid_members()) - {member for member, _ in gym.awardable_visits(day3)})[0]
    returning = sorted(member for member, _ in gym.awardable_visits(day1))[0]
    gym.execute(  # late rows: a new visit on day 3, a second visit on day 1 of a member awarded that day
        "INSERT INTO checkins VALUES (99101, ?, 'DT', ?), (99102, ?, 'DT', ?)",
        newcomer,
        f"{day3} 23:00:00",
        returning,
        f"{day1} 22:00:00",
    )

    run = award(day4)

    assert run.state == "success"
    visits = visits_of(gym, gym.spec.checkin_days)
    ledger = awards_in_ledger(sandbox)
    assert_each_visit_awarded_once(ledger, visits)
    assert ledger["MYGYM:DT:CHECKIN:99101"] == 1
    assert "MYGYM:DT:CHECKIN:99102" not in ledger, "a second visit on a re-scanned day stays daily-limited"
    assert run.summary["daily_limited"] >= 1
    late = len(visits_of(gym, [day2, day3]))
    assert run.summary["late"] == late
    assert run.summary["own_day"]["awarded"] == len(gym.awardable_visits(day4))
    assert run.summary["skipped_known"] > 0, "day 1 was settled by its own run's report"

    for again in (award(day4), award(day4, skip_known_awards=False)):
        assert again.state == "success"
        assert again.summary["awarded"] == 0
        assert awards_in_ledger(sandbox) == ledger
    assert again.summary["reread_duplicate"] > 0
    assert again.summary["daily_limited"] >= 1


def test_a_gap_longer_than_the_catch_up_bound_awards_what_it_can_then_fails_with_the_backfill_command(
    airflow_db, sandbox, make_gym, caplog, capfd
):
    """Issue 15 (4): day 1 ran; the next run is day 8 with lookback 1 and a catch-up bound of 4 days."""
    gym = make_gym(days=8)
    days = gym.spec.checkin_days
    sync_members(pendulum.datetime(2026, 11, 12, tz=NEW_YORK))
    assert award(days[0], lookback_days=0).state == "success"

    run = award(days[7], lookback_days=1, max_catchup_days=4)

    assert run.state == "failed"
    assert task_states(run.run_id)["report"] == {"failed"}
    assert_each_visit_awarded_once(awards_in_ledger(sandbox), visits_of(gym, [days[0], *days[3:]]))
    log = caplog.text + capfd.readouterr().out  # where dag.test() logs the task's exception
    command = (
        "airflow backfill create --dag-id perkville_daily_checkin_awards "
        f"--from-date {days[1]}T00:00:00-05:00 --to-date {days[2]}T00:00:00-05:00"
    )
    assert command in log, log[-2000:]

    for day in days[1:3]:  # what the backfill command runs
        assert award(day, lookback_days=1, max_catchup_days=4).state == "success"
    assert_each_visit_awarded_once(awards_in_ledger(sandbox), visits_of(gym, days))
    assert award(days[7], lookback_days=1, max_catchup_days=4).state == "success"
