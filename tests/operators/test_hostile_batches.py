"""Award batches against the hostile test server: bounded, redacted texts; a kill that frees stuck
workers; one authentication error instead of a grant storm; odd rendered input named."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator
from tests.helpers.hostile_conn import GRANTED, TOKEN, grant_script, hostile_connection
from tests.helpers.hostile_server import echo_everything
from tests.helpers.operator_runs import TaskInstanceStub, execute_in_thread

BUSINESS = {"business_id": 9823, "name": "Hostile Gym", "resource_uri": "/v2/businesses/9823/"}
AWARDS = [{"trans_source_id": f"H:{n}", "user_email": "casey@example.com"} for n in range(40)]


@pytest.fixture
def hostile_conn(hostile_server, monkeypatch):
    """Point ``perkville_default`` at the hostile server; the business read always works."""
    from perkville_provider.auth import clear_token_cache

    clear_token_cache()

    def define(**overrides) -> None:
        value = hostile_connection(hostile_server, **overrides)
        monkeypatch.setenv("AIRFLOW_CONN_PERKVILLE_DEFAULT", json.dumps(value))

    hostile_server.route("GET", "/v2/businesses/9823/", lambda exchange: exchange.json(200, BUSINESS))
    yield define
    clear_token_cache()


def _operator(**kwargs) -> PerkvilleAwardPointsOperator:
    return PerkvilleAwardPointsOperator(task_id="award", perk_id=501, **{"awards": AWARDS, **kwargs})


def test_server_texts_echoing_the_token_are_redacted_and_bounded_in_summary_report_and_log(
    hostile_server, hostile_conn, tmp_path: Path, caplog
):
    hostile_conn()
    echo = echo_everything(400)

    def huge_echo(exchange) -> None:
        exchange.request.headers["X-Padding"] = "p" * 1_000_000
        echo(exchange)

    hostile_server.route("POST", "/v2/transactions/", huge_echo)
    report = tmp_path / "report.jsonl"
    with pytest.raises(AirflowFailException) as info:
        _operator(awards=AWARDS[:3], report_path=str(report)).execute({"ti": TaskInstanceStub()})

    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [line["status"] for line in lines] == ["failed"] * 3
    assert TOKEN in hostile_server.requests_to("/v2/transactions/")[0].header("Authorization")
    for text in (report.read_text(), str(info.value), caplog.text):
        assert TOKEN not in text
    for line in lines:
        assert len(line["message"]) < 5_000
        assert len(line["field"]) < 200
        assert len(line["code"]) < 200
    assert len(report.read_text()) < 30_000


@pytest.mark.timeout(60)
def test_on_kill_ends_a_batch_whose_workers_are_all_stuck_inside_requests(hostile_server, hostile_conn):
    hostile_conn(extra={"timeout": 5, "request_deadline": 3600})
    hostile_server.route(
        "POST",
        "/v2/transactions/",
        lambda exchange: exchange.trickle(201, b"{}" + b" " * 10_000, interval=0.05),
    )
    operator = _operator(max_workers=4)
    worker, outcome = execute_in_thread(operator)
    while len(hostile_server.requests_to("/v2/transactions/")) < 4 and worker.is_alive():
        threading.Event().wait(0.02)
    operator.on_kill()
    worker.join(timeout=10)

    assert not worker.is_alive(), "on_kill freed every stuck worker"
    assert isinstance(outcome.get("error"), AirflowException)
    assert "stopped" in str(outcome["error"])
    assert len(hostile_server.requests_to("/v2/transactions/")) == 4


def test_a_refused_new_token_stops_the_batch_with_one_authentication_error(hostile_server, hostile_conn):
    hostile_conn(grant=True)
    grants = iter(f"{GRANTED}-{n}" for n in range(1000))
    hostile_server.route("POST", "/api/token/", lambda exchange: grant_script(next(grants))(exchange))
    hostile_server.route(
        "POST", "/v2/transactions/", lambda exchange: exchange.json(401, {"detail": "Invalid token."})
    )
    with pytest.raises(AirflowFailException) as info:
        _operator(awards=AWARDS * 5, max_workers=8).execute({"ti": TaskInstanceStub()})

    assert len(hostile_server.requests_to("/api/token/")) == 2
    assert len(hostile_server.requests_to("/v2/transactions/")) <= 2 * 8
    assert "refused the token" in str(info.value)
    assert "records failed" not in str(info.value), "one authentication error, not one per record"
    assert GRANTED not in str(info.value)


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a": ' * 100_000], ids=["list", "object"])
def test_rendered_records_nested_too_deep_are_a_clear_parameter_error(text):
    with pytest.raises(AirflowFailException, match="awards"):
        _operator(awards=text).records()
