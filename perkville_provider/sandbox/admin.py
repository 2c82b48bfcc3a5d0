"""The sandbox-only API under ``/_sandbox/``: health, faults, settings, stats (totals and per
second), ledger, reset, revoke.

Tests and benchmarks read ``/_sandbox/ledger`` and ``/_sandbox/stats`` to prove exactly-once and
no-loss from the server's own records, never from the client's counters. No auth, no faults.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter, defaultdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from perkville_provider.sandbox.app import json_response, read_body, route_template
from perkville_provider.sandbox.asgi import ASGIApp, Message, Receive, Scope, Send
from perkville_provider.sandbox.errors import ValidationFailed
from perkville_provider.sandbox.faults import FAULT_KEY, RAW_SEND_KEY, FaultConfig, Faults
from perkville_provider.sandbox.paths import ADMIN_PREFIX
from perkville_provider.sandbox.store import Store


class Stats:
    """Request counts by ``"METHOD /path-template"`` and status, the number of token grants, the
    same counts for each second, and the API requests in flight.

    The per-second counts let a caller measure the rate the server saw (what a rate limit counts)
    over any span, and when the 429s fell, from the server's side rather than the client's.
    """

    SECONDS_KEPT = 3_600
    """Per-second counts are kept for the last hour of seconds with traffic (bounded memory)."""

    def __init__(self) -> None:
        self.in_flight = 0
        """API requests arrived and not yet answered (a reset keeps it: they are still running).

        A test that cut a client's requests waits for 0 before it reads the ledger as final: a
        request the client gave up on may still commit.
        """
        self.clear()

    def clear(self) -> None:
        self.requests: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.token_grants = 0
        self.seconds: dict[int, defaultdict[str, Counter[str]]] = {}

    def record(self, endpoint: str, status: str, arrived: float) -> None:
        """One answered API request; ``arrived``: when it reached the server (epoch seconds)."""
        self.requests[endpoint][status] += 1
        second = int(arrived)
        counts = self.seconds.get(second)
        if counts is None:
            counts = self.seconds[second] = defaultdict(Counter)
            if len(self.seconds) > self.SECONDS_KEPT:
                del self.seconds[min(self.seconds)]
        counts[endpoint][status] += 1

    def per_second(self, since: float = 0.0, until: float = math.inf) -> list[dict[str, Any]]:
        """The seconds overlapping ``[since, until]`` that saw requests, in order, each with its
        counts by endpoint and status (the shape of ``/_sandbox/stats``' ``requests``)."""
        return [
            {"second": second, "requests": {k: dict(v) for k, v in sorted(self.seconds[second].items())}}
            for second in sorted(self.seconds)
            if since < second + 1 and second <= until
        ]

    def count_token_grant(self) -> None:
        self.token_grants += 1


class StatsMiddleware:
    """Outermost ASGI layer: counts every API request by template and the status the client saw.

    It also keeps uvicorn's own ``send`` in the scope, the handle the fault layer needs to reset a
    connection.
    """

    def __init__(self, app: ASGIApp, stats: Stats, api_routes: list[BaseRoute]) -> None:
        self.app = app
        self.stats = stats
        self.api_routes = api_routes
        self._templates: dict[str, str] = {}

    def template(self, path: str) -> str:
        """The route template of a path, remembered (ids vary, so the memory is bounded)."""
        template = self._templates.get(path)
        if template is None:
            template = route_template(self.api_routes, path) or "<unmatched>"
            if len(self._templates) > 10_000:
                self._templates.clear()
            self._templates[path] = template
        return template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        scope.setdefault(RAW_SEND_KEY, send)
        arrived = time.time()
        status: list[int] = []

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        self.stats.in_flight += 1
        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.stats.in_flight -= 1
            template = self.template(scope["path"])
            seen = str(status[0]) if status else ("reset" if scope.get(FAULT_KEY) else "no_answer")
            self.stats.record(f"{scope['method']} {template}", seen, arrived)


class Admin:
    """The ``/_sandbox/`` endpoints over the store, the faults and the stats of one server."""

    def __init__(self, store: Store, faults: Faults, stats: Stats, defaults: dict[str, Any]) -> None:
        self.store = store
        self.faults = faults
        self.stats = stats
        self.default_settings = defaults

    def routes(self) -> list[BaseRoute]:
        p = ADMIN_PREFIX
        return [
            Route(f"{p}health", self.health, methods=["GET"]),
            Route(f"{p}faults", self.fault_settings, methods=["GET", "PUT"]),
            Route(f"{p}settings", self.settings, methods=["GET", "PUT"]),
            Route(f"{p}stats", self.stats_report, methods=["GET"]),
            Route(f"{p}stats/per-second", self.stats_per_second, methods=["GET"]),
            Route(f"{p}ledger", self.ledger, methods=["GET"]),
            Route(f"{p}reset", self.reset, methods=["POST"]),
            Route(f"{p}tokens/revoke", self.revoke, methods=["POST"]),
        ]

    async def health(self, request: Request) -> Response:
        return json_response({"status": "ok", "pid": os.getpid(), "db": self.store.path})

    async def fault_settings(self, request: Request) -> Response:
        if request.method == "PUT":
            self.faults.configure(FaultConfig.from_mapping(await read_body(request)))
        return json_response(self.faults.config.as_dict())

    async def settings(self, request: Request) -> Response:
        if request.method == "PUT":
            return json_response(self.store.set_settings(await read_body(request)))
        return json_response(self.store.get_settings())

    async def stats_report(self, request: Request) -> Response:
        return json_response(
            {
                "requests": {k: dict(v) for k, v in sorted(self.stats.requests.items())},
                "faults_injected": dict(self.faults.counters.counts),
                "token_grants": self.stats.token_grants,
                "in_flight": self.stats.in_flight,
            }
        )

    async def stats_per_second(self, request: Request) -> Response:
        """``?since=&until=`` (epoch seconds, optional): the API requests of each second."""
        bounds = {}
        for name in ("since", "until"):
            raw = request.query_params.get(name)
            if raw is not None:
                try:
                    bounds[name] = float(raw)
                except ValueError:
                    raise ValidationFailed.one(name, "invalid", f"{name} must be epoch seconds") from None
        return json_response({"seconds": self.stats.per_second(**bounds)})

    async def ledger(self, request: Request) -> Response:
        return json_response(self.store.ledger())

    async def reset(self, request: Request) -> Response:
        """Reseed, clear stats and fault counters, faults off, settings back to the server's defaults."""
        self.store.reset()
        if self.default_settings:
            self.store.set_settings(self.default_settings)
        self.faults.configure(FaultConfig())
        self.faults.counters.clear()
        self.stats.clear()
        return json_response({"status": "reset"})

    async def revoke(self, request: Request) -> Response:
        body = await read_body(request)
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise ValidationFailed.one("token", "required", "token is required")
        return json_response({"revoked": self.store.revoke_token(token)})
