"""What the perkville.* metrics cost per record: off (no backend), and on (StatsD over UDP).

A record's metric calls, as the batch engine and the transport make them: one ``record`` (the
outcome and its points), one ``request_timer`` (the attempt's count, status class and duration),
one ``waited`` (the wait for the rate budget) and one ``pace`` (gauges, sent at most once a
second). The cost is the loop with the calls less the same loop without them, per record.
Goals: under 5 µs per record with metrics off, under 50 µs on (StatsD to a UDP socket on
127.0.0.1 that nobody reads: sending is the whole cost, as in a deployment).

Usage: ``python bench/bench_metrics.py [--records 20000]``
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GOALS_MICROSECONDS = {"off": 5.0, "on": 50.0}


def _noop() -> float:
    return 0.0


def _bare(records: int) -> float:
    started = time.perf_counter()
    for _ in range(records):
        _noop()
    return time.perf_counter() - started


def _instrumented(records: int) -> float:
    from perkville_provider import metrics

    started = time.perf_counter()
    for _ in range(records):
        metrics.waited(_noop)
        with metrics.request_timer("/v2/transactions/") as answer:
            answer.status = 201
        metrics.record("awarded", {"points": 10})
        metrics.pace(12.0, 15.0)
    return time.perf_counter() - started


def per_record_microseconds(records: int, *, on: bool) -> float:
    """The metrics' cost per record, inside a task's scope, with a StatsD backend or none."""
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    from perkville_provider import metrics

    stats.initialize(
        factory=stats_utils.get_stats_factory() if on else NoStatsLogger, export_legacy_names=False
    )
    with metrics.task_scope(dag_id="bench", task_id="award", business_id=9823):
        _instrumented(1000)  # warm: the first send builds the client
        best = min(_instrumented(records) - _bare(records) for _ in range(3))
    return best / records * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    home = tempfile.mkdtemp(prefix="bench-metrics-")
    os.environ.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(sink.getsockname()[1]),
        }
    )
    print(f"{'metrics':<10}{'µs/record':>12}{'goal µs':>10}  verdict")
    failed = False
    for mode in ("off", "on"):
        cost = per_record_microseconds(args.records, on=mode == "on")
        goal = GOALS_MICROSECONDS[mode]
        verdict = "meets" if cost <= goal else "misses"
        failed = failed or verdict == "misses"
        print(f"{mode:<10}{cost:>12.2f}{goal:>10.0f}  {verdict}")
    sink.close()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
