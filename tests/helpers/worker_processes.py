"""Worker processes (spawned, not forked: each its own interpreter, as Airflow's workers are) that
run one task against the sandbox, all started together once every one of them is ready.

A task here is what one chunk task does on a worker: a hook on the connection and some threads
sending requests (``reads``), or the award operator's batch over its own records (``awards``).
Used by the shared-budget tests and by ``bench/bench_rate_budget.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

CONN_ENV_VAR = "AIRFLOW_CONN_PERKVILLE_DEFAULT"
START_TIMEOUT = 180.0


@dataclass(frozen=True)
class WorkerTask:
    """One worker's task: ``kind`` is ``reads`` or ``awards``; ``count`` requests or records."""

    kind: str
    count: int
    threads: int
    prefix: str = "W"
    max_requests_per_second: float | None = None


@dataclass(frozen=True)
class WorkerResult:
    """What a worker did: records done and failed (its own view; the sandbox's stats are the proof)."""

    done: int
    failed: int
    started: float
    finished: float


def _reads(task: WorkerTask) -> tuple[int, int]:
    from perkville_provider.hooks.perkville import PerkvilleHook

    hook = PerkvilleHook(max_requests_per_second=task.max_requests_per_second, pool_size=task.threads)
    hook.get_token()

    def read(_: int) -> bool:
        try:
            return hook.get_business()["business_id"] > 0
        except Exception:
            return False

    with ThreadPoolExecutor(max_workers=task.threads) as pool:
        oks = list(pool.map(read, range(task.count)))
    return oks.count(True), oks.count(False)


def _awards(task: WorkerTask) -> tuple[int, int]:
    import logging

    from perkville_provider.batch import run_batch
    from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator

    operator = PerkvilleAwardPointsOperator(
        task_id=f"chunk_{task.prefix}",
        awards=[],
        perk_id=501,
        max_workers=task.threads,
        max_requests_per_second=task.max_requests_per_second,
    )
    settings = operator.settings()
    hook = operator.make_hook(settings)
    hook.get_token()
    job = operator.build_job(hook, settings)
    records = (
        {"trans_source_id": f"{task.prefix}:{i}", "user_email": "casey@example.com"} for i in range(task.count)
    )
    quiet = logging.getLogger("perkville.worker")
    quiet.setLevel(logging.ERROR)
    summary = run_batch(records, job, max_workers=task.threads, logger=quiet)
    return summary["total"] - summary["failed"] - summary["invalid"], summary["failed"] + summary["invalid"]


def _worker(conn_value: str, task: WorkerTask, ready: Any, go: Any, results: Any) -> None:
    os.environ[CONN_ENV_VAR] = conn_value
    import logging

    logging.getLogger("perkville_provider").setLevel(logging.ERROR)
    from perkville_provider.hooks.perkville import PerkvilleHook  # the imports before the start

    del PerkvilleHook
    ready.release()
    if not go.wait(START_TIMEOUT):
        results.put(None)
        return
    started = time.time()
    done, failed = (_reads if task.kind == "reads" else _awards)(task)
    results.put(WorkerResult(done, failed, started, time.time()))


def run_workers(
    conn_value: str | Mapping[str, Any], tasks: Sequence[WorkerTask], *, timeout: float = 300.0
) -> list[WorkerResult]:
    """Start one process per task, release them together, and wait for every result.

    :param conn_value: the ``perkville_default`` connection (JSON, or a mapping made JSON)
    :param tasks: one per process
    :param timeout: seconds for the whole run; the processes are stopped by PID past it
    """
    import json

    value = conn_value if isinstance(conn_value, str) else json.dumps(conn_value)
    context = multiprocessing.get_context("spawn")
    ready = context.Semaphore(0)
    go = context.Event()
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(value, task, ready, go, results), daemon=True) for task in tasks
    ]
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            process.start()
        for _ in processes:
            if not ready.acquire(timeout=max(1.0, deadline - time.monotonic())):
                raise TimeoutError("a worker process did not get ready in time")
        go.set()
        collected = [results.get(timeout=max(1.0, deadline - time.monotonic())) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
    if any(result is None for result in collected):
        raise TimeoutError("a worker process was not released in time")
    return collected
