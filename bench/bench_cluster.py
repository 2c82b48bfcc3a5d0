"""The daily awards DAG on the local cluster (two Celery workers, 4 slots each, PostgreSQL
metadata) against one process (``dag.test()``), at 20,000 and 5,000 check-ins a day, sandbox
latency 50 ms + 20 ms jitter.

Per run it prints: the awarding phase's wall time (first chunk started to last chunk done, from
the task instances' timestamps), Airflow's overhead per mapped task instance (queued -> running,
and running -> done minus the chunk's own sending time), the bytes of XCom the run wrote to
PostgreSQL's ``xcom`` table, the peak memory (VmHWM) of each chunk's task process, and how these
grow from 5,000 to 20,000 check-ins. Every run is checked against the sandbox's ledger.

The 5,000 day is the 20,000 day's generator sampled (every 4th check-in, through the DAG's
``checkins_sql`` Param), so both sizes have the same shape. Issue 13 sets no numeric goal for
these figures; the one goal is exactly once (and nothing lost) in every run: ``meets`` or
``misses``, and the exit status says which.

``python bench/bench_cluster.py [--checkins 20000]`` (several minutes: a fresh cluster under
``.cluster/bench``, stopped at the end).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum
import psycopg2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "deploy"))

from airflow_rest import AirflowApi  # noqa: E402
from cluster import running_cluster  # noqa: E402
from cluster_config import Options, airflow_env  # noqa: E402
from cluster_state import State  # noqa: E402
from scenario import connect_scenario, item1_member_sync  # noqa: E402
from scenario_common import (  # noqa: E402
    AWARD_TASK,
    AWARDS_DAG,
    Scenario,
    check_day_exactly_once,
    day_bounds,
    sampled_checkins_sql,
)

ANCHOR = pendulum.date(2026, 11, 20)
DAYS = [ANCHOR.subtract(days=n) for n in (4, 3, 2, 1)]
SAMPLE_EVERY = 4


@dataclass
class RunFigures:
    label: str
    checkins: int
    state: str
    awarding_s: float
    chunks: int
    queued_to_running_s: float
    overhead_s: float
    xcom_bytes: int | None
    peak_rss_mb: float
    exactly_once: bool


class PeakMemory:
    """Samples the peak RSS (VmHWM) of task processes (``airflow worker -- <ti id>``) every 0.2 s."""

    def __init__(self) -> None:
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                    if not title.startswith("airflow worker -- "):
                        continue
                    status = (proc / "status").read_text()
                except OSError:
                    continue
                ti_id = title.split("-- ", 1)[1].split()[0]
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        kb = int(line.split()[1])
                        self.peaks[ti_id] = max(self.peaks.get(ti_id, 0), kb)

    @contextmanager
    def sampling(self) -> Iterator[PeakMemory]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(5)


def _seconds(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    return (pendulum.parse(b) - pendulum.parse(a)).total_seconds()


def xcom_bytes(state: State, run_id: str) -> int:
    conn = psycopg2.connect(
        host="127.0.0.1",
        port=state.ports["postgres"],
        user="airflow",
        password=state.secrets["pg_airflow"],
        dbname="airflow",
    )
    with conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(octet_length(value::text)), 0) FROM xcom WHERE dag_id = %s AND run_id = %s",
            (AWARDS_DAG, run_id),
        )
        (total,) = cursor.fetchone()
    conn.close()
    return int(total)


def sampled_conf(api: AirflowApi, chunk_size: int, sample: bool) -> dict[str, Any]:
    conf: dict[str, Any] = {"chunk_size": chunk_size}
    if sample:
        conf["checkins_sql"] = sampled_checkins_sql(api, SAMPLE_EVERY)
    return conf


def cluster_run(sc: Scenario, day: pendulum.Date, conf: dict[str, Any], checkins: int) -> RunFigures:
    run_id = f"bench_{day}"
    start, end = day_bounds(day)
    with PeakMemory().sampling() as memory:
        sc.api.trigger(AWARDS_DAG, run_id, start, end, conf)
        run = sc.api.wait_for_run(AWARDS_DAG, run_id, 3600)
    tis = [ti for ti in sc.api.task_instances(AWARDS_DAG, run_id) if ti["task_id"] == AWARD_TASK]
    waits, overheads = [], []
    for ti in tis:
        entry = f"/dags/{AWARDS_DAG}/dagRuns/{run_id}/taskInstances/{AWARD_TASK}/xcomEntries/return_value"
        summary = sc.api.request("GET", entry, params={"map_index": ti["map_index"], "deserialize": "true"})
        waits.append(_seconds(ti["queued_when"], ti["start_date"]) or 0.0)
        overheads.append(ti["duration"] - float(summary["value"].get("elapsed_seconds") or 0.0))
    awarding = _seconds(min(ti["start_date"] for ti in tis), max(ti["end_date"] for ti in tis)) or 0.0
    peaks = [memory.peaks[ti["id"]] for ti in tis if ti["id"] in memory.peaks]
    once = _exactly_once(sc, day, "checkins_sql" in conf)
    return RunFigures(
        "cluster",
        checkins,
        run["state"],
        awarding,
        len(tis),
        statistics.median(waits),
        statistics.median(overheads),
        xcom_bytes(sc.state, run_id),
        max(peaks, default=0) / 1024,
        once,
    )


def _exactly_once(sc: Scenario, day: pendulum.Date, sampled: bool) -> bool:
    before = len(sc.checks)
    check_day_exactly_once(sc, "bench", day, sc.sandbox.ledger(), SAMPLE_EVERY if sampled else 1)
    return all(check.ok for check in sc.checks[before:])


def dag_test_run(sc: Scenario, day: pendulum.Date, conf: dict[str, Any], checkins: int) -> RunFigures:
    """The same day through ``dag.test()`` in one process (SQLite metadata, same sandbox and source)."""
    env = {k: v for k, v in airflow_env(sc.state).items() if not k.startswith("AIRFLOW__")}
    env.pop("AIRFLOW_HOME", None)
    # A manual dag.test() run covers the interval that ends at its logical date: the next midnight.
    _, end = day_bounds(day)
    home = sc.state.root / "dag_test" / str(day)
    command = [sys.executable, __file__, "--dag-test", str(home), end.isoformat(), json.dumps(conf)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"dag.test run failed: {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return RunFigures(
        "dag.test",
        checkins,
        figures["state"],
        figures["awarding_s"],
        figures["chunks"],
        0.0,
        figures["overhead_s"],
        None,
        figures["peak_rss_mb"],
        _exactly_once(sc, day, "checkins_sql" in conf),
    )


def _dag_test_child(home: Path, logical: str, conf_json: str) -> None:
    """In a fresh process: ``dag.test()`` one run; print its figures as JSON on the last line."""
    import resource

    from perkville_provider.demo import runner

    runner.configure_airflow(home, REPO / "dags")
    runner.prepare_metadata_db()
    start = pendulum.parse(logical)
    with runner.output_to(home / "dag_test.log"):
        result = runner.run_dag(REPO / "dags", AWARDS_DAG, "bench", start, json.loads(conf_json))
    from airflow.models import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(
                TaskInstance.run_id == result.run_id, TaskInstance.task_id == AWARD_TASK
            )
        ).all()
        awarding = (max(t.end_date for t in tis) - min(t.start_date for t in tis)).total_seconds()
        rows = session.scalars(
            select(XComModel).where(
                XComModel.run_id == result.run_id,
                XComModel.task_id == AWARD_TASK,
                XComModel.key == "return_value",
            )
        ).all()
        sending = {row.map_index: float(XComModel.deserialize_value(row)["elapsed_seconds"]) for row in rows}
        overheads = [(t.duration or 0.0) - sending.get(t.map_index, 0.0) for t in tis]
    figures = {
        "state": result.state,
        "awarding_s": awarding,
        "chunks": len(tis),
        "overhead_s": statistics.median(overheads) if overheads else 0.0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(figures))


def print_table(runs: list[RunFigures]) -> None:
    header = (
        f"{'where':9} {'check-ins':>9} {'state':8} {'awarding':>9} {'chunks':>6} {'queued->run':>11} "
        f"{'overhead/TI':>11} {'xcom bytes':>10} {'peak MB':>8} once"
    )
    print(header)
    for r in runs:
        xcom = f"{r.xcom_bytes:,}" if r.xcom_bytes is not None else "-"
        print(
            f"{r.label:9} {r.checkins:>9,} {r.state:8} {r.awarding_s:>8.1f}s {r.chunks:>6} "
            f"{r.queued_to_running_s:>10.1f}s {r.overhead_s:>10.1f}s {xcom:>10} {r.peak_rss_mb:>8.1f} "
            f"{'yes' if r.exactly_once else 'NO'}"
        )


def growth(runs: list[RunFigures], label: str) -> str:
    small, big = (
        next(r for r in runs if r.label == label and r.checkins == n)
        for n in sorted({r.checkins for r in runs})
    )
    parts = [
        f"awarding {big.awarding_s / max(small.awarding_s, 1e-9):.2f}x",
        f"peak memory {big.peak_rss_mb / max(small.peak_rss_mb, 1e-9):.2f}x",
    ]
    if big.xcom_bytes and small.xcom_bytes:
        parts.append(f"xcom bytes {big.xcom_bytes / small.xcom_bytes:.2f}x")
    return (
        f"{label}: {small.checkins:,} -> {big.checkins:,} check-ins ({big.checkins / small.checkins:.0f}x): "
        + ", ".join(parts)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkins", type=int, default=20_000)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--dag-test", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dag_test:
        _dag_test_child(Path(args.dag_test[0]), args.dag_test[1], args.dag_test[2])
        return 0
    options = Options(
        root=REPO / ".cluster" / "bench",
        schedules=False,
        checkins_per_day=args.checkins,
        days=len(DAYS),
        anchor=ANCHOR.to_date_string(),
        timeout=600,
    )
    with running_cluster(options) as state:
        sc = connect_scenario(state, args.chunk_size)
        api = sc.api
        item1_member_sync(sc)
        full, small = args.checkins, args.checkins // SAMPLE_EVERY
        runs = []
        # The small one-process run first: a broken set-up shows in a minute, not after the big runs.
        for where, day, size in (
            ("dag.test", DAYS[3], small),
            ("cluster", DAYS[0], full),
            ("cluster", DAYS[1], small),
            ("dag.test", DAYS[2], full),
        ):
            conf = sampled_conf(api, args.chunk_size, sample=size != full)
            t0 = time.monotonic()
            print(f"-- {where}, {size:,} check-ins ({day}) ...", flush=True)
            try:
                run = (cluster_run if where == "cluster" else dag_test_run)(sc, day, conf, size)
            except Exception as error:  # report what was measured so far, then fail
                print(f"   FAILED: {type(error).__name__}: {error}", flush=True)
                return 1
            print(f"   done in {time.monotonic() - t0:.0f} s", flush=True)
            runs.append(run)
    print()
    print_table(runs)
    for label in ("cluster", "dag.test"):
        print(growth(runs, label))
    one = {r.checkins: r for r in runs if r.label == "dag.test"}
    for r in (r for r in runs if r.label == "cluster"):
        alone = one[r.checkins].awarding_s
        print(
            f"awarding {r.checkins:,}: cluster {r.awarding_s:.1f} s vs one process {alone:.1f} s "
            f"= {alone / max(r.awarding_s, 1e-9):.2f}x"
        )
    ok = all(r.exactly_once and r.state == "success" for r in runs)
    print(f"goal: every run succeeds, exactly once, nothing lost (ledger): {'meets' if ok else 'misses'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
