"""Where the bearer token comes from: a pre-issued token, or one password grant per process.

Perkville's tokens do not expire, so a grant is worth keeping: the first hook that needs a token
for a connection runs the Resource Owner Password grant, and every other hook and thread in the
process reuses it. The cache is keyed by the connection id and a fingerprint of the credentials,
so editing the connection's password or client starts a new grant. A 401 on a granted token
(revoked, or the server forgot it) triggers one new grant, shared by all threads that saw it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from airflow.sdk.log import mask_secret

from perkville_provider.exceptions import PerkvilleAuthenticationError, error_details, error_from_response
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
        """Register every secret with Airflow's masker, before anything can log it."""
        for secret in (self.password, self.client_secret, self.token):
            if secret:
                mask_secret(secret)

    def missing_for_grant(self) -> list[str]:
        """What a password grant needs that the connection lacks (empty when nothing)."""
        needed = {
            "login (username)": self.username,
            "password": self.password,
            "client_id extra": self.client_id,
            "client_secret extra": self.client_secret,
        }
        return [name for name, value in needed.items() if not value]


GrantSender = Callable[[str, dict[str, str], tuple[str, str]], Delivery]
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
    try:
        token = response.json()["access_token"]
    except (ValueError, KeyError, TypeError):
        raise PerkvilleAuthenticationError(
            f"the token endpoint of connection {credentials.conn_id!r} answered without an access_token",
            status=response.status_code,
            method="POST",
            path=urlsplit(response.url).path,
        ) from None
    mask_secret(token)
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
    except ValueError:
        return None


class TokenProvider:
    """The token for one connection in this process: pre-issued, or granted once and shared."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._token: str | None = credentials.token or None
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
            if self._token is None:
                self._token = password_grant(self.credentials, send)
                self.grants += 1
            return self._token

    def replace_refused(self, refused: str, send: GrantSender) -> str | None:
        """After a 401 on ``refused``: a fresh grant (once, whatever the threads).

        None when the token was pre-issued and nothing here can replace it.
        """
        if self.pre_issued:
            return None
        with self._lock:
            if self._token == refused:
                self._token = password_grant(self.credentials, send)
                self.grants += 1
            return self._token


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
