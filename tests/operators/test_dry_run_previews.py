"""A dry run that cannot read the business still previews real requests: the connection's business."""

from __future__ import annotations

import json

from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator
from tests.helpers.hook_sandbox import CASEY, CHECKIN_PERK_ID


def test_a_dry_run_that_cannot_read_the_business_previews_the_connections_business(
    sandbox, monkeypatch, tmp_path
):
    wrong_password = sandbox.airflow_conn_env_value(password="not-the-password-1")
    monkeypatch.setenv("AIRFLOW_CONN_PERKVILLE_DEFAULT", wrong_password)
    report = tmp_path / "report.jsonl"
    operator = PerkvilleAwardPointsOperator(
        task_id="awards",
        awards=[{"trans_source_id": "PREVIEW:1", "user_email": CASEY, "perk_id": CHECKIN_PERK_ID}],
        validate_only=True,
        report_path=str(report),
    )

    summary = operator.execute(context={})

    lines = [json.loads(line) for line in report.read_text().splitlines()]
    requests = [line["request"] for line in lines if line.get("status") == "would_send"]
    assert summary["would_send"] == 1
    assert [request["business"] for request in requests] == [f"/v2/businesses/{sandbox.business_id}/"]
    assert sandbox.admin.ledger()["transactions"] == []
