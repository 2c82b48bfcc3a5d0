"""A local Airflow 3 cluster from the checkout: PostgreSQL, Redis, the Perkville sandbox, the
api-server, scheduler, dag-processor, triggerer and two Celery workers.

``python deploy/cluster.py start|stop|status|env [--root DIR]`` (``make cluster``,
``make cluster-stop``). Everything lives under ``--root`` (``.cluster/dev`` by default): the
PostgreSQL data directory and socket, the Airflow home and its task logs (one folder shared by
every component, so the api-server reads task logs from disk), each component's log and
``state.json`` (ports, PIDs, generated secrets; mode 0600). Every component listens on 127.0.0.1
on a free port and is stopped by its own PID (its process group: the component is the group's
leader). The Debian packages are installed when missing.

Why these settings: see ``airflow_env()``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
sys.path.insert(0, str(DEPLOY))

from cluster_state import ClusterError, Component, State, log_tail, pid_alive  # noqa: E402

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


def ensure_debian_packages() -> None:
    """``apt-get install`` PostgreSQL and Redis when their servers are missing (update the lists once)."""
    found = {
        "postgresql": _pg_bin_dir() is not None,
        "redis-server": shutil.which("redis-server") is not None,
    }
    missing = [package for package, present in found.items() if not present]
    if not missing:
        return
    print(f"installing Debian packages: {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    # Debian starts the packaged services on install; the cluster runs its own instances only.


def _pg_bin_dir() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


# ---------------------------------------------------------------------------------------------
# Configuration


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
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{state.ports['redis']}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"redis://127.0.0.1:{state.ports['redis']}/1",
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


# ---------------------------------------------------------------------------------------------
# Components


def _wait(what: str, check: Callable[[], bool], component: Component, timeout: float) -> None:
    """Poll ``check`` until true; fail naming the component (with its log's tail) on timeout or death."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if component.pid is not None and not pid_alive(component.pid):
            raise ClusterError(component, f"exited before {what}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(1.0)
    raise ClusterError(component, f"not {what} after {timeout:.0f} s")


def start_postgres(state: State, timeout: float) -> None:
    bin_dir = _pg_bin_dir()
    data, sock = state.root / "pg" / "data", state.root / "pg" / "socket"
    component = state.component("postgres")
    if not (data / "PG_VERSION").exists():
        for folder in (data, sock):
            folder.mkdir(parents=True, exist_ok=True)
            shutil.chown(folder, "postgres", "postgres")
        data.chmod(0o700)
        _run_as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            component,
        )
    component.start(
        [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={state.ports['postgres']}",
            "-c",
            f"unix_socket_directories={sock}",
            "-c",
            "max_connections=200",
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
        ],
        env=os.environ.copy(),
        user="postgres",
    )
    psql = [str(bin_dir / "psql"), "-h", str(sock), "-p", str(state.ports["postgres"]), "-U", "postgres"]
    _wait(
        "accepting connections",
        lambda: _run_as_postgres([*psql, "-c", "SELECT 1"], None) == 0,
        component,
        timeout,
    )
    for role, database in (("airflow", "airflow"), ("gym", "gym")):
        password = state.secrets[f"pg_{role}"]
        sql = (
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
            f"CREATE ROLE {role} LOGIN PASSWORD '{password}'; END IF; END $$;"
        )
        _run_as_postgres([*psql, "-q", "-c", sql], component)
        exists = subprocess.run(
            [*psql, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{database}'"],
            user="postgres",
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if exists != "1":
            _run_as_postgres([*psql, "-q", "-c", f"CREATE DATABASE {database} OWNER {role}"], component)


def _run_as_postgres(command: list[str], component: Component | None) -> int:
    done = subprocess.run(command, user="postgres", capture_output=True, text=True, check=False, cwd="/")
    if done.returncode != 0 and component is not None:
        raise ClusterError(
            component, f"{Path(command[0]).name} failed: {(done.stderr or done.stdout)[-800:]}"
        )
    return done.returncode


def start_redis(state: State, timeout: float) -> None:
    component = state.component("redis")
    folder = state.root / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    component.start(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(state.ports["redis"]),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(folder),
            "--pidfile",
            str(folder / "redis.pid"),
            "--unixsocket",
            "",
        ],
        env=os.environ.copy(),
    )

    def ping() -> bool:
        with socket.create_connection(("127.0.0.1", state.ports["redis"]), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    _wait("answering PING", ping, component, timeout)


def start_sandbox(state: State, timeout: float) -> None:
    component = state.component("sandbox")
    component.start(
        [
            str(BIN / "perkville-sandbox"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(state.ports["sandbox"]),
            "--db",
            str(state.root / "sandbox.db"),
            "--latency-ms",
            str(SANDBOX_LATENCY_MS),
            "--jitter-ms",
            str(SANDBOX_JITTER_MS),
            "--quiet",
        ],
        env=os.environ.copy(),
    )
    url = f"http://127.0.0.1:{state.ports['sandbox']}/_sandbox/health"
    _wait("healthy", lambda: requests.get(url, timeout=5).ok, component, timeout)


def migrate_airflow_db(state: State, env: dict[str, str], timeout: float) -> None:
    component = state.component("db-migrate")
    component.start([str(BIN / "airflow"), "db", "migrate"], env=env)
    _wait_exit(component, timeout)
    state.passwords_file.write_text(json.dumps({ADMIN_USER: state.secrets["admin_password"]}))
    state.passwords_file.chmod(0o600)


def _wait_exit(component: Component, timeout: float) -> None:
    code = component.wait(timeout)
    if code is None:
        raise ClusterError(component, f"still running after {timeout:.0f} s")
    if code != 0:
        raise ClusterError(component, f"exited with {code}")


def load_gym_source(state: State, options: Options, env: dict[str, str], timeout: float) -> None:
    component = state.component("gym-source")
    component.start(
        [
            sys.executable,
            str(DEPLOY / "gym_source.py"),
            "--members",
            str(options.members),
            "--checkins-per-day",
            str(options.checkins_per_day),
            "--days",
            str(options.days),
            "--anchor",
            options.anchor,
            "--sqlite",
            str(state.root / "gym.sqlite"),
        ],
        env=env,
    )
    _wait_exit(component, timeout)


def start_airflow(state: State, env: dict[str, str], timeout: float) -> None:
    api = f"http://127.0.0.1:{state.ports['api']}"
    server = state.component("api-server")
    server.start(
        [
            str(BIN / "airflow"),
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(state.ports["api"]),
            "--workers",
            "2",
        ],
        env=env,
    )
    # Everything starts at once (each waits for what it needs by itself): on 2 loaded cores the
    # api-server alone can take minutes to come up.
    for name, command in (
        ("scheduler", ["scheduler", "--skip-serve-logs"]),
        ("dag-processor", ["dag-processor"]),
        ("triggerer", ["triggerer", "--skip-serve-logs"]),
    ):
        state.component(name).start([str(BIN / "airflow"), *command], env=env)
    for worker in WORKERS:
        launch_worker(state, worker, env)
    _wait(
        "answering /api/v2/monitor/health",
        lambda: requests.get(f"{api}/api/v2/monitor/health", timeout=5).ok,
        server,
        timeout,
    )
    for name in ("scheduler", "dag-processor", "triggerer"):
        _wait(
            "healthy in /api/v2/monitor/health",
            lambda n=name: _monitor_healthy(api, n),
            state.component(name),
            timeout,
        )
    for worker in WORKERS:
        wait_for_worker(state, worker, timeout)


def launch_worker(state: State, worker: str, env: dict[str, str]) -> None:
    """A Celery worker named ``worker``, 4 task slots, no log server (the logs are on a shared disk)."""
    state.component(worker).start(
        [
            str(BIN / "airflow"),
            "celery",
            "worker",
            "--celery-hostname",
            worker,
            "--concurrency",
            str(WORKER_CONCURRENCY),
            "--skip-serve-logs",
            "--without-mingle",
        ],
        env={**env, "PERKVILLE_CLUSTER_WORKER": worker},
    )


def wait_for_worker(state: State, worker: str, timeout: float) -> None:
    component = state.component(worker)
    _wait("ready (celery)", lambda: f"celery@{worker} ready." in component.log_text(), component, timeout)


def _monitor_healthy(api: str, name: str) -> bool:
    health = requests.get(f"{api}/api/v2/monitor/health", timeout=5).json()
    return health.get(name.replace("-", "_"), {}).get("status") == "healthy"


def check_loopback_only(state: State) -> list[str]:
    """Listening sockets of the cluster's processes bound elsewhere than loopback (``ss -ltnp``)."""
    pids = {str(pid) for pid in state.all_pids()}
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=False).stdout
    exposed = []
    for line in out.splitlines():
        fields = line.split()
        local = fields[3] if len(fields) > 3 else ""
        owners = {
            part.split("=")[1].rstrip(",)")
            for part in line.split()
            for part in part.split(",")
            if part.startswith("pid=")
        }
        if owners & pids and not (local.startswith("127.0.0.1:") or local.startswith("[::1]:")):
            exposed.append(line.strip())
    return exposed


# ---------------------------------------------------------------------------------------------
# Commands


def start(options: Options) -> State:
    """Start every component, or say a cluster already runs here and change nothing."""
    running = State.load(options.root)
    if running is not None and running.alive_components():
        print(f"a cluster is already running from {options.root}: nothing started")
        print(describe(running))
        return running
    if running is not None:
        stop(options.root, quiet=True)
    ensure_debian_packages()
    options.root.mkdir(parents=True, exist_ok=True)
    state = new_state(options)
    state.save()
    env = airflow_env(state)
    try:
        t0 = time.monotonic()
        steps: list[tuple[str, Callable[[], None]]] = [
            ("postgres", lambda: start_postgres(state, options.timeout)),
            ("redis", lambda: start_redis(state, options.timeout)),
            ("sandbox", lambda: start_sandbox(state, options.timeout)),
            ("db-migrate", lambda: migrate_airflow_db(state, env, options.timeout * 2)),
            ("gym-source", lambda: load_gym_source(state, options, env, options.timeout)),
            ("airflow", lambda: start_airflow(state, env, options.timeout)),
        ]
        for name, step in steps:
            print(f"  starting {name} ...", flush=True)
            step()
            state.save()
        exposed = check_loopback_only(state)
        if exposed:
            raise ClusterError(
                state.component("api-server"), "listening beyond loopback: " + "; ".join(exposed)
            )
        print(f"cluster up in {time.monotonic() - t0:.0f} s")
    except ClusterError as error:
        state.save()
        print(f"\ncluster start FAILED: component {error.component.name}: {error.reason}", file=sys.stderr)
        print(
            f"--- last lines of {error.component.log_path} ---\n{log_tail(error.component.log_path)}",
            file=sys.stderr,
        )
        stop(options.root, quiet=True)
        raise
    print(describe(state))
    return state


def describe(state: State) -> str:
    api = f"http://127.0.0.1:{state.ports['api']}"
    return "\n".join(
        [
            f"Airflow UI:   {api}  (login: {ADMIN_USER} / {state.secrets['admin_password']})",
            f"Sandbox:      http://127.0.0.1:{state.ports['sandbox']}  (ledger: /_sandbox/ledger)",
            f"PostgreSQL:   127.0.0.1:{state.ports['postgres']}  (databases airflow, gym)",
            f"Redis:        127.0.0.1:{state.ports['redis']}",
            f"Logs:         {state.root / 'logs'} (components), {state.root / 'airflow' / 'logs'} (tasks)",
            f'Airflow CLI:  eval "$({sys.executable} {Path(__file__)} env --root {state.root})"',
            "Stop:         "
            + (
                "make cluster-stop"
                if state.root == DEFAULT_ROOT
                else f"deploy/cluster.py stop --root {state.root}"
            ),
        ]
    )


SERVICES = ("postgres", "redis", "sandbox")
"""Stopped after the Airflow components, which use them until they exit."""


def stop(root: Path, *, quiet: bool = False, timeout: float = 20.0) -> None:
    """Stop every recorded component by its PID: the Airflow components together, then the services.

    Each gets its polite signal (SIGINT, PostgreSQL's fast shutdown; SIGTERM for the rest), then
    SIGKILL to whatever is left of its process group after ``timeout`` seconds.
    """
    state = State.load(root)
    if state is None:
        if not quiet:
            print(f"no cluster state under {root}: nothing to stop")
        return
    alive = state.alive_components()
    for wave in ([c for c in alive if c.name not in SERVICES], [c for c in alive if c.name in SERVICES]):
        for component in wave:
            if not quiet:
                print(f"  stopping {component.name} (pid {component.pid})", flush=True)
            component.signal(signal.SIGINT if component.name == "postgres" else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for component in wave:
            component.finish(max(0.0, deadline - time.monotonic()))
    state.pids.clear()
    state.save()
    if not quiet:
        print("cluster stopped")


@contextlib.contextmanager
def running_cluster(options: Options) -> Iterator[State]:
    """A fresh cluster for the duration of the block, stopped afterwards whatever happens."""
    stop(options.root, quiet=True)
    if options.root.exists():
        shutil.rmtree(options.root)
    try:
        yield start(options)
    finally:
        stop(options.root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status", "env"])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.command == "start":
        try:
            start(Options(root=root))
        except ClusterError:
            return 1
    elif args.command == "stop":
        stop(root)
    else:
        state = State.load(root)
        if state is None or not state.alive_components():
            print(f"no cluster running from {root}", file=sys.stderr)
            return 1
        if args.command == "status":
            print(describe(state))
            for component in state.components():
                status = "up" if pid_alive(component.pid) else "DOWN"
                print(f"  {component.name:14} pid {component.pid}  {status}")
        else:
            for key, value in airflow_env(state).items():
                if key.startswith("AIRFLOW") or key in ("PYTHONPATH",):
                    print(f"export {key}={_shell_quote(value)}")
    return 0


def _shell_quote(value: Any) -> str:
    import shlex

    return shlex.quote(str(value))


if __name__ == "__main__":
    raise SystemExit(main())
