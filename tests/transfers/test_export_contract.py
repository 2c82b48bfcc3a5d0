"""The export's contract: exact fields, the table's key, one bad row never the page, no row data logged.

SQLite through an Airflow connection, the sandbox over loopback; hostile values come from a
loopback proxy that rewrites the sandbox's answers.
"""

from __future__ import annotations

import decimal
import sqlite3
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from perkville_provider.sandbox import seed
from tests.transfers.test_perkville_to_sql import api_requests

WINDOW = {"window_start": "2026-11-20T00:00:00Z", "window_end": "2026-11-21T00:00:00Z"}


def make_table(warehouse, ddl: str) -> None:
    with sqlite3.connect(warehouse.path) as db:
        db.executescript(ddl)
    db.close()


def test_fractional_quantities_are_exported_as_the_exact_decimals_awarded(sandbox, warehouse, export, award):
    awarded = [
        award("whole", transaction_dt="2026-11-20T10:00:00Z", quantity=3),
        award("half", transaction_dt="2026-11-20T11:00:00Z", quantity=2.5),
        award("dollars", transaction_dt="2026-11-20T12:00:00Z", quantity="9.99"),
    ]

    summary = export("transactions", **WINDOW)

    table = warehouse.rows("perkville_transactions")
    assert (summary["inserted"], summary["invalid"]) == (3, 0)
    quantities = {txn["trans_source_id"]: table[txn["transaction_id"]]["quantity"] for txn in awarded}
    assert {name: decimal.Decimal(text) for name, text in quantities.items()} == {
        "whole": decimal.Decimal(3),
        "half": decimal.Decimal("2.5"),
        "dollars": decimal.Decimal("9.99"),
    }
    assert quantities["dollars"] == "9.99"
    again = export("transactions", **WINDOW)
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 3)


def test_the_export_walks_the_path_the_connections_paths_extra_names(
    sandbox, warehouse, monkeypatch, export, proxy
):
    conn = sandbox.airflow_conn_env_value(host=proxy.url, extra={"paths": {"transactions": "/v2/txn-list/"}})
    monkeypatch.setenv("AIRFLOW_CONN_PERKVILLE_DEFAULT", conn)

    with pytest.raises(AirflowFailException, match="404"):
        export("transactions", **WINDOW)

    walked = [path.split("?")[0] for method, path, _ in proxy.seen if method == "GET"]
    assert "/v2/txn-list/" in walked
    assert "/v2/transactions/" not in walked


def test_a_business_given_as_its_uri_is_read_as_the_operators_read_it(sandbox, warehouse, export, award):
    award("one", transaction_dt="2026-11-20T10:00:00Z")

    summary = export("transactions", business_id=f"/v2/businesses/{seed.BUSINESS_ID}/", **WINDOW)

    assert summary["inserted"] == 1


@pytest.mark.parametrize(
    ("ddl", "problem"),
    [
        ("CREATE TABLE perkville_connections (connection_id INTEGER, user_email TEXT)", "no primary key"),
        (
            "CREATE TABLE perkville_connections (connection_id INTEGER, user_email TEXT PRIMARY KEY)",
            r"primary key \(user_email\)",
        ),
        ("CREATE VIEW perkville_connections AS SELECT 1 AS connection_id", "is a view"),
    ],
    ids=["no key", "another key", "a view"],
)
def test_a_table_whose_key_is_not_the_exports_is_refused_before_any_request(
    sandbox, warehouse, export, ddl, problem
):
    make_table(warehouse, ddl)

    with pytest.raises(AirflowFailException, match=f"perkville_connections .*{problem}"):
        export("connections")

    assert api_requests(sandbox) == 0


def full_ddl(table: str, extra: str = "", quantity: str = "TEXT", email: str = "TEXT") -> str:
    return (
        f"CREATE TABLE {table} (transaction_id INTEGER NOT NULL PRIMARY KEY, business_id INTEGER, "
        f"user_id INTEGER, connection_id INTEGER, perk_id INTEGER, location_id INTEGER, title {email}, "
        f"classification TEXT, points INTEGER, quantity {quantity}, transaction_dt TEXT, "
        f"transaction_status TEXT, trans_source_id TEXT{extra})"
    )


@pytest.mark.parametrize(
    ("ddl", "problem"),
    [
        (full_ddl("perkville_transactions", quantity="INTEGER"), "stores quantity as an integer"),
        (full_ddl("perkville_transactions", email="TEXT UNIQUE"), r"another unique key \(title\)"),
        (full_ddl("perkville_transactions", extra=", gym TEXT NOT NULL"), "NOT NULL column.*gym"),
        (
            "CREATE TABLE perkville_transactions (transaction_id INTEGER PRIMARY KEY, title TEXT)",
            "lacks the column",
        ),
    ],
    ids=["integer quantity", "another unique column", "extra NOT NULL", "missing columns"],
)
def test_a_table_the_export_cannot_fill_is_refused_naming_the_problem(
    sandbox, warehouse, export, ddl, problem
):
    make_table(warehouse, ddl)

    with pytest.raises(AirflowFailException, match=f"perkville_transactions .*{problem}"):
        export("transactions", **WINDOW)

    assert api_requests(sandbox) == 0


def test_a_pre_existing_keyed_table_is_upserted_on_its_key_never_doubled(sandbox, warehouse, export, award):
    make_table(warehouse, full_ddl("perkville_transactions"))
    make_table(
        warehouse, "INSERT INTO perkville_transactions (transaction_id, title) VALUES (1, 'another''s')"
    )
    award("one", transaction_dt="2026-11-20T10:00:00Z")
    award("two", transaction_dt="2026-11-20T11:00:00Z")

    export("transactions", **WINDOW)
    summary = export("transactions", **WINDOW)

    table = warehouse.rows("perkville_transactions")
    assert len(table) == 3
    assert table[1]["title"] == "another's"
    assert summary["unchanged"] == 2


@pytest.mark.parametrize("table", ["order", "user", "select"])
def test_a_reserved_word_as_table_name_is_refused_as_a_setting(sandbox, warehouse, export, table):
    with pytest.raises(AirflowFailException, match="reserved"):
        export("connections", table=table)

    assert api_requests(sandbox) == 0


def test_values_a_column_cannot_hold_make_their_row_invalid_never_the_page(
    sandbox, warehouse, export, award, proxy, capfd
):
    good = award("good", transaction_dt="2026-11-20T09:00:00Z")
    for name in ("huge", "far", "nul", "undated"):
        award(name, transaction_dt="2026-11-20T10:00:00Z")

    def damage(method: str, path: str, status: int, data: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/v2/transactions/":
            for obj in data["objects"]:
                name = obj["trans_source_id"]
                if name == "huge":
                    obj["points"] = 2**70
                elif name == "far":
                    obj["transaction_dt"] = "9999-12-31 23:59:59+00:00"
                elif name == "nul":
                    obj["title"] = "secret\x00tail@example.com"
                elif name == "undated":
                    obj["transaction_dt"] = None
        return status, data

    proxy.rewrite = damage
    summary = export("transactions", **WINDOW)

    table = warehouse.rows("perkville_transactions")
    assert set(table) == {good["transaction_id"]}
    assert (summary["inserted"], summary["invalid"], summary["outside_window"], summary["complete"]) == (
        1,
        4,
        0,
        True,
    )
    reasons = " | ".join(summary["invalid_rows"])
    assert "points: must fit a 64-bit integer" in reasons
    assert "transaction_dt: must be between 1970 and 2100" in reasons
    assert "title: must not contain a NUL character" in reasons
    assert "transaction_dt: is missing" in reasons
    logged = "".join(capfd.readouterr())
    assert "Skipped: transactions" in logged
    assert "tail@example.com" not in logged


def test_a_row_the_database_refuses_is_named_and_the_rest_of_the_page_is_written(
    sandbox, warehouse, export, award
):
    make_table(
        warehouse,
        full_ddl("perkville_transactions", extra=", CHECK (trans_source_id <> 'refused-by-the-db')"),
    )
    kept = [award(f"kept-{i}", transaction_dt="2026-11-20T10:00:00Z") for i in range(2)]
    refused = award("refused-by-the-db", transaction_dt="2026-11-20T10:00:00Z")

    summary = export("transactions", **WINDOW)

    assert set(warehouse.rows("perkville_transactions")) == {txn["transaction_id"] for txn in kept}
    assert (summary["inserted"], summary["invalid"]) == (2, 1)
    assert (
        f"transactions {refused['transaction_id']}: the database refused the row (IntegrityError"
        in (summary["invalid_rows"][0])
    )
