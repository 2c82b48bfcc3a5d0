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
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pendulum

from perkville_provider.records import RecordValidationError

ColumnType = Literal["id", "integer", "text", "timestamp"]
Value = int | str | dt.datetime | None

#: column types per SQL dialect (SQLAlchemy dialect names); anything else gets the generic types
DIALECT_TYPES: dict[str, dict[ColumnType, str]] = {
    "sqlite": {"id": "INTEGER", "integer": "INTEGER", "text": "TEXT", "timestamp": "TEXT"},
    "postgresql": {
        "id": "BIGINT",
        "integer": "BIGINT",
        "text": "TEXT",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
    },
    "mysql": {"id": "BIGINT", "integer": "BIGINT", "text": "VARCHAR(255)", "timestamp": "DATETIME(0)"},
}
GENERIC_TYPES: dict[ColumnType, str] = {
    "id": "BIGINT",
    "integer": "BIGINT",
    "text": "VARCHAR(255)",
    "timestamp": "TIMESTAMP",
}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_URI = re.compile(r"^/v2/(?P<resource>[a-z-]+)/(?P<id>[0-9]+)/?$")


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
    return name.strip()


def as_int(value: Any, field: str) -> int | None:
    """An integer from a number or digits; None for null or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value.strip())
    raise ValueError(f"must be an integer, got {value!r}")


def as_text(value: Any, field: str) -> str | None:
    """Text from a string or a number; None for null."""
    if value is None:
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"must be text, got {type(value).__name__}")


def as_utc(value: Any, field: str) -> dt.datetime | None:
    """A UTC datetime from the API's ``YYYY-MM-DD HH:MM:SS+00:00`` (or any ISO 8601; naive is UTC)."""
    if value is None or value == "":
        return None
    try:
        parsed = pendulum.parse(str(value), tz="UTC") if not isinstance(value, dt.datetime) else value
    except (ValueError, TypeError, pendulum.parsing.exceptions.ParserError):
        raise ValueError(f"must be a datetime, got {value!r}") from None
    if not isinstance(parsed, dt.datetime):
        if isinstance(parsed, dt.date):
            parsed = dt.datetime(parsed.year, parsed.month, parsed.day, tzinfo=dt.UTC)
        else:
            raise ValueError(f"must be a datetime, got {value!r}")
    moment = pendulum.instance(parsed, tz="UTC").in_timezone("UTC")
    return dt.datetime(*moment.timetuple()[:6], moment.microsecond, tzinfo=dt.UTC)


def relation_id(resource: str) -> Callable[[Any, str], int | None]:
    """Reads a relation: a URI of ``resource`` (``/v2/users/5/``), a bare id, or an object with either."""

    def read(value: Any, field: str) -> int | None:
        if isinstance(value, Mapping):
            value = value.get("resource_uri") or value.get(f"{field}_id")
        if value is None or value == "":
            return None
        if isinstance(value, str) and value.strip().startswith("/"):
            match = _URI.match(value.strip())
            if match is None or match["resource"] != resource:
                raise ValueError(f"must be a /v2/{resource}/<id>/ URI, got {value!r}")
            return int(match["id"])
        return as_int(value, field)

    return read


@dataclass(frozen=True)
class Column:
    """One column: its name, its type, the API field it comes from and how that is read."""

    name: str
    type: ColumnType
    source: str
    read: Callable[[Any, str], Value]
    description: str


def _column(name: str, type_: ColumnType, description: str, source: str | None = None) -> Column:
    readers: dict[ColumnType, Callable[[Any, str], Value]] = {
        "id": as_int,
        "integer": as_int,
        "text": as_text,
        "timestamp": as_utc,
    }
    return Column(name, type_, source or name, readers[type_], description)


def _relation(name: str, resource: str, source: str, description: str) -> Column:
    return Column(name, "id", source, relation_id(resource), description)


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

    def row(self, obj: Mapping[str, Any], position: int) -> tuple[Value, ...]:
        """The row of one API object; raises :class:`InvalidRow` naming the object and the field."""
        key_column = self.columns[0]
        label = f"{self.resource} {obj.get(key_column.source)!r} (#{position} of the walk)"
        values: list[Value] = []
        for column in self.columns:
            try:
                values.append(column.read(obj.get(column.source), column.source))
            except ValueError as error:
                raise InvalidRow(label, column.source, str(error)) from None
        if values[0] is None:
            raise InvalidRow(label, key_column.source, "is missing: the row has no id to upsert on")
        return tuple(values)

    def create_table_sql(self, table: str, dialect: str) -> str:
        """``CREATE TABLE IF NOT EXISTS`` for ``dialect`` (generic types for an unknown one)."""
        types = DIALECT_TYPES.get(dialect, GENERIC_TYPES)
        columns = ",\n    ".join(
            f"{column.name} {types[column.type]}{' NOT NULL PRIMARY KEY' if column.name == self.key else ''}"
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
        _column("quantity", "integer", "units"),
        _column("transaction_dt", "timestamp", "when it happened (UTC)"),
        _column("transaction_status", "text", "ACTIVE, or another status Perkville gives"),
        _column("trans_source_id", "text", "the sender's idempotency key"),
    ),
)

LAYOUTS: dict[str, TableLayout] = {layout.resource: layout for layout in (CONNECTIONS, TRANSACTIONS)}


def comparable(value: Any) -> Any:
    """A stored or projected value in one form, so a row read back compares equal to the row written.

    Drivers give back what their column type holds: SQLite the ISO text of a timestamp, PostgreSQL
    an aware datetime; integers may come back as text from a TEXT-typed legacy column.
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
    text = str(value)
    return int(text) if re.fullmatch(r"-?[0-9]+", text) else text
