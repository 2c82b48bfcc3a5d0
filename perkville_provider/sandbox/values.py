"""Input and output forms of values, shared by the store and the seed: datetimes, references,
booleans, emails, password hashes, and the pure field validators of awards and member records.
Each parser raises ``ValidationFailed`` naming its field."""

from __future__ import annotations

import decimal
import hashlib
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pendulum

from perkville_provider.sandbox.errors import ErrorCollector, ValidationFailed

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_TRANS_SOURCE_ID = 255
MAX_ID = 2**63 - 1
MAX_QUANTITY = decimal.Decimal(10) ** 9
MIN_YEAR, MAX_YEAR = 1970, 2100


# --- time -------------------------------------------------------------------------------------------


def now_utc() -> datetime:
    return datetime.now(UTC)


def db_dt(value: datetime) -> str:
    """Stored form: fixed-width UTC ISO with microseconds, so text order is time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def api_dt(stored: str | None) -> str | None:
    """The API's output form, ``YYYY-MM-DD HH:MM:SS+00:00``."""
    if stored is None:
        return None
    return f"{stored[:10]} {stored[11:19]}+00:00"


def parse_dt(value: Any, field: str, default_tz: str) -> datetime:
    """ISO 8601 (``T`` or space, offset or ``Z``), ``YYYY-MM-DD HH:MMZ`` or a date; naive = ``default_tz``."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed.one(field, "invalid", f"{field} must be an ISO 8601 datetime string")
    try:
        parsed = pendulum.parse(value.strip(), tz=default_tz, strict=False)
    except (ValueError, pendulum.parsing.exceptions.ParserError) as exc:
        raise ValidationFailed.one(
            field, "invalid", f"{field} {value!r} is not an ISO 8601 datetime ({exc})"
        ) from None
    if not isinstance(parsed, datetime):
        raise ValidationFailed.one(field, "invalid", f"{field} {value!r} is not a datetime")
    try:
        year = parsed.astimezone(UTC).year
    except (OverflowError, ValueError):
        year = None
    if year is None or not MIN_YEAR <= year < MAX_YEAR:
        raise ValidationFailed.one(
            field, "invalid", f"{field} {value!r} is outside {MIN_YEAR}..{MAX_YEAR} (in UTC)"
        )
    return parsed


# --- references ---------------------------------------------------------------------------------------


def parse_ref(value: Any, field: str, resource: str) -> int:
    """A relation given as a bare id (``5``, ``"5"``) or a relative URI (``"/v2/users/5/"``).

    Ids are signed 64-bit integers: a larger one is a 400 naming the field, not a 500.
    """
    if isinstance(value, bool):
        value = None
    if isinstance(value, int) and 0 < value <= MAX_ID:
        return value
    if isinstance(value, str):
        text = value.strip()
        prefix = f"/v2/{resource}/"
        if text.startswith(prefix):
            text = text[len(prefix) :].rstrip("/")
        if text.isdigit() and 0 < int(text) <= MAX_ID:
            return int(text)
    raise ValidationFailed.one(
        field,
        "invalid",
        f"{field} must be an id (at most 2^63-1) or a URI like /v2/{resource}/<id>/, got {value!r}",
    )


def uri(resource: str, pk: int | None) -> str | None:
    return None if pk is None else f"/v2/{resource}/{pk}/"


def parse_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise ValidationFailed.one(field, "invalid", f"{field} must be true or false, got {value!r}")


def normalize_email(value: Any, field: str = "user_email") -> str:
    if not isinstance(value, str) or not EMAIL_RE.match(value.strip()):
        raise ValidationFailed.one(field, "invalid", f"{field} {value!r} is not a valid email address")
    return value.strip().lower()


# --- field validators -----------------------------------------------------------------------------


def parse_trans_source_id(value: Any) -> str:
    """An award's ``trans_source_id``: a non-empty string of at most 255 characters (a number becomes one)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value in (None, ""):
        raise ValidationFailed.one(
            "trans_source_id", "required", "trans_source_id is required (a non-empty string)"
        )
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed.one(
            "trans_source_id", "invalid", f"trans_source_id must be a non-empty string, got {value!r}"
        )
    if len(value) > MAX_TRANS_SOURCE_ID:
        raise ValidationFailed.one(
            "trans_source_id", "max_length", f"trans_source_id is longer than {MAX_TRANS_SOURCE_ID}"
        )
    return value


def parse_quantity(value: Any, mode: str = "decimal") -> int | decimal.Decimal:
    """An award's ``quantity``: positive, up to 2 places (``decimal`` mode) or whole (``integer``),
    as a number or a string, at most :data:`MAX_QUANTITY`."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        value = None
    try:
        number = decimal.Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except decimal.InvalidOperation:
        number = decimal.Decimal("NaN")
    places = 0 if mode == "integer" else 2
    if not number.is_finite() or number <= 0 or number > MAX_QUANTITY or number != round(number, places):
        kind = (
            "a positive integer" if mode == "integer" else "a positive number with at most 2 decimal places"
        )
        raise ValidationFailed.one("quantity", "invalid", f"quantity must be {kind}, got {value!r}")
    return int(number) if number == number.to_integral_value() else number


def parse_member_key(data: Mapping[str, Any]) -> dict[str, str]:
    """A member record's identity within the business: its system and its id there (ints become strings)."""
    errors = ErrorCollector()
    key: dict[str, str] = {}
    for field in ("external_system_id", "external_member_id"):
        value = data.get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            errors.add(field, "required", f"{field} is required (a non-empty string)")
        else:
            key[field] = value.strip()
    errors.raise_if_any()
    return key


# --- passwords ------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    salt = secrets.token_hex(8)
    return f"{salt}${hashlib.sha256((salt + password).encode()).hexdigest()}"


def check_password(stored: str | None, password: str) -> bool:
    if not stored or "$" not in stored:
        return False
    salt, digest = stored.split("$", 1)
    return secrets.compare_digest(hashlib.sha256((salt + password).encode()).hexdigest(), digest)
