"""Records with the same key in one batch are sent one after the other, in input order: the last
one wins every time, and the summary counts them (proven from the sandbox's ledger)."""

from __future__ import annotations

import pytest

from perkville_provider.batch import run_batch
from perkville_provider.hooks.perkville import PerkvilleHook
from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator
from perkville_provider.operators.base import BatchSettings
from perkville_provider.operators.sync_members import PerkvilleSyncMembersOperator
from tests.helpers.dag_runs import transactions_by_source


@pytest.fixture
def settings(sandbox) -> BatchSettings:
    return BatchSettings(
        perkville_conn_id="perkville_default",
        business_id=sandbox.business_id,
        max_workers=8,
        max_requests_per_second=None,
        max_failure_ratio=0.0,
        dry_run=False,
        report_path=None,
    )


def test_the_same_member_twice_ends_with_the_last_record_every_time(sandbox, settings):
    sandbox.admin.set_faults(latency_ms=5, jitter_ms=40, seed=11)
    members = []
    for n in range(6):
        members.append({"external_member_id": f"M-{n}", "user_email": f"first.{n}@example.com"})
        members.append({"external_member_id": f"M-{n}", "user_email": f"last.{n}@example.com"})
    operator = PerkvilleSyncMembersOperator(task_id="sync", members=members, external_system_id="GYM")
    job = operator.build_job(PerkvilleHook(), settings)

    summary = run_batch(members, job, max_workers=8)

    assert summary["repeated_keys"] == 6
    assert (summary["created"], summary["updated"], summary["failed"]) == (6, 6, 0)
    emails = {
        row["external_member_id"]: row["user_email"] for row in sandbox.admin.ledger()["external_members"]
    }
    assert emails == {f"M-{n}": f"last.{n}@example.com" for n in range(6)}


def test_the_same_trans_source_id_twice_is_awarded_once_then_a_duplicate(sandbox, settings):
    awards = [
        {"trans_source_id": f"T-{n // 2}", "user_email": "casey@example.com", "perk_id": 501}
        for n in range(6)
    ]
    operator = PerkvilleAwardPointsOperator(task_id="award", awards=awards)
    job = operator.build_job(PerkvilleHook(), settings)

    summary = run_batch(awards, job, max_workers=8)

    assert (summary["awarded"], summary["duplicate"], summary["repeated_keys"]) == (3, 3, 3)
    assert transactions_by_source(sandbox) == {"T-0": 1, "T-1": 1, "T-2": 1}
