"""Every wait ends: a server can no longer park a task, or break every later request (issue 22).

Against the hostile test server on loopback: a grant nested in the first request's deadline, a
``Retry-After`` no wait should honour, a server that only says 429, a host that is gone, and
``on_kill`` (``hook.abort``) ending a task stuck in each wait, measured.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from perkville_provider.batch import BatchJob, Outcome, run_batch
from perkville_provider.breaker import PerkvilleOutageError
from perkville_provider.exceptions import PerkvilleNetworkError, PerkvilleRateLimitedError
from perkville_provider.retries import RetryPolicy
from tests.helpers.hostile_conn import GRANTED, grant_script
from tests.helpers.hostile_server import HostileServer
from tests.helpers.stuck_calls import in_thread, time_to_end

BUSINESS = "/v2/businesses/9823/"
TOKEN_PATH = "/api/token/"
SLOW_BODY = b'{"business_id": 9823}' + b" " * 10_000  # 500 s at 0.05 s a byte
#: How long a stuck task may take to end after on_kill (the issue's bar).
KILL_BAR = 2.0


def _trickling_grant(server: HostileServer) -> None:
    """A token endpoint that answers one byte each 0.05 s: 450 s for the whole answer."""
    body = b'{"access_token": "x"}' + b" " * 9000
    server.route("POST", TOKEN_PATH, lambda exchange: exchange.trickle(200, body, interval=0.05))


def _business(exchange) -> None:
    exchange.json(200, {"business_id": 9823, "name": "Gym"})


# -- (1) the grant inside the deadline --------------------------------------------------------


@pytest.mark.timeout(60)
def test_the_first_request_of_a_task_keeps_its_deadline_after_the_token_grant(hostile_server, hostile_hook):
    """The grant ran nested in the first request's deadline and cleared it: a trickle held 500 s."""
    hostile_server.route("POST", TOKEN_PATH, grant_script())
    hostile_server.script = lambda exchange: exchange.trickle(200, SLOW_BODY, interval=0.05)
    hook = hostile_hook(grant=True, extra={"timeout": 0.5, "request_deadline": 0.8})
    started = time.monotonic()
    thread, outcome = in_thread(hook.get_business)
    thread.join(timeout=15)

    assert not thread.is_alive(), "the first request outlived its deadline"
    assert isinstance(outcome.get("error"), PerkvilleNetworkError)
    assert "deadline" in str(outcome["error"])
    assert time.monotonic() - started < 10
    assert hostile_server.requests_to(BUSINESS)[0].header("Authorization") == f"Bearer {GRANTED}"


@pytest.mark.timeout(60)
def test_a_trickling_token_grant_ends_at_the_first_requests_deadline(hostile_server, hostile_hook):
    _trickling_grant(hostile_server)
    hostile_server.script = _business
    hook = hostile_hook(grant=True, extra={"timeout": 0.5, "request_deadline": 1.0})
    started = time.monotonic()
    with pytest.raises(PerkvilleNetworkError, match="deadline"):
        hook.get_business()
    assert time.monotonic() - started < 10
    assert not hostile_server.requests_to(BUSINESS), "no API request without a token"


# -- (2) Retry-After never poisons the shared pace -------------------------------------------

POISONS = ["99999", "inf", "Thu, 01 Jan 2099 00:00:00 GMT", "later"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("retry_after", POISONS)
def test_an_unusable_retry_after_gives_up_that_request_and_leaves_the_pace_alone(
    hostile_server, hostile_hook, retry_after
):
    """A 429 storm with Retry-After 99999 parked every later request for 27.8 h; inf broke them all."""
    storm = {"left": 5}  # five 429s confirm a congestion: the pace is cut

    def script(exchange) -> None:
        if storm["left"] > 0:
            storm["left"] -= 1
            exchange.json(429, {"detail": "slow down"}, headers={"Retry-After": retry_after})
        else:
            _business(exchange)

    hostile_server.script = script
    hook = hostile_hook(hook_kwargs={"retry_policy": RetryPolicy(max_attempts=3, backoff_initial=0.01)})
    for _ in range(5):
        with pytest.raises(PerkvilleRateLimitedError):  # given up at once: one request each
            hook.get_business()
    assert len(hostile_server.seen) == 5

    started = time.monotonic()
    thread, outcome = in_thread(hook.get_business)
    thread.join(timeout=10)
    assert not thread.is_alive(), "the next request was parked by the poisoned pace"
    assert outcome.get("value", {}).get("business_id") == 9823, outcome
    assert time.monotonic() - started < 5
    stored = hook.limiter.schedule.update(lambda pace, now: (pace.next_start - now, pace.quiet_until - now))
    assert all(math.isfinite(ahead) and ahead <= hook.limiter.rules.longest_wait for ahead in stored)


# -- (6) breakers: only 429s, or a host that is gone -------------------------------------------


def _reads(hook, records: int, **kwargs: Any) -> dict[str, Any]:
    job = BatchJob(
        name="reads",
        prepare=lambda record: record,
        process=lambda record: Outcome("read", detail={"id": hook.get_business()["business_id"]}),
        key_fields=("id",),
        statuses=("read",),
    )
    return run_batch([{"id": n} for n in range(records)], job, max_workers=4, **kwargs)


@pytest.mark.timeout(60)
def test_a_server_that_only_says_429_stops_the_batch_with_one_clear_message(hostile_server, hostile_hook):
    hostile_server.script = lambda exchange: exchange.json(429, {}, headers={"Retry-After": "0"})
    policy = RetryPolicy(max_attempts=4, backoff_initial=0.01, backoff_max=0.02)
    extra = {"outage_breaker_seconds": 1, "adaptive_pacing": False}
    hook = hostile_hook(extra=extra, hook_kwargs={"retry_policy": policy})
    summary = _reads(hook, 3000)

    assert "Perkville answered only 429 (too many requests) for 1 s" in summary["stop_reason"]
    assert summary["stop_retriable"] is True
    assert summary["total"] < 3000, "the rest is left for a retry of the task"
    assert summary["failed"] == summary["total"] == summary["retriable_failures"]
    sent = len(hostile_server.seen)
    with pytest.raises(PerkvilleOutageError, match="only 429"):
        hook.get_business()
    assert len(hostile_server.seen) == sent, "nothing is sent once the breaker is open"


@pytest.mark.timeout(60)
def test_a_host_that_is_gone_stops_the_batch_naming_the_origin_and_the_cause(hostile_hook):
    gone = HostileServer()
    gone.close()  # its port now refuses connections
    policy = RetryPolicy(max_attempts=6, backoff_initial=0.2, backoff_max=0.4)
    hook = hostile_hook(
        host=gone.url, extra={"outage_breaker_seconds": 1}, hook_kwargs={"retry_policy": policy}
    )
    started = time.monotonic()
    summary = _reads(hook, 31)

    assert time.monotonic() - started < 5, "31 records x 6 attempts each took minutes"
    expected = f"cannot connect to http://127.0.0.1:{gone.port}: connection refused, for 1 s"
    assert expected in summary["stop_reason"]
    assert summary["stop_retriable"] is True


# -- on_kill ends every wait -------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_on_kill_ends_a_retry_after_wait_within_two_seconds(hostile_server, hostile_hook):
    hostile_server.script = lambda exchange: exchange.json(429, {}, headers={"Retry-After": "50"})
    hook = hostile_hook(extra={"adaptive_pacing": False}, hook_kwargs={"retry_policy": RetryPolicy()})
    took, error = time_to_end(hook, lambda: len(hostile_server.seen) >= 1, hook.get_business)
    assert took < KILL_BAR
    assert "stopped" in str(error)


@pytest.mark.timeout(60)
def test_on_kill_ends_a_pace_wait_within_two_seconds(hostile_server, hostile_hook):
    hostile_server.script = _business
    hook = hostile_hook(extra={"max_requests_per_second": 0.1})  # one start per 10 s
    hook.get_business()
    took, error = time_to_end(hook, lambda: True, hook.get_business)
    assert took < KILL_BAR
    assert "stopped" in str(error)
    assert len(hostile_server.seen) == 1


@pytest.mark.timeout(60)
def test_on_kill_ends_a_trickling_token_grant_within_two_seconds(hostile_server, hostile_hook):
    _trickling_grant(hostile_server)
    hook = hostile_hook(grant=True, extra={"timeout": 30, "request_deadline": 3600})
    took, error = time_to_end(hook, lambda: bool(hostile_server.requests_to(TOKEN_PATH)), hook.get_business)
    assert took < KILL_BAR
    assert isinstance(error, PerkvilleNetworkError)
