"""Readable unknowns the sandbox always answers one way: a Perkville that answers them otherwise.

The hostile test server plays an API that gives ids for relations, ISO datetimes, decimals as
text, a bare ``{"error": ...}`` for a 400, rate-limit headers on every answer, and a business list
of one (the connection names none). The doctor must say ``differs`` for each, and suggest the
``business_id`` it saw; it never writes, as the server's own record of requests shows.
"""

from __future__ import annotations

import json

from perkville_provider.auth import clear_token_cache
from perkville_provider.doctor import DIFFERS, run_doctor
from tests.doctor.test_doctor_modes import READABLE_ALWAYS_HOLDING
from tests.helpers.hostile_conn import TOKEN, hostile_connection
from tests.helpers.hostile_server import page

RATE_HEADERS = {"X-RateLimit-Limit": "120", "X-RateLimit-Remaining": "119"}
CONNECTION = {
    "connection_id": 1,
    "business": 77,
    "user": 5,
    "point_balance": "12.50",
    "last_mod_dt": "2026-05-01T07:30:00-04:00",
}


def other_perkville(exchange) -> None:
    request = exchange.request
    if request.query.get("limit") == "not-a-number":
        exchange.json(400, {"error": "Invalid limit provided."}, headers=RATE_HEADERS)
    elif request.path.startswith("/v2/perks/") and request.path != "/v2/perks/":
        exchange.json(404, {"error": "not here"}, headers=RATE_HEADERS)
    elif request.path == "/v2/businesses/":
        exchange.json(200, page([{"business_id": 77, "name": "Other Gym"}]), headers=RATE_HEADERS)
    elif request.path.startswith("/v2/businesses/"):
        exchange.json(200, {"business_id": 77, "name": "Other Gym"}, headers=RATE_HEADERS)
    elif request.path == "/v2/users/me/":
        exchange.json(200, {"user_id": 5, "last_mod_dt": "2026-05-01T07:30:00Z"}, headers=RATE_HEADERS)
    else:
        exchange.json(200, page([CONNECTION]), headers=RATE_HEADERS)


def test_answers_spelled_otherwise_are_said_to_differ_and_the_one_business_is_suggested(
    hostile_server, monkeypatch
):
    clear_token_cache()
    hostile_server.script = other_perkville
    value = hostile_connection(hostile_server, extra={"business_id": None})
    monkeypatch.setenv("AIRFLOW_CONN_PERKVILLE_OTHER", json.dumps(value))

    report = run_doctor("perkville_other")

    differing = {found.key for found in report.findings if found.conclusion == DIFFERS}
    answered_otherwise = set(READABLE_ALWAYS_HOLDING) - {"token.scopes", "lists.shape", "latency"}
    assert answered_otherwise <= differing
    assert report.suggested_extras() == {"business_id": 77}
    assert "X-RateLimit-Limit: 120" in report.finding("rate.headers").observed
    assert "iso" in report.finding("answers.datetimes").advice
    assert "quantity_format string" in report.finding("answers.decimals").advice
    assert {seen.method for seen in hostile_server.seen} == {"GET"}
    assert TOKEN not in json.dumps(report.as_dict())
