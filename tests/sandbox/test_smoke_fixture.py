from __future__ import annotations

import json
import os

import requests


def test_the_sandbox_fixture_points_the_default_connection_at_a_live_server(sandbox):
    conn = json.loads(os.environ["AIRFLOW_CONN_PERKVILLE_DEFAULT"])
    assert conn["host"] == sandbox.base_url
    assert requests.get(f"{sandbox.base_url}/_sandbox/health", timeout=5).json()["status"] == "ok"
