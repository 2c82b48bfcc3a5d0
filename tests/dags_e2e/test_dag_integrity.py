"""The example DAG files: they import cleanly, have the expected shape, and do nothing at import."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from perkville_provider.demo import export, runner
from tests.helpers.dags import EXAMPLE_DAGS

DAG_FILES = sorted(EXAMPLE_DAGS.glob("*.py"))


def test_every_dag_file_parses_with_no_import_error(airflow_db):
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=str(EXAMPLE_DAGS), bundle_path=EXAMPLE_DAGS)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {runner.MEMBER_SYNC_DAG_ID, runner.AWARDS_DAG_ID, export.EXPORT_DAG_ID}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_importing_a_file_in_dags_opens_no_database_and_no_socket(path):
    """Parsing must stay cheap: no DB connection, no network, no pandas, whatever the file."""
    probe = textwrap.dedent(
        f"""
        import socket, sqlite3, sys
        def refuse(*args, **kwargs):
            raise AssertionError("opened at import time")
        socket.socket.connect = refuse
        sqlite3.connect = refuse
        sys.path.insert(0, {str(EXAMPLE_DAGS)!r})
        import runpy
        runpy.run_path({str(path)!r})
        assert "pandas" not in sys.modules, "pandas imported"
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)  # noqa: S603
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


def test_the_member_sync_runs_hourly_extract_sync_report_and_updates_the_members_asset(example_dags):
    dag = example_dags[runner.MEMBER_SYNC_DAG_ID]
    assert set(dag.task_ids) == {"extract_changed_members", "sync_members", "report", "cleanup_staging"}
    sync = dag.get_task("sync_members")
    assert type(sync).__name__ == "PerkvilleSyncMembersOperator"
    assert sync.upstream_task_ids == {"extract_changed_members"}
    assert dag.get_task("report").upstream_task_ids == {"sync_members", "extract_changed_members"}
    assert [asset.uri for asset in sync.outlets] == [
        "perkville://api.perkville.com/business/9823/external_members"
    ]
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 * * * *", "UTC")
    assert "external members" in dag.doc_md


def test_the_awards_dag_runs_daily_and_maps_the_award_operator_over_chunks(example_dags):
    dag = example_dags[runner.AWARDS_DAG_ID]
    assert set(dag.task_ids) == {
        "extract_checkin_awards",
        "upsert_checkin_members",
        "award_checkin_points",
        "report",
        "cleanup_staging",
    }
    assert dag.get_task("award_checkin_points").upstream_task_ids == {
        "extract_checkin_awards",
        "upsert_checkin_members",
    }
    assert dag.get_task("cleanup_staging").is_teardown
    award = dag.get_task("award_checkin_points")
    assert type(award).__name__ == "MappedOperator"
    assert award.operator_class.__name__ == "PerkvilleAwardPointsOperator"
    assert award.partial_kwargs["limit_to_once_per_calendar_day"] is True
    assert "awards" in award.expand_input.value
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 0 * * *", "America/New_York")
    assert "trans_source_id" in dag.doc_md


@pytest.mark.parametrize("dag_id", [runner.MEMBER_SYNC_DAG_ID, runner.AWARDS_DAG_ID])
def test_each_dag_offers_its_settings_as_params_with_defaults(example_dags, dag_id):
    dag = example_dags[dag_id]
    params = dag.params
    for name in ("business_id", "perkville_conn_id", "source_conn_id", "max_failure_ratio", "dry_run"):
        assert params[name] is not None, name
    assert params["business_id"] == 9823
    assert params["perkville_conn_id"] == "perkville_default"
    assert params["source_conn_id"] == "gym_source_db"
    if dag_id == runner.AWARDS_DAG_ID:
        assert params["perk_id"] == 501
        assert params["chunk_size"] == 500
        assert params["business_timezone"] == "America/New_York"
    assert all(task.retries >= 1 for task in dag.tasks if task.task_id != "report")


@pytest.mark.parametrize("dag_id", [runner.MEMBER_SYNC_DAG_ID, runner.AWARDS_DAG_ID])
def test_the_trigger_form_tells_every_param_apart_and_explains_the_ones_users_asked_about(
    example_dags, dag_id
):
    params = example_dags[dag_id].params
    titles = [params.get_param(name).schema.get("title") for name in params]
    assert len(set(titles)) == len(titles), f"two Params share a title: {titles}"
    for name in ("business_id", "perkville_conn_id", "max_workers", "max_requests_per_second"):
        assert params.get_param(name).description, name


@pytest.mark.parametrize(
    ("count", "wanted", "expected"), [(2000, 500, 500), (2000, 1, 2), (5000, 3, 5), (0, 500, 500)]
)
def test_a_big_day_is_cut_into_no_more_chunks_than_airflow_can_map(count, wanted, expected, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_DAGS))
    from perkville_example_awards import chunk_size_for

    size = chunk_size_for(count, wanted)
    assert size == expected
    assert -(-count // size) <= 1024


@pytest.mark.parametrize(
    ("day", "rows", "skipped", "expected"),
    [
        ("2026-11-19", 29, 0, 0.2),  # a fresh day: the run's threshold (a wrong perk fails every chunk)
        ("2026-11-19", 29, 26, 1.0),  # a re-run: 3 bad rows re-read, 26 settled rows count as successes
        ("2026-11-19", 40, 20, 0.4),
        ("2026-11-17", 29, 0, 1.0),  # a day an earlier successful run covered (and judged)
    ],
)
def test_an_award_chunk_is_judged_by_its_days_threshold(day, rows, skipped, expected, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_DAGS))
    from perkville_example_awards import chunk_failure_ratio

    plan = {
        "chunk_days": ["2026-11-17", day],
        "judged_from": "2026-11-18",
        "rows_by_day": {day: rows},
        "skipped_known_by_day": {day: skipped},
    }
    assert chunk_failure_ratio(plan, 1, 0.2) == pytest.approx(expected)


def test_the_balance_export_runs_nightly_two_exports_each_updating_its_tables_asset(example_dags):
    dag = example_dags[export.EXPORT_DAG_ID]
    assert set(dag.task_ids) == {"export_window", *export.EXPORT_TASK_IDS}
    for task_id, resource in zip(export.EXPORT_TASK_IDS, ("connections", "transactions"), strict=True):
        operator = dag.get_task(task_id)
        assert type(operator).__name__ == "PerkvilleToSqlOperator"
        assert (operator.resource, operator.table) == (resource, f"perkville_{resource}")
        assert [asset.uri for asset in operator.outlets] == [f"perkville://9823/{resource}-export"]
    assert dag.get_task("export_transactions").upstream_task_ids == {"export_window"}
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 0 * * *", "America/New_York")


@pytest.mark.parametrize("dag_id", [runner.MEMBER_SYNC_DAG_ID, runner.AWARDS_DAG_ID])
def test_every_perkville_task_draws_on_the_connections_one_budget_named_in_the_params(example_dags, dag_id):
    """The rate budget is the connection's, shared by every chunk (README "Rate limits"): the DAGs
    leave it to the connection by default and pass the Param, never a per-task figure."""
    dag = example_dags[dag_id]
    param = dag.params.get_param("max_requests_per_second")
    assert param.value is None
    assert "never multiplied by the tasks" in param.description
    assert "chunk" not in param.description, "the member sync has no chunk tasks"
    perkville_tasks = [task for task in dag.tasks if "Perkville" in getattr(task, "task_type", "")]
    assert perkville_tasks
    for task in perkville_tasks:
        kwargs = getattr(task, "partial_kwargs", None) or vars(task)
        assert kwargs["max_requests_per_second"] == "{{ params.max_requests_per_second }}", task.task_id
