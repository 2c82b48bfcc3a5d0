"""XCom bytes per awards run: records carried whole through XCom vs staged on object storage (issue 11).

For a day of 10,000 / 50,000 / 100,000 check-ins, runs two shapes of the awards DAG with
``dag.test()`` on SQLite metadata (``bench/xcom_dags``: dry runs, so no API time hides the data
movement), side by side:

- bytes written to the ``xcom`` table per run;
- bytes read by the mapped tasks: the XCom values they pull (counted by a wrapping XCom backend,
  ``bench/_xcom_counter.py``) plus the staged files they read;
- peak memory of one mapped task's reading and batch (a child process per case doing exactly
  what the task does: pull the XCom value and index its chunk, or read its staged file);
- wall time of the run.

Goals: XCom written per run <= 256 KB at 100,000; bytes read per run within 1.2x the day's staged
size; peak memory of one mapped task within 1.2x from 10,000 to 100,000. Exits 1 on a miss.

    .venv/bin/python bench/bench_xcom_bytes.py [--sizes 10000 50000 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

KB = 1024
XCOM_GOAL_BYTES = 256 * KB
READ_RATIO_GOAL = 1.2
MEMORY_RATIO_GOAL = 1.2


def _peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def child(variant: str, source: str) -> None:
    """One mapped task's reading and dry-run batch; prints its peak RSS growth (KiB)."""
    from perkville_provider.batch import run_batch
    from perkville_provider.hooks.perkville import PerkvilleHook
    from perkville_provider.operators._settings import as_records
    from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator

    operator = PerkvilleAwardPointsOperator(task_id="bench", awards=[], perk_id=501, validate_only=True)
    job = operator.build_job(hook=PerkvilleHook(), settings=operator.settings())
    run_batch([], job, dry_run=True)
    before = _peak_kib()
    # Inline: what Airflow does for an .expand() over an unmapped XCom: pull it all, index the chunk.
    inline = variant == "inline"
    records = json.loads(Path(source).read_text())[0] if inline else as_records(source, "awards")
    summary = run_batch(records, job, dry_run=True)
    print(json.dumps({"peak_growth_kib": _peak_kib() - before, "total": summary["total"]}))


def one_task_memory(variant: str, source: str) -> int:
    done = subprocess.run(  # noqa: S603
        [sys.executable, __file__, "--child", variant, source], capture_output=True, text=True, timeout=600
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_growth_kib"]


def xcom_written(dag_id: str, run_id: str) -> tuple[int, str | None]:
    """Bytes of every XCom row of the run, and the extract's value as stored (JSON)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    total, extract = 0, None
    with create_session() as session:
        for row in session.scalars(
            select(XComModel).where(XComModel.run_id == run_id, XComModel.dag_id == dag_id)
        ):
            stored = row.value if isinstance(row.value, str) else json.dumps(row.value)
            total += len(stored.encode())
            if row.task_id == "extract":
                extract = stored
    return total, extract


def run_case(dags: dict, variant: str, size: int, work: Path) -> dict:
    from perkville_provider.staging import run_staging_dir

    counter = work / f"read-{variant}-{size}.txt"
    counter.write_text("")
    os.environ["BENCH_XCOM_READ_COUNTER"] = str(counter)
    staging_root = work / "staging"
    started = time.monotonic()
    run = dags[f"bench_awards_{variant}"].test(
        run_conf={"count": size, "chunk_size": 500, "staging_root": f"file://{staging_root}"}
    )
    seconds = time.monotonic() - started
    assert str(getattr(run.state, "value", run.state)) == "success", run.state
    os.environ.pop("BENCH_XCOM_READ_COUNTER")
    written, extract_value = xcom_written(run.dag_id, run.run_id)
    xcom_read = sum(int(line) for line in counter.read_text().split())
    run_dir = Path(
        str(run_staging_dir(f"file://{staging_root}", run.dag_id, run.run_id)).removeprefix("file://")
    )
    run_files = sorted(run_dir.rglob("*.jsonl"))
    staged = sum(p.stat().st_size for p in run_files)
    if variant == "inline":
        source = work / f"extract-{size}.json"
        source.write_text(extract_value or "[]")
        day_bytes = len(json.dumps(json.loads(extract_value or "[]")[0:]).encode())
    else:
        source = run_files[0]
        day_bytes = staged
    return {
        "variant": variant,
        "size": size,
        "seconds": seconds,
        "xcom_written": written,
        "read": xcom_read + staged,
        "day_bytes": day_bytes,
        "memory_kib": one_task_memory(variant, str(source)),
    }


def computed_inline(results: list[dict], sizes: list[int]) -> list[dict]:
    """The inline DAG at ``sizes``, from Airflow's rule (each of the ``size / 500`` mapped tasks
    pulls the whole extract value) and the bytes per award and per summary measured at the
    largest inline size that really ran. Memory is not computed (shown as -1)."""
    measured = max((r for r in results if r["variant"] == "inline"), key=lambda r: r["size"], default=None)
    if measured is None:
        return []
    per_award = measured["day_bytes"] / measured["size"]
    summaries = measured["xcom_written"] - measured["day_bytes"]
    rows = []
    for size in sizes:
        day, chunks = per_award * size, -(-size // 500)
        written = day + summaries * size / measured["size"]
        rows.append(
            {
                "variant": "inline*",
                "size": size,
                "seconds": float("nan"),
                "xcom_written": int(written),
                "read": int(chunks * day),
                "day_bytes": int(day),
                "memory_kib": -1024,
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument(
        "--inline-sizes",
        type=int,
        nargs="+",
        default=[10_000],
        help="sizes at which the inline DAG really runs (each of its mapped tasks deserializes the whole "
        "day, so 100,000 takes about an hour here); larger sizes are computed from the measured one",
    )
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "SOURCE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench-xcom-"))
    from perkville_provider.demo import runner

    runner.configure_airflow(work / "airflow", BENCH / "xcom_dags")

    os.environ["AIRFLOW__CORE__XCOM_BACKEND"] = "_xcom_counter.CountingXCom"
    os.environ["AIRFLOW__CORE__MAX_MAP_LENGTH"] = "1024"
    # (Airflow picks its XCom backend when first imported: nothing above may import it.)
    # Dry runs send nothing, but the operators still read the connection (its API conventions):
    # one pointing at a closed loopback port proves no request is made.
    from perkville_provider.sandbox.connection import airflow_conn_env_value

    os.environ["AIRFLOW_CONN_PERKVILLE_DEFAULT"] = airflow_conn_env_value("http://127.0.0.1:9")
    with runner.output_to(work / "dag_test.log"):
        runner.prepare_metadata_db()
        dags = runner.load_example_dags(BENCH / "xcom_dags")
        results = [run_case(dags, "inline", size, work) for size in args.inline_sizes]
        results += [run_case(dags, "staged", size, work) for size in args.sizes]
    results += computed_inline(results, [size for size in args.sizes if size not in args.inline_sizes])
    results.sort(key=lambda r: (r["size"], r["variant"]))
    print(
        f"{'variant':<8}{'check-ins':>10}{'xcom written':>14}{'bytes read':>14}{'day (JSON)':>12}"
        f"{'read/day':>10}{'task peak MiB':>15}{'wall s':>8}"
    )
    for r in results:
        print(
            f"{r['variant']:<8}{r['size']:>10,}{r['xcom_written']:>14,}{r['read']:>14,}{r['day_bytes']:>12,}"
            f"{r['read'] / r['day_bytes']:>10.2f}{r['memory_kib'] / 1024:>15.1f}{r['seconds']:>8.1f}"
        )
    print("inline* = computed from the inline run measured above (not run); read = chunks x the day's value")
    staged = {r["size"]: r for r in results if r["variant"] == "staged"}
    small, large = staged[min(staged)], staged[max(staged)]
    goals = [
        (
            f"XCom written per run at {large['size']:,} <= 256 KB",
            large["xcom_written"] <= XCOM_GOAL_BYTES,
            f"{large['xcom_written'] / KB:.1f} KB",
        ),
        (
            f"bytes read per run <= {READ_RATIO_GOAL}x the day's staged size (every size)",
            all(r["read"] <= READ_RATIO_GOAL * r["day_bytes"] for r in staged.values()),
            ", ".join(f"{r['read'] / r['day_bytes']:.2f}x" for r in staged.values()),
        ),
        (
            f"one mapped task's peak memory {small['size']:,} -> {large['size']:,} "
            f"within {MEMORY_RATIO_GOAL}x",
            large["memory_kib"] <= MEMORY_RATIO_GOAL * max(small["memory_kib"], 1),
            f"{small['memory_kib'] / 1024:.1f} -> {large['memory_kib'] / 1024:.1f} MiB",
        ),
    ]
    from _common import report_goals  # imports Airflow: only once it is configured (above)

    return report_goals(goals)


if __name__ == "__main__":
    raise SystemExit(main())
