"""The sandbox's issue-22 faults, as a demo shows them: a poisonous ``Retry-After``, a trickling grant."""

from __future__ import annotations

import time

import pytest

from perkville_provider.exceptions import PerkvilleNetworkError, PerkvilleRateLimitedError

BUSINESS = "GET /v2/businesses/{id}/"


@pytest.mark.timeout(60)
def test_a_sandbox_429_storm_with_retry_after_99999_parks_nothing(make_hook, sandbox_control):
    hook = make_hook()
    hook.get_token()
    sandbox_control.faults(throttle_rate=1.0, retry_after_seconds="99999")
    for _ in range(5):  # five 429s: a congestion, the pace is cut
        with pytest.raises(PerkvilleRateLimitedError):
            hook.get_business()
    assert sandbox_control.requests_to(BUSINESS, "429") == 5, "each gave up at once, never resent"

    sandbox_control.faults(throttle_rate=0.0, retry_after_seconds="")
    started = time.monotonic()
    assert hook.get_business()["business_id"]
    assert time.monotonic() - started < 5, "the next request was parked by the Retry-After"


@pytest.mark.timeout(60)
def test_a_sandbox_token_endpoint_that_trickles_ends_at_the_first_requests_deadline(
    make_hook, sandbox_control
):
    sandbox_control.faults(token_trickle_ms=200)
    hook = make_hook(extra={"timeout": 0.5, "request_deadline": 1.0})
    started = time.monotonic()
    with pytest.raises(PerkvilleNetworkError, match="deadline"):
        hook.get_business()
    assert time.monotonic() - started < 10
