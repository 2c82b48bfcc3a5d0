"""The doctor's read-only guard: an adapter under the hook's session that refuses every write.

The doctor must never change anything on a real Perkville, so the rule is enforced where every
request passes, not by the probes' good manners: the adapter refuses any method other than GET,
HEAD or OPTIONS before a byte is sent, except a POST to the connection's token URL (the password
grant a connection without a stored token needs to authenticate). It also keeps the log the report
shows: each request's method, path, status, round-trip time and rate-limit headers (never a header
that could carry a secret, never a body).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter

from perkville_provider.exceptions import PerkvilleConfigurationError
from perkville_provider.redaction import redact_text

__all__ = ["READ_METHODS", "Exchange", "ReadOnlyAdapter", "WriteRefused"]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Headers a server may announce its rate limit in (IETF draft, GitHub/Twitter style, Retry-After).
_RATE_HEADER = re.compile(r"^(x-)?rate-?limit|^retry-after$", re.IGNORECASE)


class WriteRefused(PerkvilleConfigurationError):
    """The doctor tried to send a write; refused before anything left the machine."""


@dataclass(frozen=True)
class Exchange:
    """One request the doctor sent and how it was answered (``status`` None: no answer)."""

    method: str
    path: str
    status: int | None
    seconds: float
    rate_headers: dict[str, str] = field(default_factory=dict)
    grant: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The exchange as JSON-ready data."""
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "ms": round(self.seconds * 1000, 1),
            "rate_headers": self.rate_headers,
            "grant": self.grant,
        }


def _same_endpoint(url: str, other: str) -> bool:
    a, b = urlsplit(url), urlsplit(other)
    return (a.scheme, a.netloc.lower(), a.path.rstrip("/")) == (
        b.scheme,
        b.netloc.lower(),
        b.path.rstrip("/"),
    )


def _shown_path(url: str) -> str:
    """The request's path and query as shown in the report, secrets redacted."""
    parts = urlsplit(url)
    return redact_text(parts.path + (f"?{parts.query}" if parts.query else ""), limit=300)


class ReadOnlyAdapter(BaseAdapter):
    """Wraps the hook's adapter: reads go through, the token grant goes through, nothing else does.

    :param inner: the hook's own adapter (deadlines, pooling)
    :param token_url: the one URL a POST may go to (the connection's password grant)
    """

    def __init__(self, inner: BaseAdapter, token_url: str) -> None:
        super().__init__()
        self.inner = inner
        self.token_url = token_url
        self.exchanges: list[Exchange] = []
        self.grant_answers: list[requests.Response] = []
        #: The latest answer: a probe reads an error's body from it (the typed error keeps no body).
        self.last_answer: requests.Response | None = None
        self._lock = threading.Lock()

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send a read or the token grant through the inner adapter; refuse anything else unsent."""
        method = (request.method or "").upper()
        url = request.url or ""
        grant = method == "POST" and _same_endpoint(url, self.token_url)
        if method not in READ_METHODS and not grant:
            raise WriteRefused(
                f"perkville-provider doctor sends only reads; refused {method} {urlsplit(url).path} "
                "before sending it"
            )
        started = time.monotonic()
        try:
            response = self.inner.send(
                request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )
        except Exception:
            self._log(Exchange(method, _shown_path(url), None, time.monotonic() - started, grant=grant))
            raise
        headers = {
            name: redact_text(value, limit=100)
            for name, value in response.headers.items()
            if _RATE_HEADER.search(name)
        }
        self._log(
            Exchange(
                method, _shown_path(url), response.status_code, time.monotonic() - started, headers, grant
            )
        )
        with self._lock:
            self.last_answer = response
            if grant:
                self.grant_answers.append(response)
        return response

    def _log(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def close(self) -> None:
        """Close the inner adapter's pools."""
        self.inner.close()
