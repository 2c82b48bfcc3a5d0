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

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.models import DEFAULT_REDIRECT_LIMIT

__all__ = ["DEFAULT_API_URL", "base_url_of", "build_session"]

DEFAULT_API_URL = "https://api.perkville.com"


def base_url_of(connection: Any) -> str:
    """The API's base URL from a connection's host, schema and port.

    HttpHook's rule, except that a host without a scheme means HTTPS (HttpHook assumes HTTP).

    :param connection: an Airflow connection
    :return: ``scheme://host[:port]``
    """
    host = connection.host or DEFAULT_API_URL
    url = host if "://" in host else f"{connection.schema or 'https'}://{host}"
    return f"{url}:{connection.port}" if connection.port else url


def build_session(extra: Mapping[str, Any], *, adapter: HTTPAdapter, auth: AuthBase) -> requests.Session:
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
