"""The SQL tables the Perkville export writes: a stable projection of the API objects.

One :class:`TableLayout` per exported resource says which columns a row has, how each is read
from the API object, and the ``CREATE TABLE`` for each SQL dialect. The projection is part of the
provider's public contract (the README documents it): columns are only ever added, never renamed.

Values are normalised on the way in so that every database stores the same thing: ids as
integers, relations (``"/v2/users/5/"``) as the related id, datetimes as UTC timestamps, a missing
or null field as NULL. A value that cannot be read (an id that is not a number, a relation URI of
the wrong resource) makes the row invalid, with the field named; the export reports it and goes on.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.sql.compiler import RESERVED_WORDS

from perkville_provider.api_conventions import ApiConventions
from perkville_provider.model.fields import FIELD_KINDS, Kind, Value, read_relation, sql_type
from perkville_provider.records import RecordValidationError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: Words no database takes unquoted as a table name (the export does not quote names).
_RESERVED = frozenset(word.lower() for word in RESERVED_WORDS) | frozenset(
    ("order", "user", "group", "table", "select", "from", "where", "key", "index", "limit", "offset")
)


class InvalidRow(ValueError):
    """An API object that cannot become a row; names the object and the field."""

    def __init__(self, key: str, field: str, message: str) -> None:
        super().__init__(f"{key}: {field}: {message}")
        self.key = key
        self.field = field


def validate_table_name(name: Any) -> str:
    """A table name as ``table`` or ``schema.table``, each part a plain SQL identifier.

    The name is put into SQL text (it cannot be a bind parameter), so anything else is refused:
    quotes, spaces, dashes, more than one dot, more than 63 characters a part (PostgreSQL's limit).
    """
    if not isinstance(name, str) or not name.strip():
        raise RecordValidationError("table", f"must be a table name, got {name!r}")
    parts = name.strip().split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.match(part) for part in parts):
        raise RecordValidationError(
            "table",
            f"{name!r} is not a table name: use letters, digits and underscores (not first), "
            "at most 63 characters, optionally prefixed by a schema and a dot",
        )
    reserved = [part for part in parts if part.lower() in _RESERVED]
    if reserved:
        raise RecordValidationError(
            "table", f"{name!r}: {reserved[0]!r} is a reserved SQL word; choose another table name"
        )
    return name.strip()


@dataclass(frozen=True)
class Column:
    """One column: its name, its kind of field and the API field it comes from.

    A relation also names the collection its URIs name (read through the connection's ``paths``).
    """

    name: str
    kind: Kind
    source: str
    description: str
    collection: str | None = None

    def read(self, value: Any, api: ApiConventions) -> Value:
        """The column's value from the API's; ``ValueError`` when the column cannot hold it."""
        if self.collection is not None:
            return read_relation(api, value, self.collection)
        return FIELD_KINDS[self.kind].read(value)


def _column(name: str, kind: Kind, description: str) -> Column:
    return Column(name, kind, name, description)


def _relation(name: str, collection: str, source: str, description: str) -> Column:
    return Column(name, "id", source, description, collection)


@dataclass(frozen=True)
class TableLayout:
    """How one API resource becomes rows: the columns, the key, and the DDL per dialect."""

    resource: str
    key: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        """The columns' names, in table order (the key first)."""
        return tuple(column.name for column in self.columns)

    def row(self, obj: Mapping[str, Any], position: int, api: ApiConventions) -> tuple[Value, ...]:
        """The row of one API object; raises :class:`InvalidRow` naming the object and the field."""
        key_column = self.columns[0]
        key = repr(obj.get(key_column.source))
        label = f"{self.resource} {key if len(key) <= 40 else key[:37] + '...'} (#{position} of the walk)"
        values: list[Value] = []
        for column in self.columns:
            try:
                values.append(column.read(obj.get(column.source), api))
            except ValueError as error:
                raise InvalidRow(label, column.source, str(error)) from None
        if values[0] is None:
            raise InvalidRow(label, key_column.source, "is missing: the row has no id to upsert on")
        return tuple(values)

    def create_table_sql(self, table: str, dialect: str) -> str:
        """``CREATE TABLE IF NOT EXISTS`` for ``dialect`` (generic types for an unknown one)."""
        columns = ",\n    ".join(
            f"{column.name} {sql_type(column.kind, dialect)}"
            f"{' NOT NULL PRIMARY KEY' if column.name == self.key else ''}"
            for column in self.columns
        )
        return f"CREATE TABLE IF NOT EXISTS {table} (\n    {columns}\n)"


CONNECTIONS = TableLayout(
    resource="connections",
    key="connection_id",
    columns=(
        _column("connection_id", "id", "the connection's id (the key)"),
        _relation("business_id", "businesses", "business", "the business"),
        _relation("user_id", "users", "user", "the customer's Perkville user"),
        _column("user_email", "text", "the customer's primary email"),
        _column("status", "text", "IMPORTED, PENDING, ACTIVE or INACTIVE"),
        _column("point_balance", "integer", "points the customer can spend now"),
        _column("lifetime_earned_points", "integer", "points ever earned"),
        _relation("home_location_id", "locations", "home_location", "the customer's home location"),
        _column("external_membership_status", "text", "membership status from the gym's system"),
        _column("external_membership_type", "text", "membership type from the gym's system"),
        _column("external_join_dt", "timestamp", "membership start (UTC)"),
        _column("external_cancel_dt", "timestamp", "membership end (UTC)"),
        _column("last_transaction_dt", "timestamp", "the customer's last transaction (UTC)"),
        _column("last_mod_dt", "timestamp", "last change of the connection in Perkville (UTC)"),
    ),
)

TRANSACTIONS = TableLayout(
    resource="transactions",
    key="transaction_id",
    columns=(
        _column("transaction_id", "id", "the transaction's id (the key)"),
        _relation("business_id", "businesses", "business", "the business"),
        _relation("user_id", "users", "user", "the customer's Perkville user"),
        _relation("connection_id", "connections", "connection", "the customer's connection"),
        _relation("perk_id", "perks", "perk", "the perk earned or redeemed"),
        _relation("location_id", "locations", "location", "where it happened"),
        _column("title", "text", "the perk's title at the time"),
        _column("classification", "text", "EARN or REDEEM"),
        _column("points", "integer", "points per unit"),
        _column("quantity", "quantity", "units, an exact decimal of 2 places (9.99 dollars)"),
        _column("transaction_dt", "timestamp", "when it happened (UTC)"),
        _column("transaction_status", "text", "ACTIVE, or another status Perkville gives"),
        _column("trans_source_id", "text", "the sender's idempotency key"),
    ),
)

LAYOUTS: dict[str, TableLayout] = {layout.resource: layout for layout in (CONNECTIONS, TRANSACTIONS)}


def comparable(value: Any) -> Any:
    """A stored or projected value in one form, so a row read back compares equal to the row written.

    Drivers give back what their column type holds: SQLite the ISO text of a timestamp and of a
    quantity, PostgreSQL an aware datetime and a ``Decimal``; integers may come back as text from
    a TEXT-typed legacy column.
    """
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        value = decimal.Decimal(repr(value))
    if isinstance(value, decimal.Decimal):
        return str(value.quantize(_CENT)) if value == value.quantize(_CENT) else str(value)
    text = str(value)
    return int(text) if re.fullmatch(r"-?[0-9]+", text) else text


_CENT = decimal.Decimal("0.01")
