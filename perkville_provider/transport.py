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
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from perkville_provider import __version__
from perkville_provider.answers import answer_error
from perkville_provider.connection_settings import Limits
from perkville_provider.deadline import Deadlines
from perkville_provider.exceptions import (
    PerkvilleAnswerError,
    PerkvilleAnswerTooLargeError,
    PerkvilleNetworkError,
)
from perkville_provider.rate_budget import RateLimiter, SharedPace
from perkville_provider.retries import RetryPolicy

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
_NO_ANSWER = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def user_agent() -> str:
    """``airflow-provider-perkville/<ver> apache-airflow/<ver>``: who is calling, for Perkville's logs."""
    try:
        from airflow import __version__ as airflow_version
    except ImportError:  # pragma: no cover - Airflow is a dependency
        airflow_version = "unknown"
    return f"airflow-provider-perkville/{__version__} apache-airflow/{airflow_version}"


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

    def abort(self) -> None:
        """End every request in flight now (a killed task); later requests fail at once."""
        self.deadlines.abort()

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
            sent_at = self.limiter.acquire() if self.limiter is not None else None
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
                failure = f"no complete answer within the {seconds:.3g} s deadline"
                never_sent = cut.never_sent
            except requests.TooManyRedirects:
                raise PerkvilleAnswerError(
                    "too many redirects (a redirect loop)", method=method, path=path
                ) from None
            except _NO_ANSWER as error:
                refused = _certificate_refused(error)
                if refused is not None:  # a retry meets the same certificate
                    raise PerkvilleNetworkError(
                        f"the server's TLS certificate was refused ({refused}); check the "
                        "connection's verify extra (a CA bundle path, or true)",
                        method=method,
                        path=path,
                    ) from None
                failure = type(error).__name__
                never_sent = _never_sent(error)
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
                self._wait(method, path, failure, attempt, delay)
                continue
            delay = self._next_delay(attempt, started, None)
            if delay is None:
                raise PerkvilleNetworkError(
                    f"no answer after {attempt} attempt(s): {failure}", method=method, path=path
                )
            maybe_committed = maybe_committed or not never_sent
            self._wait(method, path, failure, attempt, delay)

    def _wait(self, method: str, path: str, failure: str, attempt: int, delay: float) -> None:
        """Log the retry and wait ``delay`` seconds (cut short by :meth:`abort`)."""
        log.warning(
            "Perkville %s %s: %s on attempt %d of %d; retrying in %.2f s",
            method,
            path,
            failure,
            attempt,
            self.policy.max_attempts,
            delay,
        )
        if self.deadlines.stopped.wait(delay):
            raise self._stopped(method, path)

    def _stopped(self, method: str, path: str) -> PerkvilleNetworkError:
        return PerkvilleNetworkError(
            "stopped: the task is being stopped, so the request was cut or not sent", method=method, path=path
        )

    def _time_left(self, started: float) -> float:
        return self.policy.max_elapsed - (time.monotonic() - started)

    def _attempt(self, seconds: float, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request under a deadline of ``seconds``, its answer read whole (up to the size cap)."""
        with self.deadlines.attempt(seconds) as attempt:
            try:
                response = self.session.request(
                    method, url, timeout=self.limits.timeout, stream=True, **kwargs
                )
                read_body(response, self.limits.max_response_bytes)
            except requests.RequestException as error:
                if attempt.cut in ("deadline", "stopped"):
                    raise _Cut(attempt.cut, _never_sent(error)) from None
                raise
            if attempt.cut in ("deadline", "stopped"):
                # A cut socket can look like an answer that simply ended: never trust it.
                response.close()
                raise _Cut(attempt.cut, never_sent=False)
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


def _never_sent(error: Exception) -> bool:
    """True when the request cannot have reached the server: it failed while connecting.

    requests wraps urllib3's errors; a refused connection or a failed DNS look-up is a
    ``NewConnectionError`` (``NameResolutionError`` is one) somewhere in that chain.
    """
    if isinstance(error, requests.ConnectTimeout):
        return True
    return any(isinstance(cause, NewConnectionError) for cause in _causes(error))


def _certificate_refused(error: Exception) -> str | None:
    """Why the server's certificate failed verification, or None when that is not the failure.

    Unlike a dropped connection or an interrupted handshake, a certificate that fails
    verification fails again on every retry.
    """
    for cause in _causes(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return str(cause.verify_message or "certificate verify failed")
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it wraps: urllib3's ``reason``, an exception argument, the context."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        reason = getattr(cause, "reason", None)
        nested = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        cause = reason if isinstance(reason, BaseException) else nested or cause.__context__
