"""The demo: both example DAGs through real Airflow against the local Perkville sandbox.

``python -m perkville_provider.demo`` (what ``make demo`` runs) does, in the checkout:

1. starts the sandbox with its database in ``.demo/sandbox.db`` (so a second run sees the first
   run's awards), and generates the gym's membership database ``.demo/gym.db`` once;
2. points a reused ``AIRFLOW_HOME`` (``.demo/airflow``, SQLite metadata) at ``dags/`` and defines
   the two connections as ``AIRFLOW_CONN_*`` variables: ``perkville_default`` (the sandbox) and
   ``gym_source_db`` (the SQLite membership database);
3. prints what ``perkville-provider doctor`` concludes about the sandbox (reads only), then runs
   the member sync, then the check-in awards for each demo day, then the balance export,
   with ``dag.test()``;
4. prints what each run did, the sandbox's own ledger totals and a few exported rows (balances
   checked against the ledger), then stops the sandbox.

Airflow reads its configuration on first import, so :func:`configure_airflow` runs before
anything imports ``airflow``; the functions that run DAGs import it lazily. Airflow's own output
goes to ``.demo/airflow/logs/dag_test.log``; the console gets the summaries.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pendulum

from perkville_provider.demo import data, export, leavers

if TYPE_CHECKING:
    from perkville_provider.sandbox.launcher import SandboxHandle

MEMBER_SYNC_DAG_ID = "perkville_member_sync"
AWARDS_DAG_ID = "perkville_daily_checkin_awards"
REPORT_TASK_ID = "report"
SOURCE_CONN_ENV_VAR = "AIRFLOW_CONN_GYM_SOURCE_DB"
PERKVILLE_CONN_ID = "perkville_default"
PERKVILLE_CONN_ENV_VAR = "AIRFLOW_CONN_PERKVILLE_DEFAULT"
DAG_BUNDLE_NAME = "perkville_example_dags"


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo keeps its state, all under one directory (``.demo/`` in the checkout)."""

    root: Path

    @property
    def sandbox_db(self) -> Path:
        return self.root / "sandbox.db"

    @property
    def gym_db(self) -> Path:
        return self.root / "gym.db"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def airflow_log(self) -> Path:
        return self.airflow_home / "logs" / "dag_test.log"


def repo_dags_folder() -> Path:
    """The example DAGs of this checkout."""
    return Path(__file__).resolve().parents[2] / "dags"


def configure_airflow(home: Path, dags_folder: Path) -> None:
    """Point Airflow at ``home`` (SQLite metadata) and ``dags_folder``; call before importing airflow."""
    if "airflow" in sys.modules:
        raise RuntimeError("configure_airflow() must run before airflow is imported")
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
        [
            {
                "name": DAG_BUNDLE_NAME,
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(dags_folder), "refresh_interval": 0},
            }
        ]
    )


def source_conn_env_value(gym_db: Path) -> str:
    """The ``AIRFLOW_CONN_GYM_SOURCE_DB`` value: a sqlite connection to the membership database."""
    return json.dumps({"conn_type": "sqlite", "host": str(gym_db.resolve())})


def prepare_metadata_db() -> None:
    """Create the Airflow metadata database on the first run; reuse it afterwards."""
    from airflow import settings
    from airflow.utils import db
    from sqlalchemy import inspect

    if not inspect(settings.engine).has_table("dag_run"):
        db.initdb()


def award_logical_date(day: pendulum.Date, timezone: str) -> pendulum.DateTime:
    """The logical date of a manual run that awards ``day``: its data interval is ``[day, day + 1)``."""
    return pendulum.datetime(day.year, day.month, day.day, tz=timezone).add(days=1)


def member_sync_logical_date(spec: data.DemoDataSpec) -> pendulum.DateTime:
    """A member sync run after every demo member's last change."""
    first_day = spec.checkin_days[0]
    return pendulum.datetime(first_day.year, first_day.month, first_day.day, tz=spec.timezone)


@dataclass
class RunResult:
    """One DAG run: its state and the report task's merged summary (None if it did not run)."""

    dag_id: str
    label: str
    state: str
    summary: dict[str, Any] | None
    run_id: str


@dataclass
class DemoResults:
    runs: list[RunResult] = field(default_factory=list)
    balances_ok: bool = True

    @property
    def succeeded(self) -> bool:
        return self.balances_ok and all(run.state == "success" for run in self.runs)


def load_example_dags(dags_folder: Path) -> dict[str, Any]:
    """Parse the example DAG files the way Airflow does (bundle folder on ``sys.path``)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=str(dags_folder), bundle_path=dags_folder)
    if bag.import_errors:
        raise RuntimeError(f"the example DAGs do not import: {bag.import_errors}")
    return bag.dags


def report_summary(dag_id: str, run_id: str, task_id: str = REPORT_TASK_ID) -> dict[str, Any] | None:
    """The report task's XCom (the run's merged summary), read from the metadata database."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id,
                XComModel.run_id == run_id,
                XComModel.task_id == task_id,
                XComModel.key == "return_value",
            )
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


def run_dag(
    dags_folder: Path,
    dag_id: str,
    label: str,
    logical_date: pendulum.DateTime | None,
    conf: Mapping[str, Any] | None = None,
    *,
    run_after: pendulum.DateTime | None = None,
) -> RunResult:
    """``dag.test()`` one run of a freshly parsed DAG and collect its summary.

    ``logical_date=None`` makes a run without a logical date (and without a data interval), as
    ``airflow dags trigger`` without ``--logical-date`` does; ``run_after`` is when it was queued.
    Parsed afresh for each run because an in-process ``dag.test()`` writes the run's conf into
    the DAG object's Params, where it would leak into the next run of the same object.
    """
    dag = load_example_dags(dags_folder)[dag_id]
    run = dag.test(logical_date=logical_date, run_after=run_after, run_conf=dict(conf or {}))
    state = str(getattr(run.state, "value", run.state))
    return RunResult(dag_id, label, state, report_summary(dag_id, run.run_id), run.run_id)


def run_demo_dags(
    spec: data.DemoDataSpec, dags_folder: Path, conf: Mapping[str, Any] | None = None
) -> DemoResults:
    """The member sync (a full sync), then the awards for each demo day, oldest first."""
    results = DemoResults()
    sync_conf = {**(conf or {}), "full_sync": True}
    results.runs.append(
        run_dag(dags_folder, MEMBER_SYNC_DAG_ID, "full sync", member_sync_logical_date(spec), sync_conf)
    )
    for day in spec.checkin_days:
        logical_date = award_logical_date(day, spec.timezone)
        results.runs.append(run_dag(dags_folder, AWARDS_DAG_ID, day.to_date_string(), logical_date, conf))
    return results


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send stdout and stderr to ``path``: the Python streams and file descriptors 1 and 2 alike."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("a", buffering=1) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            log.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


@dataclass(frozen=True)
class LedgerTotals:
    """The sandbox's own record of what happened (never the operators' counters)."""

    transactions: int
    points: int
    external_members: int
    connections: int

    @classmethod
    def of(cls, ledger: Mapping[str, Any], business_id: int) -> LedgerTotals:
        from perkville_provider.hooks.resources import transaction_points

        transactions = [t for t in ledger["transactions"] if _same_id(t.get("business"), business_id)]
        return cls(
            transactions=len(transactions),
            points=sum(transaction_points(t) for t in transactions),
            external_members=sum(
                1 for m in ledger["external_members"] if _same_id(m.get("business"), business_id)
            ),
            connections=sum(1 for c in ledger["connections"] if _same_id(c.get("business"), business_id)),
        )


def _same_id(value: Any, wanted: int) -> bool:
    """A relation given as a URI (``/v2/businesses/9823/``) or a bare id."""
    return str(value).rstrip("/").rsplit("/", 1)[-1] == str(wanted)


def _count(summary: Mapping[str, Any] | None, name: str) -> str:
    return "-" if summary is None else str(summary.get(name, 0))


def _reasons(summary: Mapping[str, Any] | None) -> list[str]:
    if not summary:
        return []
    return [
        f"      {entry.get('key') or '(no key)'}: {entry.get('field') or '-'} {entry.get('code')}: "
        f"{entry.get('message')}"
        for entry in summary.get("failures") or []
    ]


def print_report(
    results: DemoResults, before: LedgerTotals, after: LedgerTotals, out: TextIO, elapsed: float
) -> None:
    """What each run did, then the ledger totals and what this run added."""
    print("\nMember sync (perkville_member_sync)", file=out)
    for run in (r for r in results.runs if r.dag_id == MEMBER_SYNC_DAG_ID):
        s = run.summary
        print(
            f"  {run.label}: {run.state}; members read {_count(s, 'total')}, created {_count(s, 'created')}, "
            f"updated {_count(s, 'updated')}, invalid {_count(s, 'invalid')}, failed {_count(s, 'failed')}",
            file=out,
        )
        if _reasons(s):
            print("    rows not sent:", *_reasons(s), sep="\n", file=out)
    print(
        "\nDaily check-in awards (perkville_daily_checkin_awards): the run's own day, then what its", file=out
    )
    print("lookback found on earlier days (late rows awarded, rows skipped as already settled)", file=out)
    columns = ("total", "awarded", "points", "duplicate", "daily_limited", "invalid", "failed")
    extra = ("late", "skipped_known")
    print(f"  {'day':<10}  {'state':<8}" + "".join(f"{c:>14}" for c in (*columns, *extra)), file=out)
    for run in (r for r in results.runs if r.dag_id == AWARDS_DAG_ID):
        own_day = (run.summary or {}).get("own_day") or run.summary
        counts = "".join(f"{_count(own_day, c):>14}" for c in columns)
        counts += "".join(f"{_count(run.summary, c):>14}" for c in extra)
        print(f"  {run.label:<10}  {run.state:<8}{counts}", file=out)
    shown: set[str] = set()  # the lookback re-reads earlier days' bad rows: list each once
    for run in (r for r in results.runs if r.dag_id == AWARDS_DAG_ID):
        reasons = [line for line in _reasons(run.summary) if line not in shown]
        shown.update(reasons)
        if reasons:
            print(f"    {run.label} rows not awarded:", *reasons, sep="\n", file=out)
    print(
        f"\nSandbox ledger: {after.transactions} transactions, {after.points} points, "
        f"{after.external_members} external members, {after.connections} connections",
        file=out,
    )
    new_awards, new_points = after.transactions - before.transactions, after.points - before.points
    if new_awards:
        print(f"This run awarded {new_awards} transactions ({new_points} points).", file=out)
    else:
        print(
            "This run awarded nothing new: every check-in was already awarded (skipped as settled by "
            "earlier runs' reports, or counted as duplicates).",
            file=out,
        )
    verdict = "all runs succeeded" if results.succeeded else "SOME RUNS FAILED"
    print(f"Done in {elapsed:.0f} s: {verdict}.", file=out)


def print_doctor(out: TextIO) -> None:
    """The doctor's table for the sandbox: the step before a first run against a real Perkville."""
    from perkville_provider.doctor import render_table, run_doctor

    print(f"\n$ perkville-provider doctor --conn-id {PERKVILLE_CONN_ID}", file=out)
    print(render_table(run_doctor(PERKVILLE_CONN_ID)), file=out, end="\n\n", flush=True)


def run_demo(
    sandbox: SandboxHandle, gym_db: Path, dags_folder: Path, log_path: Path, out: TextIO
) -> DemoResults:
    """Everything after the sandbox is up and Airflow and its connections are configured.

    Generates the membership database unless it exists, runs the DAGs with Airflow's output sent
    to ``log_path``, and prints the report to ``out``.
    """
    started = time.monotonic()
    today = pendulum.today(data.BUSINESS_TIMEZONE).date()
    spec = data.ensure(gym_db, data.DemoDataSpec(anchor=today))
    days = ", ".join(day.to_date_string() for day in spec.checkin_days)
    print(f"Membership database: {gym_db} ({spec.members} members, check-ins on {days})", file=out)
    print_doctor(out)
    before = LedgerTotals.of(sandbox.admin.ledger(), sandbox.business_id)
    print(f"Running the DAGs with dag.test(); Airflow's output goes to {log_path}", file=out, flush=True)
    with output_to(log_path):
        prepare_metadata_db()
        results = run_demo_dags(spec, dags_folder)
        purchase = export.award_purchase(
            sandbox.admin.ledger(), sandbox.business_id, spec.checkin_days[-1], spec.timezone
        )
        export_date = export.export_logical_date(spec.checkin_days[-1], spec.timezone)
        results.runs.append(run_dag(dags_folder, export.EXPORT_DAG_ID, "export", export_date))
        exported = {
            task: report_summary(export.EXPORT_DAG_ID, results.runs[-1].run_id, task)
            for task in export.EXPORT_TASK_IDS
        }
        leaver_runs = leavers.run_leavers(gym_db, dags_folder)
    after = LedgerTotals.of(sandbox.admin.ledger(), sandbox.business_id)
    print_report(results, before, after, out, time.monotonic() - started)
    check = export.print_export(
        exported, gym_db, sandbox.admin.ledger(), sandbox.business_id, out, purchase=purchase
    )
    leavers_ok = leavers.print_leavers(leaver_runs, log_path, out)
    results.balances_ok = check.ok and leavers_ok
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m perkville_provider.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--dir", type=Path, default=Path(".demo"), help="where the demo keeps its state")
    parser.add_argument("--port", type=int, default=0, help="sandbox port (default: any free port)")
    args = parser.parse_args(argv)
    paths = DemoPaths(args.dir.resolve())
    dags_folder = repo_dags_folder()
    configure_airflow(paths.airflow_home, dags_folder)
    from perkville_provider.sandbox.launcher import run_sandbox

    paths.root.mkdir(parents=True, exist_ok=True)
    with run_sandbox(port=args.port, db=paths.sandbox_db) as sandbox:
        print(f"Perkville sandbox at {sandbox.base_url} (state in {paths.sandbox_db})", flush=True)
        os.environ[PERKVILLE_CONN_ENV_VAR] = sandbox.airflow_conn_env_value()
        os.environ[SOURCE_CONN_ENV_VAR] = source_conn_env_value(paths.gym_db)
        results = run_demo(sandbox, paths.gym_db, dags_folder, paths.airflow_log, sys.stdout)
    print("Sandbox stopped.")
    return 0 if results.succeeded else 1
