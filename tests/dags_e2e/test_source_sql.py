"""The example DAGs' source queries are the DAG author's, not the triggerer's.

By default no query is a trigger Param, and a query given in a run's conf is never run; a
deployment that sets ``PERKVILLE_EXAMPLE_SQL_PARAMS=1`` gets them as Params that say loudly what
they allow.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from perkville_provider.demo import runner
from tests.helpers.dags import EXAMPLE_DAGS

sys.path.insert(0, str(EXAMPLE_DAGS))

from perkville_example_common import SQL_PARAMS_ENV_VAR, source_sql

SQL_PARAMS = {"checkins_sql", "members_sql"}


def dag_params(monkeypatch: pytest.MonkeyPatch, opted_in: bool) -> dict[str, dict[str, Any]]:
    """Each example DAG's Params (name -> description), parsed as Airflow does in this environment."""
    if opted_in:
        monkeypatch.setenv(SQL_PARAMS_ENV_VAR, "1")
    else:
        monkeypatch.delenv(SQL_PARAMS_ENV_VAR, raising=False)
    dags = runner.load_example_dags(EXAMPLE_DAGS)
    return {
        dag_id: {name: dag.params.get_param(name).description or "" for name in dag.params}
        for dag_id, dag in dags.items()
    }


def test_by_default_no_source_query_is_a_trigger_param(airflow_db, monkeypatch):
    params = dag_params(monkeypatch, opted_in=False)

    for dag_id in (runner.AWARDS_DAG_ID, runner.MEMBER_SYNC_DAG_ID):
        assert params[dag_id]
        assert not SQL_PARAMS & set(params[dag_id])


def test_an_opted_in_deployment_gets_the_query_params_with_a_loud_warning(airflow_db, monkeypatch):
    params = dag_params(monkeypatch, opted_in=True)

    assert set(params[runner.AWARDS_DAG_ID]) >= SQL_PARAMS
    assert "members_sql" in params[runner.MEMBER_SYNC_DAG_ID]
    for name in SQL_PARAMS:
        assert "WARNING: whoever triggers this DAG can run any SQL" in params[runner.AWARDS_DAG_ID][name]


def test_a_query_in_the_runs_conf_is_never_run_unless_the_deployment_opted_in(monkeypatch):
    conf = {"checkins_sql": "VACUUM INTO '/tmp/everything.db'"}
    monkeypatch.delenv(SQL_PARAMS_ENV_VAR, raising=False)

    assert source_sql(conf, "checkins_sql", "SELECT 1") == "SELECT 1"

    monkeypatch.setenv(SQL_PARAMS_ENV_VAR, "1")
    assert source_sql(conf, "checkins_sql", "SELECT 1") == conf["checkins_sql"]
