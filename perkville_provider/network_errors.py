"""What a request that got no answer ran into: where (the origin) and why (the cause).

``requests`` reports a dead API as ``ConnectionError`` and nothing more useful on the surface; the
cause is a few wrappers down (urllib3's ``reason``, an exception's argument, its context). An
operator needs the host they could not reach and one word for why: refused, DNS, TLS, timeout.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from perkville_provider.origin import Origin

__all__ = ["certificate_refused", "explicit_origin", "failure_cause", "never_sent"]


def explicit_origin(url: str) -> str:
    """``scheme://host:port`` with the port always written (``https://api.perkville.com:443``)."""
    try:
        origin = Origin.of(url)
    except ValueError:
        return "(a URL that cannot be parsed)"
    return f"{origin.scheme}://{origin.host}:{origin.port}"


def failure_cause(error: BaseException) -> str:
    """One phrase for why no answer came: ``connection refused``, ``DNS lookup failed``..."""
    causes = list(_causes(error))
    checks: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
        ((NameResolutionError, socket.gaierror), "DNS lookup failed (no such host?)"),
        (ConnectionRefusedError, "connection refused"),
        (requests.ConnectTimeout, "timed out while connecting"),
        (ssl.SSLError, "TLS handshake failed"),
        ((requests.ReadTimeout, socket.timeout, TimeoutError), "timed out waiting for the answer"),
        (ConnectionResetError, "connection reset by the server"),
        (requests.exceptions.ChunkedEncodingError, "the answer was cut off"),
    )
    for kinds, phrase in checks:
        if any(isinstance(cause, kinds) for cause in causes):
            return phrase
    return f"connection failed ({type(error).__name__})"


def never_sent(error: Exception) -> bool:
    """True when the request cannot have reached the server: it failed while connecting.

    requests wraps urllib3's errors; a refused connection or a failed DNS look-up is a
    ``NewConnectionError`` (``NameResolutionError`` is one) somewhere in that chain.
    """
    if isinstance(error, requests.ConnectTimeout):
        return True
    return any(isinstance(cause, NewConnectionError) for cause in _causes(error))


def certificate_refused(error: Exception) -> str | None:
    """Why the server's certificate failed verification, or None when that is not the failure.

    Unlike a dropped connection or an interrupted handshake, a certificate that fails
    verification fails again on every retry.
    """
    for cause in _causes(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return str(cause.verify_message or "certificate verify failed")
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it wraps: urllib3's ``reason``, an exception argument, the context."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        reason = getattr(cause, "reason", None)
        nested = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        cause = reason if isinstance(reason, BaseException) else nested or cause.__context__
