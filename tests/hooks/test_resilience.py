"""Retries against the sandbox's faults: what is retried, what is not, and what a retry never does."""

from __future__ import annotations

import math

import pytest

from perkville_provider.exceptions import (
    PerkvilleNetworkError,
    PerkvilleNotFoundError,
    PerkvillePermissionError,
    PerkvilleRateLimitedError,
    PerkvilleServerError,
    PerkvilleValidationError,
)
from perkville_provider.hooks.perkville import PerkvilleHook
from perkville_provider.retries import RetryPolicy
from perkville_provider.transport import parse_retry_after
from tests.helpers.hook_sandbox import (
    CASEY,
    CHECKIN_PERK_ID,
    FAST_RETRIES,
    FRONT_DESK_PASSWORD,
    FRONT_DESK_USERNAME,
)

BUSINESS = "GET /v2/businesses/{id}/"
TRANSACTIONS = "POST /v2/transactions/"


def award(trans_source_id: str, **changes):
    return {"trans_source_id": trans_source_id, "user_email": CASEY, "perk_id": CHECKIN_PERK_ID, **changes}


@pytest.mark.parametrize("retry_after_format", ["seconds", "http-date"])
@pytest.mark.xdist_group("realtime")  # a real-time rate limit
def test_429_is_retried_after_the_servers_retry_after_in_either_form(
    hook, sandbox_control, retry_after_format
):
    hook.get_current_user()
    sandbox_control.faults(rate_limit_per_second=3, retry_after_format=retry_after_format)
    businesses = [hook.get_business()["business_id"] for _ in range(5)]
    assert businesses == [9823] * 5
    assert sandbox_control.requests_to(BUSINESS, "429") >= 1
    assert sandbox_control.requests_to(BUSINESS, "200") == 5


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500.0) == 0.0
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("value", ["soon", "-5", "inf", "nan", "1e999", "Wed, 99 Foo 2099"])
def test_a_retry_after_that_is_no_usable_wait_reads_as_infinite(value):
    """Unparseable, negative or not finite: the transport gives that one request up, never guesses."""
    assert parse_retry_after(value) == math.inf


@pytest.mark.xdist_group("realtime")  # a real-time rate limit
def test_429_that_outlasts_the_retry_budget_raises_rate_limited_with_the_wait(make_hook, sandbox_control):
    hook = make_hook(hook_kwargs={"retry_policy": RetryPolicy(max_attempts=1)})
    hook.get_current_user()
    sandbox_control.faults(rate_limit_per_second=1)
    hook.get_business()
    with pytest.raises(PerkvilleRateLimitedError) as info:
        hook.get_business()
    assert info.value.status == 429
    assert info.value.retry_after == 1.0
    assert info.value.retriable
    assert sandbox_control.requests_to(BUSINESS, "429") == 1


@pytest.mark.xdist_group("realtime")  # a real-time rate limit
def test_the_client_side_rate_limit_keeps_requests_under_the_servers_limit(make_hook, sandbox_control):
    hook = make_hook(hook_kwargs={"max_requests_per_second": 4})
    hook.get_current_user()
    sandbox_control.faults(rate_limit_per_second=5)
    for _ in range(8):
        hook.get_business()
    assert sandbox_control.requests_to(BUSINESS, "429") == 0
    assert sandbox_control.requests_to(BUSINESS, "200") == 8


def test_5xx_answers_are_retried_until_the_call_succeeds(hook, sandbox_control):
    hook.get_current_user()
    sandbox_control.faults(error_rate=0.5, error_statuses=[500, 502, 503, 504], seed=7)
    for _ in range(12):
        assert hook.get_business()["business_id"] == 9823
    stats = sandbox_control.stats()
    assert stats["faults_injected"]["error"] >= 3
    assert sandbox_control.requests_to(BUSINESS, "200") == 12


def test_connection_resets_are_retried_until_the_call_succeeds(hook, sandbox_control):
    hook.get_current_user()
    sandbox_control.faults(reset_rate=0.4, seed=11)
    for _ in range(12):
        assert hook.get_business()["business_id"] == 9823
    assert sandbox_control.stats()["faults_injected"]["reset"] >= 3


def test_5xx_after_every_attempt_raises_a_server_error(make_hook, sandbox_control):
    hook = make_hook(hook_kwargs={"retry_policy": RetryPolicy(max_attempts=3, backoff_initial=0.01)})
    hook.get_current_user()
    sandbox_control.faults(error_rate=1.0, error_statuses=[503])
    with pytest.raises(PerkvilleServerError) as info:
        hook.get_business()
    assert info.value.status == 503
    assert info.value.retriable, "a later try of the task may find the server well again"
    assert sandbox_control.requests_to(BUSINESS, "503") == 3


def test_no_answer_at_all_raises_a_network_error_after_the_retries(make_hook, sandbox_control):
    hook = make_hook(
        "perkville_closed_port",
        host="http://127.0.0.1:9",
        extra={"token": "any-token-value-123"},
        hook_kwargs={"retry_policy": RetryPolicy(max_attempts=2, backoff_initial=0.01)},
    )
    expected = r"no answer after 2 attempt\(s\): cannot connect to http://127.0.0.1:9: connection refused"
    with pytest.raises(PerkvilleNetworkError, match=expected):
        hook.get_current_user()


@pytest.mark.parametrize("mode", ["reset", "502"])
def test_an_award_whose_answer_is_lost_after_commit_is_reported_duplicate_and_stored_once(
    hook, sandbox_control, mode
):
    hook.get_current_user()
    balance_before = sandbox_control.connection_of(CASEY)["point_balance"]
    sandbox_control.faults(lost_after_commit_rate=0.5, lost_after_commit_mode=mode, seed=2)
    ids = [f"LOST:{mode}:{n}" for n in range(6)]
    results = [hook.award_points(award(trans_source_id)) for trans_source_id in ids]
    recovered = [result for result in results if result.recovered_after_lost_response]
    assert recovered, "the seed must lose at least one answer"
    assert all(result.status == "duplicate" and result.points == 0 for result in recovered)
    assert {result.status for result in results} <= {"awarded", "duplicate"}
    assert sorted(row["trans_source_id"] for row in sandbox_control.transactions()) == sorted(ids)
    assert sandbox_control.connection_of(CASEY)["point_balance"] == balance_before + 10 * len(ids)
    assert sandbox_control.stats()["faults_injected"]["lost_after_commit"] >= len(recovered)


def test_many_awards_under_lost_answers_and_resets_each_land_exactly_once(hook, sandbox_control):
    hook.get_current_user()
    sandbox_control.faults(lost_after_commit_rate=0.3, reset_rate=0.1, error_rate=0.1, seed=5)
    results = [hook.award_points(award(f"MIXED:{n}")) for n in range(15)]
    assert {result.status for result in results} <= {"awarded", "duplicate"}
    assert any(result.recovered_after_lost_response for result in results)
    ledger = sandbox_control.transactions()
    assert sorted(row["trans_source_id"] for row in ledger) == sorted(f"MIXED:{n}" for n in range(15))


def test_a_400_is_not_retried(hook, sandbox_control):
    with pytest.raises(PerkvilleValidationError) as info:
        hook.award_points(award("BAD:PERK", perk_id=99999))
    assert info.value.field == "perk"
    assert not info.value.retriable
    assert sandbox_control.requests_to(TRANSACTIONS) == 1


def test_a_403_is_not_retried(make_hook, sandbox_control):
    hook = make_hook("perkville_front_desk", login=FRONT_DESK_USERNAME, password=FRONT_DESK_PASSWORD)
    with pytest.raises(PerkvillePermissionError) as info:
        hook.award_points(award("FRONT:DESK:1"))
    assert info.value.status == 403
    assert info.value.codes == ("pv_staff_role_required",)
    assert not info.value.retriable
    assert sandbox_control.requests_to(TRANSACTIONS) == 1
    assert sandbox_control.transactions() == []


def test_a_404_is_not_retried(hook, sandbox_control):
    with pytest.raises(PerkvilleNotFoundError) as info:
        hook.get_business(424242)
    assert (info.value.method, info.value.path) == ("GET", "/v2/businesses/424242/")
    assert not info.value.retriable
    assert sandbox_control.requests_to(BUSINESS) == 1


def test_a_hook_looks_nothing_up_and_sends_nothing_until_first_used(
    sandbox_control, define_connection, monkeypatch
):
    monkeypatch.delenv("AIRFLOW_CONN_NOT_DEFINED_YET", raising=False)
    PerkvilleHook(perkville_conn_id="not_defined_yet", retry_policy=FAST_RETRIES)  # no lookup: no error

    hook = PerkvilleHook(perkville_conn_id=define_connection("perkville_lazy"), retry_policy=FAST_RETRIES)
    assert sandbox_control.stats()["requests"] == {}
    assert sandbox_control.stats()["token_grants"] == 0

    hook.get_current_user()
    assert sandbox_control.stats()["token_grants"] == 1
    assert sandbox_control.requests_to("GET /v2/users/me/", "200") == 1
