"""The demo data's names, the sandbox's admin client for hook tests, and a recording proxy."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from perkville_provider.retries import RetryPolicy
from perkville_provider.sandbox import seed

ADMIN_USERNAME = seed.ADMIN_USERNAME
ADMIN_PASSWORD = seed.ADMIN_PASSWORD
FRONT_DESK_USERNAME = seed.FRONTDESK_USERNAME
FRONT_DESK_PASSWORD = seed.FRONTDESK_PASSWORD
CLIENT_SECRET = seed.CLIENT_SECRET
BUSINESS_ID = seed.BUSINESS_ID
CHECKIN_PERK_ID = seed.CHECKIN_PERK_ID
CLASS_PERK_ID = seed.CLASS_PERK_ID
CASEY = seed.CUSTOMER_USERNAME
ROBIN = seed.IMPORTED_CUSTOMER_USERNAME


#: Fast backoff so retry tests take milliseconds; Retry-After is still honoured as given.
FAST_RETRIES = RetryPolicy(max_attempts=8, max_elapsed=30.0, backoff_initial=0.02, backoff_max=0.1)


class SandboxControl:
    """The sandbox's admin client, plus the questions these tests ask of its stats and ledger."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.admin = handle.admin
        self.url = handle.base_url

    def faults(self, **settings: Any) -> dict[str, Any]:
        return self.admin.set_faults(**settings)

    def settings(self, **settings: Any) -> dict[str, Any]:
        return self.admin.set_settings(**settings)

    def stats(self) -> dict[str, Any]:
        return self.admin.stats()

    def ledger(self) -> dict[str, Any]:
        return self.admin.ledger()

    def revoke(self, token: str) -> None:
        assert self.admin.revoke_token(token)

    def token_grants(self) -> int:
        return self.stats()["token_grants"]

    def requests_to(self, endpoint: str, status: str | None = None) -> int:
        """How many requests reached ``"METHOD /template"`` (with that status, if given)."""
        counts = self.stats()["requests"].get(endpoint, {})
        return counts.get(status, 0) if status is not None else sum(counts.values())

    def transactions(self, trans_source_id: str | None = None) -> list[dict[str, Any]]:
        rows = self.ledger()["transactions"]
        return [row for row in rows if trans_source_id is None or row["trans_source_id"] == trans_source_id]

    def connection_of(self, email: str) -> dict[str, Any]:
        return next(row for row in self.ledger()["connections"] if row.get("user_email") == email)


def connection_value(control: SandboxControl, **overrides: Any) -> dict[str, Any]:
    """The sandbox's admin connection with overrides; a None override removes the field or extra."""
    extra = overrides.pop("extra", {})
    value = control.handle.airflow_connection(**overrides)
    value["extra"] = {name: item for name, item in {**value["extra"], **extra}.items() if item is not None}
    return {name: item for name, item in value.items() if item is not None}


Rewrite = Callable[[str, str, int, Any], tuple[int, Any]]


class RecordingProxy:
    """A loopback HTTP proxy to the sandbox that records request headers and may rewrite answers."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.rewrite: Rewrite | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {name: value for name, value in self.headers.items()}
                proxy.seen.append((self.command, self.path, headers))
                forwarded = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
                answer = requests.request(
                    self.command, proxy.upstream + self.path, data=body, headers=forwarded, timeout=10
                )
                status, content = answer.status_code, answer.content
                if proxy.rewrite is not None and content:
                    status, data = proxy.rewrite(self.command, self.path.split("?")[0], status, answer.json())
                    content = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PATCH = do_PUT = _forward

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
