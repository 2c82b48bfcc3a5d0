"""Rate limit: 500 awards with the sandbox limiting to 20 requests/s and the operator set to 20/s.

Bar (issue 4): no failure, and 90% or more of the allowed rate. The hook spaces request starts
(retries included) across all worker threads; a 429 that slips through is retried after its
``Retry-After``. The sandbox's own counters show how many 429s were answered.

    .venv/bin/python bench/bench_rate_limit.py [--count 500] [--rate 20] [--workers 8]
"""

from __future__ import annotations

import argparse

from _common import award_records, run_operator, sandbox

from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    with sandbox(rate_limit_per_second=args.rate) as server:
        operator = PerkvilleAwardPointsOperator(
            task_id="bench",
            awards=[],
            perk_id=501,
            max_workers=args.workers,
            max_requests_per_second=args.rate,
        )
        engine, summary = run_operator("operator engine", operator, award_records("RATE", args.count))
        stats = server.admin.stats()
        transactions = len(server.admin.ledger()["transactions"])

    achieved = engine.per_second
    share = achieved / args.rate
    limited = stats.get("faults_injected", {}).get("rate_limited", 0)
    print(f"\nRate limit: {args.count} awards, sandbox and client both at {args.rate:g} requests/s")
    print(f"{'awards':<28} {engine.records:>10}")
    print(f"{'seconds':<28} {engine.seconds:>10.2f}")
    print(f"{'awards/s':<28} {achieved:>10.2f}")
    print(
        f"{'share of the allowed rate':<28} {share:>10.1%}  (bar 90%: {'meets' if share >= 0.9 else 'BELOW'})"
    )
    print(f"{'failures':<28} {engine.failures:>10}  (bar 0: {'meets' if engine.failures == 0 else 'BELOW'})")
    print(f"{'429 answers from sandbox':<28} {limited:>10}")
    print(f"{'awarded / ledger':<28} {summary['awarded']:>5} / {transactions}")


if __name__ == "__main__":
    main()
