"""Where the bearer token comes from: a pre-issued token, or one password grant per process.

Perkville's tokens do not expire, so a grant is worth keeping: the first hook that needs a token
for a connection runs the Resource Owner Password grant, and every other hook and thread in the
process reuses it. The cache is keyed by the connection id and a fingerprint of the credentials,
so editing the connection's password or client starts a new grant. A 401 on a granted token
(revoked, or the server forgot it) triggers one new grant, shared by all threads that saw it.

A circuit breaker keeps a broken account from being hammered: when the token granted after a 401
is refused too, or when the token endpoint refuses the credentials, the provider remembers it and
every later call for these credentials fails at once with one clear error, without a request
(a storm of password grants can lock the staff account).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests

from perkville_provider.exceptions import (
    PerkvilleAuthenticationError,
    PerkvilleCircuitOpenError,
    PerkvilleConfigurationError,
    error_details,
    error_from_response,
)
from perkville_provider.redaction import register_client_credentials, register_secret

if TYPE_CHECKING:
    from perkville_provider.transport import Delivery

__all__ = [
    "DEFAULT_TOKEN_URL",
    "Credentials",
    "GrantSender",
    "TokenProvider",
    "clear_token_cache",
    "password_grant",
    "token_provider",
]

DEFAULT_TOKEN_URL = "https://www.perkville.com/api/token/"  # noqa: S105 (a URL)

#: What each OAuth error code means for the person fixing the Airflow connection.
_GRANT_ERROR_HINTS = {
    "invalid_grant": "Perkville refused the username or password (the connection's login and password)",
    "invalid_client": "Perkville refused the API client (the client_id and client_secret extras)",
    "invalid_scope": "Perkville refused the requested scope (the connection's scope extra)",
    "unsupported_grant_type": "Perkville does not accept the password grant for this client",
    "invalid_request": "Perkville found the token request incomplete",
}


@dataclass(frozen=True)
class Credentials:
    """What a connection says about authentication. ``repr`` hides every secret."""

    conn_id: str
    token_url: str = DEFAULT_TOKEN_URL
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    scope: str | None = None
    token: str | None = field(default=None, repr=False)

    def fingerprint(self) -> str:
        """A digest of everything that decides which token a grant returns."""
        parts = (self.token_url, self.username, self.password, self.client_id, self.client_secret, self.scope)
        text = "\x1f".join(part or "" for part in parts)
        return hashlib.sha256(text.encode()).hexdigest()

    def mask(self) -> None:
        """Register every secret and its derived forms with the masker, before anything can log it."""
        register_secret(self.password)
        register_secret(self.token)
        register_client_credentials(self.client_id, self.client_secret)

    def missing_for_grant(self) -> list[str]:
        """What a password grant needs that the connection lacks (empty when nothing)."""
        needed = {
            "login (username)": self.username,
            "password": self.password,
            "client_id extra": self.client_id,
            "client_secret extra": self.client_secret,
        }
        return [name for name, value in needed.items() if not value]


GrantSender = Callable[[str, dict[str, str], tuple[str, str]], "Delivery"]
"""Posts a form to the token URL with HTTP Basic client auth: (url, form, (client_id, secret))."""


def password_grant(credentials: Credentials, send: GrantSender) -> str:
    """Run the Resource Owner Password grant once and return the new token (already masked)."""
    missing = credentials.missing_for_grant()
    if missing:
        raise PerkvilleAuthenticationError(
            f"connection {credentials.conn_id!r} has no token extra and cannot run the password grant: "
            f"missing {', '.join(missing)}"
        )
    form = {
        "grant_type": "password",
        "username": credentials.username or "",
        "password": credentials.password or "",
        "client_id": credentials.client_id or "",
    }
    if credentials.scope:
        form["scope"] = credentials.scope
    delivery = send(
        credentials.token_url, form, (credentials.client_id or "", credentials.client_secret or "")
    )
    response = delivery.response
    if response.status_code != 200:
        raise _grant_error(credentials, response)
    token = _access_token(response)
    if token is None:
        raise PerkvilleConfigurationError(
            f"the token endpoint of connection {credentials.conn_id!r} answered 200 without a usable "
            "access_token (missing, null, empty, not text, or with a control character inside); "
            "check the oauth_url extra",
            status=response.status_code,
            method="POST",
            path=urlsplit(response.url).path,
        )
    register_secret(token)
    return token


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _access_token(response: requests.Response) -> str | None:
    """The granted token, stripped of surrounding whitespace; None when it is not a usable one."""
    body = _json_or_none(response)
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str):
        return None
    token = token.strip()
    if not token or _CONTROL.search(token):
        register_secret(token)
        return None
    return token


def _grant_error(credentials: Credentials, response: requests.Response) -> Exception:
    details = error_details(_json_or_none(response))
    code = details[0].code if details else ""
    hint = _GRANT_ERROR_HINTS.get(code, "the token grant failed")
    error = error_from_response(response, hint=f"{hint}; check connection {credentials.conn_id!r}")
    if response.status_code not in (400, 403):
        return error
    return PerkvilleAuthenticationError(
        error.message, status=error.status, details=error.details, method=error.method, path=error.path
    )


def _json_or_none(response: requests.Response) -> object:
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


class TokenProvider:
    """The token for one connection in this process: pre-issued, or granted once and shared."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._token: str | None = credentials.token or None
        self._replaced: str | None = None
        self._refusal: PerkvilleAuthenticationError | None = None
        self._lock = threading.Lock()
        self.grants = 0

    @property
    def pre_issued(self) -> bool:
        """Whether the token comes from the connection (never re-granted here)."""
        return bool(self.credentials.token)

    def token(self, send: GrantSender) -> str:
        """The current token, running the grant if no thread has yet."""
        token = self._token
        if token is not None:
            return token
        with self._lock:
            self._raise_if_open()
            if self._token is None:
                self._token = self._grant(send)
            return self._token

    def replace_refused(self, refused: str, send: GrantSender) -> str | None:
        """After a 401 on ``refused``: a fresh grant (once, whatever the threads).

        None when the token was pre-issued and nothing here can replace it.

        :raises PerkvilleCircuitOpenError: ``refused`` was itself the replacement of a refused
            token (Perkville refuses every token of this account), or the breaker is open
        """
        if self.pre_issued:
            return None
        with self._lock:
            self._raise_if_open()
            if self._token != refused:
                return self._token
            if refused == self._replaced:  # granted after a 401, and refused before any call took it
                self._open(
                    f"Perkville refused the token granted for connection {self.credentials.conn_id!r} "
                    "right after a new grant too; no more grants are run in this process (check the "
                    "staff account and the API client)"
                )
            self._token = self._grant(send)
            self._replaced = self._token
            return self._token

    def confirm(self, token: str) -> None:
        """A call with ``token`` was accepted: a later refusal of it may be answered by a new grant."""
        if token == self._replaced:
            with self._lock:
                if token == self._replaced:
                    self._replaced = None

    def _grant(self, send: GrantSender) -> str:
        try:
            token = password_grant(self.credentials, send)
        except PerkvilleAuthenticationError as error:
            if error.status is not None:
                self._refusal = error
                self._token = None
            raise
        self.grants += 1
        return token

    def _open(self, message: str) -> None:
        self._refusal = PerkvilleCircuitOpenError(message, status=401)
        self._token = None
        raise self._refusal

    def _raise_if_open(self) -> None:
        refusal = self._refusal
        if refusal is not None:
            raise PerkvilleCircuitOpenError(
                f"{refusal.message} (not asked again: connection {self.credentials.conn_id!r} is "
                "refused until it changes or the process restarts)",
                status=refusal.status,
                method=refusal.method,
                path=refusal.path,
            )


_PROVIDERS: dict[tuple[str, str], TokenProvider] = {}
_PROVIDERS_LOCK = threading.Lock()


def token_provider(credentials: Credentials) -> TokenProvider:
    """The process-wide provider for these credentials (pre-issued tokens are not shared)."""
    credentials.mask()
    if credentials.token:
        return TokenProvider(credentials)
    key = (credentials.conn_id, credentials.fingerprint())
    with _PROVIDERS_LOCK:
        provider = _PROVIDERS.get(key)
        if provider is None:
            provider = _PROVIDERS[key] = TokenProvider(credentials)
        return provider


def clear_token_cache() -> None:
    """Forget every granted token in this process (tests, and the CLI's forced grant)."""
    with _PROVIDERS_LOCK:
        _PROVIDERS.clear()
