"""Pytest fixtures for the Perkville sandbox: an opt-in plugin (no ``pytest11`` entry point).

Installing ``airflow-provider-perkville`` adds nothing to anyone's pytest run. A project that wants
the fixtures enables the plugin in its top-level ``conftest.py``::

    pytest_plugins = ["perkville_provider.sandbox.pytest_plugin"]

or per run with ``pytest -p perkville_provider.sandbox.pytest_plugin``. Every fixture name starts
with ``perkville_``, so none collides with a project's own fixtures:

``perkville_sandbox`` (session scope)
    One sandbox server (a child process on a free loopback port, in-memory SQLite) for the whole
    run. Yields a ``SandboxHandle``: ``base_url``, ``token_url``, the demo credentials
    (``admin_username``/``admin_password``, ``frontdesk_*``, ``customer_*``, ``client_id``/
    ``client_secret``, ``business_id``), ``token()``, ``admin`` (``set_faults(**kw)``,
    ``clear_faults()``, ``set_settings(**kw)``, ``stats()``, ``ledger()``, ``reset()``,
    ``revoke_token(tok)``), ``airflow_connection(**overrides)`` and
    ``airflow_conn_env_value(**overrides)``.

``perkville_sandbox_connection`` (function scope)
    The session server, reset for this test: reseeded, faults off, settings default, stats
    cleared; and ``AIRFLOW_CONN_PERKVILLE_DEFAULT`` set (via ``monkeypatch``) to point at it, so
    a hook or operator with the default connection talks to it. Returns the same handle.

The module imports nothing heavy at collection time; the server code loads on first use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from perkville_provider.sandbox.launcher import SandboxHandle

CONN_ENV_VAR = "AIRFLOW_CONN_PERKVILLE_DEFAULT"


@pytest.fixture(scope="session")
def perkville_sandbox() -> Iterator[SandboxHandle]:
    """One sandbox server for the whole test session."""
    from perkville_provider.sandbox.launcher import run_sandbox

    with run_sandbox() as handle:
        yield handle


@pytest.fixture
def perkville_sandbox_connection(
    perkville_sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> SandboxHandle:
    """The session sandbox, freshly reset, with the default Airflow connection pointing at it."""
    perkville_sandbox.admin.reset()
    monkeypatch.setenv(CONN_ENV_VAR, perkville_sandbox.airflow_conn_env_value())
    return perkville_sandbox
