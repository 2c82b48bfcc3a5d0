"""The local cluster's components: each started as its own process group, and waited for until it
answers (PostgreSQL and Redis from Debian's packages, the sandbox, the Airflow components, the
Celery workers); and the check that nothing listens beyond loopback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests
from cluster_config import (
    ADMIN_USER,
    BIN,
    DEPLOY,
    SANDBOX_JITTER_MS,
    SANDBOX_LATENCY_MS,
    WORKER_CONCURRENCY,
    WORKERS,
    Options,
)
from cluster_state import ClusterError, Component, State, pid_alive


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


def postgres_dir(root: Path, component: Component) -> Path:
    """Where PostgreSQL keeps its data and socket: under the cluster's root when the ``postgres``
    user can reach it, else in a folder of this user's own under ``/var/tmp``.

    PostgreSQL runs as ``postgres``, which cannot enter a checkout under ``/root`` or a ``0700``
    temporary directory (``mktemp -d``): initdb would fail with "Permission denied".
    """
    root.mkdir(parents=True, exist_ok=True)
    if _run_as_postgres(["test", "-x", str(root.resolve())], None) == 0:
        return root / "pg"
    outside = outside_postgres_dir(root)
    outside.parent.mkdir(mode=0o711, exist_ok=True)
    folder = outside.parent.lstat()
    if stat.S_ISLNK(folder.st_mode) or folder.st_uid != os.getuid():
        raise ClusterError(component, f"{outside.parent} is not this user's own folder; remove it")
    return outside


def outside_postgres_dir(root: Path) -> Path:
    """The folder for ``root``'s PostgreSQL when the root is closed to ``postgres`` (checked owned)."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"perkville-cluster-{digest}" / "pg"  # noqa: S108 - its owner is checked


def start_postgres(state: State, timeout: float) -> None:
    bin_dir = _pg_bin_dir()
    component = state.component("postgres")
    pg = postgres_dir(state.root, component)
    data, sock = pg / "data", pg / "socket"
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
