"""A hostile HTTP server for tests: answers the way broken proxies and hostile endpoints do.

The sandbox answers like a well-behaved Perkville; this server answers one scripted way per test
(trickled bytes, foreign ``next`` links, errors that echo the request, huge or malformed bodies,
redirect loops, a token endpoint that echoes the client's credentials...). It is a stdlib
``ThreadingHTTPServer`` on 127.0.0.1 with a free port, started and stopped per test by the
``hostile_server`` fixture, and it records every request it saw (method, path, headers, body) so
a test can assert what the client sent, and to whom.

A script is a callable ``(exchange) -> None`` that answers through the exchange's helpers;
``server.script`` is the default, ``server.route(method, path, script)`` answers one endpoint.
The ``hostile_server`` fixture (``tests/conftest.py``) starts one per test.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Script = Callable[["Exchange"], None]


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)


@dataclass
class Exchange:
    """The request being answered, and the ways to answer it."""

    request: Seen
    handler: BaseHTTPRequestHandler
    server: HostileServer
    answered: bool = field(default=False)

    def send(
        self,
        status: int,
        body: bytes | str = b"",
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.handler.send_response(status)
        self.handler.send_header("Content-Type", content_type)
        self.handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.handler.send_header(name, value)
        self.handler.end_headers()
        self.handler.wfile.write(data)
        self.answered = True

    def json(self, status: int, value: Any, *, headers: dict[str, str] | None = None) -> None:
        self.send(status, json.dumps(value), headers=headers)

    def trickle(self, status: int, body: bytes, *, interval: float, in_headers: bool = False) -> None:
        """Answer one byte at a time, ``interval`` seconds apart (in the headers, or in the body)."""
        head = f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        head_bytes = head.encode() + b"X-Slow: " + b"." * 200 + b"\r\n\r\n"
        slow_part, fast_part = (head_bytes, body) if in_headers else (body, head_bytes)
        if not in_headers:
            self.handler.wfile.write(fast_part)
            self.handler.wfile.flush()
        for byte in slow_part:
            if self.server.stopping.wait(interval):
                return
            try:
                self.handler.wfile.write(bytes([byte]))
                self.handler.wfile.flush()
            except OSError:
                return
        if in_headers:
            self.handler.wfile.write(fast_part)
        self.answered = True

    def redirect(self, location: str, status: int = 302) -> None:
        self.send(status, b"", headers={"Location": location})


class HostileServer:
    """The server; ``url`` is its base URL, ``seen`` the requests it received, in order."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self.script: Script = lambda exchange: exchange.json(404, {"detail": "no script"})
        self.routes: dict[tuple[str, str], Script] = {}
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(self.command, parts.path, dict(parse_qsl(parts.query)), dict(self.headers), body)
                server.seen.append(seen)
                script = server.routes.get((self.command, parts.path), server.script)
                exchange = Exchange(seen, self, server)
                try:
                    script(exchange)
                except OSError:  # the client cut the connection (a deadline, an abort): expected here
                    self.close_connection = True

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:  # an https:// server (see tests/helpers/tls.py)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def route(self, method: str, path: str, script: Script) -> None:
        self.routes[(method, path)] = script

    def requests_to(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    def close(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


# -- ready-made answers -------------------------------------------------------------------------


def page(objects: list[Any], *, next_url: str | None = None, total: int | None = None) -> dict[str, Any]:
    """A tastypie list page."""
    meta = {"limit": 100, "offset": 0, "next": next_url, "previous": None, "total_count": total}
    return {"meta": meta, "objects": objects}


def echo_everything(status: int = 400) -> Script:
    """An error that puts the request's headers and body into every part of the error answer
    (a 5xx carries ``Retry-After: 0`` so that the client's retries take no time)."""

    def script(exchange: Exchange) -> None:
        echoed = " ".join(f"{name}={value}" for name, value in exchange.request.headers.items())
        echoed += " body=" + exchange.request.body.decode(errors="replace")
        entry = {"code": echoed, "message": echoed, "details": echoed}
        exchange.json(
            status,
            {"errors": {echoed: [entry]}, "error": echoed, "error_description": echoed, "detail": echoed},
            headers={"Retry-After": "0"} if status >= 500 else None,
        )

    return script


def slowly(seconds: float, script: Script, stopping: threading.Event) -> Script:
    def delayed(exchange: Exchange) -> None:
        if not stopping.wait(seconds):
            script(exchange)

    return delayed
