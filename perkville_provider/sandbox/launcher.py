"""Start a sandbox in a child process and hand back what a client needs to talk to it.

    with run_sandbox() as sandbox:
        requests.post(sandbox.token_url, ...)
        sandbox.admin.set_faults(error_rate=0.2, seed=7)
        ledger = sandbox.admin.ledger()

The server runs in its own process (``python -m perkville_provider.sandbox serve``) so its CPU
does not share the GIL with the clients being tested or benchmarked. It binds port 0 by default,
reports the bound URL through a file, and is stopped on exit (terminate, then kill); an ``atexit``
guard and the child's own parent watch make sure no server outlives its test run.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from perkville_provider.sandbox import seed
from perkville_provider.sandbox.connection import airflow_conn_env_value, airflow_connection
from perkville_provider.sandbox.paths import ADMIN_PREFIX, TOKEN_PATH

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0

_children: set[subprocess.Popen] = set()


class SandboxStartError(RuntimeError):
    """The sandbox process did not come up; the message carries its output."""


class AdminClient:
    """A small client for ``/_sandbox/``; every call raises on a non-2xx answer."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        response = self.session.request(method, f"{self.base_url}{ADMIN_PREFIX}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "faults")

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Replace the whole fault configuration (omitted settings are off)."""
        return self._call("PUT", "faults", faults)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("PUT", "faults", {})

    def settings(self) -> dict[str, Any]:
        return self._call("GET", "settings")

    def set_settings(self, **settings: Any) -> dict[str, Any]:
        return self._call("PUT", "settings", settings)

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats")

    def stats_per_second(self) -> list[dict[str, Any]]:
        """Each second that saw API requests: ``{"second": epoch, "requests": {endpoint: {status: n}}}``."""
        return self._call("GET", "stats/per-second")["seconds"]

    def ledger(self) -> dict[str, list[dict[str, Any]]]:
        return self._call("GET", "ledger")

    def reset(self) -> None:
        self._call("POST", "reset")

    def revoke_token(self, token: str) -> bool:
        return self._call("POST", "tokens/revoke", {"token": token})["revoked"]


@dataclass
class SandboxHandle:
    """A running sandbox: its URLs, the demo credentials, and the admin client."""

    base_url: str
    db: str
    process: subprocess.Popen | None = field(default=None, repr=False)
    business_id: int = seed.BUSINESS_ID
    client_id: str = seed.CLIENT_ID
    client_secret: str = field(default=seed.CLIENT_SECRET, repr=False)
    admin_username: str = seed.ADMIN_USERNAME
    admin_password: str = field(default=seed.ADMIN_PASSWORD, repr=False)
    frontdesk_username: str = seed.FRONTDESK_USERNAME
    frontdesk_password: str = field(default=seed.FRONTDESK_PASSWORD, repr=False)
    customer_username: str = seed.CUSTOMER_USERNAME
    customer_password: str = field(default=seed.CUSTOMER_PASSWORD, repr=False)

    def __post_init__(self) -> None:
        self.admin = AdminClient(self.base_url)

    @property
    def token_url(self) -> str:
        return f"{self.base_url}{TOKEN_PATH}"

    def airflow_connection(self, **overrides: Any) -> dict[str, Any]:
        return airflow_connection(self.base_url, **overrides)

    def airflow_conn_env_value(self, **overrides: Any) -> str:
        return airflow_conn_env_value(self.base_url, **overrides)

    def token(
        self, username: str | None = None, password: str | None = None, scope: str | None = None
    ) -> str:
        """Grant a token (the admin's by default): a convenience for tests that are not about auth."""
        data = {
            "grant_type": "password",
            "username": username or self.admin_username,
            "password": password or self.admin_password,
        }
        if scope:
            data["scope"] = scope
        response = requests.post(
            self.token_url, data=data, auth=(self.client_id, self.client_secret), timeout=30
        )
        response.raise_for_status()
        return response.json()["access_token"]


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_SECONDS)
    _children.discard(process)


@atexit.register
def _stop_all() -> None:
    for process in list(_children):
        stop_process(process)


def _wait_ready(process: subprocess.Popen, ready_file: Path, log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    base_url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SandboxStartError(f"sandbox exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        if base_url is None and ready_file.exists():
            base_url = ready_file.read_text().strip()
        if base_url is not None:
            try:
                if requests.get(f"{base_url}{ADMIN_PREFIX}health", timeout=2).ok:
                    return base_url
            except requests.ConnectionError:
                pass
        time.sleep(0.05)
    raise SandboxStartError(
        f"sandbox did not become healthy in {START_TIMEOUT_SECONDS}s:\n{log.read_text()[-4000:]}"
    )


@contextmanager
def run_sandbox(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    db: str | os.PathLike[str] = ":memory:",
    faults: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    http: str = "auto",
) -> Iterator[SandboxHandle]:
    """Run a sandbox server in a child process for the duration of the ``with`` block.

    ``faults`` and ``settings`` are the start-up values (see the README); ``http`` picks uvicorn's
    HTTP implementation (``auto``, ``httptools``, ``h11``).
    """
    workdir = Path(tempfile.mkdtemp(prefix="perkville-sandbox-"))
    ready_file, log = workdir / "ready", workdir / "server.log"
    command = [
        sys.executable,
        "-m",
        "perkville_provider.sandbox",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--db",
        str(db),
        "--ready-file",
        str(ready_file),
        "--parent-pid",
        str(os.getpid()),
        "--faults-json",
        json.dumps(dict(faults or {})),
        "--settings-json",
        json.dumps(dict(settings or {})),
        "--http",
        http,
        "--quiet",
    ]
    with log.open("wb") as log_stream:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, stdout=log_stream, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    _children.add(process)
    try:
        base_url = _wait_ready(process, ready_file, log)
        handle = SandboxHandle(base_url=base_url, db=str(db), process=process)
        yield handle
        handle.admin.session.close()
    finally:
        stop_process(process)
        shutil.rmtree(workdir, ignore_errors=True)
