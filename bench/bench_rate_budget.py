"""Rate budget (issue 12): one budget per connection across 16 chunk tasks, adaptive pacing on 429.

The sandbox answers with 50 ms latency and limits requests per API client (every worker's own
token together). Chunk tasks are worker processes (spawned, each its own interpreter, as on
Airflow workers) running the award operator's batch on their own chunk, all started together.
Each case runs twice in the same run: the shared budget (this provider), and today's behaviour
(the budget applied per task, retries only). Figures come from the sandbox's own counters, sampled
during the run; failures from the operators' summaries, awards from the ledger.

Case 2 (no budget) runs as long as a day's chunked awards (``--unknown-seconds``, 60 s of work at
the limit: 2,400 awards, about 2,450 requests): with no budget the first second's burst of
unpaced starts costs a few dozen 429s once, and a run of a dozen seconds would measure little
else. A later run then starts paced at the limit the first one learned (same state), shown too.

    .venv/bin/python bench/bench_rate_budget.py [--limit 40] [--tasks 16] [--threads 4] [--case 2]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import sandbox

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.worker_processes import WorkerPool, WorkerTask

LATENCY_MS = 50.0
TODAY = {"rate_limit_sharing": "process", "adaptive_pacing": False}


@dataclass
class Sample:
    at: float
    accepted: int
    throttled: int


@dataclass(frozen=True)
class Run:
    """One run of one case: the sandbox's samples and the workers' results."""

    samples: list[Sample]
    started: float
    finished: float
    records: int
    failed: int
    awarded: int
    drop_at: float | None = None

    @property
    def accepted(self) -> int:
        return self.samples[-1].accepted - self.samples[0].accepted

    @property
    def throttled(self) -> int:
        return self.samples[-1].throttled - self.samples[0].throttled

    @property
    def per_second(self) -> float:
        return self.accepted / (self.finished - self.started)

    @property
    def throttled_share(self) -> float:
        return self.throttled / max(1, self.accepted + self.throttled)

    def settle_seconds(self, quiet: float = 3.0) -> float | None:
        """Seconds from the drop until the first ``quiet`` seconds without a 429 began."""
        if self.drop_at is None:
            return None
        after = [s for s in self.samples if s.at >= self.drop_at]
        last_429 = self.drop_at
        for earlier, later in itertools.pairwise(after):
            if later.throttled > earlier.throttled:
                last_429 = later.at
            elif later.at - last_429 >= quiet:
                return last_429 - self.drop_at
        return None


def _counts(stats: dict[str, Any]) -> tuple[int, int]:
    accepted = throttled = 0
    for by_status in stats["requests"].values():
        for status, count in by_status.items():
            if status == "429":
                throttled += count
            else:
                accepted += count
    return accepted, throttled


def run_case(
    server: Any,
    pool: WorkerPool,
    *,
    prefix: str,
    extra: dict[str, Any],
    limit: float,
    chunks: int,
    per_chunk: int,
    threads: int,
    drop_after: float | None = None,
    state: str | None = None,
) -> Run:
    """Run ``chunks`` award chunks at once against a fresh limit; sample the sandbox meanwhile.

    :param state: the rate state directory (default: a fresh one, nothing learned yet)
    """
    faults = {"latency_ms": LATENCY_MS, "rate_limit_per_second": limit, "rate_limit_scope": "client"}
    server.admin.set_faults(**faults)
    state = state or tempfile.mkdtemp(prefix="bench-rate-")
    conn = server.airflow_connection(extra={"rate_limit_dir": state, **extra})
    samples: list[Sample] = []
    done = threading.Event()
    drop: list[float] = []

    def sample() -> None:
        while True:
            accepted, throttled = _counts(server.admin.stats())
            samples.append(Sample(time.time(), accepted, throttled))
            if drop_after is not None and not drop and samples[-1].at - samples[0].at >= drop_after:
                server.admin.set_faults(**{**faults, "rate_limit_per_second": limit / 2})
                drop.append(time.time())
            if done.wait(0.2):
                accepted, throttled = _counts(server.admin.stats())
                samples.append(Sample(time.time(), accepted, throttled))
                return

    tasks = [WorkerTask("awards", per_chunk, threads, prefix=f"{prefix}-{i}") for i in range(chunks)]
    sampler = threading.Thread(target=sample, daemon=True)
    before = len(server.admin.ledger()["transactions"])
    sampler.start()
    results = pool.run(conn, tasks)
    done.set()
    sampler.join(30)
    awarded = len(server.admin.ledger()["transactions"]) - before
    return Run(
        samples,
        min(r.started for r in results),
        max(r.finished for r in results),
        chunks * per_chunk,
        sum(r.failed for r in results),
        awarded,
        drop[0] if drop else None,
    )


@dataclass(frozen=True)
class Goal:
    label: str
    figure: Callable[[Run], float | None]
    shown: Callable[[float | None], str]
    met: Callable[[float | None], bool]


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def report(title: str, limit: float, shared: Run, today: Run, goals: list[Goal]) -> bool:
    print(f"\n{title}")
    print(f"{'':<34} {'shared budget':>15} {'today (per task)':>17}")
    rows = [
        ("accepted requests/s", lambda r: f"{r.per_second:.1f}"),
        ("share of the limit", lambda r: pct(r.per_second / limit)),
        ("requests answered 429", lambda r: f"{r.throttled} ({pct(r.throttled_share)})"),
        ("records failed", lambda r: str(r.failed)),
        ("awarded (ledger) / records", lambda r: f"{r.awarded} / {r.records}"),
        ("seconds", lambda r: f"{r.finished - r.started:.1f}"),
    ]
    if shared.drop_at is not None:
        rows.append(("back under the halved limit after", lambda r: seconds(r.settle_seconds())))
    for label, show in rows:
        print(f"{label:<34} {show(shared):>15} {show(today):>17}")
    ok = True
    for goal in goals:
        figure = goal.figure(shared)
        met = goal.met(figure)
        ok = ok and met
        print(f"  goal {goal.label:<40} {goal.shown(figure):>12}  {'meets' if met else 'misses'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=40.0, help="the sandbox's limit per API client")
    parser.add_argument("--tasks", type=int, default=16, help="parallel chunk tasks (worker processes)")
    parser.add_argument("--threads", type=int, default=4, help="max_workers of each chunk task")
    parser.add_argument("--seconds", type=float, default=12.0, help="about how long cases 1, 3, 4 run")
    parser.add_argument(
        "--unknown-seconds", type=float, default=60.0, help="about how long case 2 (no budget) runs"
    )
    parser.add_argument("--case", type=int, action="append", choices=(1, 2, 3, 4), help="run only these")
    args = parser.parse_args()
    limit = args.limit
    per_chunk = max(1, int(limit * args.seconds / args.tasks))
    per_unknown_chunk = max(1, int(limit * args.unknown_seconds / args.tasks))
    known = {"max_requests_per_second": limit}
    no_failures = Goal("0 failed", lambda r: r.failed, str, lambda f: f == 0)

    def share_goal(bar: float) -> Goal:
        label = f"aggregate >= {bar:.0%} of the limit"
        return Goal(label, lambda r: r.per_second / limit, pct, lambda f: f >= bar)

    def throttle_goal(bar: float) -> Goal:
        label = f"<= {bar:.1%} of requests answered 429"
        return Goal(label, lambda r: r.throttled_share, pct, lambda f: f <= bar)

    print(
        f"Rate budget: sandbox limit {limit:g} requests/s per API client, {LATENCY_MS:g} ms latency; "
        f"{args.tasks} chunk tasks x {args.threads} threads, {per_chunk} awards each"
    )
    started = time.perf_counter()
    ok = True
    with sandbox() as server, WorkerPool(args.tasks) as pool:
        # The first task of a process imports and wires what the hook and operator use lazily
        # (seconds each on a busy machine): warm every worker up before timing anything.
        warm = [WorkerTask("awards", 1, 1, prefix=f"WARM-{i}") for i in range(args.tasks)]
        pool.run(server.airflow_connection(), warm)
        print(f"({args.tasks} worker processes ready and warm in {time.perf_counter() - started:.0f} s)")
        common = {"pool": pool, "limit": limit, "threads": args.threads}
        cases = [
            (
                f"1. budget known ({limit:g}/s on the connection), {args.tasks} parallel chunk tasks",
                {"chunks": args.tasks, "per_chunk": per_chunk},
                known,
                [share_goal(0.95), no_failures, throttle_goal(0.005)],
            ),
            (
                f"2. budget unknown (no setting), {args.tasks} parallel chunk tasks, "
                f"{args.tasks * per_unknown_chunk} awards",
                {"chunks": args.tasks, "per_chunk": per_unknown_chunk},
                {},
                [share_goal(0.85), no_failures, throttle_goal(0.03)],
            ),
            (
                f"3. the limit drops to {limit / 2:g}/s mid-run (budget {limit:g}/s set)",
                {"chunks": args.tasks, "per_chunk": int(per_chunk * 1.5), "drop_after": args.seconds / 3},
                known,
                [
                    Goal("back under the new limit within 10 s", lambda r: r.settle_seconds(), seconds,
                         lambda f: f is not None and f <= 10.0),
                    no_failures,
                ],
            ),
            (
                f"4. one task alone, budget {limit:g}/s set",
                {"chunks": 1, "per_chunk": int(limit * args.seconds)},
                known,
                [share_goal(0.95), no_failures],
            ),
        ]  # fmt: skip
        for number, (title, shape, extra, goals) in enumerate(cases, 1):
            if args.case and number not in args.case:
                continue
            state = tempfile.mkdtemp(prefix="bench-rate-")
            shared = run_case(server, prefix=f"S{number}", extra=extra, state=state, **shape, **common)
            today = run_case(server, prefix=f"T{number}", extra={**extra, **TODAY}, **shape, **common)
            ok = report(title, limit, shared, today, goals) and ok
            if number == 2:
                later_shape = {"chunks": args.tasks, "per_chunk": per_chunk}
                later = run_case(server, prefix="L2", extra=extra, state=state, **later_shape, **common)
                print(
                    f"  a later run, the limit learned ({args.tasks * per_chunk} awards): "
                    f"{later.per_second:.1f}/s = {pct(later.per_second / limit)}, "
                    f"{later.throttled} answered 429 ({pct(later.throttled_share)}), {later.failed} failed"
                )
    print(f"\n{'all goals met' if ok else 'GOALS MISSED'} in {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
