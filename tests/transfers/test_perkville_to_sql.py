"""PerkvilleToSqlOperator against the sandbox (HTTP over loopback) into a real SQLite database."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from perkville_provider.sandbox import seed
from perkville_provider.transfers.perkville_to_sql import export_window

CONNECTIONS_PATH = "/v2/connections/"


def ledger_id(uri: str | None) -> int | None:
    return int(uri.rstrip("/").rsplit("/", 1)[1]) if uri else None


def ledger_connections(sandbox) -> dict[int, dict[str, Any]]:
    return {row["connection_id"]: row for row in sandbox.admin.ledger()["connections"]}


def api_requests(sandbox) -> int:
    return sum(sum(by_status.values()) for by_status in sandbox.admin.stats()["requests"].values())


def test_connections_are_exported_page_by_page_with_the_ledgers_balances(
    sandbox, warehouse, export, add_members, award
):
    add_members(7)
    award("casey-1")
    award("member3-1", email="member3@example.com", perk=seed.CLASS_PERK_ID, quantity=2)

    summary = export("connections", page_size=3)

    ledger = ledger_connections(sandbox)
    table = warehouse.rows("perkville_connections")
    assert len(ledger) == 9
    assert summary["pages"] == 3
    assert (summary["rows_read"], summary["inserted"], summary["updated"]) == (9, 9, 0)
    assert summary["complete"] is True
    assert set(table) == set(ledger)
    for connection_id, row in table.items():
        expected = ledger[connection_id]
        assert row["point_balance"] == expected["point_balance"]
        assert row["status"] == expected["status"]
        assert row["user_id"] == ledger_id(expected["user"])
        assert row["business_id"] == seed.BUSINESS_ID
        assert row["user_email"] == expected["user_email"]
    assert table[seed.CUSTOMER_CONNECTION_ID]["home_location_id"] == seed.DOWNTOWN_LOCATION_ID
    casey = ledger[seed.CUSTOMER_CONNECTION_ID]
    stored = pendulum.parse(table[seed.CUSTOMER_CONNECTION_ID]["last_transaction_dt"])
    assert stored == pendulum.parse(casey["last_transaction_dt"])
    assert stored.utcoffset().total_seconds() == 0


def test_a_rerun_changes_nothing_and_a_later_run_updates_only_what_changed(sandbox, warehouse, export, award):
    export("connections", page_size=1)
    before = warehouse.rows("perkville_connections")

    again = export("connections", page_size=1)

    assert warehouse.rows("perkville_connections") == before
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 2)

    award("casey-later")
    later = export("connections")
    balance = ledger_connections(sandbox)[seed.CUSTOMER_CONNECTION_ID]["point_balance"]
    assert (later["inserted"], later["updated"], later["unchanged"]) == (0, 1, 1)
    assert warehouse.rows("perkville_connections")[seed.CUSTOMER_CONNECTION_ID]["point_balance"] == balance


def test_transactions_of_a_window_only(sandbox, warehouse, export, award):
    inside = [award(f"in-{i}", transaction_dt=f"2026-11-20T1{i}:00:00Z") for i in range(3)]
    award("before", transaction_dt="2026-11-19T23:59:59Z")
    award("at-the-end", transaction_dt="2026-11-21T00:00:00Z")

    summary = export(
        "transactions", window_start="2026-11-20T00:00:00+00:00", window_end="2026-11-21T00:00:00+00:00"
    )

    table = warehouse.rows("perkville_transactions")
    assert set(table) == {txn["transaction_id"] for txn in inside}
    assert (summary["rows_read"], summary["inserted"], summary["outside_window"]) == (3, 3, 0)
    row = table[inside[0]["transaction_id"]]
    assert row["connection_id"] == seed.CUSTOMER_CONNECTION_ID
    assert row["perk_id"] == seed.CHECKIN_PERK_ID
    assert row["trans_source_id"] == "in-0"
    assert pendulum.parse(row["transaction_dt"]) == pendulum.datetime(2026, 11, 20, 10)


def test_a_perkville_that_ignores_the_window_filter_still_exports_only_the_window(
    sandbox, warehouse, export, award, proxy
):
    inside = award("inside", transaction_dt="2026-11-20T12:00:00Z")
    outside = {**award("outside", transaction_dt="2026-11-22T12:00:00Z"), "transaction_id": 99999}

    def ignore_the_filter(method: str, path: str, status: int, data: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/v2/transactions/":
            data["objects"].append(outside)
        return status, data

    proxy.rewrite = ignore_the_filter
    summary = export("transactions", window_start="2026-11-20", window_end="2026-11-21")

    assert set(warehouse.rows("perkville_transactions")) == {inside["transaction_id"]}
    assert (summary["rows_read"], summary["inserted"], summary["outside_window"]) == (2, 1, 1)


def test_a_window_without_transactions_creates_the_empty_table(sandbox, warehouse, export, award):
    award("elsewhere", transaction_dt="2026-11-10T12:00:00Z")

    summary = export("transactions", window_start="2026-11-20", window_end="2026-11-21")

    assert (summary["inserted"], summary["complete"]) == (0, True)
    assert warehouse.rows("perkville_transactions") == {}
    assert warehouse.path.exists()


def test_missing_and_null_fields_become_null_and_an_unreadable_row_is_named_and_skipped(
    sandbox, warehouse, export, add_members, proxy
):
    add_members(2)

    def damage(method: str, path: str, status: int, data: Any) -> tuple[int, Any]:
        if method == "GET" and path == CONNECTIONS_PATH:
            objects = data["objects"]
            objects[0]["user"] = None
            del objects[0]["point_balance"]
            objects[1]["last_mod_dt"] = None
            objects[2]["connection_id"] = "not-a-number"
        return status, data

    proxy.rewrite = damage
    summary = export("connections")

    table = warehouse.rows("perkville_connections")
    assert set(table) == {seed.CUSTOMER_CONNECTION_ID, seed.IMPORTED_CUSTOMER_CONNECTION_ID, 5004}
    assert table[seed.CUSTOMER_CONNECTION_ID]["user_id"] is None
    assert table[seed.CUSTOMER_CONNECTION_ID]["point_balance"] is None
    assert table[seed.IMPORTED_CUSTOMER_CONNECTION_ID]["last_mod_dt"] is None
    assert table[5004]["point_balance"] == 0
    assert summary["invalid"] == 1
    assert "connection_id" in summary["invalid_rows"][0]
    assert "'not-a-number'" in summary["invalid_rows"][0]


@pytest.mark.parametrize("table", ["members; DROP TABLE x", "perk-ville", "a.b.c", "1st", "", "x" * 64])
def test_a_bad_table_name_is_refused_before_any_request(sandbox, warehouse, export, table):
    with pytest.raises(AirflowFailException, match="table"):
        export("connections", table=table)

    assert api_requests(sandbox) == 0
    assert not warehouse.path.exists()


@pytest.mark.parametrize(
    ("status", "raised_type"),
    [(500, AirflowException), (403, AirflowFailException)],
    ids=["5xx after the retries: Airflow retries", "a refusal: fails at once"],
)
def test_a_failure_mid_walk_keeps_the_committed_pages_and_says_how_far_it_got(
    sandbox, warehouse, export, add_members, proxy, status, raised_type
):
    add_members(6)
    pages_served = 0

    def fail_third_page(method: str, path: str, answer_status: int, data: Any) -> tuple[int, Any]:
        nonlocal pages_served
        if method == "GET" and path == CONNECTIONS_PATH:
            pages_served += 1
            if pages_served >= 3:
                return status, {"error_type": "server_error", "errors": {"__all__": [{"code": "boom"}]}}
        return answer_status, data

    proxy.rewrite = fail_third_page
    with pytest.raises(AirflowException) as raised:
        export("connections", page_size=3)

    assert type(raised.value) is raised_type
    message = str(raised.value)
    first_six = sorted(ledger_connections(sandbox))[:6]
    assert "stopped at page 3" in message
    assert "2 pages committed, 6 rows read: 6 inserted" in message
    assert f"last connections id committed: {first_six[-1]}" in message
    assert sorted(warehouse.rows("perkville_connections")) == first_six

    proxy.rewrite = None
    summary = export("connections", page_size=3)
    assert (summary["inserted"], summary["unchanged"]) == (2, 6)
    assert set(warehouse.rows("perkville_connections")) == set(ledger_connections(sandbox))


def test_settings_are_checked_before_anything_is_sent(sandbox, warehouse, export):
    with pytest.raises(AirflowFailException, match="resource"):
        export("perks")
    with pytest.raises(AirflowFailException, match="window_end"):
        export("transactions", window_start="2026-11-21", window_end="2026-11-20")
    with pytest.raises(AirflowFailException, match="window_start"):
        export("transactions", window_start="yesterday-ish", window_end="2026-11-20")
    with pytest.raises(AirflowFailException, match="modified_since"):
        export("transactions", modified_since="2026-11-20")
    assert api_requests(sandbox) == 0


def test_the_window_is_the_data_interval_or_else_the_last_full_business_day():
    start, end = pendulum.datetime(2026, 11, 20, 5), pendulum.datetime(2026, 11, 21, 5)
    assert export_window(start, end, timezone="America/New_York") == (start, end)

    now = pendulum.datetime(2026, 11, 22, 3, 30, tz="UTC")  # 22:30 on the 21st in New York
    start, end = export_window(None, None, timezone="America/New_York", now=now)
    assert start == pendulum.datetime(2026, 11, 20, tz="America/New_York")
    assert end == pendulum.datetime(2026, 11, 21, tz="America/New_York")


def test_modified_since_exports_only_the_connections_changed_since(sandbox, warehouse, export):
    newest = max(pendulum.parse(c["last_mod_dt"]) for c in ledger_connections(sandbox).values())

    later = export("connections", modified_since=newest.add(seconds=1).isoformat())
    assert (later["rows_read"], later["window"]["modified_since"]) == (
        0,
        newest.add(seconds=1).format("YYYY-MM-DD HH:mm:ss[Z]"),
    )
    assert warehouse.rows("perkville_connections") == {}

    since = export("connections", modified_since=newest.isoformat())
    assert since["inserted"] >= 1
    assert set(warehouse.rows("perkville_connections")) == {
        cid for cid, c in ledger_connections(sandbox).items() if pendulum.parse(c["last_mod_dt"]) >= newest
    }
