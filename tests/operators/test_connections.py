"""PerkvilleJoinProgramOperator and PerkvilleGetConnectionsOperator in a real DAG against the sandbox."""

from __future__ import annotations

from tests.helpers.dag_runs import report_lines, xcom_values

NEW_MEMBER = {
    "user_email": "new.member@example.com",
    "external_member_id": "NEW-1",
    "external_membership_status": "ACTIVE",
    "first_name": "Nova",
}
MEMBERS = [
    {"user_email": "casey@example.com"},
    {"user_email": "robin@example.com"},
    NEW_MEMBER,
    {"user_email": "walk.in@example.com"},
    {"user_email": "not an email"},
]


def _outcomes(summary: dict) -> dict[str, dict]:
    return {entry["key"]: entry for entry in summary["results"] + summary["failures"]}


def _connection(sandbox, email: str) -> dict | None:
    matches = [c for c in sandbox.admin.ledger()["connections"] if c["user_email"] == email]
    return matches[0] if matches else None


def test_the_join_flow_reports_each_outcome_and_joins_only_once_the_customer_agreed(
    run_dag, sandbox, tmp_path
):
    first = run_dag(
        "operators_connections",
        members=MEMBERS,
        emails=["casey@example.com", "nobody@example.com", "oops"],
        user_ids=[1003, 99999],
        report_dir=str(tmp_path),
    )

    assert first.state == "success"
    joins = xcom_values(first, "join_program")[-1]
    assert (joins["total"], joins["already_active"], joins["invalid"]) == (5, 1, 1)
    outcomes = _outcomes(joins)
    assert outcomes["casey@example.com"]["status"] == "already_active"
    robin = outcomes["robin@example.com"]
    assert (robin["status"], robin["code"]) == (
        "membership_not_active",
        "pv_connection_membership_not_active",
    )
    assert robin["message"] == "Your membership is not active. Please contact the business for help."
    new = outcomes["new.member@example.com"]
    assert (new["status"], new["code"], new["created"]) == (
        "agreement_required",
        "pv_agreement_required",
        True,
    )
    assert (
        new["message"]
        == "Please review and accept the required terms to join at https://www.perkville.com/biz/9823/"
    )
    assert outcomes["walk.in@example.com"]["status"] == "no_connection"
    assert outcomes["not an email"]["field"] == "user_email"
    assert _connection(sandbox, "new.member@example.com")["status"] == "IMPORTED"
    assert _connection(sandbox, "walk.in@example.com") is None
    assert xcom_values(first, "join_program", key="_link_PerkvilleBusinessLink") == {
        -1: "https://www.perkville.com/biz/9823/"
    }

    lookups = xcom_values(first, "get_connections")[-1]
    assert (lookups["found"], lookups["not_found"], lookups["invalid"]) == (2, 2, 1)
    found = {entry["key"]: entry for entry in lookups["results"] if entry["status"] == "found"}
    assert found["casey@example.com"]["point_balance"] == 120
    assert found["casey@example.com"]["connection_status"] == "ACTIVE"
    assert found["1003"]["connection_id"] == found["casey@example.com"]["connection_id"]
    assert len(report_lines(tmp_path)) == 5

    second = run_dag("operators_connections", members=MEMBERS, agreements_accepted=True)

    assert second.state == "success"
    outcomes = _outcomes(xcom_values(second, "join_program")[-1])
    assert outcomes["new.member@example.com"]["status"] == "joined"
    assert outcomes["new.member@example.com"]["accepted_agreement_ids"] == [701]
    assert outcomes["robin@example.com"]["status"] == "membership_not_active"
    assert outcomes["casey@example.com"]["status"] == "already_active"
    assert _connection(sandbox, "new.member@example.com")["status"] == "ACTIVE"
    assert _connection(sandbox, "robin@example.com")["status"] == "IMPORTED"
