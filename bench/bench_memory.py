"""Memory: peak RSS of an award batch of 100,000 vs 10,000 records (streamed, not held).

Bar (issue 4): the peak RSS at 100,000 awards is no more than 1.2x that at 10,000. Each size runs
in its own process (a fresh peak), fed by a generator, with the per-record report streamed to a
file; the sandbox runs in a third process with no latency so the large run takes minutes.

    .venv/bin/python bench/bench_memory.py [--sizes 10000 100000] [--workers 16]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import award_records, run_operator, sandbox


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(size: int, workers: int) -> None:
    """One batch of ``size`` awards; prints the figures as one JSON line."""
    from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator

    operator = PerkvilleAwardPointsOperator(task_id="bench", awards=[], perk_id=501, max_workers=workers)
    run_operator("warm-up", operator, award_records(f"WARM{size}", 50))
    before = _rss_kib("VmRSS")
    with tempfile.TemporaryDirectory() as directory:
        report = Path(directory) / "report.jsonl"
        measured, summary = run_operator(
            "engine", operator, award_records(f"MEM{size}", size), report_path=report
        )
        report_lines = sum(1 for _ in report.open())
    print(
        json.dumps(
            {
                "size": size,
                "seconds": measured.seconds,
                "awarded": summary["awarded"],
                "failures": measured.failures,
                "report_lines": report_lines,
                "rss_before_kib": before,
                "peak_rss_kib": _rss_kib("VmHWM"),
                "summary_bytes": len(json.dumps(summary)),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.workers)
        return

    results = []
    with sandbox() as server:
        for size in args.sizes:
            output = subprocess.run(  # noqa: S603 - this script, run by the same interpreter
                [sys.executable, __file__, "--child", str(size), "--workers", str(args.workers)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))
        transactions = len(server.admin.ledger()["transactions"])

    print(f"\nMemory: peak RSS per batch size ({args.workers} workers, no latency, report streamed)")
    header = (
        "awards",
        "seconds",
        "awards/s",
        "failures",
        "report lines",
        "RSS before",
        "peak RSS",
        "summary",
    )
    print(" ".join(f"{name:>12}" for name in header))
    for row in results:
        cells = (
            row["size"],
            f"{row['seconds']:.1f}",
            f"{row['size'] / row['seconds']:.0f}",
            row["failures"],
            row["report_lines"],
            f"{row['rss_before_kib'] / 1024:.1f}MB",
            f"{row['peak_rss_kib'] / 1024:.1f}MB",
            f"{row['summary_bytes']}B",
        )
        print(" ".join(f"{cell:>12}" for cell in cells))
    smallest, largest = results[0], results[-1]
    ratio = largest["peak_rss_kib"] / smallest["peak_rss_kib"]
    growth = (largest["peak_rss_kib"] - largest["rss_before_kib"]) - (
        smallest["peak_rss_kib"] - smallest["rss_before_kib"]
    )
    verdict = "meets" if ratio <= 1.2 else "ABOVE"
    print(f"peak RSS {largest['size']} vs {smallest['size']}: {ratio:.3f}x  (bar 1.2x: {verdict})")
    print(f"extra growth during the batch at {largest['size']} vs {smallest['size']}: {growth / 1024:+.1f}MB")
    print(f"sandbox ledger: {transactions} transactions")


if __name__ == "__main__":
    main()
