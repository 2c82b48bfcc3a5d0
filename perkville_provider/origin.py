"""Where the token may go: the API's origin (scheme, host, port), and the TLS rule for URLs.

The bearer token is sent only to the connection's API origin. A link the API hands back
(``meta.next``, a redirect) is followed only when it stays on that origin: another host, another
port, or another scheme (a downgrade to ``http://`` above all) would carry the token elsewhere.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Second-level labels under which a country domain registers names (``example.co.uk``); a short
#: list instead of the Public Suffix List, enough for a warning.
_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "gov", "edu", "ac", "ltd", "plc"})


@dataclass(frozen=True)
class Origin:
    """An origin: scheme, lower-case host and port (the default port made explicit)."""

    scheme: str
    host: str
    port: int | None

    @classmethod
    def of(cls, url: str) -> Origin:
        """The origin of an absolute URL."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError:
            port = -1  # an unreadable port matches no origin
        return cls(scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme))

    def admits(self, url: str) -> bool:
        """Whether ``url`` (absolute, or relative to this origin) stays on this origin."""
        parts = urlsplit(url)
        if not parts.scheme and not parts.netloc:
            return True
        return Origin.of(url) == self

    def __str__(self) -> str:
        default = _DEFAULT_PORTS.get(self.scheme)
        port = "" if self.port in (None, default) else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}"


def describe_origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, for an error message (never its path or query)."""
    return str(Origin.of(url))


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address: plain HTTP there never leaves the machine."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure(url: str) -> bool:
    """An ``http://`` URL off loopback: the token or the password would cross the network in clear."""
    parts = urlsplit(url)
    return parts.scheme.lower() == "http" and not is_loopback(parts.hostname or "")


def registrable_domain(host: str) -> str:
    """The domain a host's owner registered (``perkville.com`` for ``api.perkville.com``), roughly."""
    host = host.strip("[]").lower().rstrip(".")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])
