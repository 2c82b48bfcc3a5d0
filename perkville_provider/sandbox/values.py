"""Input and output forms of values, shared by the store and the seed: datetimes, references,
booleans, emails and password hashes. Each parser raises ``ValidationFailed`` naming its field."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import Any

import pendulum

from perkville_provider.sandbox.errors import ValidationFailed

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_ID = 2**63 - 1
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


def hash_password(password: str) -> str:
    salt = secrets.token_hex(8)
    return f"{salt}${hashlib.sha256((salt + password).encode()).hexdigest()}"


def check_password(stored: str | None, password: str) -> bool:
    if not stored or "$" not in stored:
        return False
    salt, digest = stored.split("$", 1)
    return secrets.compare_digest(hashlib.sha256((salt + password).encode()).hexdigest(), digest)
