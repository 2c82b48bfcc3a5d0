"""Connections pointing at the hostile test server (``tests/helpers/hostile_server.py``)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

from perkville_provider.retries import RetryPolicy
from tests.helpers.hostile_server import HostileServer

#: Distinctive secrets, easy to grep for in anything the provider writes.
TOKEN = "PRE-ISSUED-tok-5f1c9a"
GRANTED = "GRANTED-tok-77ab0e"
PASSWORD = "pw S3cret/+&=%x"
CLIENT_SECRET = "client-S3CRET-9e2d"
CLIENT_ID = "hostile-client"
BUSINESS_ID = 9823

#: Quick retries: hostile tests are about what is (not) retried, not about waiting.
QUICK = RetryPolicy(max_attempts=3, max_elapsed=10.0, backoff_initial=0.01, backoff_max=0.02)


def hostile_connection(server: HostileServer, *, grant: bool = False, **overrides: Any) -> dict[str, Any]:
    """A connection to the hostile server: a pre-issued token, or (``grant``) the password grant."""
    extra: dict[str, Any] = {"business_id": BUSINESS_ID}
    conn: dict[str, Any] = {"conn_type": "perkville", "host": server.url}
    if grant:
        conn.update(login="staff@example.com", password=PASSWORD)
        extra.update(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_url=f"{server.url}/api/token/")
    else:
        extra["token"] = TOKEN
    extra.update(overrides.pop("extra", {}))
    conn.update(overrides)
    conn["extra"] = {name: value for name, value in extra.items() if value is not None}
    return conn


def grant_script(token: str = GRANTED) -> Callable[[Any], None]:
    """A token endpoint that grants ``token``."""
    return lambda exchange: exchange.json(200, {"access_token": token, "token_type": "Bearer"})


def derived_forms() -> list[str]:
    """Every form of the test secrets a request carries."""
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    forms = [TOKEN, GRANTED, PASSWORD, CLIENT_SECRET, basic, f"Basic {basic}"]
    for secret in (PASSWORD, CLIENT_SECRET):
        forms += [quote_plus(secret), quote(secret, safe="")]
    return list(dict.fromkeys(forms))
