"""A real Airflow for the browser tests: the sandbox, ``airflow standalone`` and the example DAGs.

It follows the README's "Running the DAGs in a real Airflow deployment" steps to the letter, with
the local sandbox as Perkville and the demo membership database as the source:

1. ``python -m perkville_provider.demo.data --db <tmp>/gym.db --anchor 2026-11-20`` (check-ins on
   2026-11-17..19 in America/New_York: fixed, so nothing depends on the wall clock);
2. ``perkville-sandbox serve --port <free> --db <tmp>/sandbox.db``;
3. the connections as ``AIRFLOW_CONN_PERKVILLE_DEFAULT`` / ``AIRFLOW_CONN_GYM_SOURCE_DB``;
4. ``airflow standalone`` with ``AIRFLOW_HOME`` a temporary directory (SQLite, LocalExecutor), the
   DAG folder ``dags/``, the API server on 127.0.0.1 and a free port.

Every process is started in its own session and stopped by its PID (its process group on a
timeout), also when a test fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from perkville_provider.sandbox.connection import airflow_conn_env_value

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO_ROOT / "dags"
BIN = Path(sys.executable).parent
DEMO_ANCHOR = "2026-11-20"
"""The demo data's anchor: check-ins on the three days before it (America/New_York)."""
START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
RUN_TIMEOUT = 240.0
"""The longest wait for one DAG run (they take 10 to 40 s on a busy 2-core machine)."""
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (requests.RequestException, OSError, ValueError, KeyError) as exc:
            last_error, result = exc, None
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s (last error: {last_error!r})")


@dataclass
class Process:
    """A child process in its own session, its output in a log file."""

    name: str
    popen: subprocess.Popen
    log: Path

    def stop(self) -> None:
        """SIGTERM, then, after a timeout or for what it left behind, its process group is killed."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=STOP_TIMEOUT)
        # Whatever it started and left behind: its own process group (it leads a new session).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=STOP_TIMEOUT)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, however it dies (Linux)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start(name: str, command: list[str], env: Mapping[str, str], logs: Path) -> Process:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(  # noqa: S603 (our own commands)
            command,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            cwd=REPO_ROOT,
        )
    return Process(name, popen, log)


def airflow_env(home: Path, api_port: int, perkville_url: str, gym_db: Path) -> dict[str, str]:
    """The environment of the README's deployment steps, on a temporary home and a free port."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_HOME"))
    }
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API__WORKERS": "1",
            # Only the runs the tests trigger, never one of "now": nothing depends on the wall clock.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW_CONN_PERKVILLE_DEFAULT": airflow_conn_env_value(perkville_url),
            "AIRFLOW_CONN_GYM_SOURCE_DB": json.dumps({"conn_type": "sqlite", "host": str(gym_db)}),
        }
    )
    return env


class AirflowApi:
    """The REST API (``/api/v2``) with a JWT from the simple auth manager."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        answer = requests.post(
            f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=10
        )
        answer.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=30, **kwargs)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def trigger(self, dag_id: str, *, logical_date: str | None, conf: Mapping[str, Any] | None = None) -> str:
        body = {"logical_date": logical_date, "conf": dict(conf or {})}
        return self.call("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 240.0, *, or_retry: bool = False
    ) -> str:
        """The run's final state (``success`` or ``failed``), waiting at most ``timeout`` seconds.

        With ``or_retry``, a task waiting for a retry ends the wait too: ``up_for_retry``.
        """

        def finished() -> str | None:
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            if or_retry and any(ti["state"] == "up_for_retry" for ti in self.task_instances(dag_id, run_id)):
                return "up_for_retry"
            return None

        return wait_for(f"run {run_id} of {dag_id} to finish", finished, timeout, interval=2.0)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def log(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, try_number: int = 1) -> str:
        answer = self.session.get(
            f"{self.base_url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"map_index": map_index, "full_content": "true"},
            headers={"Accept": "application/x-ndjson"},
            timeout=30,
        )
        answer.raise_for_status()
        return answer.text


@dataclass
class Stack:
    """What the tests need to reach: the UI and API, its admin login, the sandbox, the temp files."""

    base_url: str
    username: str
    password: str
    sandbox_url: str
    home: Path
    api: AirflowApi


def generated_password(home: Path, username: str = "admin") -> str:
    """The simple auth manager's password for ``username``, written on the API server's first start."""
    return json.loads((home / PASSWORDS_FILE).read_text())[username]


@contextlib.contextmanager
def run_stack(workdir: Path) -> Iterator[Stack]:
    """Start the sandbox and ``airflow standalone``; stop both whatever happens."""
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    gym_db, home = workdir / "gym.db", workdir / "airflow"
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "perkville_provider.demo.data", "--db", str(gym_db), "--anchor", DEMO_ANCHOR],
        check=True,
        timeout=60,
        capture_output=True,
    )
    sandbox_port, api_port = free_port(), free_port()
    sandbox_url, base_url = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{api_port}"
    processes: list[Process] = []
    try:
        sandbox_cmd = [str(BIN / "perkville-sandbox"), "serve", "--port", str(sandbox_port)]
        processes.append(
            start("sandbox", [*sandbox_cmd, "--db", str(workdir / "sandbox.db")], os.environ, logs)
        )
        wait_for("the sandbox", lambda: requests.get(f"{sandbox_url}/_sandbox/health", timeout=2).ok, 30)
        env = airflow_env(home, api_port, sandbox_url, gym_db)
        subprocess.run(  # noqa: S603
            [str(BIN / "airflow"), "db", "migrate"],
            env=env,
            check=True,
            timeout=START_TIMEOUT,
            capture_output=True,
        )
        for name, command in AIRFLOW_COMPONENTS.items():
            processes.append(start(name, [str(BIN / "airflow"), *command], env, logs))
        try:
            wait_for("the generated password", lambda: generated_password(home), START_TIMEOUT)
            wait_for(
                "the API server",
                lambda: requests.get(f"{base_url}/api/v2/version", timeout=2).ok,
                START_TIMEOUT,
            )
        except TimeoutError as exc:
            raise TimeoutError(
                f"{exc}\n--- api-server:\n{processes[-len(AIRFLOW_COMPONENTS)].tail()}"
            ) from None
        password = generated_password(home)
        api = AirflowApi(base_url, "admin", password)
        wait_for("both example DAGs parsed", lambda: _dags_parsed(api), START_TIMEOUT, interval=2.0)
        yield Stack(base_url, "admin", password, sandbox_url, home, api)
    finally:
        for process in reversed(processes):
            process.stop()


EXAMPLE_DAG_IDS = ("perkville_member_sync", "perkville_daily_checkin_awards")
AIRFLOW_COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
"""What ``airflow standalone`` runs, minus the log servers (they listen on every interface; the
API server reads the task logs from the shared local folder)."""


def _dags_parsed(api: AirflowApi) -> bool:
    dag_ids = {dag["dag_id"] for dag in api.call("GET", "/dags")["dags"]}
    return set(EXAMPLE_DAG_IDS) <= dag_ids
