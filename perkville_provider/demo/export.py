"""The demo's last step: the balance export DAG, and what it left in the membership database.

After the awards, one per-dollar pro-shop purchase of $9.99 is awarded through the provider's hook
(a fractional quantity), then ``perkville_balance_export`` copies every connection (with its
balance) and the last demo day's transactions into ``perkville_connections`` and
``perkville_transactions`` of the membership database. The demo prints a few rows of each, checks
every exported balance against the sandbox's ledger (the server's record, not the operator's),
and checks that the purchase's row carries its quantity as the exact decimal ``9.99``.
"""

from __future__ import annotations

import decimal
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pendulum

EXPORT_DAG_ID = "perkville_balance_export"
EXPORT_TASK_IDS = ("export_connections", "export_transactions")
CONNECTIONS_TABLE = "perkville_connections"
TRANSACTIONS_TABLE = "perkville_transactions"
PURCHASE_QUANTITY = decimal.Decimal("9.99")


def award_purchase(ledger: Mapping[str, Any], business_id: int, day: pendulum.Date, timezone: str) -> str:
    """Award one per-dollar purchase of $9.99 at noon of ``day``, through the provider's hook.

    It goes to the business's first connected customer; a re-run finds it already awarded.
    :return: the purchase's ``trans_source_id``
    """
    from perkville_provider.hooks.perkville import PerkvilleHook
    from perkville_provider.sandbox.seed import PURCHASE_PERK_ID

    emails = sorted(
        (int(c["connection_id"]), c["user_email"])
        for c in ledger["connections"]
        if _ledger_id(c["business"]) == business_id and c.get("user_email")
    )
    trans_source_id = f"MYGYM:SHOP:{day.to_date_string()}:1"
    noon = pendulum.datetime(day.year, day.month, day.day, 12, tz=timezone)
    PerkvilleHook().award_points(
        {
            "trans_source_id": trans_source_id,
            "user_email": emails[0][1],
            "perk_id": PURCHASE_PERK_ID,
            "quantity": str(PURCHASE_QUANTITY),
            "transaction_dt": noon.isoformat(),
        },
        business_id=business_id,
    )
    return trans_source_id


def exported_quantity(gym_db: Path, trans_source_id: str) -> decimal.Decimal | None:
    """The quantity the export stored for a transaction, read as the exact decimal it holds."""
    with sqlite3.connect(gym_db) as db:
        row = db.execute(
            f"SELECT quantity FROM {TRANSACTIONS_TABLE} WHERE trans_source_id = ?",  # noqa: S608
            (trans_source_id,),
        ).fetchone()
    db.close()
    return None if row is None or row[0] is None else decimal.Decimal(str(row[0]))


def export_logical_date(last_day: pendulum.Date, timezone: str) -> pendulum.DateTime:
    """The logical date of the run that exports ``last_day``: its data interval is that day."""
    return pendulum.datetime(last_day.year, last_day.month, last_day.day, tz=timezone).add(days=1)


@dataclass(frozen=True)
class BalanceCheck:
    """Exported balances compared with the ledger's, connection by connection."""

    compared: int
    mismatches: list[str]

    @property
    def ok(self) -> bool:
        return self.compared > 0 and not self.mismatches


def _ledger_id(uri: Any) -> int:
    return int(str(uri).rstrip("/").rsplit("/", 1)[-1])


def check_balances(gym_db: Path, ledger: Mapping[str, Any], business_id: int) -> BalanceCheck:
    """Every connection of the business in the ledger has its balance in the table, and no other."""
    expected = {
        int(c["connection_id"]): c["point_balance"]
        for c in ledger["connections"]
        if _ledger_id(c["business"]) == business_id
    }
    exported = dict(_query(gym_db, f"SELECT connection_id, point_balance FROM {CONNECTIONS_TABLE}"))  # noqa: S608
    mismatches = [
        f"connection {cid}: ledger {expected.get(cid)}, table {exported.get(cid)}"
        for cid in sorted(expected.keys() | exported.keys())
        if expected.get(cid) != exported.get(cid)
    ]
    return BalanceCheck(len(expected), mismatches)


def _query(gym_db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(gym_db) as db:
        rows = db.execute(sql).fetchall()
    db.close()
    return rows


def print_export(
    summaries: Mapping[str, Mapping[str, Any] | None],
    gym_db: Path,
    ledger: Mapping[str, Any],
    business_id: int,
    out: TextIO,
    *,
    rows: int = 5,
    purchase: str | None = None,
) -> BalanceCheck:
    """The export's summaries, a few rows of each table, and the balance check against the ledger.

    With ``purchase`` (the demo purchase's key), also its exported quantity, which must be exact.
    """
    print(f"\nBalance export ({EXPORT_DAG_ID}) into {gym_db.name}", file=out)
    for task_id in EXPORT_TASK_IDS:
        s = summaries.get(task_id)
        if s is None:
            print(f"  {task_id}: no summary (the task did not succeed)", file=out)
            continue
        print(
            f"  {s['table']}: {s['pages']} pages, {s['rows_read']} rows read, {s['inserted']} inserted, "
            f"{s['updated']} updated, {s['unchanged']} unchanged, {s['invalid']} invalid "
            f"in {s['elapsed_s']:.2f} s",
            file=out,
        )
    top = _query(
        gym_db,
        f"SELECT connection_id, user_email, status, point_balance FROM {CONNECTIONS_TABLE} "  # noqa: S608
        f"ORDER BY point_balance DESC, connection_id LIMIT {int(rows)}",
    )
    print(f"  {CONNECTIONS_TABLE}, highest balances:", file=out)
    for connection_id, email, status, balance in top:
        print(f"    {connection_id:>6}  {email or '-':<32} {status or '-':<9} {balance:>6} points", file=out)
    latest = _query(
        gym_db,
        f"SELECT transaction_id, connection_id, title, points * quantity, transaction_dt "  # noqa: S608
        f"FROM {TRANSACTIONS_TABLE} ORDER BY transaction_dt DESC, transaction_id DESC LIMIT {int(rows)}",
    )
    print(f"  {TRANSACTIONS_TABLE}, latest:", file=out)
    for transaction_id, connection_id, title, points, moment in latest:
        print(
            f"    {transaction_id:>6}  connection {connection_id:<6} {title:<17} "
            f"{float(points):>6g}  {moment}",
            file=out,
        )
    check = check_balances(gym_db, ledger, business_id)
    if purchase is not None:
        quantity = exported_quantity(gym_db, purchase)
        exact = quantity is not None and str(quantity) == str(PURCHASE_QUANTITY)
        print(
            f"  Per-dollar purchase {purchase}: quantity {quantity} exported"
            + (" exactly." if exact else f", NOT {PURCHASE_QUANTITY}."),
            file=out,
        )
        if not exact:
            check.mismatches.append(f"purchase {purchase}: quantity {quantity}, not {PURCHASE_QUANTITY}")
    if check.ok:
        print(f"  Balances match the sandbox ledger for all {check.compared} connections.", file=out)
    else:
        print("  BALANCES DIFFER FROM THE LEDGER:", *check.mismatches[:10], sep="\n    ", file=out)
    return check
