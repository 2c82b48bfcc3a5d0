"""The daily check-in awards DAG through dag.test() against the sandbox, judged by the ledger."""

from __future__ import annotations

import pendulum

from perkville_provider.demo import runner
from tests.helpers.dags import EXAMPLE_DAGS
from tests.helpers.e2e import CHECKIN_POINTS, assert_each_visit_awarded_once, awards_in_ledger, task_states


def sync_members(gym) -> None:
    run = runner.run_dag(
        EXAMPLE_DAGS,
        runner.MEMBER_SYNC_DAG_ID,
        "sync",
        runner.member_sync_logical_date(gym.spec),
        {"full_sync": True},
    )
    assert run.state == "success"


def award(gym, day: pendulum.Date, **conf) -> runner.RunResult:
    logical_date = runner.award_logical_date(day, gym.spec.timezone)
    return runner.run_dag(EXAMPLE_DAGS, runner.AWARDS_DAG_ID, day.to_date_string(), logical_date, conf)


def ledger_points(sandbox) -> int:
    return sum(
        txn["points"] * txn["quantity"]
        for txn in sandbox.admin.ledger()["transactions"]
        if txn["trans_source_id"].startswith("MYGYM:")
    )


def test_the_awards_of_a_day_are_exactly_that_days_valid_checkins(airflow_db, sandbox, gym):
    sync_members(gym)
    day = gym.spec.checkin_days[1]

    run = award(gym, day, chunk_size=7, lookback_days=0)

    assert run.state == "success"
    visits = gym.awardable_visits(day)
    assert len(visits) == gym.spec.checkins_per_day
    awarded = awards_in_ledger(sandbox)
    assert_each_visit_awarded_once(awarded, visits)
    assert ledger_points(sandbox) == CHECKIN_POINTS * len(visits)
    summary = run.summary
    assert (summary["duplicate"], summary["daily_limited"], summary["invalid"]) == (1, 1, 3)
    reasons = {(failure["field"], failure["code"]) for failure in summary["failures"]}
    assert reasons == {("user_email", "required"), ("user_email", "invalid")}


def test_a_rerun_and_a_three_day_backfill_award_nothing_twice(airflow_db, sandbox, gym):
    sync_members(gym)
    first_day = gym.spec.checkin_days[0]
    assert award(gym, first_day).state == "success"
    after_first = awards_in_ledger(sandbox)
    points_after_first = ledger_points(sandbox)

    rerun = award(gym, first_day)

    assert rerun.state == "success"
    assert awards_in_ledger(sandbox) == after_first
    assert ledger_points(sandbox) == points_after_first
    assert rerun.summary["awarded"] == 0

    backfill = [award(gym, day) for day in gym.spec.checkin_days]

    assert [run.state for run in backfill] == ["success"] * 3
    visits = {}
    for day in gym.spec.checkin_days:
        visits.update(gym.awardable_visits(day))
    awarded = awards_in_ledger(sandbox)
    assert_each_visit_awarded_once(awarded, visits)
    assert ledger_points(sandbox) == CHECKIN_POINTS * len(visits)
    assert backfill[0].summary["awarded"] == 0


def test_a_day_without_checkins_succeeds_and_awards_nothing(airflow_db, sandbox, gym):
    sync_members(gym)

    run = award(gym, gym.spec.anchor.add(days=5))

    assert run.state == "success"
    assert run.summary["total"] == 0
    assert awards_in_ledger(sandbox) == {}


def test_a_chunk_fails_on_its_own_bad_records_and_the_report_still_sums_the_run(airflow_db, sandbox, gym):
    sync_members(gym)
    within, over = gym.spec.checkin_days[0], gym.spec.checkin_days[2]

    passed = award(gym, within, max_failure_ratio=0.2)
    failed = award(gym, over, chunk_size=7, max_failure_ratio=0.05)

    assert passed.state == "success", "3 bad rows of 29 is within 20%"
    assert failed.state == "failed"
    states = task_states(failed.run_id)
    assert "failed" in states["award_checkin_points"], "a chunk whose bad rows pass 5% fails itself"
    assert "success" in states["award_checkin_points"]
    assert states["report"] == {"failed"}, "the report ran after the failed chunks, and judged the run"
    # The day between had no run: the second run caught it up (and judged it) too; every chunk,
    # failed or not, sent its valid records.
    assert_each_visit_awarded_once(
        awards_in_ledger(sandbox),
        {
            **gym.awardable_visits(within),
            **gym.awardable_visits(gym.spec.checkin_days[1]),
            **gym.awardable_visits(over),
        },
    )
