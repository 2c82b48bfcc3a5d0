"""Worker processes (spawned, not forked: each its own interpreter, as Airflow's workers are) that
run tasks against the sandbox, the tasks of one run all starting together.

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
        {"trans_source_id": f"{task.prefix}:{i}", "user_email": "casey@example.com"}
        for i in range(task.count)
    )
    quiet = logging.getLogger("perkville.worker")
    quiet.setLevel(logging.ERROR)
    summary = run_batch(records, job, max_workers=task.threads, logger=quiet)
    return summary["total"] - summary["failed"] - summary["invalid"], summary["failed"] + summary["invalid"]


def _worker(inbox: Any, ready: Any, results: Any) -> None:
    """A worker's loop: run each task it is given at the given start time, until told to stop."""
    import logging

    logging.getLogger("perkville_provider").setLevel(logging.ERROR)
    from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator  # imports first

    del PerkvilleAwardPointsOperator
    ready.release()
    while (message := inbox.get()) is not None:
        conn_value, task, start_at = message
        os.environ[CONN_ENV_VAR] = conn_value
        time.sleep(max(0.0, start_at - time.time()))
        started = time.time()
        try:
            done, failed = (_reads if task.kind == "reads" else _awards)(task)
        except Exception:
            done, failed = 0, task.count
        results.put(WorkerResult(done, failed, started, time.time()))


class WorkerPool:
    """``size`` worker processes, started once (an Airflow import each) and given tasks run by run.

    Each process is stopped through its own handle (its PID) on close, whatever happened.
    """

    def __init__(self, size: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready = context.Semaphore(0)
        self._results = context.Queue()
        self._inboxes = [context.Queue() for _ in range(size)]
        self._processes = [
            context.Process(target=_worker, args=(inbox, self._ready, self._results), daemon=True)
            for inbox in self._inboxes
        ]
        try:
            for process in self._processes:
                process.start()
            deadline = time.monotonic() + START_TIMEOUT
            for _ in self._processes:
                if not self._ready.acquire(timeout=max(1.0, deadline - time.monotonic())):
                    raise TimeoutError("a worker process did not get ready in time")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self, conn_value: str | Mapping[str, Any], tasks: Sequence[WorkerTask], *, timeout: float = 300.0
    ) -> list[WorkerResult]:
        """Give task ``i`` to worker ``i``, all starting together; wait for every result.

        :param conn_value: the ``perkville_default`` connection (JSON, or a mapping made JSON)
        :param tasks: at most one per worker
        :param timeout: seconds for the whole run
        """
        import json

        if len(tasks) > len(self._inboxes):
            raise ValueError(f"{len(tasks)} tasks for {len(self._inboxes)} workers")
        value = conn_value if isinstance(conn_value, str) else json.dumps(conn_value)
        start_at = time.time() + 0.3
        for inbox, task in zip(self._inboxes, tasks, strict=False):
            inbox.put((value, task, start_at))
        deadline = time.monotonic() + timeout
        return [self._results.get(timeout=max(1.0, deadline - time.monotonic())) for _ in tasks]

    def close(self) -> None:
        for inbox, process in zip(self._inboxes, self._processes, strict=True):
            if process.is_alive():
                inbox.put(None)
        for process in self._processes:
            if process.pid is None:
                continue
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)


def run_workers(conn_value: str | Mapping[str, Any], tasks: Sequence[WorkerTask]) -> list[WorkerResult]:
    """One fresh worker process per task, all released together; their results."""
    with WorkerPool(len(tasks)) as pool:
        return pool.run(conn_value, tasks)
