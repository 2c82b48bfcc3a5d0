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

Every attempt runs under a wall-clock deadline (:mod:`perkville_provider.deadline`), never longer
than what is left of the policy's total-time cap, and reads at most ``max_response_bytes`` of the
answer while streaming it: a trickling or endless answer ends as a network error, a huge one as
``PerkvilleAnswerTooLargeError``. :meth:`Transport.abort` frees every thread inside a request.
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from perkville_provider import __version__, metrics
from perkville_provider.answers import answer_error
from perkville_provider.breaker import OutageBreaker
from perkville_provider.connection_settings import Limits
from perkville_provider.deadline import Deadlines
from perkville_provider.exceptions import (
    PerkvilleAnswerError,
    PerkvilleAnswerTooLargeError,
    PerkvilleNetworkError,
)
from perkville_provider.network_errors import certificate_refused, explicit_origin, failure_cause, never_sent
from perkville_provider.rate_budget import RateLimiter, SharedPace
from perkville_provider.retries import RetryPolicy
from perkville_provider.waits import WaitStopped, bounded_wait, usable_seconds

__all__ = [
    "Delivery",
    "RateLimiter",
    "RetryPolicy",
    "Timeout",
    "Transport",
    "parse_retry_after",
    "read_body",
    "user_agent",
]

log = logging.getLogger(__name__)

Timeout = float | tuple[float, float]
_CHUNK_BYTES = 64 * 1024
#: The shortest attempt worth starting when little of the total-time cap is left.
_MIN_ATTEMPT_SECONDS = 0.05
#: What ``requests`` raises when an attempt got no (complete) answer.
_OUTER_DEADLINE = "outer deadline"
_NO_ANSWER = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def user_agent() -> str:
    """``airflow-provider-perkville/<ver> apache-airflow/<ver>``: who is calling, for Perkville's logs."""
    try:
        from airflow import __version__ as airflow_version
    except ImportError:  # pragma: no cover - Airflow is a dependency
        airflow_version = "unknown"
    return f"airflow-provider-perkville/{__version__} apache-airflow/{airflow_version}"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110).

    None when there is no header; ``inf`` when there is one but it is no usable wait (negative,
    not finite, unparseable): the caller gives that request up rather than guess. A date in the
    past is a wait of 0, as the RFC says.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else math.inf
    try:
        when = email.utils.parsedate_to_datetime(value)
        current = time.time() if now is None else now
        return max(0.0, when.timestamp() - current)
    except (TypeError, ValueError, OverflowError):
        return math.inf


@dataclass(frozen=True)
class Delivery:
    """The final answer to a request, and whether an earlier attempt may have been applied unseen."""

    response: requests.Response
    maybe_committed: bool


class _Cut(Exception):
    """An attempt cut short by its deadline, or by :meth:`Transport.abort`."""

    def __init__(self, reason: str, never_sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.never_sent = never_sent


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
        limits: Limits | None = None,
    ) -> None:
        self.session = session
        self.policy = policy or RetryPolicy()
        self.limiter = limiter
        self.limits = limits or Limits()
        self.deadlines = Deadlines()
        self.breaker = OutageBreaker(self.limits.outage_seconds)

    def abort(self) -> None:
        """End every request in flight now, and every wait (a killed task); later requests fail at once."""
        self.deadlines.abort()
        if self.limiter is not None:
            self.limiter.abort()

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
        last attempt got no (complete) response at all, or when the transport was aborted.
        """
        path = urlsplit(url).path
        started = time.monotonic()
        maybe_committed = False
        attempt = 0
        while True:
            attempt += 1
            self.breaker.check(method, path)
            sent_at = self._acquire(method, path)
            if self.deadlines.stopped.is_set():
                raise self._stopped(method, path)
            seconds = max(_MIN_ATTEMPT_SECONDS, min(self.limits.deadline, self._time_left(started)))
            try:
                response = self._attempt(
                    seconds,
                    method,
                    url,
                    headers=dict(headers or {}),
                    params=params,
                    json=json,
                    data=data,
                    auth=auth,
                    allow_redirects=method == "GET",
                )
            except _Cut as cut:
                if cut.reason == "stopped":
                    raise self._stopped(method, path) from None
                if cut.reason == _OUTER_DEADLINE:  # no retry can end before the outer request's deadline
                    raise PerkvilleNetworkError(
                        "no complete answer within the deadline of the request it was sent for "
                        "(a token grant runs inside the first request's deadline)",
                        method=method,
                        path=path,
                    ) from None
                failure = f"no complete answer within the {seconds:.3g} s deadline"
                unsent = cut.never_sent
            except requests.TooManyRedirects:
                raise PerkvilleAnswerError(
                    "too many redirects (a redirect loop)", method=method, path=path
                ) from None
            except _NO_ANSWER as error:
                refused = certificate_refused(error)
                if refused is not None:  # a retry meets the same certificate
                    raise PerkvilleNetworkError(
                        f"the server's TLS certificate was refused ({refused}); check the "
                        "connection's verify extra (a CA bundle path, or true)",
                        method=method,
                        path=path,
                    ) from None
                unsent = never_sent(error)
                where = "cannot connect to" if unsent else "no answer from"
                failure = f"{where} {explicit_origin(url)}: {failure_cause(error)}"
                if unsent:
                    self.breaker.unreachable(failure, method, path)
            else:
                self.breaker.answered(response.status_code, method, path)
                if not self.policy.is_retry(response.status_code):
                    return Delivery(response, maybe_committed)
                failure = str(response.status_code)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                usable = usable_seconds(retry_after, self.policy.max_retry_after)
                if response.status_code == 429 and self.limiter is not None and sent_at is not None:
                    self.limiter.throttled(sent_at, usable)  # an unusable one never reaches the pace
                if retry_after is not None and usable is None:  # give this request up, now
                    return Delivery(response, maybe_committed)
                delay = self._next_delay(attempt, started, usable)
                if delay is None:
                    return Delivery(response, maybe_committed)
                maybe_committed = maybe_committed or response.status_code != 429
                response.close()
                self._wait(method, path, failure, attempt, delay)
                continue
            delay = self._next_delay(attempt, started, None)
            if delay is None:
                raise PerkvilleNetworkError(
                    f"no answer after {attempt} attempt(s): {failure}", method=method, path=path
                )
            maybe_committed = maybe_committed or not unsent
            self._wait(method, path, failure, attempt, delay)

    def _acquire(self, method: str, path: str) -> float | None:
        """Wait for this start's turn in the shared pace (cut short by :meth:`abort`)."""
        limiter = self.limiter
        if limiter is None:
            return None
        try:
            return metrics.waited(lambda: limiter.acquire(self.deadlines.stopped))
        except WaitStopped:
            raise self._stopped(method, path) from None
        except PerkvilleNetworkError as error:  # the shared budget's store did not answer
            raise PerkvilleNetworkError(error.message, method=method, path=path) from None

    def _wait(self, method: str, path: str, failure: str, attempt: int, delay: float) -> None:
        """Log the retry and wait ``delay`` seconds (bounded by the policy, cut short by :meth:`abort`)."""
        log.warning(
            "Perkville %s %s: %s on attempt %d of %d; retrying in %.2f s",
            method,
            path,
            failure,
            attempt,
            self.policy.max_attempts,
            delay,
        )
        try:
            bounded_wait(delay, self.policy.longest_wait, self.deadlines.stopped)
        except WaitStopped:
            raise self._stopped(method, path) from None

    def _stopped(self, method: str, path: str) -> PerkvilleNetworkError:
        return PerkvilleNetworkError(
            "stopped: the task is being stopped, so the request was cut or not sent", method=method, path=path
        )

    def _time_left(self, started: float) -> float:
        return self.policy.max_elapsed - (time.monotonic() - started)

    def _attempt(self, seconds: float, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request under a deadline of ``seconds``, its answer read whole (up to the size cap)."""
        with self.deadlines.attempt(seconds) as attempt, metrics.request_timer(urlsplit(url).path) as answer:
            try:
                response = self.session.request(
                    method, url, timeout=self.limits.timeout, stream=True, **kwargs
                )
                answer.status = response.status_code
                read_body(response, self.limits.max_response_bytes)
            except requests.RequestException as error:
                if attempt.cut in ("deadline", "stopped"):
                    raise _Cut(_cut_reason(attempt.cut, attempt.inherited), never_sent(error)) from None
                raise
            if attempt.cut in ("deadline", "stopped"):
                # A cut socket can look like an answer that simply ended: never trust it.
                response.close()
                raise _Cut(_cut_reason(attempt.cut, attempt.inherited), never_sent=False)
            return response

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


def _cut_reason(cut: str, inherited: bool) -> str:
    """Why an attempt was cut; a deadline that was the outer request's is told apart."""
    return _OUTER_DEADLINE if cut == "deadline" and inherited else cut


def read_body(response: requests.Response, max_bytes: int) -> None:
    """Read the answer's body into ``response.content``, refusing more than ``max_bytes``.

    A declared ``Content-Length`` over the cap is refused before reading; an undeclared or false
    one is caught while streaming (decoded bytes count, so a compressed bomb is caught too).

    :raises PerkvilleAnswerTooLargeError: the answer is larger than ``max_bytes``
    """
    declared = response.headers.get("Content-Length", "")
    body = bytearray()
    if not (declared.isdigit() and int(declared) > max_bytes):
        for chunk in response.iter_content(_CHUNK_BYTES):
            body += chunk
            if len(body) > max_bytes:
                break
        else:
            response._content = bytes(body)
            response._content_consumed = True  # type: ignore[attr-defined]
            return
    response.close()
    raise answer_error(
        response,
        f"the answer is larger than the max_response_bytes={max_bytes} the connection allows; "
        "reading stopped there",
        PerkvilleAnswerTooLargeError,
    )
