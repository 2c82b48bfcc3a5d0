"""Export tests: the sandbox over loopback, and a real SQLite database behind an Airflow connection.

Awards made through the API (not the code under test) create the transactions and balances the
export reads; what lands in the table is compared with the sandbox's ledger.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from perkville_provider.auth import clear_token_cache
from perkville_provider.sandbox import seed
from perkville_provider.transfers.perkville_to_sql import PerkvilleToSqlOperator
from perkville_provider.transport import RetryPolicy
from tests.helpers.hook_sandbox import RecordingProxy

SQL_CONN_ID = "membership_db"
FAST_RETRIES = RetryPolicy(max_attempts=3, max_elapsed=5.0, backoff_initial=0.01, backoff_max=0.02)


class Warehouse:
    """The SQLite file behind ``membership_db``, read directly (not through the code under test)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self, table: str) -> dict[int, dict[str, Any]]:
        """Every row of the table by its key (the first column), or {} when the table is missing."""
        with sqlite3.connect(self.path) as db:
            db.row_factory = sqlite3.Row
            exists = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone()
            rows = db.execute(f"SELECT * FROM {table}").fetchall() if exists else []  # noqa: S608
        db.close()
        return {row[0]: dict(row) for row in rows}


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    path = tmp_path / "membership.db"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{SQL_CONN_ID.upper()}", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )
    return Warehouse(path)


@pytest.fixture
def export(sandbox, warehouse) -> Callable[..., dict[str, Any]]:
    """Run the operator's execute() against the sandbox and the warehouse; returns the summary."""
    clear_token_cache()

    def run(resource: str, **kwargs: Any) -> dict[str, Any]:
        operator = PerkvilleToSqlOperator(
            task_id=f"export_{resource}",
            sql_conn_id=SQL_CONN_ID,
            resource=resource,
            hook_params={"retry_policy": FAST_RETRIES},
            **kwargs,
        )
        return operator.execute(context={})

    return run


@pytest.fixture
def award(sandbox) -> Callable[..., dict[str, Any]]:
    """Award points straight through the sandbox API (not through the code under test)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sandbox.token()}"

    def give(trans_source_id: str, *, email: str = seed.CUSTOMER_USERNAME, **body: Any) -> dict[str, Any]:
        payload = {
            "business": seed.BUSINESS_ID,
            "perk": seed.CHECKIN_PERK_ID,
            "user_email": email,
            "trans_source_id": trans_source_id,
            **body,
        }
        answer = session.post(f"{sandbox.base_url}/v2/transactions/", json=payload, timeout=10)
        assert answer.status_code == 201, answer.text
        return answer.json()

    return give


@pytest.fixture
def add_members(sandbox) -> Callable[[int], list[str]]:
    """Create ``n`` connections through the API's external member upsert; returns their emails."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sandbox.token()}"

    def add(n: int) -> list[str]:
        emails = []
        for i in range(n):
            email = f"member{i}@example.com"
            body = {
                "business": seed.BUSINESS_ID,
                "external_system_id": "TEST",
                "external_member_id": f"M{i}",
                "user_email": email,
                "external_membership_status": "ACTIVE",
            }
            answer = session.post(f"{sandbox.base_url}/v2/external-members/", json=body, timeout=10)
            assert answer.status_code == 201, answer.text
            emails.append(email)
        return emails

    return add


@pytest.fixture
def proxy(sandbox, monkeypatch) -> Iterator[RecordingProxy]:
    """A loopback proxy in front of the sandbox, the Perkville connection pointing at it."""
    proxy = RecordingProxy(sandbox.base_url)
    monkeypatch.setenv("AIRFLOW_CONN_PERKVILLE_DEFAULT", sandbox.airflow_conn_env_value(host=proxy.url))
    yield proxy
    proxy.close()
