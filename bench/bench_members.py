"""Member sync: the operator's engine vs a naive sequential loop vs a raw concurrent client.

2,000 new members against the sandbox with 50 ms injected latency; the same bars as the awards
benchmark (12x the naive loop, 85% of the raw client with the same worker count; 16 by default,
see bench_awards.py for why).

    .venv/bin/python bench/bench_members.py [--count 2000] [--workers 16] [--latency-ms 50]
"""

from __future__ import annotations

from _common import compare_clients, member_records

from perkville_provider.bodies import member_request_body
from perkville_provider.operators.sync_members import PerkvilleSyncMembersOperator
from perkville_provider.records import validate_member

SYSTEM_ID = "BENCH_SYS"


def main() -> None:
    summary = compare_clients(
        title="Member sync",
        path="/v2/external-members/",
        operator_factory=lambda workers: PerkvilleSyncMembersOperator(
            task_id="bench", members=[], external_system_id=SYSTEM_ID, max_workers=workers
        ),
        records=member_records,
        request_body=lambda record, business_id: member_request_body(
            validate_member(record, external_system_id=SYSTEM_ID), business_id
        ),
        ledger_table="external_members",
        doc=__doc__,
    )
    counts = {name: summary[name] for name in ("created", "updated", "invalid", "failed")}
    print("engine summary: " + " ".join(f"{name}={value}" for name, value in counts.items()))


if __name__ == "__main__":
    main()
