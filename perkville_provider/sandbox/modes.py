"""Switchable answers for what the real API does not document (``PUT /_sandbox/settings``).

Each mode reproduces one plausible behaviour of Perkville's django-tastypie API, so the hook can be
tested against all of them (the sandbox README lists each, with its default and why):

========================  ==========================================================================
``relations``             ``any`` (default: ids and URIs), ``uri`` (stock tastypie: a bare id is
                          refused), ``id`` (a URI is refused)
``paths``                 resource name -> path (the hook's names, e.g. ``external_members``); the
                          resource answers there and its default path answers 404
``ignored_filters``       filters dropped silently, as tastypie drops undeclared ones: ``name`` on
                          every list, or ``resource.name`` (``connections.user_id``) on one
``always_return_data``    ``true`` (default); ``false``: a write answers 201/200 with an empty body
                          and a ``Location`` header, a PATCH 202 with an empty body (stock tastypie)
``quantities``            ``decimal`` (default: up to 2 places) or ``integer``
``datetime_input``        ``any`` (default), ``api`` (only ``YYYY-MM-DD HH:MM:SS+00:00``), ``iso``
                          (only the ``T`` form)
``unknown_fields``        ``refuse`` (default, so client typos surface) or ``ignore`` (stock)
``duplicate_mode``        ``error`` (default: 400), ``return_existing`` (200), ``created_existing``
                          (201 with the existing transaction: an idempotent create), ``tastypie_form``
                          (400 ``{"transactions": {"trans_source_id": ["...already exists."]}}``)
========================  ==========================================================================

The store applies the body rules; :class:`ModesMiddleware` applies the HTTP ones (paths, ignored
filters, empty bodies) around the app, so routes and representations stay in one spelling.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from perkville_provider.api_conventions import DEFAULT_PATHS
from perkville_provider.sandbox.asgi import ASGIApp, Message, Receive, Scope, Send
from perkville_provider.sandbox.errors import ErrorCollector, ValidationFailed

MODE_DEFAULTS: dict[str, Any] = {
    "relations": "any",
    "paths": {},
    "ignored_filters": [],
    "always_return_data": True,
    "quantities": "decimal",
    "datetime_input": "any",
    "unknown_fields": "refuse",
}
_CHOICES = {
    "relations": ("any", "uri", "id"),
    "quantities": ("decimal", "integer"),
    "datetime_input": ("any", "api", "iso"),
    "unknown_fields": ("refuse", "ignore"),
}
#: The combination closest to stock django-tastypie (filters on fields a resource does not declare
#: filterable are dropped; which ones Perkville declares is unknown, so the look-up filters are).
STOCK_TASTYPIE: dict[str, Any] = {
    "relations": "uri",
    "always_return_data": False,
    "ignored_filters": [
        "transactions.trans_source_id",
        "connections.user__emails__email",
        "connections.user_id",
        "external_members.external_member_id",
    ],
    "unknown_fields": "ignore",
    "duplicate_mode": "error",
}
_PATH_RE = re.compile(r"^/(?:[A-Za-z0-9._~-]+/)+$")
_API_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?\+00:00$")
_ISO_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_mode_settings(changes: Mapping[str, Any], errors: ErrorCollector) -> None:
    """Add an error for every mode setting in ``changes`` with a value it cannot take."""
    for key, value in changes.items():
        if key in _CHOICES:
            if value not in _CHOICES[key]:
                errors.add(key, "invalid", f"{key} must be one of {', '.join(_CHOICES[key])}")
        elif key == "always_return_data" and not isinstance(value, bool):
            errors.add(key, "invalid", "always_return_data must be true or false")
        elif key == "ignored_filters" and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            errors.add(key, "invalid", "ignored_filters must be a list of filter names")
        elif key == "paths":
            _check_paths(value, errors)


def _check_paths(value: Any, errors: ErrorCollector) -> None:
    if not isinstance(value, Mapping):
        errors.add("paths", "invalid", "paths must map resource names to paths")
        return
    for name, path in value.items():
        if name not in DEFAULT_PATHS:
            errors.add("paths", "invalid", f"paths: unknown resource {name!r} ({', '.join(DEFAULT_PATHS)})")
        elif not isinstance(path, str) or not _PATH_RE.match(path):
            errors.add("paths", "invalid", f"paths: {name} must be a path like /v2/{name}/, got {path!r}")


# --- body rules (called by the store) ------------------------------------------------------------


def check_relation(value: Any, field: str, resource: str, mode: str) -> None:
    """Refuse a relation spelled the way the mode does not accept, in tastypie's words."""
    is_uri = isinstance(value, str) and "/" in value
    if mode == "uri" and not is_uri:
        raise ValidationFailed.one(
            field,
            "invalid",
            f"The '{field}' field was given data that was not a URI, not a dictionary-alike and does "
            f"not have a 'pk' attribute: {value!r}. Send /v2/{resource}/<id>/.",
        )
    if mode == "id" and is_uri:
        raise ValidationFailed.one(field, "invalid", f"{field} must be an id, got the URI {value!r}")


def check_datetime_form(value: Any, field: str, mode: str) -> None:
    """Refuse a datetime string not in the one form the mode accepts (a bare date always passes)."""
    if mode == "any" or not isinstance(value, str) or _DATE_RE.match(value.strip()):
        return
    pattern = _API_DATETIME_RE if mode == "api" else _ISO_DATETIME_RE
    if not pattern.match(value.strip()):
        form = "YYYY-MM-DD HH:MM:SS+00:00" if mode == "api" else "ISO 8601 with a T"
        raise ValidationFailed.one(field, "invalid", f"{field} must be written {form}, got {value!r}")


def known_fields(
    body: Mapping[str, Any], known: frozenset[str], mode: str, errors: ErrorCollector, what: str
) -> dict[str, Any]:
    """The body without unknown fields: each refused (``refuse``) or dropped silently (``ignore``)."""
    kept = {}
    for key, value in body.items():
        if key in known:
            kept[key] = value
        elif mode == "refuse":
            errors.add(key, "unknown_field", f"{key} is not {what} field")
    return kept


# --- HTTP rules -------------------------------------------------------------------------------------


class ModesMiddleware:
    """Moves resources to the configured ``paths`` and empties write answers when
    ``always_return_data`` is false; passes everything through untouched otherwise."""

    def __init__(self, app: ASGIApp, settings: Callable[[], Mapping[str, Any]], raw_send_key: str) -> None:
        self.app = app
        self.settings = settings
        self.raw_send_key = raw_send_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v2/"):
            await self.app(scope, receive, send)
            return
        settings = self.settings()
        moves = _moves(settings.get("paths") or {})
        empty = not settings.get("always_return_data", True) and scope["method"] in ("POST", "PATCH")
        ignored = settings.get("ignored_filters") or []
        if ignored and scope.get("query_string"):
            dropped = _filters_ignored_on(_inbound(scope["path"], moves) or scope["path"], ignored)
            scope = {**scope, "query_string": _without_filters(scope["query_string"], dropped)}
        if not moves and not empty:
            await self.app(scope, receive, send)
            return
        if moves:
            path = _inbound(scope["path"], moves)
            if path is None:
                await _not_found(send, scope["path"])
                return
            scope = {**scope, "path": path, "raw_path": path.encode()}
            receive = _rewriting_receive(receive, moves)
        scope.setdefault(self.raw_send_key, send)
        await self.app(scope, receive, _ShapingSend(send, moves, empty, scope["method"]))


def _filters_ignored_on(path: str, ignored: list[str]) -> set[str]:
    """The filter names ignored on the resource at ``path`` (a default path)."""
    resource = max(
        (name for name, prefix in DEFAULT_PATHS.items() if path.startswith(prefix)),
        key=lambda name: len(DEFAULT_PATHS[name]),
        default=None,
    )
    names = set()
    for entry in ignored:
        scope, _, name = entry.rpartition(".")
        if not scope or scope == resource:
            names.add(name)
    return names


def _without_filters(query: bytes, ignored: set[str]) -> bytes:
    """The query string without the ignored filters (as tastypie drops undeclared ones)."""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    return urlencode([(name, value) for name, value in pairs if name not in ignored]).encode("latin-1")


def _moves(paths: Mapping[str, str]) -> list[tuple[str, str]]:
    """(default path, configured path) for each moved resource, longest default first."""
    pairs = [(DEFAULT_PATHS[name], path) for name, path in paths.items() if DEFAULT_PATHS[name] != path]
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def _inbound(path: str, moves: list[tuple[str, str]]) -> str | None:
    """The default path a request path stands for, or None for a moved resource's old path."""
    for default, moved in sorted(moves, key=lambda pair: -len(pair[1])):
        if path.startswith(moved):
            return default + path[len(moved) :]
    longest = max((p for p in DEFAULT_PATHS.values() if path.startswith(p)), key=len, default=None)
    if longest is not None and any(default == longest for default, _ in moves):
        return None
    return path


def _swap(text: bytes, moves: list[tuple[str, str]], outbound: bool) -> bytes:
    for default, moved in moves:
        old, new = (default, moved) if outbound else (moved, default)
        text = text.replace(f'"{old}'.encode(), f'"{new}'.encode())
    return text


def _rewriting_receive(receive: Callable, moves: list[tuple[str, str]]) -> Callable:
    async def rewritten() -> Message:
        message = await receive()
        if message["type"] == "http.request" and message.get("body"):
            message = {**message, "body": _swap(message["body"], moves, outbound=False)}
        return message

    return rewritten


async def _not_found(send: Callable, path: str) -> None:
    body = json.dumps(
        {
            "error_type": "not_found",
            "errors": {"__all__": [{"code": "not_found", "message": f"{path} not found"}]},
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _ShapingSend:
    """Buffers one answer, then sends it with moved URIs and, for writes, without a body."""

    def __init__(self, send: Callable, moves: list[tuple[str, str]], empty: bool, method: str) -> None:
        self.send = send
        self.moves = moves
        self.empty = empty
        self.method = method
        self.start: Message | None = None
        self.body = b""

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        self.body += message.get("body", b"")
        if message.get("more_body"):
            return
        await self._flush()

    async def _flush(self) -> None:
        assert self.start is not None
        status = self.start["status"]
        headers = [
            (k, v) for k, v in self.start["headers"] if k.lower() not in (b"content-length", b"location")
        ]
        location = next((v for k, v in self.start["headers"] if k.lower() == b"location"), None)
        body = self.body
        if self.empty and 200 <= status < 300:
            location = _resource_uri(body) or location
            status, body = (202 if self.method == "PATCH" else status), b""
        body = _swap(body, self.moves, outbound=True) if self.moves else body
        if location is not None:
            headers.append((b"location", _swap(b'"' + location, self.moves, outbound=True)[1:]))
        headers.append((b"content-length", str(len(body)).encode()))
        await self.send({**self.start, "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})


def _resource_uri(body: bytes) -> bytes | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    uri = data.get("resource_uri") if isinstance(data, dict) else None
    return uri.encode() if isinstance(uri, str) else None
