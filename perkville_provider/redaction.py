"""The one redaction of text that leaves the provider: server texts, exception messages, reports.

Every secret the provider handles is registered here once, with the forms a request carries it
in: the value itself, its URL-encoded forms (a form body, a query string), its JSON-escaped form,
and for the client credentials the HTTP Basic header value. Each form goes to Airflow's secrets
masker too, so the task log hides them wherever they come from. :func:`redact_text` is what every
piece of server text (an error's message, field, code, details) passes through before the
provider stores or logs it: secrets replaced, control characters escaped, length bounded.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

# Where Airflow's own common-compat provider takes it from (airflow.sdk.log re-exports the shared
# masker's; airflow.sdk.execution_time.secrets_masker is deprecated and warns on import).
from airflow.sdk.log import mask_secret, redact  # type: ignore[attr-defined]

REPLACEMENT = "***"
#: Longest server text kept whole; the rest is cut and the cut is said (a 1 MB error message
#: would otherwise become 1 MB of task log per failed record).
MAX_TEXT_CHARS = 1_000
#: Airflow's masker ignores very short secrets; these are too short to be worth masking anyway.
MIN_SECRET_CHARS = 4

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_secrets: set[str] = set()
_lock = threading.Lock()


def derived_forms(secret: str) -> list[str]:
    """The secret and the forms a request may carry it in (form-encoded, percent-encoded, JSON)."""
    forms = [secret, quote_plus(secret), quote(secret, safe=""), quote(secret), json.dumps(secret)[1:-1]]
    return [form for form in dict.fromkeys(forms) if len(form) >= MIN_SECRET_CHARS]


def basic_auth_value(username: str, password: str) -> str:
    """The credentials part of an HTTP Basic header: ``base64(username:password)``."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def register_secret(secret: str | None) -> None:
    """Mask ``secret`` and its derived forms, in Airflow's masker and in :func:`redact_text`."""
    if not secret:
        return
    _register(derived_forms(secret))


def register_client_credentials(client_id: str | None, client_secret: str | None) -> None:
    """Mask the client secret and the Basic header value built from the client id and secret."""
    if not client_secret:
        return
    register_secret(client_secret)
    _register([basic_auth_value(client_id or "", client_secret)])


def _register(forms: list[str]) -> None:
    with _lock:
        new = [form for form in forms if form not in _secrets]
        _secrets.update(new)
    for form in new:
        mask_secret(form)


def redact_text(value: Any, *, limit: int = MAX_TEXT_CHARS) -> str:
    """``value`` as text fit to store or log.

    Secrets replaced, control characters escaped, at most ``limit`` characters (the cut is marked
    with how much was dropped).
    """
    text = value if isinstance(value, str) else str(value)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REPLACEMENT)
    masked = redact(text)
    text = masked if isinstance(masked, str) else text
    text = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    if len(text) > limit:
        cut = len(text) - limit
        text = f"{text[:limit]}... ({cut} more characters cut)"
    return text


def redact_optional(value: Any, *, limit: int = MAX_TEXT_CHARS) -> str | None:
    """:func:`redact_text`, keeping None as None."""
    return None if value is None else redact_text(value, limit=limit)
