"""A throwaway PostgreSQL server for a benchmark: a temporary cluster on a free loopback port.

Only where it is trivial: PostgreSQL's binaries installed (``initdb`` and ``postgres``, run as the
``postgres`` user when we are root) and the postgres provider importable (``make .venv/.installed
EXTRAS=test,cluster``). Trust auth is safe here: it listens on 127.0.0.1 only, lives in a
temporary directory and is stopped (by its own PID) and deleted when the block ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_BIN_DIRS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


def unavailable_reason() -> str | None:
    """Why no PostgreSQL can be started here, or None when one can."""
    if _bin_dir() is None:
        return "PostgreSQL's initdb/postgres are not installed"
    try:
        import airflow.providers.postgres  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError:
        return "the postgres provider is not installed (make .venv/.installed EXTRAS=test,cluster)"
    return None


def _bin_dir() -> Path | None:
    for folder in PG_BIN_DIRS:
        if (Path(folder) / "initdb").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres(timeout: float = 60.0) -> Iterator[str]:
    """Start a temporary PostgreSQL; yields an Airflow connection's JSON value for it."""
    bin_dir = _bin_dir()
    assert bin_dir is not None
    user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    data = root / "data"
    data.mkdir()
    if user:
        shutil.chown(root, user, user)
        shutil.chown(data, user, user)
    port = _free_port()
    subprocess.run(  # noqa: S603 - fixed binaries
        [str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "--locale=C.UTF-8"],
        user=user,
        cwd="/",
        check=True,
        capture_output=True,
        timeout=timeout,
    )
    server = subprocess.Popen(  # noqa: S603
        [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={port}",
            "-c",
            f"unix_socket_directories={root}",
        ],
        user=user,
        cwd="/",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the throwaway PostgreSQL did not start")
            time.sleep(0.2)
        time.sleep(0.5)
        yield json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": port,
                "login": "postgres",
                "schema": "postgres",
            }
        )
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
