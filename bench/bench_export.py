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
re-run writes nothing. The same again into a throwaway PostgreSQL (``_postgres.py``) where its
binaries and the postgres provider are installed (``make .venv/.installed EXTRAS=test,cluster``).

    .venv/bin/python bench/bench_export.py [--count 100000] [--small 10000] [--naive-count 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _postgres import throwaway_postgres, unavailable_reason

from perkville_provider.sandbox import seed
from perkville_provider.sandbox.launcher import run_sandbox

SQL_CONN_ID = "bench_target"
TARGET_ENV_VAR = f"AIRFLOW_CONN_{SQL_CONN_ID.upper()}"
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


def child(target: str) -> None:
    """Export the connections twice into ``target`` (a connection's JSON); print the figures."""
    os.environ[TARGET_ENV_VAR] = target
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


def run_child(sandbox: Any, target: str, home: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONN_PERKVILLE_DEFAULT": sandbox.airflow_conn_env_value(),
    }
    done = subprocess.run(  # noqa: S603 - this script
        [sys.executable, __file__, "--child", target],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"export child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def target_hook(target: str) -> Any:
    from perkville_provider.transfers.perkville_to_sql import sql_hook

    os.environ[TARGET_ENV_VAR] = target
    return sql_hook(SQL_CONN_ID)


def naive_loop(sandbox: Any, target: str, count: int) -> tuple[int, int, float]:
    """GET pages of the default size, ``insert_rows`` one row at a time: (rows, pages, seconds)."""
    from perkville_provider.transfers.tables import CONNECTIONS
    from perkville_provider.transfers.writer import TableWriter

    hook = target_hook(target)
    hook.run("DROP TABLE IF EXISTS perkville_connections")
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


def get_pages_only(sandbox: Any, source: Path) -> tuple[int, int, float]:
    """The same walk with no database and no projection: what the sandbox's pages cost alone."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sandbox.token()}"
    rows = pages = 0
    started = time.perf_counter()
    while True:
        params = {"business": sandbox.business_id, "limit": PAGE_SIZE, "offset": rows}
        objects = session.get(f"{sandbox.base_url}/v2/connections/", params=params, timeout=60).json()[
            "objects"
        ]
        pages += 1
        rows += len(objects)
        if len(objects) < PAGE_SIZE:
            return rows, pages, time.perf_counter() - started


def table_balances(target: str) -> dict[int, int]:
    hook = target_hook(target)
    return dict(hook.get_records("SELECT connection_id, point_balance FROM perkville_connections"))


def sandbox_balances(path: Path) -> dict[int, int]:
    """The sandbox's own record, read from its database (its ledger API would page 100,000 rows)."""
    with sqlite3.connect(path) as db:
        rows = dict(db.execute("SELECT id, point_balance FROM connections"))
    db.close()
    return rows


@dataclass
class TargetFigures:
    """One database's runs: the operator at each size, and the naive loop."""

    name: str
    runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    naive: tuple[int, int, float] = (0, 0, 0.0)


def measure(
    name: str, target: str, sandboxes: dict[int, tuple[Any, Path]], naive_count: int, home: Path
) -> TargetFigures:
    figures = TargetFigures(name)
    for size, (sandbox, source) in sandboxes.items():
        target_hook(target).run("DROP TABLE IF EXISTS perkville_connections")
        figures.runs[size] = run_child(sandbox, target, home)
        expected = sandbox_balances(source)
        figures.runs[size]["ledger_matches"] = table_balances(target) == expected
        figures.runs[size]["ledger_rows"] = len(expected)
    sandbox, _ = sandboxes[min(sandboxes)]
    figures.naive = naive_loop(sandbox, target, naive_count)
    return figures


def print_figures(figures: TargetFigures, latency_ms: float) -> None:
    """Rates over the walk (``elapsed_s``: pages fetched and upserted); ``task s`` adds the start-up
    (imports, connection look-ups, token, table creation) that a task pays once."""
    print(
        f"\nExport of Perkville connections into {figures.name}: sandbox latency {latency_ms:g} ms, "
        f"page size {PAGE_SIZE} (Perkville's largest; one transaction per page)"
    )
    print(
        f"{'run':<38} {'rows':>8} {'pages':>6} {'walk s':>7} {'task s':>7} {'rows/s':>8} {'pages/s':>8} "
        f"{'peak RSS MiB':>13} {'ledger':>7}"
    )
    for size, run in figures.runs.items():
        ledger = "match" if run["ledger_matches"] else "DIFFER"
        for label, summary, seconds, rss, check in (
            (
                f"operator, {size} connections",
                run["first"],
                run["seconds"],
                run["peak_rss_kib"] / 1024,
                ledger,
            ),
            (f"operator re-run, {size} (unchanged)", run["again"], run["rerun_seconds"], None, ""),
        ):
            walk = summary["elapsed_s"]
            print(
                f"{label:<38} {summary['rows_read']:>8} {summary['pages']:>6} {walk:>7.1f} {seconds:>7.1f} "
                f"{summary['rows_read'] / walk:>8.0f} {summary['pages'] / walk:>8.2f} "
                f"{'' if rss is None else f'{rss:.1f}':>13} {check:>7}"
            )
    rows, pages, seconds = figures.naive
    print(
        f"{'naive loop (row-by-row insert_rows)':<38} {rows:>8} {pages:>6} {seconds:>7.1f} {'':>7} "
        f"{rows / seconds:>8.0f} {pages / seconds:>8.2f} {'':>13} {'':>7}"
    )


def goals(figures: TargetFigures, small: int, count: int) -> list[tuple[str, str, bool]]:
    big, little = figures.runs[count], figures.runs[small]
    rss_ratio = big["peak_rss_kib"] / little["peak_rss_kib"]
    naive_rows, _, naive_seconds = figures.naive
    speedup = (big["first"]["rows_read"] / big["first"]["elapsed_s"]) / (naive_rows / naive_seconds)
    runs = figures.runs.values()
    landed = all(r["ledger_matches"] and r["first"]["inserted"] == r["ledger_rows"] for r in runs)
    unchanged = all(r["again"]["inserted"] == r["again"]["updated"] == 0 for r in runs)
    return [
        (f"{figures.name}: peak RSS {count} vs {small} rows: {rss_ratio:.2f}x", "<= 1.2x", rss_ratio <= 1.2),
        (f"{figures.name}: operator vs naive loop, rows/s: {speedup:.1f}x", ">= 10x", speedup >= 10),
        (f"{figures.name}: every sandbox connection and balance in the table", "all", landed),
        (f"{figures.name}: re-run of unchanged data writes nothing", "0 written", unchanged),
    ]


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--naive-count", type=int, default=2_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--no-postgres", action="store_true", help="skip the throwaway PostgreSQL")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    import logging

    logging.disable(logging.WARNING)
    measured: list[TargetFigures] = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        os.environ["AIRFLOW_HOME"] = str(work)
        sandboxes = {}
        for size in (args.small, args.count):
            source = seeded_sandbox_db(work / f"sandbox-{size}.db", size - 2)
            sandbox = stack.enter_context(run_sandbox(db=source, faults={"latency_ms": args.latency_ms}))
            sandboxes[size] = (sandbox, source)
        get_only = get_pages_only(*sandboxes[args.small])
        sqlite_target = json.dumps({"conn_type": "sqlite", "host": str(work / "target.db")})
        measured.append(measure("SQLite", sqlite_target, sandboxes, args.naive_count, work))
        postgres_missing = unavailable_reason() if not args.no_postgres else "--no-postgres"
        if postgres_missing is None:
            with throwaway_postgres() as postgres_target:
                measured.append(measure("PostgreSQL", postgres_target, sandboxes, args.naive_count, work))

    rows, pages, seconds = get_only
    print(
        f"\nGET pages only, no database ({rows} connections, page size {PAGE_SIZE}): {seconds:.1f} s, "
        f"{rows / seconds:.0f} rows/s, {pages / seconds:.2f} pages/s: the walk's ceiling from this sandbox"
    )
    results = []
    for figures in measured:
        print_figures(figures, args.latency_ms)
        results.extend(goals(figures, args.small, args.count))
    print()
    for label, goal, ok in results:
        print(f"{label:<64} goal {goal:<10} {verdict(ok)}")
    if postgres_missing is not None:
        print(f"PostgreSQL: not measured ({postgres_missing}).")
    return 0 if all(ok for _, _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
