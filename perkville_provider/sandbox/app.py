"""The sandbox's HTTP layer: one routing table, JSON envelopes, pagination, bearer auth, error shapes.

Thin over ``store.Store``: each endpoint parses the request, calls one store operation and shapes
the answer; refusals are raised as ``StoreError`` and answered by one exception handler.
Endpoints are ``async`` and call the store directly, so every request is served on
the event loop thread without a thread-pool hop (SQLite calls take microseconds).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from perkville_provider.sandbox.errors import (
    InvalidToken,
    NotFound,
    OAuthError,
    PermissionDenied,
    StoreError,
    ValidationFailed,
)
from perkville_provider.sandbox.paths import AGREEMENT_ACCEPT_PATH, TOKEN_PATH
from perkville_provider.sandbox.store import Page, Store, TokenContext, WriteResult
from perkville_provider.sandbox.values import MAX_ID

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
_PARAM = re.compile(r"\{\w+(:\w+)?\}")

Endpoint = Callable[[Request], Awaitable[Response]]


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(
    status: int,
    error_type: str,
    field: str,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return json_response(
        {"error_type": error_type, "errors": {field: [{"code": code, "message": message}]}}, status, headers
    )


def store_error_response(exc: StoreError) -> Response:
    """The one mapping from store errors to HTTP statuses and bodies."""
    if isinstance(exc, ValidationFailed) and exc.resource:
        fields = {field: [item["message"] for item in items] for field, items in exc.errors.items()}
        return json_response({exc.resource: fields}, 400)
    if isinstance(exc, ValidationFailed):
        return json_response({"error_type": "validation_error", "errors": exc.errors}, 400)
    if isinstance(exc, PermissionDenied):
        return error_response(403, "permission_denied", "__all__", exc.code, str(exc))
    if isinstance(exc, InvalidToken):
        return error_response(401, "oauth_error", "__all__", "invalid_token", str(exc))
    if isinstance(exc, NotFound):
        return error_response(404, "not_found", "__all__", "not_found", str(exc))
    if isinstance(exc, OAuthError):
        headers = {"WWW-Authenticate": 'Basic realm="perkville"'} if exc.status == 401 else None
        return json_response({"error": exc.error, "error_description": exc.description}, exc.status, headers)
    raise exc


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def read_body(request: Request) -> dict[str, Any]:
    """A JSON object body (or a form body, flattened to single values)."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ValidationFailed.one(
            "__all__", "invalid_json", f"the request body is not valid JSON: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise ValidationFailed.one("__all__", "invalid_json", "the request body must be a JSON object")
    return body


def page_params(request: Request) -> tuple[int, int]:
    """``limit`` (default 20; 0 or above 1000 means 1000) and ``offset`` (default 0)."""
    values = []
    for name, default in (("limit", DEFAULT_LIMIT), ("offset", 0)):
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            values.append(default)
            continue
        if not raw.isdigit() or int(raw) > MAX_ID:
            raise ValidationFailed.one(
                name, "invalid", f"{name} must be a 64-bit non-negative integer, got {raw!r}"
            )
        values.append(int(raw))
    limit, offset = values
    return (MAX_LIMIT if limit == 0 or limit > MAX_LIMIT else limit), offset


def envelope(request: Request, page: Page, limit: int, offset: int) -> dict[str, Any]:
    """The tastypie list envelope; ``next``/``previous`` keep the request's filters."""

    def link(new_offset: int) -> str:
        query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("limit", "offset")]
        query += [("limit", str(limit)), ("offset", str(new_offset))]
        return f"{request.url.path}?{urlencode(query)}"

    return {
        "meta": {
            "limit": limit,
            "offset": offset,
            "total_count": page.total,
            "next": link(offset + limit) if offset + limit < page.total else None,
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
        },
        "objects": page.objects,
    }


class Api:
    """Endpoint factories bound to one store; each endpoint is one store call between parse and shape."""

    def __init__(self, store: Store, on_token_grant: Callable[[], None]) -> None:
        self.store = store
        self.on_token_grant = on_token_grant

    def _auth(self, request: Request) -> TokenContext:
        return self.store.authenticate(bearer_token(request))

    def list_of(self, op: Callable[[TokenContext, dict[str, str], int, int], Page]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            ctx = self._auth(request)
            limit, offset = page_params(request)
            page = op(ctx, dict(request.query_params), limit, offset)
            return json_response(envelope(request, page, limit, offset))

        return endpoint

    def detail_of(self, op: Callable[[TokenContext, int], dict[str, Any]]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return json_response(op(self._auth(request), request.path_params["pk"]))

        return endpoint

    def detail_with_patch(
        self,
        read: Callable[[TokenContext, int], dict[str, Any]],
        patch: Callable[[TokenContext, int, dict[str, Any]], dict[str, Any]],
    ) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            ctx = self._auth(request)
            pk = request.path_params["pk"]
            if request.method == "PATCH":
                return json_response(patch(ctx, pk, await read_body(request)))
            return json_response(read(ctx, pk))

        return endpoint

    def list_with_create(
        self,
        listing: Callable[[TokenContext, dict[str, str], int, int], Page],
        create: Callable[[TokenContext, dict[str, Any]], WriteResult],
        location_of: Callable[[dict[str, Any]], str],
    ) -> Endpoint:
        list_endpoint = self.list_of(listing)

        async def endpoint(request: Request) -> Response:
            if request.method != "POST":
                return await list_endpoint(request)
            result = create(self._auth(request), await read_body(request))
            return json_response(
                result.obj, 201 if result.created else 200, {"Location": location_of(result.obj)}
            )

        return endpoint

    async def me(self, request: Request) -> Response:
        return json_response(self.store.me(self._auth(request)))

    async def accept_agreements(self, request: Request) -> Response:
        objects = self.store.accept_agreements(self._auth(request), await read_body(request))
        return json_response({"objects": objects})

    async def token(self, request: Request) -> Response:
        """OAuth 2 password grant; the client authenticates by HTTP Basic or in the form body."""
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, secret = base64.b64decode(encoded.strip()).decode().partition(":")
            except ValueError:
                raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
            client_id, client_secret = unquote(user), unquote(secret)
        grant = self.store.grant_token(
            client_id=client_id,
            client_secret=client_secret,
            grant_type=form.get("grant_type"),
            username=form.get("username"),
            password=form.get("password"),
            scope=form.get("scope"),
        )
        self.on_token_grant()
        return json_response(grant, headers={"Cache-Control": "no-store"})


def api_routes(api: Api) -> list[BaseRoute]:
    """The routing table of the Perkville API the sandbox serves (the busiest routes first)."""
    s = api.store
    return [
        Route(
            "/v2/transactions/",
            api.list_with_create(s.list_transactions, s.award, lambda o: o["resource_uri"]),
            methods=["GET", "POST"],
        ),
        Route(
            "/v2/external-members/",
            api.list_with_create(
                s.list_external_members, s.upsert_external_member, lambda o: o["connection"]
            ),
            methods=["GET", "POST"],
        ),
        Route("/v2/connections/", api.list_of(s.list_connections), methods=["GET"]),
        Route(
            "/v2/connections/{pk:int}/",
            api.detail_with_patch(s.get_connection, s.patch_connection),
            methods=["GET", "PATCH"],
        ),
        Route(TOKEN_PATH, api.token, methods=["POST"]),
        Route("/v2/transactions/{pk:int}/", api.detail_of(s.get_transaction), methods=["GET"]),
        Route(
            "/v2/external-members/{pk:int}/",
            api.detail_with_patch(s.get_external_member, s.patch_external_member),
            methods=["GET", "PATCH"],
        ),
        Route("/v2/agreements-view/", api.list_of(s.agreements_view), methods=["GET"]),
        Route(AGREEMENT_ACCEPT_PATH, api.accept_agreements, methods=["POST"]),
        Route("/v2/users/me/", api.me, methods=["GET"]),
        Route("/v2/users/", api.list_of(s.list_users), methods=["GET"]),
        Route("/v2/users/{pk:int}/", api.detail_of(s.get_user), methods=["GET"]),
        Route("/v2/businesses/", api.list_of(s.list_businesses), methods=["GET"]),
        Route("/v2/businesses/{pk:int}/", api.detail_of(s.get_business), methods=["GET"]),
        Route("/v2/locations/", api.list_of(s.list_locations), methods=["GET"]),
        Route("/v2/locations/{pk:int}/", api.detail_of(s.get_location), methods=["GET"]),
        Route("/v2/perks/", api.list_of(s.list_perks), methods=["GET"]),
        Route("/v2/perks/{pk:int}/", api.detail_of(s.get_perk), methods=["GET"]),
    ]


def route_template(routes: list[BaseRoute], path: str) -> str | None:
    """The route template (``/v2/connections/{id}/``) a request path matches, for per-endpoint stats."""
    for route in routes:
        if isinstance(route, Route) and route.path_regex.match(path):
            return _PARAM.sub("{id}", route.path)
    return None


def http_error_handler(routes: list[BaseRoute]) -> Callable[[Request, Exception], Awaitable[Response]]:
    """404/405 in the API's error shape; a GET without its trailing slash is redirected (301)."""

    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        path = request.url.path
        if exc.status_code == 404 and not path.endswith("/") and route_template(routes, path + "/"):
            if request.method in ("GET", "HEAD"):
                query = f"?{request.url.query}" if request.url.query else ""
                return RedirectResponse(f"{path}/{query}", status_code=301)
            return error_response(
                404,
                "not_found",
                "__all__",
                "not_found",
                f"{path} not found: API paths end with a slash ({path}/)",
            )
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {path}"
            return error_response(
                405, "method_not_allowed", "__all__", "method_not_allowed", message, exc.headers
            )
        return error_response(exc.status_code, "not_found", "__all__", "not_found", f"{path} not found")

    return handle


async def handle_store_error(request: Request, exc: Exception) -> Response:
    """Every endpoint's refusals, in one place: the store raises, this answers (as moto's dispatch does)."""
    assert isinstance(exc, StoreError)
    return store_error_response(exc)


def create_app(store: Store, admin_routes: list[BaseRoute], on_token_grant: Callable[[], None]) -> Starlette:
    """The Starlette app: the Perkville API routes plus the sandbox-only admin routes; a ``StoreError``
    raised by any endpoint becomes its HTTP answer in ``handle_store_error``."""
    routes = api_routes(Api(store, on_token_grant))
    app = Starlette(
        routes=[*routes, *admin_routes],
        exception_handlers={HTTPException: http_error_handler(routes), StoreError: handle_store_error},
    )
    app.router.redirect_slashes = False
    app.state.api_routes = routes
    return app
