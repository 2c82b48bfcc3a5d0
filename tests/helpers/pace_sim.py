"""A simulated clock, server and client threads for the pacing rules: minutes of traffic in milliseconds.

The rules of :mod:`perkville_provider.pacing` are pure, so they can run against a simulated server
(a sliding one-second window, as a rate limiter counts, plus 429s answered at random, as a flaky
load balancer does) with simulated threads that book, send, wait ``latency`` for the answer and
retry a 429 after its ``Retry-After``, as the transport does. What takes the bench minutes of real
processes takes a test a fraction of a second, deterministically (a seeded random generator).
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from perkville_provider.pacing import Pace, PaceRules


@dataclass
class SimResult:
    """What the simulated server saw, per second of simulated time."""

    accepted: list[int] = field(default_factory=list)
    limited: list[int] = field(default_factory=list)
    random_429: list[int] = field(default_factory=list)
    decreases: int = 0
    learned: list[float | None] = field(default_factory=list)

    def per_second(self, start: int = 0, end: int | None = None) -> float:
        """Accepted requests per second over whole seconds ``start`` to ``end``."""
        window = self.accepted[start:end]
        return sum(window) / max(1, len(window))

    def limited_share(self, start: int = 0, end: int | None = None) -> float:
        """429s the limit answered, as a share of all answers."""
        limited = sum(self.limited[start:end])
        answered = limited + sum(self.accepted[start:end]) + sum(self.random_429[start:end])
        return limited / max(1, answered)


def simulate(
    rules: PaceRules,
    *,
    seconds: int,
    threads: int,
    limit: Callable[[float], float | None],
    latency: float = 0.05,
    random_429: float = 0.0,
    retry_after: float = 1.0,
    think: float = 0.0,
    pace: Pace | None = None,
    start_at: float = 1000.0,
    seed: int = 7,
) -> SimResult:
    """Run ``threads`` clients against a server allowing ``limit(t)`` starts in any second.

    :param limit: the server's limit at a time since the start (None: no limit)
    :param random_429: the share of requests answered 429 at random, whatever the rate
    :param think: seconds a thread waits between an answer and its next request (its demand)
    """
    rng = random.Random(seed)
    pace = pace or Pace()
    result = SimResult()
    window: deque[float] = deque()
    end = start_at + seconds
    # (time, order, thread, kind, booked_at or sent_at)
    events: list[tuple[float, int, int, str, float]] = []
    order = 0

    def push(at: float, thread: int, kind: str, value: float = 0.0) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (at, order, thread, kind, value))

    def count(kind: list[int], at: float) -> None:
        second = int(at - start_at)
        while len(kind) <= second:
            kind.append(0)
        kind[second] += 1

    for thread in range(threads):
        push(start_at + thread * 1e-4, thread, "book")
    while events:
        now, _, thread, kind, value = heapq.heappop(events)
        if now >= end:
            break
        while len(result.learned) <= int(now - start_at):
            result.learned.append(pace.throttled_rate)
        if kind == "book":
            sent = rules.reserve(pace, now)
            if sent > now:
                push(sent, thread, "due", now)
            else:
                push(now, thread, "send")
        elif kind == "due":
            push(now, thread, "send" if rules.sent(pace, now, booked_at=value) else "book")
        elif kind == "send":
            while window and window[0] <= now - 1.0:
                window.popleft()
            allowed = limit(now - start_at)
            if rng.random() < random_429:
                push(now + latency, thread, "random_429", now)
            elif allowed is not None and len(window) >= allowed:
                push(now + latency, thread, "limited", now)
            else:
                window.append(now)
                push(now + latency, thread, "ok", now)
        elif kind == "ok":
            count(result.accepted, now)
            push(now + think, thread, "book")
        else:  # a 429
            count(result.limited if kind == "limited" else result.random_429, now)
            if rules.throttled(pace, value, now, retry_after) is not None:
                result.decreases += 1
            push(now + retry_after, thread, "book")
    for kind in (result.accepted, result.limited, result.random_429):
        kind.extend([0] * (seconds - len(kind)))
    return result
