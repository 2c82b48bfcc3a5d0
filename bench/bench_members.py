"""Member sync: the operator's engine vs a naive sequential loop vs a raw concurrent client.

2,000 new members against the sandbox with 50 ms injected latency; the same bars as the awards
benchmark (12x the naive loop, 85% of the raw client with the same worker count; 16 by default,
see bench_awards.py for why).

    .venv/bin/python bench/bench_members.py [--count 2000] [--workers 16] [--latency-ms 50]
"""

from __future__ import annotations

import argparse

from _common import member_records, naive_loop, print_comparison, raw_concurrent, run_operator, sandbox

from perkville_provider.hooks.perkville import member_request_body
from perkville_provider.operators.external_members import PerkvilleSyncMembersOperator
from perkville_provider.records import validate_member

SYSTEM_ID = "BENCH_SYS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    with sandbox(latency_ms=args.latency_ms) as server:
        url = f"{server.base_url}/v2/external-members/"
        token = server.token()

        def bodies(prefix: str) -> list[dict]:
            return [
                member_request_body(validate_member(record, external_system_id=SYSTEM_ID), server.business_id)
                for record in member_records(prefix, args.count)
            ]

        operator = PerkvilleSyncMembersOperator(
            task_id="bench", members=[], external_system_id=SYSTEM_ID, max_workers=args.workers
        )
        engine, summary = run_operator(
            f"operator engine ({args.workers} workers)", operator, member_records("ENGINE", args.count)
        )
        raw = raw_concurrent(
            f"raw concurrent ({args.workers} workers)", url, token, bodies("RAW"), args.workers
        )
        naive = naive_loop("naive sequential requests.post", url, token, bodies("NAIVE"))
        members = len(server.admin.ledger()["external_members"])

    print_comparison(
        f"Member sync: {args.count} per client, {args.latency_ms:g} ms latency "
        f"(physical limit {args.workers / (args.latency_ms / 1000):.0f}/s at {args.workers} workers)",
        engine,
        [raw, naive],
        {
            "engine vs naive sequential loop": (naive.name, 12.0),
            "engine vs raw concurrent client": (raw.name, 0.85),
        },
    )
    print(
        f"engine summary: created={summary['created']} updated={summary['updated']} failed={summary['failed']}"
    )
    print(f"sandbox ledger: {members} external members (expected {3 * args.count})")


if __name__ == "__main__":
    main()
