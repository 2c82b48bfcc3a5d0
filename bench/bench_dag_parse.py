"""DAG parse time: each example DAG file against a bare DAG of the same shape.

For every DAG file in ``dags/`` this writes a twin into a temporary folder: the same DAG id,
schedule and task graph, with ``EmptyOperator`` and ``@task`` stand-ins (mapped tasks stay
mapped) and no provider import. Each file is then parsed by Airflow's ``DagBag`` in fresh
processes with Airflow itself already imported, as the DAG processor does, and the median
parse time (``DagBag``'s own per-file duration) is printed side by side. The provider may add
no more than 50 ms.

With ``--baseline DIR`` (a checkout of an earlier release: its ``dags/`` and
``perkville_provider/``, e.g. ``git archive main dags perkville_provider | tar -x -C DIR``), each
file is also parsed as that release had it, its provider first on ``sys.path``: a change may add
no more than 5 ms to a file's parse time.

Usage: ``python bench/bench_dag_parse.py [--runs 5] [--baseline DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags"
BUDGET_MS = 50.0
CHANGE_BUDGET_MS = 5.0

_PARSE_ONE = textwrap.dedent(
    """
    import json, sys
    import airflow.sdk, airflow.models, airflow.dag_processing.dagbag
    from airflow.dag_processing.dagbag import BundleDagBag
    from pathlib import Path
    path = Path(sys.argv[1])
    bag = BundleDagBag(dag_folder=str(path), bundle_path=path.parent)
    assert not bag.import_errors, bag.import_errors
    print(json.dumps({"ms": sum(s.duration.total_seconds() for s in bag.dagbag_stats) * 1000,
                      "dags": sorted(bag.dag_ids)}))
    """
)


def _airflow_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        }
    )
    return env


def parse_ms(path: Path, env: dict[str, str]) -> tuple[float, list[str]]:
    """One parse of ``path`` in a fresh interpreter: (milliseconds, DAG ids)."""
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", _PARSE_ONE, str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=tempfile.gettempdir(),  # not the checkout: ``-c`` puts the working directory on sys.path
    )
    if done.returncode != 0:
        raise RuntimeError(f"parsing {path} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["ms"], result["dags"]


def bare_twin(dag) -> str:
    """Source of a DAG with ``dag``'s id, schedule and task graph, built from stand-ins only."""
    timetable = dag.timetable
    names = {task_id: f"t{index}" for index, task_id in enumerate(dag.task_ids)}
    lines = [
        "import pendulum",
        "from airflow.providers.standard.operators.empty import EmptyOperator",
        "from airflow.sdk import CronDataIntervalTimetable, dag, task",
        "",
        "@task",
        "def stand_in(item=None):",
        "    return [[1], [2]]",
        "",
        f"@dag(dag_id={dag.dag_id!r}, schedule=CronDataIntervalTimetable({timetable.expression!r}, "
        f"timezone={str(timetable.timezone)!r}), start_date=pendulum.datetime(2026, 1, 1, tz='UTC'), "
        "catchup=False)",
        "def bare():",
    ]
    for task in dag.topological_sort():
        name = names[task.task_id]
        if type(task).__name__ == "MappedOperator":
            lines.append(f"    {name} = stand_in.override(task_id={task.task_id!r}).expand(item=[1, 2])")
        elif getattr(task, "is_python_decorated", False) or type(task).__name__.endswith("DecoratedOperator"):
            lines.append(f"    {name} = stand_in.override(task_id={task.task_id!r})()")
        else:
            lines.append(f"    {name} = EmptyOperator(task_id={task.task_id!r})")
    for task in dag.tasks:
        lines += [f"    {names[up]} >> {names[task.task_id]}" for up in sorted(task.upstream_task_ids)]
    lines += ["", "bare()", ""]
    return "\n".join(lines)


def dag_files() -> list[Path]:
    """The DAG files of ``dags/`` (the shared helper module holds no DAG and is ignored)."""
    ignored = (DAGS / ".airflowignore").read_text().split() if (DAGS / ".airflowignore").exists() else []
    return [
        path
        for path in sorted(DAGS.glob("*.py"))
        if not any(path.name == p.replace("\\", "") for p in ignored)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh-process parses per file (median kept)")
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier release to compare with")
    parser.add_argument("--only", help="parse only the DAG files whose name contains this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dag-parse-") as tmp:
        home, twins = Path(tmp) / "home", Path(tmp) / "bare"
        home.mkdir()
        twins.mkdir()
        env = _airflow_env(home)
        os.environ.update(env)
        from airflow.dag_processing.dagbag import BundleDagBag

        bag = BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS)
        if bag.import_errors:
            print(f"FAIL: import errors {bag.import_errors}")
            return 1
        baseline_env = dict(env)
        if args.baseline:
            baseline_env["PYTHONPATH"] = os.pathsep.join([str(args.baseline), env.get("PYTHONPATH", "")])
        header = f"{'file':<36}{'example ms':>12}{'bare ms':>10}{'added ms':>10}{'ratio':>8}"
        print(header + (f"{'baseline ms':>13}{'change ms':>11}" if args.baseline else "") + "  verdict")
        worst = 0.0
        worst_change = 0.0
        for path in [p for p in dag_files() if not args.only or args.only in p.name]:
            dags = [d for d in bag.dags.values() if Path(d.fileloc) == path]
            twin = twins / path.name
            twin.write_text("\n".join(bare_twin(d) for d in dags))
            # Interleaved, so that the machine's load drifts alike over the three.
            timed: dict[str, list[float]] = {"example": [], "bare": [], "baseline": []}
            for _ in range(args.runs):
                timed["example"].append(parse_ms(path, env)[0])
                timed["bare"].append(parse_ms(twin, env)[0])
                if args.baseline:
                    timed["baseline"].append(parse_ms(args.baseline / "dags" / path.name, baseline_env)[0])
            example, bare = statistics.median(timed["example"]), statistics.median(timed["bare"])
            added = example - bare
            worst = max(worst, added)
            ok = added <= BUDGET_MS
            ratio = example / bare
            line = f"{path.name:<36}{example:>12.1f}{bare:>10.1f}{added:>10.1f}{ratio:>7.2f}x"
            if args.baseline:
                before = statistics.median(timed["baseline"])
                change = example - before
                worst_change = max(worst_change, change)
                ok = ok and change <= CHANGE_BUDGET_MS
                line += f"{before:>13.1f}{change:>+11.1f}"
            print(f"{line}  {'ok' if ok else 'over budget'}")
    passed = worst <= BUDGET_MS and worst_change <= CHANGE_BUDGET_MS
    print(
        f"{'PASS' if passed else 'FAIL'}: the provider adds at most {worst:.1f} ms per DAG file "
        f"(budget {BUDGET_MS:g} ms)"
        + (
            f"; this change at most {worst_change:+.1f} ms (budget {CHANGE_BUDGET_MS:g} ms)"
            if args.baseline
            else ""
        )
    )
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
