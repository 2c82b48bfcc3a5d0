"""Typed, normalised records for awards and members, and the validators that build them.

Validation happens before any request, so a bad record is reported with the field and the bad
value and is never sent. Nothing here talks HTTP: the hook turns an ``Award`` or a ``Member``
into a request body, and the operators use these validators to sort a batch into records to
send and records to report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pendulum

from perkville_provider.exceptions import RecordValidationError

__all__ = [
    "MAX_TRANS_SOURCE_ID_LENGTH",
    "TRANS_SOURCE_ID_SEPARATOR",
    "WRITABLE_CONNECTION_STATUSES",
    "Award",
    "Member",
    "RecordValidationError",
    "build_trans_source_id",
    "validate_award",
    "validate_aware_datetime",
    "validate_connection_status",
    "validate_date_or_datetime",
    "validate_email",
    "validate_member",
    "validate_positive_int",
]

MAX_TRANS_SOURCE_ID_LENGTH = 255
WRITABLE_CONNECTION_STATUSES = ("ACTIVE", "INACTIVE")
TRANS_SOURCE_ID_SEPARATOR = ":"
#: Ids are stored in signed 64-bit integers; a larger one can only fail on the server.
MAX_ID = 2**63 - 1
#: The longest email address SMTP allows (RFC 5321's path limit less the brackets).
MAX_EMAIL_LENGTH = 254
DEFAULT_MAX_QUANTITY = decimal.Decimal(10_000)
QUANTITY_PLACES = 2
#: A quantity's digits in all, as its SQL type ``NUMERIC(12, 2)`` holds them.
QUANTITY_DIGITS = 12
MAX_QUANTITY_MAGNITUDE = decimal.Decimal(10) ** (QUANTITY_DIGITS - QUANTITY_PLACES)
#: Datetimes outside these years (in UTC) are refused before sending: they are typos, and a server
#: that converts them to UTC can overflow.
DATETIME_YEARS = (1970, 2100)

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_USER_IDENTIFIER_HELP = "user_email, user_id, or external_member_id with external_system_id"


@dataclass(frozen=True)
class Award:
    """One points award, validated. ``trans_source_id`` is the idempotency key."""

    trans_source_id: str
    perk_id: int
    quantity: int | decimal.Decimal = 1
    user_email: str | None = None
    user_id: int | None = None
    external_member_id: str | None = None
    external_system_id: str | None = None
    location_id: int | None = None
    transaction_dt: pendulum.DateTime | None = None


@dataclass(frozen=True)
class Member:
    """One external member record, validated; upserted on (external_system_id, external_member_id)."""

    external_system_id: str
    external_member_id: str
    user_email: str
    first_name: str | None = None
    last_name: str | None = None
    external_membership_type: str | None = None
    external_membership_status: str | None = None
    external_join_dt: pendulum.Date | pendulum.DateTime | None = None
    external_cancel_dt: pendulum.Date | pendulum.DateTime | None = None
    home_location_id: int | None = None
    external_home_location_id: str | None = None


def _shown(value: Any) -> str:
    """The bad value for an error message, cut short so one huge field cannot flood a log."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _optional(record: Mapping[str, Any], field: str) -> Any:
    value = record.get(field)
    return None if _is_blank(value) else value


def validate_positive_int(value: Any, field: str) -> int:
    """An id or a count: a positive integer, given as an int, an integral float, or a digit string.

    Booleans are refused although Python counts them as ints: ``True`` is never meant as 1 here.
    Ids fit a signed 64-bit integer (:data:`MAX_ID`), as the server stores them.
    """
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float | decimal.Decimal):
        if value == value and value not in (float("inf"), float("-inf")) and int(value) == value:
            number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,30}\s*", value):
        number = int(value)
    if number is None:
        raise RecordValidationError(field, f"must be a positive integer, got {_shown(value)}")
    if number < 1:
        raise RecordValidationError(field, f"must be a positive integer (1 or more), got {_shown(value)}")
    if number > MAX_ID:
        raise RecordValidationError(field, f"must be at most {MAX_ID} (a 64-bit id), got {_shown(value)}")
    return number


def validate_ref(value: Any, field: str, collection: str) -> int:
    """The id of a related object, given as an id or as its resource URI (``/v2/perks/501/``).

    ``collection`` is the URI's collection name (``perks``); a URI of another collection is refused,
    so that a user URI is never taken for a perk.
    """
    if isinstance(value, str) and "/" in value:
        from perkville_provider.api_conventions import id_from_uri

        pk = id_from_uri(value, collection)
        if pk is None:
            raise RecordValidationError(
                field, f"must be an id or a /v2/{collection}/<id>/ URI, got {_shown(value)}"
            )
        value = pk
    return validate_positive_int(value, field)


def exact_decimal(value: Any, field: str = "quantity") -> decimal.Decimal:
    """A number as an exact decimal of at most 2 places that a ``NUMERIC(12, 2)`` holds.

    The one definition of a quantity's form, used for what is sent (:func:`validate_quantity`) and
    what is read back (the export). A float is read as the digits it prints as (``9.99``), never as
    its binary value; more than 2 places, a non-finite value or one too large is refused.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal | str):
        raise RecordValidationError(field, f"must be a number, got {_shown(value)}")
    try:
        number = decimal.Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except decimal.InvalidOperation:
        raise RecordValidationError(field, f"must be a number, got {_shown(value)}") from None
    if not number.is_finite():
        raise RecordValidationError(field, f"must be a finite number, got {_shown(value)}")
    if abs(number) >= MAX_QUANTITY_MAGNITUDE:
        raise RecordValidationError(
            field, f"is too large: must be less than {MAX_QUANTITY_MAGNITUDE}, got {_shown(value)}"
        )
    places = decimal.Decimal(1).scaleb(-QUANTITY_PLACES)
    if number != number.quantize(places, rounding=decimal.ROUND_DOWN):
        raise RecordValidationError(
            field, f"must have at most {QUANTITY_PLACES} decimal places, got {_shown(value)}"
        )
    return number.quantize(places)


def validate_quantity(value: Any, max_quantity: Any = DEFAULT_MAX_QUANTITY) -> int | decimal.Decimal:
    """A positive quantity with at most 2 decimal places, at most ``max_quantity``; exact.

    Money amounts are quantities of a per-dollar perk (``9.99``). The result is an ``int`` or a
    ``Decimal``, never a binary float (see :func:`exact_decimal`).
    """
    number = exact_decimal(value, "quantity")
    if number <= 0:
        raise RecordValidationError("quantity", f"must be a positive number, got {_shown(value)}")
    if number > decimal.Decimal(max_quantity):
        raise RecordValidationError(
            "quantity",
            f"must be at most max_quantity={max_quantity}, got {_shown(value)}",
            code="max_quantity",
        )
    return int(number) if number == number.to_integral_value() else number.normalize()


def validate_max_quantity(value: Any) -> decimal.Decimal:
    """The ``max_quantity`` setting: a positive number (default 10,000)."""
    if value is None or value == "":
        return DEFAULT_MAX_QUANTITY
    try:
        number = decimal.Decimal(str(value).strip()) if not isinstance(value, bool) else None
    except decimal.InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number <= 0:
        raise RecordValidationError("max_quantity", f"must be a positive number, got {_shown(value)}")
    return number


def _required_text(record: Mapping[str, Any], field: str, *, max_length: int | None = None) -> str:
    value = record.get(field)
    if _is_blank(value):
        raise RecordValidationError(field, "is required", code="required")
    return _text(value, field, max_length=max_length)


def _text(value: Any, field: str, *, max_length: int | None = None) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordValidationError(field, f"must be a string, got {_shown(value)}")
    text = str(value).strip()
    if _CONTROL_RE.search(text):
        raise RecordValidationError(field, f"must not contain control characters, got {_shown(text)}")
    if max_length is not None and len(text) > max_length:
        raise RecordValidationError(field, f"must be at most {max_length} characters, got {len(text)}")
    return text


def validate_email(value: Any, field: str = "user_email") -> str:
    """An email address, stripped and lower-cased (Perkville matches customers by email)."""
    if not isinstance(value, str) or not _EMAIL_RE.match(value.strip()) or _CONTROL_RE.search(value.strip()):
        raise RecordValidationError(field, f"must be an email address, got {_shown(value)}")
    if len(value.strip()) > MAX_EMAIL_LENGTH:
        raise RecordValidationError(
            field, f"must be at most {MAX_EMAIL_LENGTH} characters, got {len(value.strip())}"
        )
    return value.strip().lower()


def validate_connection_status(value: Any) -> str:
    """A connection status the API accepts on write: ACTIVE or INACTIVE (any case)."""
    status = value.strip().upper() if isinstance(value, str) else None
    if status not in WRITABLE_CONNECTION_STATUSES:
        raise RecordValidationError(
            "status", f"must be one of {', '.join(WRITABLE_CONNECTION_STATUSES)}, got {_shown(value)}"
        )
    return status


def validate_aware_datetime(value: Any, field: str) -> pendulum.DateTime:
    """A point in time with a timezone. A naive time is refused: its day is ambiguous."""
    parsed = _parse_temporal(value, field)
    if not isinstance(parsed, pendulum.DateTime):
        raise RecordValidationError(field, f"must be a date and time with a timezone, got {_shown(value)}")
    if parsed.tzinfo is None:
        raise RecordValidationError(
            field,
            f"must carry a timezone (e.g. 2024-05-01T07:30:00-04:00 or ...Z), got {_shown(value)}",
        )
    return _in_range(parsed, field, value)


def _in_range(parsed: pendulum.DateTime, field: str, value: Any) -> pendulum.DateTime:
    """Refuse a time whose UTC form falls outside :data:`DATETIME_YEARS` (or cannot be formed)."""
    first, last = DATETIME_YEARS
    try:
        year = parsed.in_timezone("UTC").year
    except (OverflowError, ValueError):
        year = None
    if year is None or not first <= year < last:
        raise RecordValidationError(
            field, f"must be between {first} and {last} (in UTC), got {_shown(value)}"
        )
    return parsed


def validate_date_or_datetime(value: Any, field: str) -> pendulum.Date | pendulum.DateTime:
    """A calendar date, or a date and time with a timezone."""
    parsed = _parse_temporal(value, field)
    if isinstance(parsed, pendulum.DateTime):
        return validate_aware_datetime(parsed, field)
    first, last = DATETIME_YEARS
    if not first <= parsed.year < last:
        raise RecordValidationError(field, f"must be between {first} and {last}, got {_shown(value)}")
    return parsed


def _parse_temporal(value: Any, field: str) -> pendulum.Date | pendulum.DateTime:
    if isinstance(value, dt.datetime):
        return pendulum.instance(value) if value.tzinfo else pendulum.naive(*value.timetuple()[:6])
    if isinstance(value, dt.date):
        return pendulum.Date(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            parsed = pendulum.parse(value.strip(), exact=True, tz=None)
        except ValueError:  # pendulum's ParserError is a ValueError
            parsed = None
        if isinstance(parsed, pendulum.DateTime | pendulum.Date):
            return parsed
    raise RecordValidationError(field, f"must be an ISO 8601 date or date-time, got {_shown(value)}")


def build_trans_source_id(*parts: Any) -> str:
    """Join parts with ':' the way Perkville's own integrations do, e.g. ``MYGYM:DT:CHECKIN:12345``.

    Each part must be non-empty and free of ':', so two different sources never build the same id.
    """
    if not parts:
        raise RecordValidationError("trans_source_id", "needs at least one part")
    texts = []
    for index, part in enumerate(parts):
        text = "" if part is None else str(part).strip()
        if not text:
            raise RecordValidationError("trans_source_id", f"part {index} is empty")
        if TRANS_SOURCE_ID_SEPARATOR in text:
            raise RecordValidationError("trans_source_id", f"part {index} contains ':': {_shown(text)}")
        texts.append(text)
    joined = TRANS_SOURCE_ID_SEPARATOR.join(texts)
    if len(joined) > MAX_TRANS_SOURCE_ID_LENGTH:
        raise RecordValidationError(
            "trans_source_id", f"must be at most {MAX_TRANS_SOURCE_ID_LENGTH} characters, got {len(joined)}"
        )
    return joined


def _user_identifier(record: Mapping[str, Any]) -> dict[str, Any]:
    email = _optional(record, "user_email")
    user_id = _optional(record, "user_id")
    member_id = _optional(record, "external_member_id")
    system_id = _optional(record, "external_system_id")
    given = [
        name
        for name, value in (("user_email", email), ("user_id", user_id), ("external_member_id", member_id))
        if value is not None
    ]
    if not given:
        blank = [name for name in ("user_email", "user_id", "external_member_id") if name in record]
        if blank:
            raise RecordValidationError(
                blank[0],
                f"is empty, and no other user identifier is given ({_USER_IDENTIFIER_HELP})",
                code="required",
            )
        raise RecordValidationError(
            "user_email", f"one user identifier is required: {_USER_IDENTIFIER_HELP}", code="required"
        )
    if len(given) > 1:
        raise RecordValidationError(
            given[1], f"give exactly one user identifier ({_USER_IDENTIFIER_HELP}), got {', '.join(given)}"
        )
    if email is not None:
        return {"user_email": validate_email(email)}
    if user_id is not None:
        return {"user_id": validate_ref(user_id, "user_id", "users")}
    if system_id is None:
        raise RecordValidationError(
            "external_system_id", "is required together with external_member_id", code="required"
        )
    return {
        "external_member_id": _text(member_id, "external_member_id", max_length=255),
        "external_system_id": _text(system_id, "external_system_id", max_length=255),
    }


#: The fields a record may carry: those of its validated form.
AWARD_FIELDS = frozenset(field.name for field in dataclasses.fields(Award))
MEMBER_FIELDS = frozenset(field.name for field in dataclasses.fields(Member))


def check_known_fields(record: Mapping[str, Any], known: frozenset[str]) -> None:
    """Refuse a record with a field nobody reads: a misspelled ``quantity`` must not award 1.

    Callers skip this when told to ignore extra fields (a SQL extract with extra columns).
    """
    unknown = sorted(str(name) for name in record if name not in known)
    if unknown:
        raise RecordValidationError(
            unknown[0],
            f"is not a field of this record (known: {', '.join(sorted(known))}); "
            "set ignore_unknown_fields=True to ignore extra fields",
            code="unknown_field",
        )


def _mapping(record: Any) -> Mapping[str, Any]:
    if not isinstance(record, Mapping):
        raise RecordValidationError("record", f"must be a mapping of fields, got {_shown(record)}")
    return record


def validate_award(
    record: Mapping[str, Any],
    *,
    default_perk_id: Any = None,
    max_quantity: Any = DEFAULT_MAX_QUANTITY,
    ignore_unknown_fields: bool = False,
) -> Award:
    """Check one award record and return it normalised; raise ``RecordValidationError`` otherwise.

    ``perk_id``, ``user_id`` and ``location_id`` may be ids or resource URIs; ``quantity`` may
    have 2 decimal places and is at most ``max_quantity``.
    """
    record = _mapping(record)
    if not ignore_unknown_fields:
        check_known_fields(record, AWARD_FIELDS)
    trans_source_id = _required_text(record, "trans_source_id", max_length=MAX_TRANS_SOURCE_ID_LENGTH)
    user = _user_identifier(record)
    perk = _optional(record, "perk_id")
    if perk is None:
        perk = default_perk_id
    if _is_blank(perk):
        raise RecordValidationError(
            "perk_id", "is required (in the record or as the default perk)", code="required"
        )
    quantity = _optional(record, "quantity")
    location = _optional(record, "location_id")
    when = _optional(record, "transaction_dt")
    return Award(
        trans_source_id=trans_source_id,
        perk_id=validate_ref(perk, "perk_id", "perks"),
        quantity=1 if quantity is None else validate_quantity(quantity, max_quantity),
        location_id=None if location is None else validate_ref(location, "location_id", "locations"),
        transaction_dt=None if when is None else validate_aware_datetime(when, "transaction_dt"),
        **user,
    )


def validate_member(
    record: Mapping[str, Any],
    *,
    external_system_id: str | None = None,
    ignore_unknown_fields: bool = False,
) -> Member:
    """Check one member record and return it normalised; raise ``RecordValidationError`` otherwise.

    The record's own ``external_system_id`` wins over the batch default. The home location is
    Perkville's (``home_location_id``: an id or URI) or the source system's
    (``external_home_location_id``, matched on the location's external id), not both.
    """
    record = _mapping(record)
    if not ignore_unknown_fields:
        check_known_fields(record, MEMBER_FIELDS)
    system_id = _optional(record, "external_system_id") or external_system_id
    if _is_blank(system_id):
        raise RecordValidationError("external_system_id", "is required", code="required")
    optional_text: dict[str, Any] = {
        field: _text(value, field, max_length=255)
        for field in ("first_name", "last_name", "external_membership_type", "external_home_location_id")
        if (value := _optional(record, field)) is not None
    }
    status = _optional(record, "external_membership_status")
    dates: dict[str, Any] = {
        field: validate_date_or_datetime(value, field)
        for field in ("external_join_dt", "external_cancel_dt")
        if (value := _optional(record, field)) is not None
    }
    home = _optional(record, "home_location_id")
    if home is not None and "external_home_location_id" in optional_text:
        raise RecordValidationError(
            "external_home_location_id", "give home_location_id or external_home_location_id, not both"
        )
    return Member(
        external_system_id=_text(system_id, "external_system_id", max_length=255),
        external_member_id=_required_text(record, "external_member_id", max_length=255),
        user_email=validate_email(_required_text(record, "user_email")),
        external_membership_status=None
        if status is None
        else _text(status, "external_membership_status", max_length=255).upper(),
        home_location_id=None if home is None else validate_ref(home, "home_location_id", "locations"),
        **optional_text,
        **dates,
    )
