"""`airflow connections test` against the sandbox, as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from airflow import __version__ as airflow_version

# Two runs of Airflow's CLI, each its own interpreter: make test-slow.
pytestmark = pytest.mark.slow

AIRFLOW = str(Path(sys.executable).parent / "airflow")
#: Airflow 3.3.0's ``connections test`` prints a failure but exits 0; 3.3.2 exits 1 (the matrix runs both).
FAILURE_EXITS_NONZERO = tuple(int(part) for part in airflow_version.split(".")[:3]) >= (3, 3, 2)


def connections_test(conn_value: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW_CONN_PERKVILLE_DEFAULT": conn_value,
    }
    return subprocess.run(  # noqa: S603 (our own airflow CLI)
        [AIRFLOW, "connections", "test", "perkville_default"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_airflow_connections_test_succeeds_against_the_sandbox(sandbox_control):
    result = connections_test(sandbox_control.handle.airflow_conn_env_value())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Connection success!" in result.stdout
    # The check's business read, then the doctor's read-only probes (the CLI prints no message):
    # GETs and the token grant only, nothing written.
    assert sandbox_control.requests_to("GET /v2/businesses/{id}/", "200") >= 1
    written = [
        name
        for name in sandbox_control.stats()["requests"]
        if not name.startswith(("GET ", "POST /api/token/"))
    ]
    assert written == []


def test_airflow_connections_test_fails_clearly_for_a_wrong_password(sandbox_control):
    result = connections_test(sandbox_control.handle.airflow_conn_env_value(password="not-the-password-1"))
    assert result.returncode != 0 or not FAILURE_EXITS_NONZERO
    assert "Connection failed!" in result.stdout
    assert "Perkville refused the username or password" in result.stdout
    assert "not-the-password-1" not in result.stdout + result.stderr
