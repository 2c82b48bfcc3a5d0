"""The shared budget's Redis: its password never shown, and a frozen Redis never hangs a task (issue 22).

Against a real ``redis-server`` on loopback: SIGSTOP freezes it the way a network partition does
(connections open, nothing answered).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from perkville_provider.exceptions import PerkvilleConfigurationError, PerkvilleNetworkError
from perkville_provider.redaction import redact_text
from perkville_provider.redis_budget import SOCKET_TIMEOUT
from tests.helpers.redis_server import redis_server_process
from tests.helpers.stuck_calls import time_to_end

REDIS_PASSWORD = "redis-S3cret-pw-41c7"
KILL_BAR = 2.0


@pytest.mark.parametrize("url", ["reddis://:{pw}@127.0.0.1:6379/0", "redis://:{pw}@127.0.0.1:notaport/0"])
def test_a_bad_redis_url_never_shows_its_password(hostile_server, hostile_hook, url):
    """A typo in the scheme put the whole URL, password included, in test_connection's answer."""
    hostile_server.script = lambda exchange: exchange.json(200, {"business_id": 9823, "name": "Gym"})
    hook = hostile_hook(extra={"rate_limit_redis_url": url.format(pw=REDIS_PASSWORD)})

    ok, message = hook.test_connection()
    with pytest.raises(PerkvilleConfigurationError) as info:
        hook.get_business()

    assert not ok
    assert "Redis" in message
    for text in (message, str(info.value), repr(info.value)):
        assert REDIS_PASSWORD not in text
    assert not hostile_server.seen


def test_the_redis_urls_password_is_masked_once_read(hostile_server, hostile_hook):
    hook = hostile_hook(extra={"rate_limit_redis_url": f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0"})
    hook.conventions()  # reads the settings; sends nothing
    assert REDIS_PASSWORD not in redact_text(f"the url was redis://:{REDIS_PASSWORD}@127.0.0.1:1/0")


def _redis_connection(url: str, password: str) -> dict[str, Any]:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    return {"conn_type": "redis", "host": "127.0.0.1", "port": port, "password": password, "extra": {"db": 0}}


@pytest.mark.timeout(60)
def test_a_redis_connection_id_names_the_shared_budgets_redis(hostile_server, hostile_hook, monkeypatch):
    hostile_server.script = lambda exchange: exchange.json(200, {"business_id": 9823, "name": "Gym"})
    with redis_server_process() as (url, _):
        redis.Redis.from_url(url).config_set("requirepass", REDIS_PASSWORD)
        monkeypatch.setenv("AIRFLOW_CONN_BUDGET_REDIS", json.dumps(_redis_connection(url, REDIS_PASSWORD)))
        hook = hostile_hook(extra={"rate_limit_redis_conn_id": "budget_redis", "max_requests_per_second": 50})

        assert hook.get_business()["business_id"] == 9823

        client = redis.Redis.from_url(url, password=REDIS_PASSWORD)
        assert any(key.startswith(b"perkville:") for key in client.scan_iter("perkville:*"))
        assert REDIS_PASSWORD not in redact_text(f"password={REDIS_PASSWORD}")


@contextmanager
def _frozen_redis_hook(hostile_server, hostile_hook) -> Iterator[Any]:
    """A hook whose shared budget's Redis answered once, then froze (SIGSTOP)."""
    hostile_server.script = lambda exchange: exchange.json(200, {"business_id": 9823, "name": "Gym"})
    with redis_server_process() as (url, pid):
        hook = hostile_hook(extra={"rate_limit_redis_url": url, "max_requests_per_second": 50})
        assert hook.get_business()["business_id"] == 9823  # Redis well: one request goes through
        os.kill(pid, signal.SIGSTOP)
        yield hook


@pytest.mark.timeout(60)
def test_a_frozen_redis_is_a_retriable_failure_within_the_attempt_deadline(hostile_server, hostile_hook):
    """With Redis stopped (SIGSTOP), the task was still running 75 s later: no socket timeouts."""
    with _frozen_redis_hook(hostile_server, hostile_hook) as hook:
        started = time.monotonic()
        with pytest.raises(PerkvilleNetworkError) as info:
            hook.get_business()
        took = time.monotonic() - started

    assert info.value.retriable
    assert "Redis" in str(info.value)
    assert "did not answer" in str(info.value)
    assert took < 4 * SOCKET_TIMEOUT
    assert len(hostile_server.seen) == 1, "nothing is sent while the shared budget cannot be read"


@pytest.mark.timeout(60)
def test_on_kill_ends_a_task_stuck_on_a_frozen_redis_within_two_seconds(hostile_server, hostile_hook):
    with _frozen_redis_hook(hostile_server, hostile_hook) as hook:
        took, error = time_to_end(hook, lambda: True, hook.get_business)
    assert took < KILL_BAR
    assert isinstance(error, PerkvilleNetworkError)
