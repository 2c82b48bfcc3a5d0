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
from urllib.parse import urlsplit

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests.adapters import BaseAdapter
from requests.auth import AuthBase

from perkville_provider.answers import CreationWitness, LookupGuard
from perkville_provider.api_conventions import ApiConventions
from perkville_provider.auth import Credentials, TokenProvider, token_provider
from perkville_provider.connection_settings import Limits, connection_extras, read_settings
from perkville_provider.deadline import DeadlineAdapter
from perkville_provider.exceptions import (
    PerkvilleConfigurationError,
    PerkvilleError,
    PerkvilleForeignLinkError,
    error_from_response,
)
from perkville_provider.hooks.resources import (
    AGREEMENT_ACCEPT_PATH,
    AwardResult,
    MemberUpsertResult,
    PerkvilleResourcesMixin,
)
from perkville_provider.origin import Origin, describe_origin
from perkville_provider.pagination import walk_pages
from perkville_provider.rate_budget import RateBudget, SharedPace
from perkville_provider.records import validate_ref
from perkville_provider.redaction import redact_text
from perkville_provider.retries import RetryPolicy
from perkville_provider.session import DEFAULT_API_URL, base_url_of, build_session
from perkville_provider.transport import (
    Delivery,
    Timeout,
    Transport,
    parse_retry_after,
    user_agent,
)
from perkville_provider.waits import usable_seconds

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
    limits: Limits
    origin: Origin


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
        adapter = DeadlineAdapter(
            idle=120, count=20, interval=30, pool_connections=2, pool_maxsize=self.pool_size, max_retries=0
        )
        super().__init__(method="GET", http_conn_id=perkville_conn_id, adapter=adapter)
        self._pool_adapter: BaseAdapter = adapter  # HttpHook's own ``adapter`` is typed optional
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
        """Read and check every setting of the connection; nothing is sent before this succeeds."""
        connection = self.get_connection(self.perkville_conn_id)
        settings = read_settings(connection, self.perkville_conn_id, timeout=self.timeout)
        base_url = base_url_of(connection, self.perkville_conn_id)
        settings.check_urls(base_url)
        settings.warn_about_token_domain(base_url)
        tokens = token_provider(settings.credentials)
        self.base_url = base_url  # HttpHook's public attribute, for url_from_endpoint
        session = build_session(settings.extras, adapter=self._pool_adapter, auth=_BearerAuth(self))
        session.headers["User-Agent"] = user_agent()
        session.headers["Accept"] = "application/json"
        credentials = settings.credentials
        budget = RateBudget.from_extras(
            self.perkville_conn_id,
            settings.extras,
            max_requests_per_second=self.max_requests_per_second,
            max_wait=self.retry_policy.max_retry_after,
            get_connection=self.get_connection,
        )
        self.limiter = budget.limiter(f"{base_url}\n{credentials.client_id}\n{credentials.username}")
        transport = Transport(session, policy=self.retry_policy, limiter=self.limiter, limits=settings.limits)
        return _Wiring(
            base_url,
            settings.business_id,
            settings.api,
            credentials,
            tokens,
            session,
            transport,
            settings.limits,
            Origin.of(base_url),
        )

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """The hook's shared session, or a new one when headers or options are asked for.

        :param headers: headers for a new session
        :param extra_options: settings for a new session, read like the connection's extras
        :return: a session that signs requests with the bearer token
        """
        wiring = self._wire()
        if not headers and not extra_options:
            return wiring.session
        connection = self.get_connection(self.perkville_conn_id)
        extra = {**connection_extras(connection, self.perkville_conn_id), **(extra_options or {})}
        session = build_session(extra, adapter=self._pool_adapter, auth=_BearerAuth(self))
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
        """The URL of an API path; a full URL (a ``Location`` answered) only on the API's origin."""
        wiring = self._wire()
        if "://" not in path:
            return wiring.base_url.rstrip("/") + "/" + path.lstrip("/")
        if not wiring.origin.admits(path):
            raise PerkvilleForeignLinkError(
                f"{describe_origin(path)} is not the API at {wiring.origin}; not sent (the request "
                "would carry the token there)",
                path=urlsplit(path).path,
            )
        return path

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
        resent = again.response.request.headers.get("Authorization", "").removeprefix("Bearer ")
        if again.response.status_code == 401:
            wiring.tokens.replace_refused(resent, self._send_grant)  # opens the circuit breaker
        else:
            wiring.tokens.confirm(resent)
        return Delivery(again.response, delivery.maybe_committed or again.maybe_committed)

    def _own_location(self, response: requests.Response) -> str | None:
        """The answer's ``Location`` when it is on the API's origin; another is ignored (and said)."""
        location = response.headers.get("Location")
        if location and not self._wire().origin.admits(location):
            log.warning("Perkville answered with a Location on %s; not followed", describe_origin(location))
            return None
        return location

    def check_response(self, response: requests.Response) -> None:
        """Raise the typed Perkville error for any status of 400 or more.

        :param response: an answer from Perkville
        :raises PerkvilleError: the subclass for the status, with the ``pv_*`` codes and fields
        """
        if response.status_code < 400:
            return
        retry_after = usable_seconds(
            parse_retry_after(response.headers.get("Retry-After")), self.retry_policy.max_retry_after
        )
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

    def abort(self) -> None:
        """End every request of this hook in flight now, from any thread (a killed task).

        Later calls fail at once with ``PerkvilleNetworkError``; nothing more is sent.
        """
        wiring = self._wiring
        if wiring is not None:
            wiring.transport.abort()

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Yield every object of a list endpoint, one page in memory at a time.

        Walks the pages of :meth:`iter_pages`.

        :param path: the list endpoint
        :param params: the query filters
        :param page_size: objects asked for per page
        :return: an iterator of the objects
        :raises PerkvilleForeignLinkError: ``meta.next`` points to another origin (not followed)
        :raises PerkvillePaginationError: a page already read, a repeated page, or past ``max_pages``
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        for page in self.iter_pages(path, params, page_size=page_size):
            yield from page

    def iter_pages(
        self, path: str, params: Mapping[str, Any] | None = None, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the objects of a list endpoint page by page, one page in memory at a time.

        Walks ``limit``/``offset`` and follows ``meta.next`` on the API's origin only; a walk that
        would not end, or a link elsewhere, is a typed error (see :mod:`perkville_provider.pagination`).
        A caller that counts pages or commits per page (the SQL export) walks this; others use
        :meth:`paginate`.

        :param path: the list endpoint, e.g. ``/v2/connections/``
        :param params: filters sent with the first page (``meta.next`` carries them on)
        :param page_size: the ``limit`` asked for
        :return: an iterator of pages, each the list of that page's objects
        :raises PerkvilleForeignLinkError: ``meta.next`` points to another origin (not followed)
        :raises PerkvillePaginationError: a page already read, a repeated page, or past ``max_pages``
        :raises PerkvilleMalformedAnswerError: a page that is not a list answer (says what is missing)
        """
        wiring = self._wire()
        return walk_pages(
            lambda page_path, query: self.request("GET", page_path, params=query),
            path,
            params,
            page_size=page_size,
            origin=wiring.origin,
            max_pages=wiring.limits.max_pages,
        )

    def resolve_business_id(self, business_id: int | str | None = None) -> int:
        """The business ``business_id`` names, else the connection's ``business_id`` extra (no request).

        :raises PerkvilleConfigurationError: when neither gives one
        """
        return self._business(business_id)

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

    @property
    def pool_adapter(self) -> BaseAdapter:
        """The adapter every session of this hook sends through (pooled, with attempt deadlines)."""
        return self._pool_adapter

    def send_through(self, adapter: BaseAdapter) -> None:
        """Send through ``adapter``; call before the hook's first request (its session is built once).

        The doctor's read-only guard wraps :attr:`pool_adapter` so that no write can leave.
        """
        self._pool_adapter = adapter

    def test_connection(self) -> tuple[bool, str]:
        """Read the business (when ``business_id`` is set), else ``users/me``; say which check ran.

        A connection that works also gets the doctor's one-line verdict on the API's unknowns
        (``perkville-provider doctor`` prints the table), so the Test button says which extras fit.

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
            return False, self._without_conn_id(str(error))
        except Exception as error:
            return False, self._without_conn_id(redact_text(f"{type(error).__name__}: {error}"))
        connected = f"Connected to Perkville at {self._wire().base_url}: {check}"
        return True, f"{connected}. {self._without_conn_id(self._doctor_summary())}"

    def _doctor_summary(self) -> str:
        """The doctor's one line (read-only probes of the API's unknowns) for the Test button.

        Imported here: the doctor is for a person at the button or the CLI, not for tasks.
        """
        from perkville_provider.doctor import quick_summary

        return quick_summary(self)

    def _without_conn_id(self, message: str) -> str:
        """``message`` saying "this connection" where it named the connection's id.

        Airflow's Test button tests a copy of the connection under a random id ("check connection
        'WZSK5aOs'" named no connection the user has); whoever tests knows which one they test.
        """
        named = repr(self.perkville_conn_id)
        return (
            message.replace(f"connection {named}", "this connection")
            .replace(named, "this connection")
            .replace(f"--conn-id {self.perkville_conn_id}", "--conn-id <connection id>")
        )
