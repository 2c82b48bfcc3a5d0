"""One definition of each kind of Perkville field: how it is read back, and what SQL column holds it.

The validators of :mod:`perkville_provider.records` check what is sent; the readers here check
what comes back, with the same bounds (64-bit ids, quantities exact to 2 places, datetimes in
1970-2100 UTC), and each kind names the SQL type that holds every value its reader lets through.
So a value Perkville accepted on the way in is never refused by the export on the way out, and a
value the export lets through always fits its column: anything else makes that one row invalid.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pendulum

from perkville_provider.api_conventions import ApiConventions
from perkville_provider.records import (
    DATETIME_YEARS,
    MAX_ID,
    QUANTITY_DIGITS,
    QUANTITY_PLACES,
    exact_decimal,
)

__all__ = ["FIELD_KINDS", "MAX_TEXT_LENGTH", "FieldKind", "Kind", "Value", "sql_type"]

Kind = Literal["id", "integer", "quantity", "text", "timestamp"]
Value = int | str | decimal.Decimal | dt.datetime | None

#: The longest text the export stores: the generic ``VARCHAR`` it declares for unknown databases.
MAX_TEXT_LENGTH = 4000
MIN_INTEGER = -(2**63)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_integer(value: Any) -> int | None:
    """A signed 64-bit integer (a ``BIGINT``) from a number or digits; None for null or empty."""
    if value is None or value == "":
        return None
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,30}\s*", value)
    ):
        number = int(value)
    if number is None:
        raise ValueError(f"must be an integer, got {_shown(value)}")
    if not MIN_INTEGER <= number <= MAX_ID:
        raise ValueError(f"must fit a 64-bit integer (at most {MAX_ID}), got {_shown(value)}")
    return number


def read_id(value: Any) -> int | None:
    """An id: a positive 64-bit integer, as :func:`records.validate_positive_int` sends it."""
    number = read_integer(value)
    if number is not None and number < 1:
        raise ValueError(f"must be a positive id, got {_shown(value)}")
    return number


def read_quantity(value: Any) -> decimal.Decimal | None:
    """A quantity as the exact decimal it was sent as (2 places), never a binary float."""
    if value is None or value == "":
        return None
    return exact_decimal(value, "quantity")


def read_text(value: Any) -> str | None:
    """Text from a string or a number; NUL (which databases truncate or refuse) is refused."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be text, got {type(value).__name__}")
    text = str(value)
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")
    if len(text) > MAX_TEXT_LENGTH:
        raise ValueError(f"must be at most {MAX_TEXT_LENGTH} characters, got {len(text)}")
    return text


def read_timestamp(value: Any) -> dt.datetime | None:
    """A UTC datetime in 1970-2100 from the API's ``YYYY-MM-DD HH:MM:SS+00:00`` or any ISO 8601."""
    if value is None or value == "":
        return None
    try:
        parsed = value if isinstance(value, dt.datetime) else pendulum.parse(str(value), tz="UTC")
        if not isinstance(parsed, dt.datetime):
            if not isinstance(parsed, dt.date):
                raise ValueError
            parsed = dt.datetime(parsed.year, parsed.month, parsed.day, tzinfo=dt.UTC)
        moment = pendulum.instance(parsed, tz="UTC").in_timezone("UTC")
    except (ValueError, TypeError, OverflowError, pendulum.parsing.exceptions.ParserError):
        raise ValueError(f"must be a datetime, got {_shown(value)}") from None
    first, last = DATETIME_YEARS
    if not first <= moment.year < last:
        raise ValueError(f"must be between {first} and {last} (in UTC), got {_shown(value)}")
    return dt.datetime(*moment.timetuple()[:6], moment.microsecond, tzinfo=dt.UTC)


@dataclass(frozen=True)
class FieldKind:
    """A kind of field: its reader and its SQL type per dialect (generic types for others)."""

    kind: Kind
    read: Callable[[Any], Value]
    sql: Mapping[str, str]
    generic_sql: str


_NUMERIC = f"NUMERIC({QUANTITY_DIGITS}, {QUANTITY_PLACES})"

FIELD_KINDS: Mapping[Kind, FieldKind] = {
    "id": FieldKind(
        "id", read_id, {"sqlite": "INTEGER", "postgresql": "BIGINT", "mysql": "BIGINT"}, "BIGINT"
    ),
    "integer": FieldKind(
        "integer", read_integer, {"sqlite": "INTEGER", "postgresql": "BIGINT", "mysql": "BIGINT"}, "BIGINT"
    ),
    # SQLite has no exact decimal type: NUMERIC affinity would turn 9.99 into a binary float, so
    # the decimal's text is stored and compared.
    "quantity": FieldKind(
        "quantity", read_quantity, {"sqlite": "TEXT", "postgresql": _NUMERIC, "mysql": _NUMERIC}, _NUMERIC
    ),
    "text": FieldKind(
        "text",
        read_text,
        {"sqlite": "TEXT", "postgresql": "TEXT", "mysql": "TEXT"},
        f"VARCHAR({MAX_TEXT_LENGTH})",
    ),
    "timestamp": FieldKind(
        "timestamp",
        read_timestamp,
        {"sqlite": "TEXT", "postgresql": "TIMESTAMP WITH TIME ZONE", "mysql": "DATETIME(6)"},
        "TIMESTAMP",
    ),
}


def sql_type(kind: Kind, dialect: str) -> str:
    """The SQL type holding every value of ``kind`` in ``dialect`` (generic for an unknown one)."""
    field_kind = FIELD_KINDS[kind]
    return field_kind.sql.get(dialect, field_kind.generic_sql)


def read_relation(api: ApiConventions, value: Any, collection: str) -> int | None:
    """The id of a related object the API returned; a URI of another collection is refused.

    The value is a URI (read through the connection's ``paths``), an id, or an object with its
    ``resource_uri``.
    """
    if isinstance(value, Mapping):
        value = value.get("resource_uri")
    if value is None or value == "":
        return None
    if isinstance(value, str) and "/" in value:
        pk = api.relation_id(value, collection)
        if pk is None:
            raise ValueError(f"must be a {api.path(collection)}<id>/ URI, got {_shown(value)}")
        return read_id(pk)
    return read_id(value)
