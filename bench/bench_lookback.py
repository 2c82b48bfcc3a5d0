"""What the awards DAG's lookback costs (issue 15): 3 days re-read at 20,000 check-ins a day, 20 req/s.

Four daily runs against one sandbox, for three policies, each from a fresh sandbox and staging:

- ``day only``: each run sends its own day (no lookback: late rows and missed days are lost);
- ``lookback, re-send``: each run sends its day and the 3 days before; Perkville answers the
  re-read rows ``duplicate`` (correct, but each costs a request);
- ``lookback, skip settled`` (the DAG's default): the re-read rows that earlier runs' reports on
  object storage show as settled are not sent (``perkville_provider.staging.settled_keys``).

On day 3, 1% late rows arrive after its run; day 4's run must award them. The requests of day 4's
run are counted by the sandbox (``POST /v2/transactions``), scaled to 20,000 check-ins a day, and
priced at 20 requests/s. Goal: with the skip, the lookback adds at most 10% to a day's requests
(late rows included), and every late row is awarded. Exits 1 on a miss.

    .venv/bin/python bench/bench_lookback.py [--per-day 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import CUSTOMERS, _quiet_logger, report_goals, sandbox

from perkville_provider import staging
from perkville_provider.batch import run_batch

SCALE_TO = 20_000
BUDGET_RPS = 20.0
LOOKBACK = 3
LATE_SHARE = 0.01
EXTRA_GOAL = 0.10
POLICIES = ("day only", "lookback, re-send", "lookback, skip settled")


def day_awards(day: int, count: int) -> list[dict]:
    return [
        {"trans_source_id": f"BENCH:D{day}:CHECKIN:{n}", "user_email": CUSTOMERS[n % len(CUSTOMERS)]}
        for n in range(count)
    ]


def transaction_posts(handle) -> int:
    return sum(
        count
        for endpoint, by_status in handle.admin.stats()["requests"].items()
        if endpoint.startswith("POST /v2/transactions")
        for count in by_status.values()
    )


def run_day(handle, operator, policy: str, day: int, source: dict[int, list[dict]], root: str) -> dict:
    """One daily run under ``policy``: the rows it reads, skips and sends, and its requests."""
    days = [day] if policy == "day only" else list(range(max(1, day - LOOKBACK), day + 1))
    started = time.perf_counter()
    known = set()
    if policy == "lookback, skip settled":
        known = staging.settled_keys(
            root,
            "bench",
            days=[str(d) for d in days],
            statuses=("awarded", "duplicate"),
            known_run=lambda _run_id: True,  # every bench run is one of its own
        )
    read_seconds = time.perf_counter() - started
    rows = [award for d in days for award in source[d]]
    to_send = [award for award in rows if award["trans_source_id"] not in known]
    run_dir = staging.run_staging_dir(root, "bench", f"{policy}-{day}")
    staging.write_manifest(run_dir, run_id=f"{policy}-{day}", days=[str(d) for d in days])
    settings = operator.settings()
    job = operator.build_job(operator.make_hook(settings), settings)
    before = transaction_posts(handle)
    summary = run_batch(
        to_send,
        job,
        max_workers=8,
        logger=_quiet_logger(),
        report_path=run_dir / staging.REPORTS_DIR / "awards-00000.jsonl",
    )
    return {
        "read": len(rows),
        "skipped": len(rows) - len(to_send),
        "requests": transaction_posts(handle) - before,
        "awarded": summary["awarded"],
        "duplicate": summary["duplicate"],
        "report_seconds": read_seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=2000, help="check-ins per day (scaled to 20,000)")
    args = parser.parse_args()
    from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator

    operator = PerkvilleAwardPointsOperator(task_id="bench", awards=[], perk_id=501, max_workers=8)
    late = max(1, int(args.per_day * LATE_SHARE))
    results = {}
    with sandbox() as handle, tempfile.TemporaryDirectory() as directory:
        for policy in POLICIES:
            handle.admin.reset()
            root = f"file://{Path(directory) / policy.replace(' ', '_').replace(',', '')}"
            source = {day: day_awards(day, args.per_day) for day in range(1, 5)}
            for day in (1, 2, 3):
                run_day(handle, operator, policy, day, source, root)
            source[3] += [
                {**award, "trans_source_id": award["trans_source_id"] + "-late"} for award in source[3][:late]
            ]
            results[policy] = run_day(handle, operator, policy, 4, source, root)
    scale = SCALE_TO / args.per_day
    print(
        f"Day 4's run, measured at {args.per_day:,} check-ins a day ({late} late rows of day 3), "
        f"scaled x{scale:g} to {SCALE_TO:,}/day at {BUDGET_RPS:g} requests/s:"
    )
    print(
        f"{'policy':<24}{'rows read':>10}{'skipped':>9}{'requests':>10}{'awarded':>9}{'duplicate':>10}"
        f"{'req @20k':>10}{'minutes @20rps':>16}{'vs day only':>12}{'report read s':>14}"
    )
    base = results["day only"]["requests"]
    for policy, r in results.items():
        scaled = r["requests"] * scale
        print(
            f"{policy:<24}{r['read']:>10,}{r['skipped']:>9,}{r['requests']:>10,}{r['awarded']:>9,}"
            f"{r['duplicate']:>10,}{scaled:>10,.0f}{scaled / BUDGET_RPS / 60:>16.1f}"
            f"{r['requests'] / base:>12.2f}"
            f"{r['report_seconds'] * scale:>14.2f}"
        )
    skip = results["lookback, skip settled"]
    goals = [
        (
            f"lookback with skip adds <= {EXTRA_GOAL:.0%} to a day's requests",
            skip["requests"] <= (1 + EXTRA_GOAL) * base,
            f"+{skip['requests'] / base - 1:.1%}",
        ),
        (
            "every late row awarded by the next run (skip settled)",
            skip["awarded"] == args.per_day + late,
            f"{skip['awarded'] - args.per_day} of {late}",
        ),
        (
            "re-sending without the skip is priced, not hidden",
            results["lookback, re-send"]["duplicate"] > 0,
            f"{results['lookback, re-send']['duplicate']:,} duplicates",
        ),
    ]
    return report_goals(goals)


if __name__ == "__main__":
    sys.exit(main())
