"""Fixtures for running the example DAGs (``dags/``) end to end against the sandbox.

The membership database is generated per test from a fixed anchor date (never the wall clock),
and what each day *should* award is worked out here from the database's rows, independently of
the DAGs' own code, so the tests compare the sandbox's ledger with an expectation the code under
test did not compute.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perkville_provider.demo import data, runner
from tests.helpers.dags import EXAMPLE_DAGS
from tests.helpers.e2e import (
    ANCHOR,
    Gym,
)


@pytest.fixture(autouse=True)
def fresh_pipeline_state(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test starts as a fresh deployment: its own staging root (the DAGs' Param default) and
    no watermark on the example DAGs' Assets (the metadata database is shared by the session)."""
    staging_root = tmp_path / "staging"
    monkeypatch.setenv("PERKVILLE_STAGING_ROOT", str(staging_root))
    if "airflow_db" in request.fixturenames:
        from airflow.models.asset_state_store import AssetStateStoreModel
        from airflow.utils.session import create_session
        from sqlalchemy import delete

        with create_session() as session:
            session.execute(delete(AssetStateStoreModel))
    return staging_root


@pytest.fixture(scope="session")
def example_dags(airflow_db) -> dict[str, Any]:
    """The example DAGs, parsed the way Airflow's DAG processor does."""
    return runner.load_example_dags(EXAMPLE_DAGS)


@pytest.fixture
def make_gym(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Gym]:
    """Generate a membership database (fixed anchor unless given) and point ``gym_source_db`` at it."""

    def make(**spec: Any) -> Gym:
        spec.setdefault("anchor", ANCHOR)
        path = data.generate(tmp_path / "gym.db", data.DemoDataSpec(**spec), overwrite=True)
        monkeypatch.setenv(runner.SOURCE_CONN_ENV_VAR, runner.source_conn_env_value(path))
        return Gym(path, data.read_spec(path))

    return make


@pytest.fixture
def gym(make_gym: Callable[..., Gym]) -> Gym:
    return make_gym()
