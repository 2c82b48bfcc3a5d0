"""What the shared rate budget costs each request when nothing needs pacing (issue 12).

Without a budget the limiter still counts every start in the shared state (a 429 measures the
rate against it), so every request of every task pays one round of the state's lock. This bench
times ``SharedPace.acquire`` for each way of sharing, beside the machine file opened for every
request (how it was first built) in the same run:

    .venv/bin/python bench/bench_limiter_overhead.py [--acquires 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perkville_provider.pacing import PaceRules
from perkville_provider.rate_budget import MachineSchedule, ProcessSchedule, RedisSchedule, SharedPace
from tests.helpers.redis_server import redis_server

#: A request to Perkville takes tens of milliseconds; the limiter should cost well under 1% of one.
GOAL_MICROSECONDS = 100.0


class ReopeningMachineSchedule(MachineSchedule):
    """The machine file as first built: opened, locked and closed for every request."""

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield fd
            finally:
                os.close(fd)


def per_acquire_microseconds(limiter: SharedPace, acquires: int) -> float:
    """Mean microseconds of one ``acquire`` (no budget: nothing sleeps)."""
    for _ in range(100):  # warm up
        limiter.acquire()
    started = time.perf_counter()
    for _ in range(acquires):
        limiter.acquire()
    return (time.perf_counter() - started) / acquires * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acquires", type=int, default=5000)
    args = parser.parse_args()
    rules = PaceRules(ceiling=None)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as state, redis_server() as url:
        schedules = {
            "process (threads of one task)": ProcessSchedule(),
            "machine, file kept open": MachineSchedule(Path(state) / "kept.json"),
            "machine, file opened per request": ReopeningMachineSchedule(Path(state) / "reopened.json"),
            "redis (limits + state key)": RedisSchedule(url, "overhead", rules),
        }
        for name, schedule in schedules.items():
            limiter = SharedPace(rules, schedule, label="bench")
            figures[name] = per_acquire_microseconds(limiter, args.acquires)
    print(f"Limiter cost per request, no budget (every start is counted), {args.acquires} acquires")
    reference = figures["machine, file opened per request"]
    for name, micros in figures.items():
        print(f"  {name:36} {micros:8.1f} us   {micros / reference:5.2f}x of opened per request")
    kept = figures["machine, file kept open"]
    verdict = "meets" if kept <= GOAL_MICROSECONDS else "misses"
    goal = f"goal machine sharing <= {GOAL_MICROSECONDS:.0f} us per request"
    print(f"  {goal:48} {kept:8.1f} us  {verdict}")
    return 0 if verdict == "meets" else 1


if __name__ == "__main__":
    raise SystemExit(main())
