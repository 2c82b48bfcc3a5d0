"""PerkvilleHook: the one place that talks to the Perkville v2 API.

connection -> token -> shared session -> request (rate limit, retries) -> typed error. One method
per API action; operators build on these and never on raw HTTP. The hook is an ``HttpHook`` for its
connection type and its public attributes, but overrides none of HttpHook's private methods: the
session is built in :mod:`perkville_provider.session` (a bearer token instead of basic auth, no
extra ever sent as a header, one pooled session per hook shared by threads), and HttpHook's
``run``, ``run_and_check`` and ``run_with_advanced_retry`` are refused, since they would bypass
the rate limiter, the retry policy and the token re-grant.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests.auth import AuthBase
from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter

from perkville_provider.answers import CreationWitness, LookupGuard, read_json
from perkville_provider.api_conventions import ApiConventions, ConventionError
from perkville_provider.auth import DEFAULT_TOKEN_URL, Credentials, TokenProvider, token_provider
from perkville_provider.exceptions import (
    PerkvilleConfigurationError,
    PerkvilleError,
    error_from_response,
)
from perkville_provider.hooks.resources import (
    AGREEMENT_ACCEPT_PATH,
    AwardResult,
    MemberUpsertResult,
    PerkvilleResourcesMixin,
)
from perkville_provider.rate_budget import RateBudget, SharedPace
from perkville_provider.records import RecordValidationError, validate_ref
from perkville_provider.retries import RetryPolicy
from perkville_provider.session import DEFAULT_API_URL, base_url_of, build_session
from perkville_provider.transport import (
    Delivery,
    Timeout,
    Transport,
    normalise_timeout,
    parse_retry_after,
    user_agent,
)

log = logging.getLogger(__name__)

__all__ = ["AGREEMENT_ACCEPT_PATH", "DEFAULT_PAGE_SIZE", "AwardResult", "MemberUpsertResult", "PerkvilleHook"]

DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True)
class _Wiring:
    """Everything built from the Airflow connection, once per hook."""

    base_url: str
    business_id: int | None
    api: ApiConventions
    credentials: Credentials
    tokens: TokenProvider
    session: requests.Session
    transport: Transport


class _BearerAuth(AuthBase):
    """Adds ``Authorization: Bearer <token>``, asking the hook for the token at send time."""

    def __init__(self, hook: PerkvilleHook) -> None:
        self.hook = hook

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.hook.get_token()}"
        return request


def _not_supported(name: str) -> PerkvilleConfigurationError:
    return PerkvilleConfigurationError(
        f"PerkvilleHook.{name}() is not supported: it would bypass the hook's rate limiter, retry "
        "policy and token re-grant; call hook.request(method, path, params=..., json=...) or "
        "hook.request_json(...) instead"
    )


class PerkvilleHook(PerkvilleResourcesMixin, HttpHook):
    """Talks to the Perkville v2 API with a bearer token, retries, pagination and typed errors.

    Nothing is looked up or sent until the first call. One hook is safe to share between threads:
    they share its pooled session, its rate limiter and its token.

    :param perkville_conn_id: the Airflow connection (type ``perkville``)
    :param max_requests_per_second: the connection's budget of request starts per second, shared by
        every task using the connection (overrides its ``max_requests_per_second`` extra; who shares
        it is the ``rate_limit_sharing`` extra's choice, see :mod:`perkville_provider.rate_budget`)
    :param pool_size: connections kept open to the API; at least the number of worker threads
    :param timeout: read timeout in seconds, or a (connect, read) pair; overrides the ``timeout`` extra
    :param retry_policy: attempts, backoff and time caps for retriable failures
    """

    conn_name_attr = "perkville_conn_id"
    default_conn_name = "perkville_default"
    conn_type = "perkville"
    hook_name = "Perkville"
    default_host = DEFAULT_API_URL

    def __init__(
        self,
        perkville_conn_id: str = default_conn_name,
        *,
        max_requests_per_second: float | None = None,
        pool_size: int = 16,
        timeout: Timeout | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.pool_size = max(1, int(pool_size))
        adapter = TCPKeepAliveAdapter(
            idle=120, count=20, interval=30, pool_connections=2, pool_maxsize=self.pool_size, max_retries=0
        )
        super().__init__(method="GET", http_conn_id=perkville_conn_id, adapter=adapter)
        self.perkville_conn_id = perkville_conn_id
        if max_requests_per_second is not None and not float(max_requests_per_second) > 0:
            raise PerkvilleConfigurationError(
                f"max_requests_per_second must be positive, got {max_requests_per_second!r}"
            )
        self.max_requests_per_second = max_requests_per_second
        self.limiter: SharedPace | None = None
        self.timeout = timeout
        self.retry_policy = retry_policy or RetryPolicy()
        self._wiring: _Wiring | None = None
        self._wiring_lock = threading.Lock()
        self._lookups = LookupGuard()
        self._witness = CreationWitness()

    # -- connection -> token -> session ------------------------------------------------------

    def _wire(self) -> _Wiring:
        wiring = self._wiring
        if wiring is not None:
            return wiring
        with self._wiring_lock:
            if self._wiring is None:
                self._wiring = self._build_wiring()
            return self._wiring

    def _build_wiring(self) -> _Wiring:
        connection = self.get_connection(self.perkville_conn_id)
        extra = connection.extra_dejson
        credentials = Credentials(
            conn_id=self.perkville_conn_id,
            token_url=extra.get("token_url") or DEFAULT_TOKEN_URL,
            username=connection.login or None,
            password=connection.password or None,
            client_id=extra.get("client_id") or None,
            client_secret=extra.get("client_secret") or None,
            scope=extra.get("scope") or None,
            token=extra.get("token") or None,
        )
        tokens = token_provider(credentials)
        business = extra.get("business_id")
        try:
            business_id = (
                None if business in (None, "") else validate_ref(business, "business_id", "businesses")
            )
        except RecordValidationError as error:
            raise PerkvilleConfigurationError(
                f"connection {self.perkville_conn_id!r}: the business_id extra {error.message}"
            ) from None
        try:
            api = ApiConventions.from_extras(extra)
        except ConventionError as error:
            raise PerkvilleConfigurationError(f"connection {self.perkville_conn_id!r}: {error}") from None
        base_url = base_url_of(connection)
        self.base_url = base_url  # HttpHook's public attribute, for url_from_endpoint
        session = build_session(extra, adapter=self.adapter, auth=_BearerAuth(self))
        session.headers["User-Agent"] = user_agent()
        session.headers["Accept"] = "application/json"
        budget = RateBudget.from_extras(
            self.perkville_conn_id, extra, max_requests_per_second=self.max_requests_per_second
        )
        self.limiter = budget.limiter(f"{base_url}\n{credentials.client_id}\n{credentials.username}")
        transport = Transport(
            session,
            policy=self.retry_policy,
            limiter=self.limiter,
            timeout=normalise_timeout(self.timeout if self.timeout is not None else extra.get("timeout")),
        )
        return _Wiring(base_url, business_id, api, credentials, tokens, session, transport)

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """The hook's shared session, or a new one when headers or options are asked for.

        :param headers: headers for a new session
        :param extra_options: settings for a new session, read like the connection's extras
        :return: a session that signs requests with the bearer token
        """
        if not headers and not extra_options:
            return self._wire().session
        extra = {**self.get_connection(self.perkville_conn_id).extra_dejson, **(extra_options or {})}
        session = build_session(extra, adapter=self.adapter, auth=_BearerAuth(self))
        session.headers.update(self._wire().session.headers)
        session.headers.update(headers or {})
        return session

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: HttpHook's ``run`` would skip the rate limiter, the retries and the token re-grant.

        :raises PerkvilleConfigurationError: always; call :meth:`request` or :meth:`request_json`
        """
        raise _not_supported("run")

    def run_and_check(self, *args: Any, **kwargs: Any) -> Any:
        """Refused, like :meth:`run`.

        :raises PerkvilleConfigurationError: always; call :meth:`request` or :meth:`request_json`
        """
        raise _not_supported("run_and_check")

    def run_with_advanced_retry(self, *args: Any, **kwargs: Any) -> Any:
        """Refused, like :meth:`run`: the hook's own retry policy applies to every request.

        :raises PerkvilleConfigurationError: always; call :meth:`request` or :meth:`request_json`
        """
        raise _not_supported("run_with_advanced_retry")

    def get_token(self) -> str:
        """The bearer token: the pre-issued one, or this process's grant for the connection.

        :return: the token
        :raises PerkvilleAuthenticationError: when the grant is refused
        :raises PerkvilleConfigurationError: when the connection lacks what a grant needs
        """
        return self._wire().tokens.token(self._send_grant)

    def grant_token(self) -> str:
        """Run a new password grant now, whatever is cached or pre-issued (for minting a token).

        :return: the new token
        :raises PerkvilleAuthenticationError: when the grant is refused
        :raises PerkvilleConfigurationError: when the connection lacks what a grant needs
        """
        wiring = self._wire()
        return TokenProvider(replace(wiring.credentials, token=None)).token(self._send_grant)

    def _send_grant(self, url: str, form: dict[str, str], client_auth: tuple[str, str]) -> Delivery:
        return self._wire().transport.send("POST", url, data=form, auth=client_auth)

    # -- one request ---------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        if "://" in path:
            return path
        return self._wire().base_url.rstrip("/") + "/" + path.lstrip("/")

    def _deliver(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Delivery:
        """Send with retries; after a 401 on a token this process granted, grant again and resend once."""
        wiring = self._wire()
        url = self._url(path)
        delivery = wiring.transport.send(method, url, params=params, json=json)
        if delivery.response.status_code != 401 or wiring.tokens.pre_issued:
            return delivery
        refused = delivery.response.request.headers.get("Authorization", "").removeprefix("Bearer ")
        log.info("Perkville refused the token granted for %s; granting a new one", self.perkville_conn_id)
        wiring.tokens.replace_refused(refused, self._send_grant)
        again = wiring.transport.send(method, url, params=params, json=json)
        return Delivery(again.response, delivery.maybe_committed or again.maybe_committed)

    def check_response(self, response: requests.Response) -> None:
        """Raise the typed Perkville error for any status of 400 or more.

        :param response: an answer from Perkville
        :raises PerkvilleError: the subclass for the status, with the ``pv_*`` codes and fields
        """
        if response.status_code < 400:
            return
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise error_from_response(response, retry_after=retry_after, hint=self._hint(response.status_code))

    def _hint(self, status: int) -> str | None:
        if status != 401:
            return None
        wiring = self._wiring
        if wiring is not None and wiring.tokens.pre_issued:
            return (
                f"Perkville refused the pre-issued token in the token extra of connection "
                f"{self.perkville_conn_id!r}; mint a new one with "
                f"`perkville-provider token --conn-id {self.perkville_conn_id}`"
            )
        return f"Perkville refused a freshly granted token for connection {self.perkville_conn_id!r}"

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> requests.Response:
        """One API call with auth, rate limit, retries and typed errors; the way to unwrapped actions.

        :param method: the HTTP method
        :param path: the API path (``/v2/...``) or a full URL on the API's origin
        :param params: the query parameters
        :param json: the JSON body
        :return: the successful response
        :raises PerkvilleError: the typed error for a refusal, or ``PerkvilleNetworkError``
        """
        response = self._deliver(method.upper(), path, params=params, json=json).response
        self.check_response(response)
        return response

    def request_json(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        """:meth:`request`, returning the decoded JSON body.

        :param method: the HTTP method
        :param path: the API path (``/v2/...``) or a full URL on the API's origin
        :param params: the query parameters
        :param json: the JSON body
        :return: the decoded body, or None for an empty answer
        :raises PerkvilleError: the typed error for a refusal, or ``PerkvilleNetworkError``; a
            ``PerkvilleAnswerError`` (with status, method and path) for a body that is not JSON
        """
        return read_json(self.request(method, path, params=params, json=json))

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Yield every object of a list endpoint, one page in memory at a time.

        Walks the pages of :meth:`iter_pages`.

        :param path: the list endpoint
        :param params: the query filters
        :param page_size: objects asked for per page
        :return: an iterator of the objects
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        for page in self.iter_pages(path, params, page_size=page_size):
            yield from page

    def iter_pages(
        self, path: str, params: Mapping[str, Any] | None = None, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the objects of a list endpoint page by page, one page in memory at a time.

        Walks ``limit``/``offset``, and follows ``meta.next`` when the API gives one. A caller that
        counts pages or commits per page (the SQL export) walks this; others use :meth:`paginate`.

        :param path: the list endpoint, e.g. ``/v2/connections/``
        :param params: filters sent with the first page (``meta.next`` carries them on)
        :param page_size: the ``limit`` asked for
        :return: an iterator of pages, each the list of that page's objects
        """
        query: dict[str, Any] = {"limit": page_size, "offset": 0, **(params or {})}
        next_path: str | None = path
        while next_path is not None:
            page = self.request_json("GET", next_path, params=query) or {}
            objects = page.get("objects") or []
            meta = page.get("meta")
            limit = int(query.get("limit") or page_size)
            yield objects
            next_path = None
            if isinstance(meta, Mapping) and meta.get("next"):
                parts = urlsplit(meta["next"])
                next_path = parts.path if not parts.scheme else parts._replace(query="").geturl()
                query = dict(parse_qsl(parts.query))
            elif isinstance(meta, Mapping) and "next" not in meta and objects and len(objects) >= limit:
                next_path = path
                query = {**query, "offset": int(query.get("offset") or 0) + len(objects)}
            del page, objects

    def _business(self, business_id: int | str | None) -> int:
        if business_id not in (None, ""):
            return validate_ref(business_id, "business_id", "businesses")
        default = self._wire().business_id
        if default is None:
            raise PerkvilleConfigurationError(
                f"no business: pass business_id or set the business_id extra of connection "
                f"{self.perkville_conn_id!r}"
            )
        return default

    def _api(self) -> ApiConventions:
        return self._wire().api

    def conventions(self) -> ApiConventions:
        """How this connection spells paths, relations, quantities and times (from its extras).

        :return: the connection's conventions (stock tastypie's where the extras say nothing)
        :raises PerkvilleConfigurationError: an extra that cannot be used (no request is sent)
        """
        return self._api()

    def test_connection(self) -> tuple[bool, str]:
        """Read the business (when ``business_id`` is set), else ``users/me``; say which check ran.

        The business is "a known working endpoint" for other clients of the API, which found
        ``/me/`` unreliable.

        :return: whether it worked, and a message naming the check or the failure (never a secret)
        """
        try:
            if self._wire().business_id is not None:
                business = self.get_business()
                check = f"read business {business.get('business_id')} ({business.get('name')})"
            else:
                user = self.get_current_user()
                emails = [entry.get("email") for entry in user.get("emails") or [] if entry.get("primary")]
                check = f"read users/me: {emails[0] if emails else 'user ' + str(user.get('user_id'))}"
        except PerkvilleError as error:
            return False, str(error)
        except Exception as error:
            return False, f"{type(error).__name__}: {error}"
        return True, f"Connected to Perkville at {self._wire().base_url}: {check}"
