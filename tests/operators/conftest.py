"""Helpers for running the operator test DAGs with dag.test() and reading what they left behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers.dags import TEST_DAGS, load_dag


@pytest.fixture
def run_dag(airflow_db, sandbox) -> Callable[..., Any]:
    """Run a test DAG (``tests/dags/<dag_id>.py``) with ``run_conf`` against the sandbox."""

    def run(dag_id: str, **conf: Any):
        dag = load_dag(TEST_DAGS / f"{dag_id}.py", dag_id)
        return dag.test(run_conf=conf)

    return run
