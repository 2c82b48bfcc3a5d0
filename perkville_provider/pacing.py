"""Adaptive pacing: when the next request to Perkville may start, and how a 429 changes that.

One :class:`Pace` is the state of one connection's schedule; :class:`PaceRules` are the pure rules
over it, with no clock, lock or storage of their own, so the same rules run on a state kept in a
thread lock, a machine-wide lock file or Redis (see :mod:`perkville_provider.rate_budget`).

* Starts are spaced evenly at the current rate (a GCRA: the state is the next free start).
* On a 429 the rate is cut to 70% for everyone sharing the state (multiplicative decrease, TCP
  CUBIC's factor), once per congestion: answers to requests sent before the last decrease, and
  429s while the server's window is still full (within its ``Retry-After``, at least a second, of
  the decrease), change nothing, since they report the pace that was already cut. A lone 429
  changes nothing either: a decrease needs a second within a second (plus its
  ``Retry-After``) of the first. A decrease also holds every new start back for the
  ``Retry-After``: until then the server's window is full, and a start would only earn a 429.
* While answers succeed the rate climbs back along a cubic curve (TCP CUBIC's): quickly at first,
  flat near the rate that was throttled, then probing above it; it never exceeds the budget. A
  429 below the last throttled rate lowers that mark further (CUBIC's fast convergence), so the
  pace settles quickly under a limit that dropped.
* Without a budget nothing is paced until the first 429; the rate then starts from the rate of
  starts measured over the last second (a decayed count kept in the state), and pacing stops
  again once it has climbed far above the throttled rate without another 429.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Pace", "PaceChange", "PaceRules"]

#: Seconds over which the rate of starts is measured (the decay of the count).
MEASURE_SECONDS = 1.0
#: Without a budget, pacing stops once the pace has climbed to this multiple of the throttled rate.
UNPACED_ABOVE = 4.0


@dataclass
class Pace:
    """The shared state of one connection's schedule (plain numbers: it is stored as JSON)."""

    next_start: float = 0.0
    throttled_rate: float | None = None
    decreased_at: float = 0.0
    quiet_until: float = 0.0
    resumed_rate: float = 0.0
    suspect_until: float = 0.0
    starts: float = 0.0
    counted_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The state as a JSON-ready mapping."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Pace:
        """The state from a stored mapping (unknown keys, from another release, are ignored)."""
        known = {key: value for key, value in (values or {}).items() if key in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class PaceChange:
    """A decrease that happened: the rates before and after, for the one log line about it."""

    before: float
    after: float


@dataclass(frozen=True)
class PaceRules:
    """The pacing rules for one connection.

    :param ceiling: the most requests per second ever paced (the budget less its headroom), or
        None when no budget is set
    :param adaptive: whether a 429 slows the pace down (False: a fixed pace, the budget's)
    :param decrease: the share of the rate kept after a 429
    :param recovery_seconds: seconds to climb back to the throttled rate after a decrease
    :param floor: the slowest pace in requests per second
    :param refractory_seconds: after a decrease, 429s within this time (or the ``Retry-After``
        of the 429 that caused it, if longer) change nothing more
    :param confirm_seconds: a decrease needs a second 429 within this time (plus the first's
        ``Retry-After``, so that the retry of a lone request can confirm it) of a first one (0:
        the first is enough); a lone 429 is the server's window catching two starts a thread sent
        late, not a limit below the pace, and its request is retried after ``Retry-After`` anyway
    """

    ceiling: float | None
    adaptive: bool = True
    decrease: float = 0.7
    recovery_seconds: float = 3.0
    floor: float = 0.5
    refractory_seconds: float = 1.0
    confirm_seconds: float = 1.0

    def rate(self, pace: Pace, now: float) -> float | None:
        """The current pace in requests per second, or None for no pacing at all."""
        if not self.adaptive or pace.throttled_rate is None:
            return self.ceiling
        peak = pace.throttled_rate
        k = self.recovery_seconds
        scale = (peak - pace.resumed_rate) / k**3
        rate = peak + scale * (now - pace.decreased_at - k) ** 3
        if self.ceiling is not None:
            rate = min(rate, self.ceiling)
        elif rate >= UNPACED_ABOVE * peak:
            return None
        return max(self.floor, rate)

    def measured_rate(self, pace: Pace, now: float) -> float:
        """Starts per second over about the last second (a decayed count)."""
        return self._decayed(pace, now) / MEASURE_SECONDS

    def reserve(self, pace: Pace, now: float) -> float:
        """Book the next start; the returned time is when the caller may send (``now`` or later)."""
        pace.starts = self._decayed(pace, now) + 1.0
        pace.counted_at = now
        rate = self.rate(pace, now)
        if rate is None:
            pace.next_start = now
            return now
        start = max(now, pace.next_start)
        pace.next_start = start + 1.0 / rate
        return start

    def throttled(
        self, pace: Pace, sent_at: float, now: float, retry_after: float | None = None
    ) -> PaceChange | None:
        """Cut the pace after a 429 to a request sent at ``sent_at``; None when nothing changed."""
        if not self.adaptive or sent_at < pace.decreased_at or now < pace.quiet_until:
            return None
        if self.confirm_seconds and now > pace.suspect_until:
            pace.suspect_until = now + self.confirm_seconds + (retry_after or 0.0)
            return None
        pace.suspect_until = 0.0
        before = self.rate(pace, now)
        if before is None:
            before = max(self.floor, self.measured_rate(pace, now))
        previous = pace.throttled_rate
        fast = previous is not None and before < previous and pace.decreased_at > 0
        pace.throttled_rate = before * (1 + self.decrease) / 2 if fast else before
        pace.decreased_at = now
        pace.quiet_until = now + max(self.refractory_seconds, retry_after or 0.0)
        after = max(self.floor, before * self.decrease)
        pace.resumed_rate = after
        pace.next_start = max(pace.next_start, now + max(1.0 / after, retry_after or 0.0))
        return PaceChange(before, after)

    def recovered(self, pace: Pace, now: float) -> bool:
        """Whether the pace is back at the throttled rate (or the ceiling) since the last decrease."""
        return pace.throttled_rate is not None and now - pace.decreased_at >= self.recovery_seconds

    @staticmethod
    def _decayed(pace: Pace, now: float) -> float:
        return pace.starts * math.exp(-max(0.0, now - pace.counted_at) / MEASURE_SECONDS)
