"""Input and output forms of values, shared by the store and the seed: datetimes, references,
booleans, emails, password hashes, and the pure field validators of awards and member records.
Each parser raises ``ValidationFailed`` naming its field."""

from __future__ import annotations

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
    return parsed


# --- references ---------------------------------------------------------------------------------------


def parse_ref(value: Any, field: str, resource: str) -> int:
    """A relation given as a bare id (``5``, ``"5"``) or a relative URI (``"/v2/users/5/"``)."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str):
        text = value.strip()
        prefix = f"/v2/{resource}/"
        if text.startswith(prefix):
            text = text[len(prefix) :].rstrip("/")
        if text.isdigit() and int(text) > 0:
            return int(text)
    raise ValidationFailed.one(
        field, "invalid", f"{field} must be an id or a URI like /v2/{resource}/<id>/, got {value!r}"
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


def parse_quantity(value: Any) -> int:
    """An award's ``quantity``: a positive integer (a string of digits is taken as its number)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationFailed.one(
            "quantity", "invalid", f"quantity must be a positive integer, got {value!r}"
        )
    return value


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
