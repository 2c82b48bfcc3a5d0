"""Fault injection: latency, 5xx, 429 with Retry-After, resets, and answers lost after commit."""

from __future__ import annotations

import asyncio
import time
from email.utils import parsedate_to_datetime

import pytest
import requests

from perkville_provider.sandbox import seed
from perkville_provider.sandbox.faults import RAW_SEND_KEY, FaultConfig, FaultMiddleware, Faults
from perkville_provider.sandbox.server import run_sandbox
from tests.helpers.api import Api, connection_of, error_codes

PERKS = f"/v2/perks/?business={seed.BUSINESS_ID}"


def statuses(api, count: int) -> list[int]:
    return [api.get(PERKS).status_code for _ in range(count)]


def test_latency_delays_every_api_answer_but_not_the_admin_api(sandbox, admin_api):
    sandbox.admin.set_faults(latency_ms=150)

    began = time.perf_counter()
    assert admin_api.get(PERKS).status_code == 200
    api_elapsed = time.perf_counter() - began
    began = time.perf_counter()
    sandbox.admin.health()
    admin_elapsed = time.perf_counter() - began

    assert api_elapsed >= 0.15
    assert admin_elapsed < 0.15
    assert sandbox.admin.stats()["faults_injected"]["latency"] == 1


def test_an_error_rate_of_one_answers_only_the_configured_5xx_without_processing(sandbox, admin_api):
    sandbox.admin.set_faults(error_rate=1.0, error_statuses=[503])

    response = admin_api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="e-1")

    assert response.status_code == 503
    assert error_codes(response) == {"__all__": ["sandbox_injected_error"]}
    assert sandbox.admin.ledger()["transactions"] == []


def test_a_partial_error_rate_mixes_500_502_and_503_with_successes(sandbox, admin_api):
    sandbox.admin.set_faults(error_rate=0.5, seed=11)

    seen = statuses(admin_api, 60)

    assert set(seen) <= {200, 500, 502, 503}
    assert 200 in seen
    assert {500, 502, 503} <= set(seen)
    assert sandbox.admin.stats()["faults_injected"]["error"] == sum(1 for s in seen if s != 200)


def test_a_throttle_rate_answers_that_share_429_with_retry_after_and_keeps_the_5xx_draws(sandbox, admin_api):
    sandbox.admin.set_faults(error_rate=0.2, seed=5)
    errors_only = statuses(admin_api, 80)
    sandbox.admin.set_faults(error_rate=0.2, throttle_rate=0.2, seed=5)
    with_throttling = statuses(admin_api, 80)

    assert 429 in with_throttling
    assert [s for s in with_throttling if s >= 500] == [s for s in errors_only if s >= 500]
    assert sandbox.admin.stats()["faults_injected"]["rate_limited"] == with_throttling.count(429)
    throttled = next(r for r in (admin_api.get(PERKS) for _ in range(50)) if r.status_code == 429)
    assert throttled.headers["Retry-After"] == "1"


def test_the_same_seed_gives_the_same_faults_again(sandbox, admin_api):
    sandbox.admin.set_faults(error_rate=0.3, seed=42)
    first = statuses(admin_api, 30)
    sandbox.admin.set_faults(error_rate=0.3, seed=42)
    second = statuses(admin_api, 30)
    sandbox.admin.set_faults(error_rate=0.3, seed=43)
    other = statuses(admin_api, 30)

    assert first == second
    assert other != first


def test_over_the_rate_limit_a_token_gets_429_with_retry_after_in_seconds(sandbox, admin_api):
    sandbox.admin.set_faults(rate_limit_per_second=3)

    responses = [admin_api.get(PERKS) for _ in range(5)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert int(responses[-1].headers["Retry-After"]) >= 1
    assert error_codes(responses[-1]) == {"__all__": ["rate_limited"]}
    assert responses[-1].json()["error_type"] == "rate_limited"


def test_the_rate_limit_is_per_token(sandbox, admin_api, frontdesk_api):
    sandbox.admin.set_faults(rate_limit_per_second=2)

    assert statuses(admin_api, 3) == [200, 200, 429]
    assert statuses(frontdesk_api, 2) == [200, 200]


def test_retry_after_can_be_an_http_date(sandbox, admin_api):
    sandbox.admin.set_faults(rate_limit_per_second=1, retry_after_format="http-date")

    admin_api.get(PERKS)
    limited = admin_api.get(PERKS)

    assert limited.status_code == 429
    assert parsedate_to_datetime(limited.headers["Retry-After"]).tzinfo is not None


def test_a_reset_is_a_connection_error_for_the_client_and_nothing_is_processed(sandbox, admin_api):
    sandbox.admin.set_faults(reset_rate=1.0)

    with pytest.raises(requests.ConnectionError):
        admin_api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="reset-1")

    sandbox.admin.clear_faults()
    assert sandbox.admin.ledger()["transactions"] == []
    stats = sandbox.admin.stats()
    assert stats["faults_injected"]["reset"] == 1
    assert stats["faults_injected"]["reset_fallback_502"] == 0
    assert stats["requests"]["POST /v2/transactions/"] == {"reset": 1}


def test_a_lost_answer_is_a_connection_error_but_the_transaction_is_in_the_ledger(sandbox, admin_api):
    sandbox.admin.set_faults(lost_after_commit_rate=1.0)

    with pytest.raises(requests.ConnectionError):
        admin_api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="lost-1")

    [txn] = sandbox.admin.ledger()["transactions"]
    assert txn["trans_source_id"] == "lost-1"
    assert connection_of(sandbox, seed.CUSTOMER_USERNAME)["point_balance"] == 130
    assert sandbox.admin.stats()["faults_injected"]["lost_after_commit"] == 1


def test_a_naive_retry_after_a_lost_answer_meets_the_duplicate_check(sandbox, admin_api):
    sandbox.admin.set_faults(lost_after_commit_rate=1.0, lost_after_commit_mode="502")
    lost = admin_api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="lost-2")
    sandbox.admin.clear_faults()

    retry = admin_api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="lost-2")

    assert lost.status_code == 502
    assert error_codes(retry) == {"trans_source_id": ["pv_duplicate_trans_source_id"]}
    assert len(sandbox.admin.ledger()["transactions"]) == 1


def test_lost_after_commit_spares_reads(sandbox, admin_api):
    sandbox.admin.set_faults(lost_after_commit_rate=1.0)

    assert statuses(admin_api, 3) == [200, 200, 200]


def test_a_refused_write_is_answered_as_usual_under_lost_after_commit(sandbox, admin_api):
    sandbox.admin.set_faults(lost_after_commit_rate=1.0, lost_after_commit_mode="502")

    response = admin_api.award(user_email="nobody@example.com", trans_source_id="refused-1")

    assert response.status_code == 400
    assert error_codes(response)["user_email"] == ["pv_user_not_found"]
    assert sandbox.admin.stats()["faults_injected"]["lost_after_commit"] == 0
    assert sandbox.admin.ledger()["transactions"] == []


def test_a_write_answered_429_writes_nothing(sandbox, admin_api):
    sandbox.admin.set_faults(throttle_rate=1.0)

    response = admin_api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="throttled-1")

    assert response.status_code == 429
    assert sandbox.admin.ledger()["transactions"] == []


def test_faults_also_reach_the_token_endpoint(sandbox):
    sandbox.admin.set_faults(error_rate=1.0, error_statuses=[502])

    response = requests.post(
        sandbox.token_url,
        data={
            "grant_type": "password",
            "username": sandbox.admin_username,
            "password": sandbox.admin_password,
        },
        auth=(sandbox.client_id, sandbox.client_secret),
        timeout=10,
    )

    assert response.status_code == 502
    assert sandbox.admin.stats()["token_grants"] == 0


def test_a_bad_fault_setting_is_refused_with_the_field_named(sandbox):
    response = requests.put(
        f"{sandbox.base_url}/_sandbox/faults", json={"error_rate": 2, "reset_mode": "x"}, timeout=10
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"error_rate", "reset_mode"}
    assert sandbox.admin.faults()["error_rate"] == 0


def test_putting_faults_replaces_the_whole_set(sandbox):
    sandbox.admin.set_faults(latency_ms=5, error_rate=0.1)

    current = sandbox.admin.set_faults(reset_rate=0.2)

    assert (current["latency_ms"], current["error_rate"], current["reset_rate"]) == (0, 0, 0.2)


@pytest.fixture(scope="module")
def h11_sandbox():
    """A second server on uvicorn's pure-Python h11 protocol, where the transport is reached the same way."""
    with run_sandbox(http="h11") as handle:
        yield handle


def test_resets_and_lost_answers_are_real_connection_errors_under_h11_too(h11_sandbox):
    h11_sandbox.admin.reset()
    api = Api(h11_sandbox.base_url, h11_sandbox.token())
    h11_sandbox.admin.set_faults(reset_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        api.get(PERKS)
    h11_sandbox.admin.set_faults(lost_after_commit_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="h11-lost")

    h11_sandbox.admin.clear_faults()
    assert api.get(PERKS).status_code == 200
    assert [t["trans_source_id"] for t in h11_sandbox.admin.ledger()["transactions"]] == ["h11-lost"]
    assert h11_sandbox.admin.stats()["faults_injected"]["reset_fallback_502"] == 0


def test_without_a_reachable_socket_a_reset_falls_back_to_a_502_and_is_counted():
    """A server that hides its transport cannot be made to reset; the fault layer then answers 502."""
    faults = Faults(FaultConfig(reset_rate=1.0))
    processed: list[str] = []
    sent: list[dict] = []

    async def app(scope, receive, send):
        processed.append(scope["path"])

    async def plain_send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/v2/perks/", "headers": [], RAW_SEND_KEY: plain_send}
    asyncio.run(FaultMiddleware(app, faults)(scope, receive, plain_send))

    assert sent[0]["status"] == 502
    assert processed == []
    assert faults.counters.counts["reset_fallback_502"] == 1
