"""Export: 100,000 Perkville connections into SQLite, page by page, next to a naive loop.

Against the sandbox (its own process, 50 ms latency per request) seeded with 100,000 bulk
connections (``seed.add_customers``, straight into its database file), the operator
(``PerkvilleToSqlOperator.execute``, page size 1000 = Perkville's largest) exports them into a
fresh SQLite file, then exports them again (nothing changed: nothing is written). Each export runs
in a process of its own so its peak RSS is its own; the same export of 10,000 connections gives
the memory baseline. The naive loop GETs pages of the API's default size (20) and calls
``DbApiHook.insert_rows`` once per row; it runs on fewer rows (``--naive-count``) and is compared
per row. The sandbox's own database (not the operator's counters) checks that every balance landed.

Goals (issue 14): peak RSS at 100,000 rows <= 1.2x that at 10,000; the operator >= 10x the
naive loop's rows/s; every connection and balance of the ledger in the table; the unchanged
re-run writes nothing. PostgreSQL: not measured (see the README: no server of our own here).

    .venv/bin/python bench/bench_export.py [--count 100000] [--small 10000] [--naive-count 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perkville_provider.sandbox import seed
from perkville_provider.sandbox.server import run_sandbox

SQL_CONN_ID = "bench_target"
PAGE_SIZE = 1000
NAIVE_PAGE_SIZE = 20


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def seeded_sandbox_db(path: Path, count: int) -> Path:
    """A sandbox database file: the demo seed plus ``count`` bulk connections."""
    subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "perkville_provider.sandbox", "reset", "--db", str(path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with sqlite3.connect(path) as db:
        seed.add_customers(db, count)
    db.close()
    return path


def child(target: Path) -> None:
    """Export the connections twice into ``target``; print the figures as one JSON line."""
    os.environ[f"AIRFLOW_CONN_{SQL_CONN_ID.upper()}"] = json.dumps(
        {"conn_type": "sqlite", "host": str(target)}
    )
    import logging

    from perkville_provider.transfers.perkville_to_sql import PerkvilleToSqlOperator

    logging.disable(logging.WARNING)
    operator = PerkvilleToSqlOperator(
        task_id="bench", sql_conn_id=SQL_CONN_ID, resource="connections", page_size=PAGE_SIZE
    )
    before = _rss_kib("VmRSS")
    started = time.perf_counter()
    first = operator.execute(context={})
    seconds = time.perf_counter() - started
    peak = _rss_kib("VmHWM")
    started = time.perf_counter()
    again = operator.execute(context={})
    rerun_seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "first": first,
                "seconds": seconds,
                "again": again,
                "rerun_seconds": rerun_seconds,
                "rss_before_kib": before,
                "peak_rss_kib": peak,
            }
        )
    )


def run_child(sandbox: Any, target: Path, home: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONN_PERKVILLE_DEFAULT": sandbox.airflow_conn_env_value(),
    }
    done = subprocess.run(  # noqa: S603 - this script
        [sys.executable, __file__, "--child", str(target)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"export child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def naive_loop(sandbox: Any, target: Path, count: int) -> tuple[int, int, float]:
    """GET pages of the default size, ``insert_rows`` one row at a time: (rows, pages, seconds)."""
    from perkville_provider.transfers.perkville_to_sql import TableWriter, sql_hook
    from perkville_provider.transfers.tables import CONNECTIONS

    os.environ[f"AIRFLOW_CONN_{SQL_CONN_ID.upper()}"] = json.dumps(
        {"conn_type": "sqlite", "host": str(target)}
    )
    hook = sql_hook(SQL_CONN_ID)
    hook.log.setLevel("WARNING")
    TableWriter(hook, CONNECTIONS, "perkville_connections").create_if_missing()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sandbox.token()}"
    rows = pages = 0
    started = time.perf_counter()
    while rows < count:
        params = {"business": sandbox.business_id, "limit": NAIVE_PAGE_SIZE, "offset": rows}
        objects = session.get(f"{sandbox.base_url}/v2/connections/", params=params, timeout=30).json()[
            "objects"
        ]
        pages += 1
        for obj in objects:
            row = CONNECTIONS.row(obj, rows)
            hook.insert_rows(
                "perkville_connections",
                [row],
                target_fields=list(CONNECTIONS.column_names),
                replace=True,
                replace_index=["connection_id"],
            )
            rows += 1
        if not objects:
            break
    return rows, pages, time.perf_counter() - started


def table_balances(path: Path) -> dict[int, int]:
    return _balances(path, "SELECT connection_id, point_balance FROM perkville_connections")


def sandbox_balances(path: Path) -> dict[int, int]:
    """The sandbox's own record, read from its database (its ledger API would page 100,000 rows)."""
    return _balances(path, "SELECT id, point_balance FROM connections")


def _balances(path: Path, sql: str) -> dict[int, int]:
    with sqlite3.connect(path) as db:
        rows = dict(db.execute(sql))
    db.close()
    return rows


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--naive-count", type=int, default=2_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    import logging

    logging.disable(logging.WARNING)
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-export-airflow-"))
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        work = Path(tmp)
        for size in (args.small, args.count):
            source = seeded_sandbox_db(work / f"sandbox-{size}.db", size - 2)
            with run_sandbox(db=source, faults={"latency_ms": args.latency_ms}) as sandbox:
                target = work / f"target-{size}.db"
                results[size] = run_child(sandbox, target, work)
                print(f"{size}: {json.dumps(results[size])[:400]}", file=sys.stderr, flush=True)
                ledger = {
                    c["connection_id"]: c["point_balance"] for c in sandbox.admin.ledger()["connections"]
                }
                results[size]["ledger_matches"] = table_balances(target) == ledger
                results[size]["ledger_rows"] = len(ledger)
                if size == args.small:
                    naive = naive_loop(sandbox, work / "naive.db", args.naive_count)

    print(
        f"\nExport of Perkville connections into SQLite: sandbox latency {args.latency_ms:g} ms, "
        f"page size {PAGE_SIZE} (Perkville's largest; one transaction per page)"
    )
    print(
        f"{'run':<36} {'rows':>8} {'pages':>6} {'seconds':>8} {'rows/s':>8} {'pages/s':>8} "
        f"{'peak RSS MiB':>13} {'ledger':>7}"
    )
    for size, figures in results.items():
        first = figures["first"]
        print(
            f"{f'operator, {size} connections':<36} {first['rows_read']:>8} {first['pages']:>6} "
            f"{figures['seconds']:>8.1f} {first['rows_read'] / figures['seconds']:>8.0f} "
            f"{first['pages'] / figures['seconds']:>8.1f} {figures['peak_rss_kib'] / 1024:>13.1f} "
            f"{'match' if figures['ledger_matches'] else 'DIFFER':>7}"
        )
        again = figures["again"]
        print(
            f"{f'operator re-run, {size} (unchanged)':<36} {again['rows_read']:>8} {again['pages']:>6} "
            f"{figures['rerun_seconds']:>8.1f} {again['rows_read'] / figures['rerun_seconds']:>8.0f} "
            f"{again['pages'] / figures['rerun_seconds']:>8.1f} {'':>13} {'':>7}"
        )
    naive_rows, naive_pages, naive_seconds = naive
    print(
        f"{'naive loop (row-by-row insert_rows)':<36} {naive_rows:>8} {naive_pages:>6} {naive_seconds:>8.1f} "
        f"{naive_rows / naive_seconds:>8.0f} {naive_pages / naive_seconds:>8.1f} {'':>13} {'':>7}"
    )

    big, small = results[args.count], results[args.small]
    rss_ratio = big["peak_rss_kib"] / small["peak_rss_kib"]
    speedup = (big["first"]["rows_read"] / big["seconds"]) / (naive_rows / naive_seconds)
    landed = all(r["ledger_matches"] and r["first"]["inserted"] == r["ledger_rows"] for r in results.values())
    unchanged = all(r["again"]["inserted"] == r["again"]["updated"] == 0 for r in results.values())
    goals = [
        (f"peak RSS {args.count} vs {args.small} rows: {rss_ratio:.2f}x", "<= 1.2x", rss_ratio <= 1.2),
        (f"operator vs naive loop, rows/s: {speedup:.1f}x", ">= 10x", speedup >= 10),
        ("every ledger connection and balance in the table", "all", landed),
        ("re-run of unchanged data writes nothing", "0 written", unchanged),
    ]
    print()
    for label, goal, ok in goals:
        print(f"{label:<56} goal {goal:<10} {verdict(ok)}")
    print("PostgreSQL: not measured (no PostgreSQL server of this checkout's own; see README).")
    return 0 if all(ok for _, _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
