"""Connections and hooks pointing at the hostile test server (``tests/helpers/hostile_server.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from perkville_provider.auth import clear_token_cache
from perkville_provider.hooks.perkville import PerkvilleHook
from perkville_provider.transport import RetryPolicy
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


@pytest.fixture
def hostile_hook(hostile_server, monkeypatch) -> Callable[..., PerkvilleHook]:
    """A hook on a connection to the hostile server (``grant=True`` for the password grant)."""
    clear_token_cache()

    def make(
        conn_id: str = "perkville_hostile",
        *,
        grant: bool = False,
        hook_kwargs: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> PerkvilleHook:
        value = hostile_connection(hostile_server, grant=grant, **overrides)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
        return PerkvilleHook(perkville_conn_id=conn_id, **{"retry_policy": QUICK, **(hook_kwargs or {})})

    yield make
    clear_token_cache()


def grant_script(token: str = GRANTED) -> Callable[[Any], None]:
    """A token endpoint that grants ``token``."""
    return lambda exchange: exchange.json(200, {"access_token": token, "token_type": "Bearer"})
