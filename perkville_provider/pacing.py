"""Adaptive pacing: when the next request to Perkville may start, and how a 429 changes that.

One :class:`Pace` is the state of one connection's schedule; :class:`PaceRules` are the pure rules
over it, with no clock, lock or storage of their own, so the same rules run on a state kept in a
thread lock, a machine-wide lock file or Redis (see :mod:`perkville_provider.rate_budget`).

* Starts are spaced evenly at the current rate (a GCRA: the state is the next free start).
* On a congestion the rate is cut to 70% for everyone sharing the state (multiplicative
  decrease, TCP CUBIC's factor), once: answers to requests sent before the last decrease, and
  429s while the server's window is still full (within its ``Retry-After``, at least a second, of
  the decrease), change nothing more, since they report the pace that was already cut. A
  congestion is clearly more 429s among the starts since the first of them than a server
  answers at random (5% of them, plus three standard deviations, and at least five; counted
  for up to ten seconds): a server, or a load balancer in front of it, that answers a few
  requests 429 at random whatever the rate is not a limit, and must not teach one (it did, two
  429s within a second being enough, and a
  flaky day taught a limit of 4 requests/s). A decrease also holds every new start back for the
  ``Retry-After``: until then the server's window is full, and a start would only earn a 429;
  starts booked before the decrease are booked again.
* The rate a 429 refused is the connection's **learned limit** (kept in the state, so every
  process and every later run shares it), at most what the server accepted: the starts before
  the decrease over the last second less those of them answered 429 (a sliding-window counter,
  as a server counts). The 429s of one congestion episode (answers to requests sent before
  its decrease) so each lower it to what the server let through, instead of each cutting the
  pace again: an unpaced burst learns the limit at once.
* While answers succeed the rate climbs back along a cubic curve (TCP CUBIC's concave part) to
  just under the learned limit (97% of it, the budget's headroom), stays there, and only after
  ``probe_after_seconds`` there without a congestion probes above it, doubling every
  ``probe_doubling_seconds`` (a limit is usually fixed; each probe that finds it costs a few
  429s and a ``Retry-After``; random 429s do not end it, since they are no congestion). The probe
  has no bound but the budget, so a limit learned too low, or one the server has since raised,
  is left behind within
  a minute or two. A 429 below the learned limit lowers it to what the server accepted (a
  measure, where CUBIC's fast convergence guesses a factor), so the pace settles quickly under a
  limit that dropped.
* Without a budget nothing is paced until the first congestion (nothing is known yet); from then on the
  learned limit paces every start. A run that starts after ``idle_seconds`` without a start
  begins at the learned limit again, not where the last run's probe had climbed to.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["HEADROOM", "Pace", "PaceChange", "PaceRules"]

#: Paced a little under a known limit (a budget, or the learned one): sleeps wake late and
#: unevenly, and a server counting a strict window answers 429 to starts that bunch; each such
#: retry costs a whole ``Retry-After``.
HEADROOM = 0.97
#: Seconds over which starts are counted (the sliding window a server most likely counts over).
MEASURE_SECONDS = 1.0
#: A probe stops doubling here (a thousand times the learned limit: no pace at all, in practice).
MAX_DOUBLINGS = 10.0


@dataclass
class Pace:
    """The shared state of one connection's schedule (plain numbers: it is stored as JSON)."""

    next_start: float = 0.0
    throttled_rate: float | None = None
    decreased_at: float = 0.0
    quiet_until: float = 0.0
    resumed_rate: float = 0.0
    total_starts: float = 0.0
    suspect_since: float = 0.0
    suspect_refused: float = 0.0
    suspect_base: float = 0.0
    starts: float = 0.0
    previous_starts: float = 0.0
    bucket_at: float = 0.0
    counted_at: float = 0.0
    episode_starts: float = 0.0
    episode_refused: float = 0.0
    episode_bucket_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The state as a JSON-ready mapping."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Any) -> Pace:
        """The state from a stored mapping (unknown keys, from another release, are ignored).

        :raises ValueError: not a mapping, or a known key whose value is not a finite number
            (``throttled_rate`` may be null)
        """
        if values is None:
            return cls()
        if not isinstance(values, dict):
            raise ValueError(f"the state is a JSON {type(values).__name__}, not an object")
        known = {key: value for key, value in values.items() if key in cls.__dataclass_fields__}
        for key, value in known.items():
            if value is None and key == "throttled_rate":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{key} is {str(value)[:40]!r}, not a finite number")
        numbers: dict[str, Any] = {
            key: None if value is None else float(value) for key, value in known.items()
        }
        return cls(**numbers)


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
    :param recovery_seconds: seconds to climb back to just under the learned limit after a decrease
    :param probe_after_seconds: seconds just under the learned limit, without a 429, before the
        pace probes above it
    :param probe_doubling_seconds: how fast a probe climbs: it doubles the pace in this time, with
        no bound but the budget, so that a limit learned too low (the server's limit rose, or the
        demand was low when it was learned) is left behind within a minute or two
    :param idle_seconds: a start after this long without one begins a new run (at the learned limit)
    :param floor: the slowest pace in requests per second
    :param refractory_seconds: after a decrease, 429s within this time (or the ``Retry-After``
        of the 429 that caused it, if longer) change nothing more
    :param random_share: the share of 429s a server (or a load balancer in front of it) may
        answer at random, whatever the rate: a decrease needs clearly more 429s than that among
        the starts since the first of them (three standard deviations more), and at least
        ``congestion_refused``; random 429s are not a limit, and must not teach one
    :param congestion_refused: the fewest 429s that confirm a congestion
    :param suspect_seconds: how long 429s are counted from the first, to confirm a congestion
    :param max_wait: the longest ``Retry-After`` the pace honours (the retry policy's
        ``max_retry_after``): no start is ever booked, or stored, further ahead than this plus one
        spacing at the floor (:attr:`longest_wait`)
    """

    ceiling: float | None
    adaptive: bool = True
    decrease: float = 0.7
    recovery_seconds: float = 3.0
    probe_after_seconds: float = 60.0
    probe_doubling_seconds: float = 20.0
    idle_seconds: float = 60.0
    floor: float = 0.5
    refractory_seconds: float = 1.0
    random_share: float = 0.05
    congestion_refused: int = 5
    suspect_seconds: float = 10.0
    max_wait: float = 60.0

    @property
    def longest_wait(self) -> float:
        """The furthest ahead a start may be booked: the longest ``Retry-After`` and one spacing."""
        return self.max_wait + 1.0 / self.floor

    def distrust(self, pace: Pace, now: float) -> str | None:
        """Why a pace read back from shared state cannot be trusted, or None when it can.

        Whoever wrote it (another release, a crash half-way, a hand edit, a neighbour), a pace
        whose times lie further ahead than any rule here books, or whose rate or counters are
        out of range, would park or break every request: it is replaced, not obeyed.
        """
        horizon = self.longest_wait + 1.0 / self.floor  # a booking at the horizon, and its spacing
        ahead = {"next_start": pace.next_start, "quiet_until": pace.quiet_until}
        for name, value in ahead.items():
            if value > now + horizon:
                return f"{name} is {value - now:.3g} s ahead (at most {horizon:g} s)"
        for name in ("decreased_at", "counted_at", "bucket_at", "suspect_since", "episode_bucket_at"):
            if getattr(pace, name) > now + horizon:
                return f"{name} is in the future"
        if pace.throttled_rate is not None and not pace.throttled_rate > 0:
            return f"throttled_rate is {pace.throttled_rate!r}, not a positive rate"
        counters = ("total_starts", "starts", "previous_starts", "suspect_refused", "episode_starts")
        if any(getattr(pace, name) < 0 for name in counters):
            return "a counter is negative"
        return None

    def read_stored(
        self, raw: bytes | str | None, now: float, *, max_bytes: int = 4096
    ) -> tuple[Pace, str | None]:
        """A pace read back from shared state (a file, Redis), and why it cannot be trusted (or None).

        The one check for every store: at most ``max_bytes``, JSON, known keys finite numbers, then
        :meth:`distrust`. An untrusted or empty state reads as a fresh :class:`Pace`.
        """
        if not raw:
            return Pace(), None
        try:
            if len(raw) > max_bytes:
                raise ValueError(f"it is over {max_bytes} bytes")
            pace = Pace.from_dict(json.loads(raw))
            problem = self.distrust(pace, now)
        except (ValueError, TypeError, RecursionError) as error:
            problem = str(error) or type(error).__name__
        return (pace, None) if problem is None else (Pace(), problem)

    def rate(self, pace: Pace, now: float) -> float | None:
        """The current pace in requests per second, or None for no pacing at all."""
        if not self.adaptive or pace.throttled_rate is None:
            return self.ceiling
        target = pace.throttled_rate * HEADROOM
        since = now - pace.decreased_at
        k = self.recovery_seconds
        if since < k:
            rate = target - (target - min(pace.resumed_rate, target)) * (1 - since / k) ** 3
        else:
            probing = max(0.0, since - k - self.probe_after_seconds)
            rate = target * 2.0 ** min(MAX_DOUBLINGS, probing / self.probe_doubling_seconds)
        if self.ceiling is not None:
            rate = min(rate, self.ceiling)
        return max(self.floor, rate)

    def measured_rate(self, pace: Pace, now: float) -> float:
        """Starts per second over the last second.

        Two one-second buckets (a sliding-window counter): all of this second's starts, and the
        share of the last second's that the window still covers.
        """
        _roll(pace, now)
        return (pace.starts + pace.previous_starts * _overlap(pace.bucket_at, now)) / MEASURE_SECONDS

    @staticmethod
    def measured_elsewhere(pace: Pace, starts: float, total: float, now: float) -> None:
        """Take the starts of the last second, and of all time, as counted elsewhere (in Redis)."""
        pace.starts, pace.previous_starts, pace.counted_at, pace.total_starts = starts, 0.0, now, total
        pace.bucket_at = now - MEASURE_SECONDS * 0.999

    def reserve(self, pace: Pace, now: float) -> float:
        """Book the next start; the returned time is when the caller may send (``now`` or later)."""
        if now - pace.counted_at > self.idle_seconds:
            self.new_run(pace, now)
        rate = self.rate(pace, now)
        # Never booked past the longest wait: many threads at the floor pace could book minutes ahead.
        start = now if rate is None else min(max(now, pace.next_start), now + self.longest_wait)
        pace.next_start = start if rate is None else start + 1.0 / rate
        if start <= now:
            self._count(pace, now)
        return start

    def new_run(self, pace: Pace, now: float) -> None:
        """Start a run after a quiet spell at the learned limit, not where the last probe had climbed."""
        if pace.throttled_rate is not None and now - pace.decreased_at > self.recovery_seconds:
            pace.decreased_at = now - self.recovery_seconds

    def sent(self, pace: Pace, now: float, *, booked_at: float) -> bool:
        """A start booked ahead is due: count it, or False when a decrease came since (book it again).

        Many threads book starts ahead at the old pace (64 threads at 40/s book up to 1.6 s
        ahead); sent anyway, they would fill the server's window the decrease holds back for.
        """
        if pace.decreased_at > booked_at:
            return False
        self._count(pace, now)
        return True

    @staticmethod
    def _count(pace: Pace, now: float) -> None:
        _roll(pace, now)
        pace.starts += 1.0
        pace.total_starts += 1.0
        pace.counted_at = now

    def throttled(
        self, pace: Pace, sent_at: float, now: float, retry_after: float | None = None
    ) -> PaceChange | None:
        """Cut the pace after a 429 to a request sent at ``sent_at``; None when nothing changed."""
        if not self.adaptive:
            return None
        if sent_at < pace.decreased_at:  # one of the episode's starts
            pace.episode_refused += _weight(sent_at, pace.episode_bucket_at, pace.decreased_at)
            self._learn(pace)
            return None
        refused = self._refuse(pace, now)
        if now < pace.quiet_until or not self.congested(pace, now):
            return None
        before = self.rate(pace, now)
        if before is None:
            before = max(self.floor, self.measured_rate(pace, now))
        pace.throttled_rate = before
        pace.decreased_at = now
        retry_after = min(retry_after or 0.0, self.max_wait)  # never stored beyond its cap
        pace.quiet_until = now + max(self.refractory_seconds, retry_after)
        pace.resumed_rate = max(self.floor, before * self.decrease)
        pace.episode_starts = self.measured_rate(pace, now)
        pace.episode_bucket_at = pace.bucket_at
        pace.episode_refused = refused
        pace.suspect_since, pace.suspect_refused = 0.0, 0.0
        self._learn(pace)
        after = pace.resumed_rate
        pace.next_start = max(pace.next_start, now + max(1.0 / after, retry_after))
        return PaceChange(before, after)

    def _refuse(self, pace: Pace, now: float) -> float:
        """Count a 429 (one not of a decrease's episode); the 429s per second since the first of them.

        The 429s are counted from the first one for up to ``suspect_seconds``: one thread alone
        against a limit earns one 429 per ``Retry-After``, and only a few seconds tell that
        from chance.
        """
        if now - pace.suspect_since > self.suspect_seconds:
            pace.suspect_since, pace.suspect_refused = now, 0.0
            pace.suspect_base = pace.total_starts - self.measured_rate(pace, now) * MEASURE_SECONDS
        pace.suspect_refused += 1.0
        return pace.suspect_refused / max(MEASURE_SECONDS, now - pace.suspect_since)

    def congested(self, pace: Pace, now: float) -> bool:
        """Whether the 429s since the first of them are a congestion, not a few answered 429 at random.

        They are compared with the starts they could answer: those since the first, and those of
        the second before it.
        """
        refused = pace.suspect_refused
        starts = pace.total_starts - pace.suspect_base
        expected = self.random_share * max(0.0, starts)
        return refused >= max(self.congestion_refused, expected + 3.0 * math.sqrt(expected))

    def _learn(self, pace: Pace) -> None:
        """Lower the learned limit to what the server accepted in the episode, if that is below it."""
        if pace.throttled_rate is None:
            return
        accepted = max(self.floor, (pace.episode_starts - pace.episode_refused) / MEASURE_SECONDS)
        if accepted < pace.throttled_rate:
            pace.throttled_rate = accepted
            pace.resumed_rate = max(self.floor, min(pace.resumed_rate, accepted * self.decrease))

    def recovered(self, pace: Pace, now: float) -> bool:
        """Whether the pace is back just under the learned limit (or the ceiling) since the last decrease."""
        return pace.throttled_rate is not None and now - pace.decreased_at >= self.recovery_seconds


def _roll(pace: Pace, now: float) -> None:
    """Move the buckets on to the one-second bucket that holds ``now``."""
    elapsed = now - pace.bucket_at
    if elapsed < MEASURE_SECONDS:
        return
    pace.previous_starts = pace.starts if elapsed < 2 * MEASURE_SECONDS else 0.0
    pace.starts = 0.0
    pace.bucket_at += math.floor(elapsed / MEASURE_SECONDS) * MEASURE_SECONDS


def _overlap(bucket_at: float, now: float) -> float:
    """The share of the previous bucket that the second before ``now`` still covers."""
    return max(0.0, 1.0 - (now - bucket_at) / MEASURE_SECONDS)


def _weight(sent_at: float, bucket_at: float, now: float) -> float:
    """How much a start sent at ``sent_at`` counts in :meth:`PaceRules.measured_rate` at ``now``."""
    if sent_at >= bucket_at:
        return 1.0
    return _overlap(bucket_at, now) if sent_at >= bucket_at - MEASURE_SECONDS else 0.0
