"""PerkvilleAwardPointsOperator in a real DAG (dag.test) against the sandbox; the ledger is the proof."""

from __future__ import annotations

import json

from tests.helpers.dag_runs import report_lines, task_states, transactions_by_source, xcom_values

CHECKIN_POINTS = 10  # seed perk 501 "Daily check-in"


def _checkins(prefix: str, count: int) -> list[dict]:
    emails = ("casey@example.com", "robin@example.com")
    return [{"trans_source_id": f"{prefix}:{i}", "user_email": emails[i % 2]} for i in range(count)]


def test_a_mapped_batch_awards_the_valid_records_reports_the_rest_and_a_rerun_awards_nothing_new(
    run_dag, sandbox, tmp_path
):
    awards = _checkins("GYM:DT:CHECKIN", 20)
    awards.insert(3, {"trans_source_id": "GYM:DT:CHECKIN:bad-email", "user_email": "not-an-email"})
    awards.insert(5, {"trans_source_id": "GYM:DT:CHECKIN:nobody", "user_email": "nobody@example.com"})
    awards.insert(
        14, {"trans_source_id": "GYM:DT:CHECKIN:zero", "user_email": "casey@example.com", "quantity": 0}
    )
    awards.insert(20, {"trans_source_id": "GYM:DT:CHECKIN:class", "user_id": "x1", "perk_id": 502})
    conf = {
        "awards": awards,
        "chunk_size": 12,
        "max_failure_ratio": 0.2,
        "report_dir": str(tmp_path / "first"),
    }

    first = run_dag("operators_awards", **conf)

    assert first.state == "success"
    chunks = xcom_values(first, "award_points")
    assert sorted(chunks) == [0, 1]
    assert [chunks[i]["total"] for i in range(2)] == [12, 12]
    merged = xcom_values(first, "merged")[-1]
    assert merged["total"] == 24
    assert merged["awarded"] == 20
    assert merged["points"] == 20 * CHECKIN_POINTS
    assert (merged["invalid"], merged["failed"], merged["duplicate"]) == (3, 1, 0)
    assert [(entry["chunk"], entry["index"]) for entry in merged["failures"]] == [
        (0, 3),
        (0, 5),
        (1, 2),
        (1, 8),
    ]
    failures = {entry["key"]: entry for entry in merged["failures"]}
    assert failures["GYM:DT:CHECKIN:bad-email"]["field"] == "user_email"
    assert failures["GYM:DT:CHECKIN:zero"]["field"] == "quantity"
    assert failures["GYM:DT:CHECKIN:class"]["field"] == "user_id"
    assert failures["GYM:DT:CHECKIN:nobody"]["code"] == "pv_user_not_found"
    assert failures["GYM:DT:CHECKIN:nobody"]["status"] == "failed"
    assert len(json.dumps(merged)) < 64_000
    ledger = transactions_by_source(sandbox)
    assert ledger == {award["trans_source_id"]: 1 for award in _checkins("GYM:DT:CHECKIN", 20)}
    lines = report_lines(tmp_path / "first")
    assert len(lines) == 24
    assert {line["status"] for line in lines} == {"awarded", "invalid", "failed"}

    second = run_dag("operators_awards", **{**conf, "report_dir": ""})

    assert second.state == "success"
    again = xcom_values(second, "merged")[-1]
    assert (again["awarded"], again["duplicate"], again["points"]) == (0, 20, 0)
    assert transactions_by_source(sandbox) == ledger


def test_a_dry_run_validates_and_reports_the_requests_but_writes_nothing(run_dag, sandbox, tmp_path):
    awards = [
        *_checkins("DRY", 5),
        {"trans_source_id": "DRY:bad", "user_email": "casey@example.com", "quantity": -2},
    ]

    run = run_dag(
        "operators_awards", awards=awards, dry_run=True, max_failure_ratio=0.5, report_dir=str(tmp_path)
    )

    assert run.state == "success"
    merged = xcom_values(run, "merged")[-1]
    assert merged["dry_run"] is True
    assert (merged["would_send"], merged["invalid"]) == (5, 1)
    assert sandbox.admin.ledger()["transactions"] == []
    sent = [line["request"] for line in report_lines(tmp_path) if line["status"] == "would_send"]
    assert {body["trans_source_id"] for body in sent} == {f"DRY:{i}" for i in range(5)}
    assert all(body["business"] == sandbox.business_id and body["perk"] == 501 for body in sent)


def test_too_many_failures_fail_the_task_after_the_whole_batch_and_daily_limits_are_not_failures(
    run_dag, sandbox
):
    strangers = [{"trans_source_id": f"DAY:{i}", "user_email": f"stranger{i}@example.com"} for i in range(3)]
    twice_today = [  # one calendar day at the club, whatever the wall clock says
        {
            "trans_source_id": "DAY:casey:1",
            "user_email": "casey@example.com",
            "transaction_dt": "2026-03-10T09:00:00-05:00",
        },
        {
            "trans_source_id": "DAY:casey:2",
            "user_email": "casey@example.com",
            "transaction_dt": "2026-03-10T18:30:00-05:00",
        },
    ]
    awards = strangers + twice_today  # 3 of 5 refused (no connection): over the 0.5 allowed

    run = run_dag("operators_awards", awards=awards, chunk_size=50, once_a_day=True, max_failure_ratio=0.5)

    assert run.state == "failed"
    assert task_states(run)[("award_points", 0)] == "failed"
    ledger = transactions_by_source(sandbox)
    assert ledger == {"DAY:casey:1": 1} or ledger == {"DAY:casey:2": 1}

    tolerant = run_dag("operators_awards", awards=twice_today, chunk_size=50, once_a_day=True)

    assert tolerant.state == "success"
    summary = xcom_values(tolerant, "merged")[-1]
    assert (summary["duplicate"], summary["daily_limited"], summary["failed"]) == (1, 1, 0)


def test_responses_lost_after_commit_leave_exactly_one_transaction_per_trans_source_id(run_dag, sandbox):
    sandbox.admin.set_faults(lost_after_commit_rate=0.3, seed=11)
    awards = _checkins("LOST", 40)

    run = run_dag("operators_awards", awards=awards, chunk_size=20)

    sandbox.admin.clear_faults()
    assert run.state == "success"
    merged = xcom_values(run, "merged")[-1]
    assert merged["awarded"] + merged["duplicate"] == 40
    assert merged["failed"] == 0
    assert sandbox.admin.stats()["faults_injected"].get("lost_after_commit", 0) > 0
    # A first run has no earlier awards: every duplicate is one this run wrote and lost the answer to.
    assert merged["recovered"] == merged["duplicate"] > 0
    assert transactions_by_source(sandbox) == {award["trans_source_id"]: 1 for award in awards}
