"""Hostile answers the sandbox can give on demand: what broken proxies and hostile endpoints do.

Three switchable faults (``PUT /_sandbox/faults``) rewrite the API's answers after the app made
them, so that a demo or a test can watch the client cope:

``echo_request_in_errors``
    every error answer (4xx/5xx) is replaced by one that echoes the request's headers (the
    ``Authorization`` header included) and body into the error's field, code and message, as a
    debugging proxy might. The provider must leak none of it.
``foreign_next_origin``
    every list answer's ``meta.next`` is rewritten to this origin (``http://elsewhere:8080``),
    as a TLS-terminating proxy that builds absolute links does. The provider must refuse to follow.
``trickle_ms``
    every answer's body is sent one byte at a time, this many milliseconds apart. The provider's
    per-attempt deadline must end the request.
``token_trickle_ms``
    the same for the token endpoint's answers only: a grant that never ends, run inside the first
    request's deadline. That deadline must end it, and ``on_kill`` too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Scope = MutableMapping[str, Any]

HOSTILE_FAULTS = ("echo_request_in_errors", "foreign_next_origin", "trickle_ms", "token_trickle_ms")
TOKEN_PATH_PREFIX = "/api/token"  # noqa: S105 (a path)


def check_origin(value: Any) -> str:
    """An ``http(s)://host[:port]`` origin, or "" (off). :raises ValueError: anything else."""
    if value in ("", None):
        return ""
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError("must be an origin such as http://elsewhere.example:8080, or empty")
    return f"{parts.scheme}://{parts.netloc}"


def wants_rewrite(config: Any) -> bool:
    """Whether any hostile fault is on (the answer then goes through :func:`hostile_send`)."""
    return any(getattr(config, name) for name in HOSTILE_FAULTS)


def hostile_send(scope: Scope, send: Send, config: Any, request_body: bytes) -> Send:
    """A ``send`` that holds the answer, rewrites it as ``config`` says, then sends it."""
    held: list[Message] = []

    async def rewrite(message: Message) -> None:
        held.append(message)
        if message["type"] != "http.response.body" or message.get("more_body"):
            return
        start = next(m for m in held if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        status = start["status"]
        if config.echo_request_in_errors and status >= 400:
            body = _echo(scope, request_body)
        elif config.foreign_next_origin and status == 200:
            body = _foreign_next(body, config.foreign_next_origin)
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        trickle_ms = config.trickle_ms
        if scope["path"].startswith(TOKEN_PATH_PREFIX):
            trickle_ms = trickle_ms or config.token_trickle_ms
        if not trickle_ms:
            await send({"type": "http.response.body", "body": body})
            return
        for index in range(len(body)):
            await asyncio.sleep(trickle_ms / 1000.0)
            last = index == len(body) - 1
            await send({"type": "http.response.body", "body": body[index : index + 1], "more_body": not last})
        if not body:
            await send({"type": "http.response.body", "body": b""})

    return rewrite


def _echo(scope: Scope, request_body: bytes) -> bytes:
    """An error answer carrying the request's headers and body in every part."""
    headers = " ".join(f"{k.decode('latin-1')}: {v.decode('latin-1')}" for k, v in scope["headers"])
    echoed = f"{scope['method']} {scope['path']} {headers} body={request_body.decode('utf-8', 'replace')}"
    entry = {"code": echoed, "message": echoed}
    return json.dumps({"error_type": echoed, "errors": {echoed: [entry]}, "detail": echoed}).encode()


def _foreign_next(body: bytes, origin: str) -> bytes:
    try:
        answer = json.loads(body)
    except ValueError:
        return body
    meta = answer.get("meta") if isinstance(answer, dict) else None
    if not isinstance(meta, dict) or not meta.get("next"):
        return body
    link = urlsplit(meta["next"])
    target = urlsplit(origin)
    meta["next"] = urlunsplit((target.scheme, target.netloc, link.path, link.query, ""))
    return json.dumps(answer).encode()
