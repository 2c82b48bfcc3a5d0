"""The Perkville connection's settings, read and checked once, before any request.

Every setting the hook reads from the Airflow connection is checked here, and a bad one is a
:class:`PerkvilleConfigurationError` that names the connection and the setting (never a secret's
value): a timeout of ``-1``, ``nan`` or ``true``, an extra that is not a JSON object, a token
with a line break inside. Secrets lose surrounding whitespace (a trailing newline from a secrets
backend or a file is common) and are registered with the masker in all their derived forms.
Plain ``http://`` off loopback is refused unless the connection says ``allow_insecure_http``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from perkville_provider.api_conventions import ApiConventions, ConventionError
from perkville_provider.auth import DEFAULT_TOKEN_URL, Credentials
from perkville_provider.exceptions import PerkvilleConfigurationError
from perkville_provider.origin import insecure, registrable_domain
from perkville_provider.records import RecordValidationError, validate_positive_int, validate_ref
from perkville_provider.redaction import redact_text

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
#: An attempt's wall-clock deadline is this many read timeouts (a read timeout bounds one wait
#: for bytes, not a whole answer: a server trickling a byte a second never trips it).
DEADLINE_PER_READ_TIMEOUT = 1.5
DEFAULT_MAX_RESPONSE_BYTES = 20_000_000
DEFAULT_MAX_PAGES = 10_000
#: Seconds of nothing but 429s, or of nothing but connection failures, that stop a batch.
DEFAULT_OUTAGE_SECONDS = 300.0

#: Connection extras that configure the hook; HttpHook would otherwise send them as headers.
SETTING_EXTRAS = (
    "client_id",
    "client_secret",
    "token",
    "oauth_url",
    "token_url",
    "business_id",
    "scope",
    "timeout",
    "request_deadline",
    "max_response_bytes",
    "max_pages",
    "allow_insecure_http",
    "outage_breaker_seconds",
    "rate_limit_redis_conn_id",
    "rate_limit_redis_url",
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off", ""})


class SettingError(ValueError):
    """A bad setting: ``problem`` completes the sentence "the <setting> <problem>"."""


@dataclass(frozen=True)
class Limits:
    """How long one attempt may take and how much of an answer, or of a list walk, is read."""

    timeout: tuple[float, float] = (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)
    deadline: float = DEFAULT_READ_TIMEOUT * DEADLINE_PER_READ_TIMEOUT
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_pages: int = DEFAULT_MAX_PAGES
    outage_seconds: float = DEFAULT_OUTAGE_SECONDS


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything the hook takes from its connection.

    ``extras`` are the extras as :func:`connection_extras` reads them, for the settings read
    elsewhere (the rate budget, the session); ``repr`` hides them, as they hold secrets.
    """

    conn_id: str
    credentials: Credentials
    business_id: int | None
    api: ApiConventions
    limits: Limits
    allow_insecure_http: bool
    extras: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def check_urls(self, base_url: str) -> None:
        """Refuse a malformed URL, and plain HTTP off loopback."""
        for name, url in (("host", base_url), ("token_url", self.credentials.token_url)):
            problem = url_problem(url)
            if problem:
                raise PerkvilleConfigurationError(
                    f"connection {self.conn_id!r}: the {name} {redact_text(url)!r} is not a URL: {problem}"
                )
        if self.allow_insecure_http:
            return
        for name, url in (("host", base_url), ("oauth_url", self.credentials.token_url)):
            if insecure(url):
                raise PerkvilleConfigurationError(
                    f"connection {self.conn_id!r}: the {name} {url!r} is plain http:// off this machine, "
                    "so the token or the password would cross the network in clear text; use https:// "
                    "or set the allow_insecure_http extra to true"
                )

    def warn_about_token_domain(self, base_url: str) -> None:
        """A token URL on another domain than the API's is most often a typo, or worse."""
        if self.credentials.token:
            return
        api = registrable_domain(urlsplit(base_url).hostname or "")
        token = registrable_domain(urlsplit(self.credentials.token_url).hostname or "")
        if api and token and api != token:
            log.warning(
                "Connection %r sends the password to %s but the API is on %s: the token URL's "
                "registrable domain differs from the API's; check the oauth_url extra",
                self.conn_id,
                token,
                api,
            )


def url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as an API or token URL (None when it is usable)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "it must start with https:// (or http://)"
    if not parts.hostname:
        return "it has no host name"
    if any(char.isspace() or ord(char) < 32 for char in parts.netloc):
        return "the host name holds spaces or control characters"
    return None


def timeout_pair(value: Any) -> tuple[float, float]:
    """A (connect, read) pair in seconds from a number, a numeric string, a pair, or None."""
    if value is None or value == "":
        return (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise SettingError(f"must be a number of seconds or a [connect, read] pair, got {value!r}")
        connect, read = (positive_seconds(part) for part in value)
        return (connect, read)
    read = positive_seconds(value)
    return (min(DEFAULT_CONNECT_TIMEOUT, read), read)


def positive_seconds(value: Any) -> float:
    """A finite, positive number of seconds (``true``, ``nan``, ``inf``, ``0`` and ``-1`` are not)."""
    number = _number(value)
    if number is None or not math.isfinite(number) or number <= 0:
        raise SettingError(f"must be a positive, finite number of seconds, got {value!r}")
    return number


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def positive_count(value: Any) -> int:
    """A positive whole number (a count of bytes or pages)."""
    try:
        return validate_positive_int(value, "value")
    except RecordValidationError:
        raise SettingError(f"must be a positive whole number, got {value!r}") from None


def flag(value: Any) -> bool:
    """A flag, also as text (``"true"``, ``"no"``...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise SettingError(f"must be true or false, got {value!r}")


def text_setting(value: Any, *, secret: bool = False) -> str | None:
    """A text setting with surrounding whitespace stripped; None when absent or empty.

    A secret's value is never shown in the error; one that is blank (only whitespace), not text,
    or holds a control character inside is refused (it would break the HTTP header it goes in).
    """
    if value is None or value == "":
        return None
    shown = "" if secret else f", got {value!r}"
    if not isinstance(value, str):
        raise SettingError(f"must be text, got a {type(value).__name__}")
    text = value.strip()
    if not text:
        raise SettingError("is blank (only whitespace); remove it or give a value")
    if _CONTROL.search(text):
        raise SettingError(f"holds a control character (a line break, a tab, NUL...) inside{shown}")
    return text


def connection_extras(connection: Any, conn_id: str) -> dict[str, Any]:
    """The connection's extras as settings: a JSON object, its null values dropped.

    Airflow's connection form saves a field left empty as null, which means "not set": every
    reader of the extras (these settings, the rate budget, the session) sees the setting absent.
    """
    raw = getattr(connection, "extra", None)
    if isinstance(raw, str) and raw.strip():
        try:
            json.loads(raw)
        except json.JSONDecodeError as error:
            raise PerkvilleConfigurationError(
                f"connection {conn_id!r}: the extra is not JSON ({error.msg} at character {error.pos}); "
                "it must be a JSON object of settings"
            ) from None
    extra = connection.extra_dejson
    if not isinstance(extra, Mapping):
        raise PerkvilleConfigurationError(
            f"connection {conn_id!r}: the extra must be a JSON object of settings, got a JSON "
            f"{type(extra).__name__}"
        )
    return {name: value for name, value in extra.items() if value is not None}


def read_setting(conn_id: str, name: str, read: Callable[[Any], T], value: Any, where: str = "extra") -> T:
    """``read(value)``, its :class:`SettingError` raised as an error naming the connection and the setting."""
    try:
        return read(value)
    except SettingError as error:
        raise PerkvilleConfigurationError(f"connection {conn_id!r}: the {name} {where} {error}") from None


def read_settings(connection: Any, conn_id: str, *, timeout: Any = None) -> ConnectionSettings:
    """Check every setting of ``connection``; ``timeout`` (the hook's argument) overrides the extra."""
    extra = connection_extras(connection, conn_id)
    setting = functools.partial(read_setting, conn_id)

    credentials = Credentials(
        conn_id=conn_id,
        token_url=_oauth_url(conn_id, extra),
        username=setting("login", text_setting, connection.login, "field"),
        password=setting("password", lambda v: text_setting(v, secret=True), connection.password, "field"),
        client_id=setting("client_id", text_setting, extra.get("client_id")),
        client_secret=setting(
            "client_secret", lambda v: text_setting(v, secret=True), extra.get("client_secret")
        ),
        scope=setting("scope", text_setting, extra.get("scope")),
        token=setting("token", lambda v: text_setting(v, secret=True), extra.get("token")),
    )
    credentials.mask()
    if timeout is not None:
        pair = setting("timeout", timeout_pair, timeout, "argument of the hook")
    else:
        pair = setting("timeout", timeout_pair, extra.get("timeout"))
    deadline = extra.get("request_deadline")
    limits = Limits(
        timeout=pair,
        deadline=pair[1] * DEADLINE_PER_READ_TIMEOUT
        if deadline in (None, "")
        else setting("request_deadline", positive_seconds, deadline),
        max_response_bytes=_or_default(
            extra,
            "max_response_bytes",
            DEFAULT_MAX_RESPONSE_BYTES,
            lambda v: setting("max_response_bytes", positive_count, v),
        ),
        max_pages=_or_default(
            extra, "max_pages", DEFAULT_MAX_PAGES, lambda v: setting("max_pages", positive_count, v)
        ),
        outage_seconds=setting("outage_breaker_seconds", positive_seconds, extra["outage_breaker_seconds"])
        if extra.get("outage_breaker_seconds") not in (None, "")
        else DEFAULT_OUTAGE_SECONDS,
    )
    business = extra.get("business_id")
    business_id = None if business in (None, "") else setting("business_id", lambda v: _business(v), business)
    try:
        api = ApiConventions.from_extras(extra)
    except ConventionError as error:
        raise PerkvilleConfigurationError(f"connection {conn_id!r}: {error}") from None
    return ConnectionSettings(
        conn_id=conn_id,
        credentials=credentials,
        business_id=business_id,
        api=api,
        limits=limits,
        allow_insecure_http=setting("allow_insecure_http", flag, extra.get("allow_insecure_http", False)),
        extras=extra,
    )


def _oauth_url(conn_id: str, extra: Mapping[str, Any]) -> str:
    """The token endpoint: the ``oauth_url`` extra, else its first name ``token_url``, else Perkville's.

    ``token_url`` was renamed because Airflow masks every extra whose name holds "token": the
    edit form showed the endpoint as ``***``. Both may be set only to the same URL.
    """
    url = read_setting(conn_id, "oauth_url", text_setting, extra.get("oauth_url"))
    old = read_setting(conn_id, "token_url", text_setting, extra.get("token_url"))
    if url and old and url != old:
        raise PerkvilleConfigurationError(
            f"connection {conn_id!r}: the oauth_url extra {url!r} and its old name token_url {old!r} "
            "differ; keep only oauth_url"
        )
    return url or old or DEFAULT_TOKEN_URL


def _or_default(extra: Mapping[str, Any], name: str, default: int, read: Any) -> int:
    value = extra.get(name)
    return default if value in (None, "") else read(value)


def _business(value: Any) -> int:
    try:
        return validate_ref(value, "business_id", "businesses")
    except RecordValidationError as error:
        raise SettingError(error.message) from None
