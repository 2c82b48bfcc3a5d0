"""How one logical request reaches Perkville: rate limit, timeouts, retries, User-Agent.

The rate limit is the connection's shared budget (:mod:`perkville_provider.rate_budget`): the
transport waits for its turn before each attempt and reports each 429 to it, so the pace of
everyone sharing the budget comes down together.

The retry policy (its rules live in :mod:`perkville_provider.retries`) is applied here and only
here. It retries what a later attempt can fix: 429 (after the server's ``Retry-After``),
500/502/503/504, connection errors and timeouts; never another 4xx. Every write the hook sends is
idempotent (awards carry ``trans_source_id``, member posts are upserts, status patches and
agreement acceptances are repeatable), so a write whose answer was lost is safe to send again;
``Delivery.maybe_committed`` tells the caller that this happened.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from perkville_provider import __version__
from perkville_provider.exceptions import PerkvilleNetworkError
from perkville_provider.rate_budget import RateLimiter, SharedPace
from perkville_provider.retries import RetryPolicy

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "Delivery",
    "RateLimiter",
    "RetryPolicy",
    "Timeout",
    "Transport",
    "normalise_timeout",
    "parse_retry_after",
    "user_agent",
]

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0

Timeout = float | tuple[float, float]


def user_agent() -> str:
    """``airflow-provider-perkville/<ver> apache-airflow/<ver>``: who is calling, for Perkville's logs."""
    try:
        from airflow import __version__ as airflow_version
    except ImportError:  # pragma: no cover - Airflow is a dependency
        airflow_version = "unknown"
    return f"airflow-provider-perkville/{__version__} apache-airflow/{airflow_version}"


def normalise_timeout(timeout: Any) -> tuple[float, float]:
    """A (connect, read) pair from a number, a pair, or None (the defaults)."""
    if timeout is None or timeout == "":
        return (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)
    if isinstance(timeout, list | tuple):
        connect, read = (float(part) for part in timeout)
        return (connect, read)
    read = float(timeout)
    return (min(DEFAULT_CONNECT_TIMEOUT, read), read)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class Delivery:
    """The final answer to a request, and whether an earlier attempt may have been applied unseen."""

    response: requests.Response
    maybe_committed: bool


class Transport:
    """Sends requests through one shared session with the retry policy and the rate limiter.

    :param limiter: the connection's shared pace (asked before every attempt, retries included,
        and told of every 429), or None for no client-side limit
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        policy: RetryPolicy | None = None,
        limiter: SharedPace | None = None,
        timeout: tuple[float, float] = (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = session
        self.policy = policy or RetryPolicy()
        self.limiter = limiter
        self.timeout = timeout
        self._sleep = sleep

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        auth: Any = None,
    ) -> Delivery:
        """Send until an answer that is not worth retrying, or until the policy's caps.

        Returns the last response whatever its status; raises ``PerkvilleNetworkError`` when the
        last attempt got no response at all.
        """
        path = urlsplit(url).path
        started = time.monotonic()
        maybe_committed = False
        attempt = 0
        while True:
            attempt += 1
            sent_at = self.limiter.acquire() if self.limiter is not None else None
            try:
                response = self.session.request(
                    method,
                    url,
                    headers=dict(headers or {}),
                    params=params,
                    json=json,
                    data=data,
                    auth=auth,
                    timeout=self.timeout,
                    allow_redirects=method == "GET",
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                failure = type(error).__name__
                delay = self._next_delay(attempt, started, None)
                if delay is None:
                    raise PerkvilleNetworkError(
                        f"no answer after {attempt} attempt(s): {failure}", method=method, path=path
                    ) from None
                maybe_committed = maybe_committed or not _never_sent(error)
            else:
                if not self.policy.is_retry(response.status_code):
                    return Delivery(response, maybe_committed)
                failure = str(response.status_code)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if response.status_code == 429 and self.limiter is not None and sent_at is not None:
                    self.limiter.throttled(sent_at, retry_after)
                delay = self._next_delay(attempt, started, retry_after)
                if delay is None:
                    return Delivery(response, maybe_committed)
                maybe_committed = maybe_committed or response.status_code != 429
                response.close()
            log.warning(
                "Perkville %s %s: %s on attempt %d of %d; retrying in %.2f s",
                method,
                path,
                failure,
                attempt,
                self.policy.max_attempts,
                delay,
            )
            self._sleep(delay)

    def _next_delay(self, attempt: int, started: float, retry_after: float | None) -> float | None:
        """The wait before the next attempt, or None when the policy says stop."""
        policy = self.policy
        if attempt >= policy.max_attempts:
            return None
        if retry_after is not None and retry_after > policy.max_retry_after:
            return None
        delay = policy.delay(attempt, retry_after)
        if time.monotonic() - started + delay > policy.max_elapsed:
            return None
        return delay


def _never_sent(error: Exception) -> bool:
    """True when the request cannot have reached the server: it failed while connecting.

    requests wraps urllib3's errors; a refused connection or a failed DNS look-up is a
    ``NewConnectionError`` (``NameResolutionError`` is one) somewhere in that chain.
    """
    if isinstance(error, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, NewConnectionError):
            return True
        reason = getattr(cause, "reason", None)
        nested = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        cause = reason if isinstance(reason, BaseException) else nested or cause.__context__
    return False
