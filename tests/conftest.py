"""Test-wide set-up: a throwaway Airflow home with SQLite metadata, and the DAG bundles.

Airflow reads its configuration when it is first imported, so the environment is set here, at
import time, before any test module imports ``airflow``. Two local DAG bundles are configured:
the example DAGs in ``dags/`` and the test DAGs in ``tests/dags/``; ``dag.test()`` syncs them into
the metadata database, which is why every DAG a test runs lives in a file.

The sandbox fixtures (``perkville_sandbox``, ``perkville_sandbox_connection``) come from the
provider's opt-in pytest plugin, loaded here as any user's project would load it; ``sandbox`` is this
repository's short name for ``perkville_sandbox_connection``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.dags import EXAMPLE_DAGS, TEST_DAGS
from tests.helpers.hostile_server import HostileServer

pytest_plugins = ["perkville_provider.sandbox.pytest_plugin"]

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="perkville-airflow-home-"))

os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(TEST_DAGS)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {
            "name": "perkville_example_dags",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(EXAMPLE_DAGS), "refresh_interval": 0},
        },
        {
            "name": "perkville_test_dags",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(TEST_DAGS), "refresh_interval": 0},
        },
    ]
)
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"


@pytest.fixture
def sandbox(perkville_sandbox_connection):
    """This repository's short name for the plugin's ``perkville_sandbox_connection``."""
    return perkville_sandbox_connection


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Create the SQLite metadata database once per test session."""
    from airflow.utils import db

    db.resetdb()
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _AIRFLOW_HOME


@pytest.fixture
def hostile_server() -> Iterator[HostileServer]:
    """A fresh hostile HTTP server (``tests/helpers/hostile_server.py``) for one test, stopped after it."""
    server = HostileServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def own_rate_budget_state(tmp_path_factory, monkeypatch):
    """Each test paces on its own machine-wide state, so one test's 429s never slow the next."""
    monkeypatch.setenv("PERKVILLE_RATE_LIMIT_DIR", str(tmp_path_factory.mktemp("rate-budget")))
