"""The outage breaker: a server that only says 429, or a host nobody can reach, stops the batch.

Retries cure a moment of trouble; they cannot cure an outage. A 429 storm that never ends kept a
batch of 3,000 awards running for half a day at a crawl, and a dead API cost every record its own
six attempts. One breaker per transport (so per batch: one hook) watches every answer:

* **only 429s** for ``seconds`` (no other answer in between) trips it: "Perkville answered only
  429 for 5 min";
* **only connection failures** for ``seconds`` (refused, DNS, TLS, connect timeout: the request
  never reached the server, and no answer came in between) trips it: "cannot connect to
  https://api.perkville.com:443: connection refused".

Tripped, every later request of the transport fails at once with that one message, as a
:class:`PerkvilleOutageError`: retriable (a later try of the task may find the server back) and
``stops_batch`` (the batch takes no new record; the rest is left for the retry).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from perkville_provider import metrics
from perkville_provider.connection_settings import DEFAULT_OUTAGE_SECONDS
from perkville_provider.exceptions import PerkvilleNetworkError

__all__ = ["DEFAULT_OUTAGE_SECONDS", "OutageBreaker", "PerkvilleOutageError"]


class PerkvilleOutageError(PerkvilleNetworkError):
    """The breaker is open: Perkville answered only 429, or could not be reached, for too long."""

    stops_batch = True

    @property
    def retriable(self) -> bool:
        """Always: a later try of the task may find the server back."""
        return True


def _span(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g} s"


class OutageBreaker:
    """Trips after ``seconds`` of nothing but 429s, or of nothing but connection failures.

    :param seconds: how long the trouble must last, uninterrupted by any other answer
    :param clock: monotonic seconds (tests pass their own)
    """

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._throttled_since: float | None = None
        self._unreachable_since: float | None = None
        self._open: PerkvilleOutageError | None = None

    def check(self, method: str, path: str) -> None:
        """Raise the breaker's error when it is open (before a request is sent)."""
        error = self._open
        if error is not None:
            raise PerkvilleOutageError(error.message, status=error.status, method=method, path=path)

    def answered(self, status: int, method: str, path: str) -> None:
        """An answer arrived: a 429 counts toward the breaker, anything else closes both counts."""
        now = self.clock()
        with self._lock:
            self._unreachable_since = None
            if status != 429:
                self._throttled_since = None
                return
            since = self._throttled_since = self._throttled_since or now
            if now - since >= self.seconds and self._open is None:
                self._open = PerkvilleOutageError(
                    f"Perkville answered only 429 (too many requests) for {_span(self.seconds)}; "
                    "no further request is sent in this task (the outage_breaker_seconds extra)",
                    status=429,
                )
                metrics.breaker_opened(path)
        self.check(method, path)

    def unreachable(self, reason: str, method: str, path: str) -> None:
        """A request never reached the server: ``reason`` names the origin and the cause."""
        now = self.clock()
        with self._lock:
            since = self._unreachable_since = self._unreachable_since or now
            if now - since >= self.seconds and self._open is None:
                self._open = PerkvilleOutageError(
                    f"{reason}, for {_span(self.seconds)}; no further request is sent in this task "
                    "(the outage_breaker_seconds extra)"
                )
                metrics.breaker_opened(path)
        self.check(method, path)
