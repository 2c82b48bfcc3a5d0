"""PerkvilleSyncMembersOperator in a real DAG (dag.test) against the sandbox."""

from __future__ import annotations

from tests.helpers.dag_runs import xcom_values


def _members(count: int, *, membership_type: str) -> list[dict]:
    return [
        {
            "external_member_id": f"M{i:03d}",
            "user_email": f"member{i}@example.com",
            "first_name": f"Member{i}",
            "external_membership_type": membership_type,
            "external_membership_status": "active",
            "external_join_dt": "2025-03-01",
        }
        for i in range(count)
    ]


def test_members_from_xcom_are_created_then_updated_and_bad_rows_are_reported(run_dag, sandbox):
    members = _members(10, membership_type="GOLD")
    members.insert(2, {"external_member_id": "M-bad", "user_email": "member-at-example.com"})
    members.insert(7, {"user_email": "no-id@example.com"})

    first = run_dag("operators_members", members=members, chunk_size=5)

    assert first.state == "success"
    assert sorted(xcom_values(first, "sync_members")) == [0, 1, 2]
    summary = xcom_values(first, "merged")[-1]
    assert (summary["total"], summary["created"], summary["updated"], summary["invalid"]) == (12, 10, 0, 2)
    assert {(f["key"], f["field"]) for f in summary["failures"]} == {
        ("M-bad", "user_email"),
        ("no-id@example.com", "external_member_id"),
    }
    ledger = sandbox.admin.ledger()["external_members"]
    synced = {m["external_member_id"]: m for m in ledger if m["external_system_id"] == "TEST_SYS"}
    assert sorted(synced) == [f"M{i:03d}" for i in range(10)]
    assert {m["external_membership_type"] for m in synced.values()} == {"GOLD"}

    second = run_dag("operators_members", members=_members(10, membership_type="PLATINUM"), chunk_size=5)

    assert second.state == "success"
    summary = xcom_values(second, "merged")[-1]
    assert (summary["created"], summary["updated"], summary["failed"]) == (0, 10, 0)
    ledger = [m for m in sandbox.admin.ledger()["external_members"] if m["external_system_id"] == "TEST_SYS"]
    assert len(ledger) == 10
    assert {m["external_membership_type"] for m in ledger} == {"PLATINUM"}
