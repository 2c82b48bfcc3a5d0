"""Connection -> base URL and pooled session, built here and not through HttpHook's private methods.

HttpHook builds its session in private methods that change between releases (6.3 changed
``_set_base_url``) and that do what a Perkville connection must not: send every unknown extra as
a header (some extras are secrets) and send the login and password as basic auth. This module reads
the same connection fields and the same TLS, proxy and redirect extras that HttpHook documents,
and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import BaseAdapter
from requests.auth import AuthBase
from requests.models import DEFAULT_REDIRECT_LIMIT

from perkville_provider.exceptions import PerkvilleConfigurationError

__all__ = ["DEFAULT_API_URL", "base_url_of", "build_session"]

DEFAULT_API_URL = "https://api.perkville.com"


def base_url_of(connection: Any, conn_id: str | None = None) -> str:
    """The API's base URL from a connection's host, schema and port.

    HttpHook's rule, except that a host without a scheme means HTTPS (HttpHook assumes HTTP), and
    that the port goes into the URL's authority (not after a path) and must agree with a port the
    host already names. The Port field is shown in the form because Airflow 3.3.2's Test button
    sends ``port: 0`` for a connection without one, which its API refuses; so a port equal to the
    scheme's default, or 0 (that button's "none"), changes nothing.

    :param connection: an Airflow connection
    :param conn_id: the connection's id, for the error (default ``connection.conn_id``)
    :return: ``scheme://host[:port][/path]``
    :raises PerkvilleConfigurationError: a port that is not 1..65535 or differs from the host's
    """
    conn_id = conn_id or getattr(connection, "conn_id", None)
    host = connection.host or DEFAULT_API_URL
    url = host if "://" in host else f"{connection.schema or 'https'}://{host}"
    port = connection.port
    if port in (None, "", 0, "0"):
        return url
    if isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536:
        raise PerkvilleConfigurationError(
            f"connection {conn_id!r}: the port field must be 1 to 65535, got {port!r}"
        )
    parts = urlsplit(url)
    try:
        named = parts.port
    except ValueError:
        named = None
    if named is not None:
        if named != int(port):
            raise PerkvilleConfigurationError(
                f"connection {conn_id!r}: the port field {port} differs from the port {named} of the host "
                f"{host!r}; give the same port, or leave the port out of one of them"
            )
        return url
    if _DEFAULT_PORTS.get(parts.scheme) == int(port):
        return url
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{int(port)}"))


_DEFAULT_PORTS = {"https": 443, "http": 80}


def build_session(extra: Mapping[str, Any], *, adapter: BaseAdapter, auth: AuthBase) -> requests.Session:
    """A session with the connection's TLS, proxy and redirect settings; no extra becomes a header.

    :param extra: the connection's extras (``proxies``/``proxy``, ``verify``/``verify_ssl``, ``cert``,
        ``stream``, ``max_redirects``, ``trust_env`` are read, as HttpHook reads them)
    :param adapter: the pooled adapter, mounted for both schemes
    :param auth: what signs each request
    :return: the configured session
    """
    session = requests.Session()
    session.auth = auth
    session.proxies = extra.get("proxies", extra.get("proxy")) or {}
    session.stream = extra.get("stream", False)
    session.verify = extra.get("verify", extra.get("verify_ssl", True))
    session.cert = extra.get("cert")
    session.max_redirects = int(extra.get("max_redirects", DEFAULT_REDIRECT_LIMIT))
    session.trust_env = extra.get("trust_env", True)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
