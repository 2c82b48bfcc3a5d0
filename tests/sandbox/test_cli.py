"""``perkville-sandbox serve`` and ``reset`` (run as ``python -m perkville_provider.sandbox``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests

from perkville_provider.sandbox import seed
from perkville_provider.sandbox.launcher import run_sandbox, stop_process
from tests.helpers.api import Api

BANNER_LINES = 5


def sandbox_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "perkville_provider.sandbox", *args]


@contextmanager
def cli_server(*args: str) -> Iterator[tuple[str, list[str]]]:
    """Run ``serve --port 0`` with ``args``; yield its base URL (once healthy) and its banner lines."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter
        sandbox_command("serve", "--port", "0", "--parent-pid", str(os.getpid()), *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(BANNER_LINES)]
        base_url = lines[0].split()[-1]
        deadline = time.monotonic() + 10
        while True:
            try:
                requests.get(f"{base_url}/_sandbox/health", timeout=2).raise_for_status()
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "".join(lines)
                time.sleep(0.05)
        yield base_url, lines
    finally:
        stop_process(process)
        process.stdout.close()


def test_serve_prints_the_url_credentials_and_a_ready_connection_export(tmp_path):
    with cli_server("--db", str(tmp_path / "c.db")) as (base_url, lines):
        export = next(line for line in lines if line.startswith("export AIRFLOW_CONN_PERKVILLE_DEFAULT="))
        value = json.loads(export.split("=", 1)[1].strip().strip("'"))

    assert value["conn_type"] == "perkville"
    assert value["host"] == base_url
    assert (value["login"], value["password"]) == (seed.ADMIN_USERNAME, seed.ADMIN_PASSWORD)
    assert value["extra"] == {
        "client_id": seed.CLIENT_ID,
        "client_secret": seed.CLIENT_SECRET,
        "oauth_url": f"{base_url}/api/token/",
        "business_id": seed.BUSINESS_ID,
    }
    assert seed.CLIENT_SECRET in "".join(lines)


def test_serve_flags_set_the_faults_and_settings(tmp_path):
    flags = [
        "--latency-ms", "5", "--jitter-ms", "2", "--error-rate", "0.1", "--rate-limit", "50",
        "--rate-limit-scope", "client",
        "--throttle-rate", "0.03", "--retry-after-format", "http-date", "--reset-rate", "0.05",
        "--lost-after-commit-rate", "0.2",
        "--lost-after-commit-mode", "502", "--seed", "9", "--duplicate-mode", "return_existing",
        "--trickle-ms", "1", "--foreign-next-origin", "http://elsewhere.example:8080",
        "--echo-request-in-errors", "--retry-after-seconds", "99999", "--token-trickle-ms", "3",
    ]  # fmt: skip
    with cli_server("--db", str(tmp_path / "f.db"), *flags) as (base_url, _):
        faults = requests.get(f"{base_url}/_sandbox/faults", timeout=5).json()
        settings = requests.get(f"{base_url}/_sandbox/settings", timeout=5).json()

    assert faults == {
        "latency_ms": 5,
        "jitter_ms": 2,
        "error_rate": 0.1,
        "error_statuses": [500, 502, 503],
        "rate_limit_per_second": 50,
        "rate_limit_scope": "client",
        "throttle_rate": 0.03,
        "retry_after_format": "http-date",
        "reset_rate": 0.05,
        "lost_after_commit_rate": 0.2,
        "lost_after_commit_mode": "502",
        "echo_request_in_errors": True,
        "foreign_next_origin": "http://elsewhere.example:8080",
        "trickle_ms": 1,
        "retry_after_seconds": "99999",
        "token_trickle_ms": 3,
        "seed": 9,
    }
    assert settings["duplicate_mode"] == "return_existing"


def test_reset_reseeds_a_database_file(tmp_path):
    db = tmp_path / "r.db"
    with run_sandbox(db=db) as sandbox:
        api = Api(sandbox.base_url, sandbox.token())
        assert api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="before-reset").status_code == 201

    command = sandbox_command("reset", "--db", str(db))
    done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603

    assert str(db) in done.stdout
    with run_sandbox(db=db) as sandbox:
        assert sandbox.admin.ledger()["transactions"] == []


def test_serve_on_a_busy_port_says_so_in_one_line_without_a_traceback():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(  # noqa: S603 - our own interpreter
            sandbox_command("serve", "--port", str(port)), capture_output=True, text=True, timeout=60
        )

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"perkville-sandbox: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(choose another with --port, or --port 0 for a free one)"
    ]
