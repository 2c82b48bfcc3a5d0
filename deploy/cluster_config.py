"""The local cluster's configuration: its constants, what ``start`` is asked for (``Options``), the
ports and secrets of a new cluster, and the one environment every Airflow process shares.

Why these settings: see ``airflow_env()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from cluster_state import State

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent

DEFAULT_ROOT = REPO / ".cluster" / "dev"
BIN = Path(sys.executable).parent
WORKERS = ("worker1", "worker2")
WORKER_CONCURRENCY = 4
ADMIN_USER = "admin"
DAG_BUNDLE_NAME = "perkville_example_dags"
HEARTBEAT_TIMEOUT_SECONDS = 60
"""``[scheduler] task_instance_heartbeat_timeout``: a task whose worker died is failed (and retried)
this long after its last heartbeat (Airflow's default is 300 s)."""
SANDBOX_LATENCY_MS, SANDBOX_JITTER_MS = 50, 20
CELERY_BROKER_DB, CELERY_RESULT_DB = 0, 1
"""The cluster's one Redis: the Celery broker and result backend use these database numbers; any
other user of it (the scenario's shared rate budget) takes its own."""


@dataclass(frozen=True)
class Options:
    """What to start; the scenario turns the schedules off so only its own runs happen."""

    root: Path = DEFAULT_ROOT
    schedules: bool = True
    members: int = 5_000
    checkins_per_day: int = 20_000
    days: int = 3
    anchor: str = "2026-11-20"
    timeout: float = 420.0


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def airflow_env(state: State) -> dict[str, str]:
    """The environment every Airflow process of the cluster shares (and the CLI, via ``env``).

    The caller's ``AIRFLOW*`` variables are dropped so nothing outside the cluster leaks in.
    """
    base = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    home = state.root / "airflow"
    api = f"http://127.0.0.1:{state.ports['api']}"
    pg = state.ports["postgres"]
    secret = state.secrets
    bundles = [
        {
            "name": DAG_BUNDLE_NAME,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(REPO / "dags"), "refresh_interval": 0},
        }
    ]
    return {
        **base,
        "PATH": f"{BIN}:{base.get('PATH', '')}",
        # The workers' host name callable lives next to this file.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(DEPLOY), base.get("PYTHONPATH")])),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        "AIRFLOW__CORE__FERNET_KEY": secret["fernet_key"],
        "AIRFLOW__CORE__PARALLELISM": "16",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "cluster_hostname.worker_hostname",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(state.passwords_file),
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(state.ports["api"]),
        "AIRFLOW__API__SECRET_KEY": secret["api_secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": secret["jwt_secret"],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            f"postgresql+psycopg2://airflow:{secret['pg_airflow']}@127.0.0.1:{pg}/airflow"
        ),
        "AIRFLOW__CELERY__BROKER_URL": redis_url(state, CELERY_BROKER_DB),
        "AIRFLOW__CELERY__RESULT_BACKEND": redis_url(state, CELERY_RESULT_DB),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_SECONDS),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # A busy api-server answers the tasks slowly on 2 loaded cores; the default 5 s made
        # healthy chunks fail at start (before staging, each chunk pulled the whole day's XCom).
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(state.schedules),
        # Task logs: one folder on the machine, read by the api-server from disk; no log server.
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(state.ports["worker_log_server"]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(state.ports["trigger_log_server"]),
        # The scenario samples a day through the awards DAG's checkins_sql Param: this private
        # cluster trusts its one triggerer with the source database (see the README's Security).
        "PERKVILLE_EXAMPLE_SQL_PARAMS": "1",
        # The DAGs stage their records here and pass only chunk names by XCom (issue 11): one
        # folder both workers read, as an s3:// or gs:// bucket would be across machines.
        "PERKVILLE_STAGING_ROOT": staging_root(state),
        "AIRFLOW_CONN_PERKVILLE_DEFAULT": _perkville_conn(state),
        "AIRFLOW_CONN_GYM_SOURCE_DB": json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": pg,
                "login": "gym",
                "password": secret["pg_gym"],
                "schema": "gym",
            }
        ),
    }


def redis_url(state: State, db: int) -> str:
    """The cluster's Redis, database ``db``."""
    return f"redis://127.0.0.1:{state.ports['redis']}/{db}"


def staging_root(state: State) -> str:
    """The object-storage root the example DAGs stage records under (``file://``: one machine)."""
    return (state.root / "staging").resolve().as_uri()


def _perkville_conn(state: State) -> str:
    from perkville_provider.sandbox.connection import airflow_conn_env_value

    return airflow_conn_env_value(f"http://127.0.0.1:{state.ports['sandbox']}")


def new_state(options: Options) -> State:
    names = ("postgres", "redis", "sandbox", "api", "worker_log_server", "trigger_log_server")
    from cryptography.fernet import Fernet

    return State(
        root=options.root,
        ports={name: free_port() for name in names},
        secrets={
            "fernet_key": Fernet.generate_key().decode(),
            "api_secret_key": secrets.token_urlsafe(24),
            "jwt_secret": secrets.token_urlsafe(64),
            "pg_airflow": secrets.token_urlsafe(18),
            "pg_gym": secrets.token_urlsafe(18),
            "admin_password": secrets.token_urlsafe(12),
        },
        schedules=options.schedules,
        pids={},
    )
