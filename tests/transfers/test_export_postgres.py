"""The export into PostgreSQL, where it differs from SQLite: exact NUMERIC quantities, NUL refused
by the server, and refusal messages that quote the failing row (never to reach a log).

Starts its own PostgreSQL on a free loopback port in a temporary folder (stopped by PID), and is
skipped, saying why, when PostgreSQL's binaries or the postgres provider are missing.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from typing import Any

import pytest

from bench._postgres import throwaway_postgres, unavailable_reason
from tests.helpers.hook_sandbox import RecordingProxy
from tests.transfers.conftest import SQL_CONN_ID

WINDOW = {"window_start": "2026-11-20T00:00:00Z", "window_end": "2026-11-21T00:00:00Z"}

pytestmark = [
    pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())),
    pytest.mark.soak,  # starting PostgreSQL takes ~10 s
]


@pytest.fixture(scope="module")
def postgres_conn() -> Iterator[str]:
    with throwaway_postgres() as conn:
        yield conn


@pytest.fixture
def pg(postgres_conn, warehouse, monkeypatch) -> Iterator[Any]:
    """The export's SQL connection pointed at PostgreSQL; yields a psycopg2 connection to read it."""
    import json

    import psycopg2

    monkeypatch.setenv(f"AIRFLOW_CONN_{SQL_CONN_ID.upper()}", postgres_conn)
    settings = json.loads(postgres_conn)
    db = psycopg2.connect(
        host=settings["host"], port=settings["port"], user=settings["login"], dbname=settings["schema"]
    )
    db.autocommit = True
    with db.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS perkville_transactions, perkville_connections")
    yield db
    db.close()


def rows(db, table: str) -> dict[int, dict[str, Any]]:
    with db.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - the test's own names
        names = [column.name for column in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def test_quantities_land_in_numeric_as_the_exact_decimals_awarded(pg, sandbox, export, award):
    dollars = award("dollars", transaction_dt="2026-11-20T12:00:00Z", quantity="9.99")
    half = award("half", transaction_dt="2026-11-20T12:00:00Z", quantity=2.5)

    summary = export("transactions", **WINDOW)
    again = export("transactions", **WINDOW)

    table = rows(pg, "perkville_transactions")
    assert table[dollars["transaction_id"]]["quantity"] == decimal.Decimal("9.99")
    assert table[half["transaction_id"]]["quantity"] == decimal.Decimal("2.50")
    assert (summary["inserted"], again["unchanged"], again["updated"]) == (2, 2, 0)


def test_a_refused_row_is_named_by_id_and_its_data_never_reaches_the_log(
    pg, sandbox, monkeypatch, export, add_members, capfd
):
    proxy = RecordingProxy(sandbox.base_url)
    monkeypatch.setenv("AIRFLOW_CONN_PERKVILLE_DEFAULT", sandbox.airflow_conn_env_value(host=proxy.url))
    emails = add_members(3)

    def nul(method: str, path: str, status: int, data: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/v2/connections/":
            for obj in data["objects"]:
                if obj["user_email"] == emails[2]:
                    obj["external_membership_type"] = "gold\x00"
        return status, data

    proxy.rewrite = nul
    export("connections", page_size=1)  # creates the table
    with pg.cursor() as cursor:
        cursor.execute("TRUNCATE perkville_connections")
        cursor.execute(f"ALTER TABLE perkville_connections ADD CHECK (user_email <> '{emails[0]}')")
    capfd.readouterr()
    try:
        summary = export("connections")
    finally:
        proxy.close()

    logged = "".join(capfd.readouterr())
    stored = {row["user_email"] for row in rows(pg, "perkville_connections").values()}
    assert emails[0] not in stored
    assert emails[2] not in stored
    assert emails[1] in stored
    assert summary["invalid"] == 2
    reasons = " | ".join(summary["invalid_rows"])
    assert "connections 5003: the database refused the row (CheckViolation (SQLSTATE 23514)" in reasons
    assert "external_membership_type: must not contain a NUL character" in reasons
    assert emails[0] not in logged + reasons
    assert "Failing row" not in logged
