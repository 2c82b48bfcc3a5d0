"""After a full demo-like run, no secret is stored anywhere Airflow keeps task output.

The secrets are the connection's password and client secret and every token the sandbox
granted during the run (read from the sandbox's own database). The places searched are the task
log files under ``AIRFLOW_HOME/logs`` (the demo sends all of ``dag.test()``'s output there,
unmasked, which is stricter than Airflow's masked task logs), the log records pytest captured,
every XCom value and every rendered template field in the metadata database.
"""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from perkville_provider.demo import runner
from perkville_provider.sandbox.launcher import run_sandbox
from tests.dags_e2e.conftest import ANCHOR
from tests.helpers.dags import EXAMPLE_DAGS


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _column_texts(db: Path, sql: str) -> list[str]:
    with _read_only(db) as connection:
        return [str(value) for (value,) in connection.execute(sql)]


def test_no_token_password_or_client_secret_reaches_logs_xcom_or_rendered_fields(
    airflow_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
):
    caplog.set_level("DEBUG")
    gym_db = tmp_path / "gym.db"
    runner.data.generate(gym_db, runner.data.DemoDataSpec(anchor=ANCHOR))
    log_path = airflow_db / "logs" / "dag_test.log"
    console = io.StringIO()
    with run_sandbox(db=tmp_path / "sandbox.db") as sandbox:
        monkeypatch.setenv(runner.PERKVILLE_CONN_ENV_VAR, sandbox.airflow_conn_env_value())
        monkeypatch.setenv(runner.SOURCE_CONN_ENV_VAR, runner.source_conn_env_value(gym_db))
        results = runner.run_demo(sandbox, gym_db, EXAMPLE_DAGS, log_path, console)
        tokens = [
            token for (token,) in _read_only(tmp_path / "sandbox.db").execute("SELECT token FROM tokens")
        ]
        secrets = {"password": sandbox.admin_password, "client secret": sandbox.client_secret}

    assert results.succeeded, console.getvalue()
    assert tokens, "the run granted no token: nothing was proven"
    secrets.update({f"token {n}": token for n, token in enumerate(tokens)})
    log_files = [path for path in (airflow_db / "logs").rglob("*") if path.is_file()]
    stored = {str(path): path.read_text(errors="replace") for path in log_files}
    stored["captured log records"] = caplog.text
    stored["captured output"] = "\n".join(capfd.readouterr())
    stored["demo console"] = console.getvalue()
    stored["xcom"] = "\n".join(_column_texts(airflow_db / "airflow.db", "SELECT value FROM xcom"))
    stored["rendered fields"] = "\n".join(
        _column_texts(airflow_db / "airflow.db", "SELECT rendered_fields FROM rendered_task_instance_fields")
    )
    assert "award_checkin_points" in stored[str(log_path)]
    assert "MYGYM:" in stored["xcom"]
    assert "perkville_conn_id" in stored["rendered fields"]

    leaks = [
        (where, name) for where, text in stored.items() for name, secret in secrets.items() if secret in text
    ]
    assert leaks == []
