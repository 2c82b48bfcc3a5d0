"""Shared pieces of the operator benchmarks: the sandbox, the records, the three clients, the table.

Each benchmark compares, in one run against one sandbox (its own process, so its CPU does not
share the client's GIL):

- the operator's engine: the operator's own batch job (validation, the hook's pooled session,
  retries, typed errors, the summary), run by ``perkville_provider.batch.run_batch``;
- a naive client: a sequential loop of ``requests.post`` (a new connection per request);
- a raw concurrent client: the same worker count, one keep-alive session, prebuilt bodies, no
  validation and no retries: the least work a client can do, so the physical limit here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perkville_provider.batch import run_batch
from perkville_provider.sandbox.launcher import SandboxHandle, run_sandbox

CONN_ENV_VAR = "AIRFLOW_CONN_PERKVILLE_DEFAULT"
CUSTOMERS = ("casey@example.com", "robin@example.com")


@contextmanager
def sandbox(**faults: Any) -> Iterator[SandboxHandle]:
    """A sandbox in its own process with ``faults``, and the default connection pointing at it."""
    with run_sandbox(faults=faults) as handle:
        previous = os.environ.get(CONN_ENV_VAR)
        os.environ[CONN_ENV_VAR] = handle.airflow_conn_env_value()
        try:
            yield handle
        finally:
            if previous is None:
                os.environ.pop(CONN_ENV_VAR, None)
            else:
                os.environ[CONN_ENV_VAR] = previous


def award_records(prefix: str, count: int) -> Iterator[dict[str, Any]]:
    """Check-in awards for the seeded customers, each with its own ``trans_source_id``."""
    for i in range(count):
        yield {"trans_source_id": f"{prefix}:{i}", "user_email": CUSTOMERS[i % len(CUSTOMERS)]}


def member_records(prefix: str, count: int) -> Iterator[dict[str, Any]]:
    """New members, each with its own email and member id."""
    for i in range(count):
        yield {
            "external_member_id": f"{prefix}-{i}",
            "user_email": f"{prefix.lower()}.{i}@example.com",
            "first_name": "Bench",
            "external_membership_status": "ACTIVE",
        }


@dataclass(frozen=True)
class Measured:
    """One client's run: how many records, in how long, and how many did not succeed."""

    name: str
    records: int
    seconds: float
    failures: int

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def run_operator(
    name: str, operator: Any, records: Iterable[Any], **batch: Any
) -> tuple[Measured, dict[str, Any]]:
    """The operator's own job through the engine, as ``execute()`` runs it (minus the XCom link)."""
    settings = operator.settings()
    hook = operator.make_hook(settings)
    job = operator.build_job(hook, settings)
    started = time.perf_counter()
    summary = run_batch(records, job, max_workers=settings.max_workers, logger=_quiet_logger(), **batch)
    seconds = time.perf_counter() - started
    return Measured(name, summary["total"], seconds, summary["invalid"] + summary["failed"]), summary


def naive_loop(name: str, url: str, token: str, bodies: Sequence[dict[str, Any]]) -> Measured:
    """One ``requests.post`` after another, as a first script would do it."""
    failures = 0
    started = time.perf_counter()
    for body in bodies:
        response = requests.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        failures += not response.ok
    return Measured(name, len(bodies), time.perf_counter() - started, failures)


def raw_concurrent(
    name: str, url: str, token: str, bodies: Sequence[dict[str, Any]], workers: int
) -> Measured:
    """``workers`` threads sharing one keep-alive session: the least a concurrent client can do."""
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=workers))
    session.headers["Authorization"] = f"Bearer {token}"

    def post(body: dict[str, Any]) -> bool:
        return session.post(url, json=body, timeout=30).ok

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        oks = list(pool.map(post, bodies))
    seconds = time.perf_counter() - started
    session.close()
    return Measured(name, len(bodies), seconds, oks.count(False))


def print_comparison(
    title: str, engine: Measured, others: Sequence[Measured], bars: dict[str, tuple[str, float]]
) -> None:
    """The three clients side by side, then each ratio against its bar."""
    print(f"\n{title}")
    print(f"{'client':<34} {'records':>8} {'seconds':>9} {'records/s':>10} {'failures':>9}")
    for measured in (engine, *others):
        print(
            f"{measured.name:<34} {measured.records:>8} {measured.seconds:>9.2f} "
            f"{measured.per_second:>10.1f} {measured.failures:>9}"
        )
    by_name = {measured.name: measured for measured in others}
    for label, (other, bar) in bars.items():
        ratio = engine.per_second / by_name[other].per_second
        verdict = "meets" if ratio >= bar else "BELOW"
        print(f"{label:<44} {ratio:>8.2f}x  (bar {bar:g}x: {verdict})")


def _quiet_logger():
    import logging

    logger = logging.getLogger("perkville.bench")
    logger.setLevel(logging.WARNING)
    return logger


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def comparison_args(doc: str) -> argparse.Namespace:
    """``--count``, ``--workers`` and ``--latency-ms`` of the engine-vs-clients benchmarks."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    return parser.parse_args()


def compare_clients(
    *,
    title: str,
    path: str,
    operator_factory: Callable[[int], Any],
    records: Callable[[str, int], Iterable[dict[str, Any]]],
    request_body: Callable[[dict[str, Any], int], dict[str, Any]],
    ledger_table: str,
    doc: str,
) -> dict[str, Any]:
    """Run the engine, the raw concurrent client and the naive loop against one sandbox; print them.

    Each client writes its own records (prefixes ENGINE, RAW, NAIVE), so each does real writes.
    Returns the engine's summary.
    """
    args = comparison_args(doc)
    with sandbox(latency_ms=args.latency_ms) as server:
        url = f"{server.base_url}{path}"
        token = server.token()

        def bodies(prefix: str) -> list[dict[str, Any]]:
            return [request_body(record, server.business_id) for record in records(prefix, args.count)]

        engine, summary = run_operator(
            f"operator engine ({args.workers} workers)",
            operator_factory(args.workers),
            records("ENGINE", args.count),
        )
        raw = raw_concurrent(
            f"raw concurrent ({args.workers} workers)", url, token, bodies("RAW"), args.workers
        )
        naive = naive_loop("naive sequential requests.post", url, token, bodies("NAIVE"))
        written = len(server.admin.ledger()[ledger_table])

    print_comparison(
        f"{title}: {args.count} per client, {args.latency_ms:g} ms latency "
        f"(physical limit {args.workers / (args.latency_ms / 1000):.0f}/s at {args.workers} workers)",
        engine,
        [raw, naive],
        {
            "engine vs naive sequential loop": (naive.name, 12.0),
            "engine vs raw concurrent client": (raw.name, 0.85),
        },
    )
    print(f"sandbox ledger: {written} {ledger_table} (expected {3 * args.count})")
    for failure in summary["failures"][:3]:
        print(f"engine failure: {failure}")
    return summary


def report_goals(goals: Sequence[tuple[str, bool, str]]) -> int:
    """Print each goal (name, met, figure) as ``meets``/``misses``; the exit status: 1 on a miss."""
    print()
    for name, met, figure in goals:
        print(f"{'meets' if met else 'misses'}: {name} ({figure})")
    return 0 if all(met for _, met, _ in goals) else 1
