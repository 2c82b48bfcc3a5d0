"""Hook tests talk HTTP to the sandbox; these fixtures reset it, define connections and build hooks.

``SandboxControl`` is a thin client of the sandbox's ``/_sandbox/`` API (faults, settings, stats,
ledger), so assertions come from the server's own records. ``RecordingProxy`` is a loopback proxy
in front of the sandbox for the two things the sandbox cannot show: the headers a request carried,
and an API that answers a repeated ``trans_source_id`` with an error code nobody documented.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from perkville_provider.auth import clear_token_cache
from perkville_provider.hooks.perkville import PerkvilleHook
from tests.helpers.hook_sandbox import (
    FAST_RETRIES,
    RecordingProxy,
    SandboxControl,
    connection_value,
)
from tests.helpers.hostile_conn import QUICK, hostile_connection


@pytest.fixture
def sandbox_control(perkville_sandbox) -> Iterator[SandboxControl]:
    """The shared sandbox, reseeded with faults off, and no token cached in this process."""
    perkville_sandbox.admin.reset()
    clear_token_cache()
    yield SandboxControl(perkville_sandbox)
    clear_token_cache()


@pytest.fixture
def define_connection(sandbox_control, monkeypatch) -> Callable[..., str]:
    """Define ``AIRFLOW_CONN_<ID>`` pointing at the sandbox, with overrides; returns the conn id."""

    def define(conn_id: str = "perkville_default", **overrides: Any) -> str:
        value = connection_value(sandbox_control, **overrides)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
        return conn_id

    return define


@pytest.fixture
def make_hook(define_connection) -> Callable[..., PerkvilleHook]:
    """A hook on a freshly defined connection; connection overrides and hook arguments apart."""

    def make(
        conn_id: str = "perkville_default", *, hook_kwargs: dict[str, Any] | None = None, **overrides: Any
    ) -> PerkvilleHook:
        define_connection(conn_id, **overrides)
        kwargs = {"retry_policy": FAST_RETRIES, **(hook_kwargs or {})}
        return PerkvilleHook(perkville_conn_id=conn_id, **kwargs)

    return make


@pytest.fixture
def hook(make_hook) -> PerkvilleHook:
    return make_hook()


@pytest.fixture
def recording_proxy(sandbox_control) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(sandbox_control.url)
    yield proxy
    proxy.close()


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
