"""The server process: assemble the sandbox (store, app, faults, admin, stats) and serve it with uvicorn.

``serve`` is what ``perkville-sandbox serve`` and the child process of ``launcher.run_sandbox`` run.
It binds the socket itself so that ``port=0`` yields a known port before uvicorn starts.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from perkville_provider.sandbox import seed
from perkville_provider.sandbox.admin import Admin, Stats, StatsMiddleware
from perkville_provider.sandbox.app import create_app
from perkville_provider.sandbox.asgi import ASGIApp
from perkville_provider.sandbox.faults import RAW_SEND_KEY, FaultConfig, FaultMiddleware, Faults
from perkville_provider.sandbox.modes import ModesMiddleware
from perkville_provider.sandbox.rate_scope import rate_key_for
from perkville_provider.sandbox.store import Store


def build_app(
    db: str = ":memory:", faults: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None
) -> tuple[ASGIApp, Store]:
    """The complete ASGI app over a store at ``db`` (seeded when empty), with start-up faults and settings."""
    store = Store(db, seeder=seed.load)
    if settings:
        store.set_settings(settings)
    fault_state = Faults(FaultConfig.from_mapping(dict(faults or {})))
    stats = Stats()
    admin = Admin(store, fault_state, stats, dict(settings or {}))
    app = create_app(store, admin.routes(), stats.count_token_grant)
    faulty = FaultMiddleware(app, fault_state, rate_key_for(store))
    moded = ModesMiddleware(faulty, store.get_settings, RAW_SEND_KEY)
    return StatsMiddleware(moded, stats, app.state.api_routes), store


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _exit_when_orphaned(server: Any, parent_pid: int) -> None:
    """Stop the server when the process that started it is gone (so a killed test run leaves no orphan)."""

    def watch() -> None:
        while not server.should_exit:
            if os.getppid() != parent_pid:
                server.should_exit = True
                return
            time.sleep(0.5)

    threading.Thread(target=watch, name="sandbox-parent-watch", daemon=True).start()


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    db: str = ":memory:",
    faults: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    on_ready: Callable[[str], None] | None = None,
    parent_pid: int | None = None,
    http: str = "auto",
) -> None:
    """Serve until SIGINT/SIGTERM. ``on_ready`` gets the base URL once the socket is bound.

    ``http`` picks uvicorn's HTTP implementation: ``auto`` (httptools when installed), ``httptools``
    or ``h11``; connection resets work with both.
    """
    import uvicorn

    app, store = build_app(db, faults, settings)
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=http if http != "auto" else ("httptools" if importlib.util.find_spec("httptools") else "h11"),
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )
    server = uvicorn.Server(config)
    if parent_pid is not None:
        _exit_when_orphaned(server, parent_pid)
    if on_ready is not None:
        url_host = f"[{host}]" if ":" in host else host
        on_ready(f"http://{url_host}:{bound_port}")
    try:
        server.run(sockets=[sock])
    finally:
        store.close()
        sock.close()
