"""The award summary's counts against the sandbox's ledger, under answers lost after commit."""

from __future__ import annotations

from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator
from tests.helpers.operator_runs import TaskInstanceStub

AWARDS = [{"trans_source_id": f"COUNT:{n}", "user_email": "casey@example.com"} for n in range(60)]


def test_awarded_plus_recovered_and_their_points_reconcile_with_the_ledger(sandbox):
    sandbox.admin.set_faults(lost_after_commit_rate=0.3, error_rate=0.1, seed=5)
    operator = PerkvilleAwardPointsOperator(task_id="award", awards=AWARDS, perk_id=502, max_workers=4)

    summary = operator.execute({"ti": TaskInstanceStub()})

    sandbox.admin.clear_faults()
    ledger = [
        row for row in sandbox.admin.ledger()["transactions"] if row["trans_source_id"].startswith("COUNT:")
    ]
    assert summary["failed"] == 0
    assert summary["recovered"] > 0, "the seed must lose some answers"
    assert summary["awarded"] + summary["recovered"] == len(ledger) == len(AWARDS)
    ledger_points = sum(int(row["points"]) * int(row["quantity"]) for row in ledger)
    assert summary["points"] + summary["recovered_points"] == ledger_points
