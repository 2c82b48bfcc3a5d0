"""PerkvilleHook: the one place that talks to the Perkville v2 API.

connection -> token -> shared session -> request (rate limit, retries) -> typed error. One method
per API action; operators build on these and never on raw HTTP. ``HttpHook`` supplies the base
URL and the session's TLS, proxy and keep-alive set-up; this hook replaces what does not fit
Perkville: basic auth (a bearer token instead), extras sent as headers (Perkville's settings are
stripped), a new session per call (one pooled session per hook, shared by threads), and the plain
``AirflowException`` on errors (typed exceptions instead).
"""

from __future__ import annotations

import copy
import decimal
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests.auth import AuthBase
from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter

from perkville_provider.answers import (
    CreationWitness,
    LookupGuard,
    Sent,
    page_objects,
    read_json,
    written_object,
)
from perkville_provider.api_conventions import API_EXTRAS, DEFAULT_PATHS, ApiConventions, ConventionError
from perkville_provider.auth import DEFAULT_TOKEN_URL, Credentials, TokenProvider, token_provider
from perkville_provider.exceptions import (
    PerkvilleAnswerError,
    PerkvilleConfigurationError,
    PerkvilleError,
    PerkvilleValidationError,
    error_from_response,
)
from perkville_provider.records import (
    Award,
    Member,
    RecordValidationError,
    validate_award,
    validate_connection_status,
    validate_email,
    validate_member,
    validate_positive_int,
    validate_ref,
)
from perkville_provider.transport import (
    Delivery,
    RateLimiter,
    RetryPolicy,
    Timeout,
    Transport,
    normalise_timeout,
    parse_retry_after,
    user_agent,
)

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.perkville.com"
#: The batch agreement endpoint; its real path is not documented (see the sandbox README). Every
#: path can be overridden by the connection's ``paths`` extra.
AGREEMENT_ACCEPT_PATH = DEFAULT_PATHS["agreements_batch"]

#: Connection extras that configure this hook; HttpHook would otherwise send them as headers.
SETTING_EXTRAS = (
    "client_id",
    "client_secret",
    "token",
    "token_url",
    "business_id",
    "scope",
    "timeout",
    *API_EXTRAS,
)
DEFAULT_PAGE_SIZE = 100

DUPLICATE_CODE = "pv_duplicate_trans_source_id"
DAILY_LIMIT_CODE = "pv_perk_daily_limit_reached"

AwardStatus = Literal["awarded", "duplicate", "daily_limited"]
ObjectRef = int | str | Mapping[str, Any]


@dataclass(frozen=True)
class AwardResult:
    """What one award did. ``points`` counts what this call credited: 0 unless ``awarded``.

    ``recovered_after_lost_response`` marks a duplicate that followed an attempt whose answer
    was lost (a reset, a timeout or a 5xx): most likely that attempt awarded the points.
    """

    status: AwardStatus
    trans_source_id: str
    points: int
    transaction: dict[str, Any] | None
    recovered_after_lost_response: bool = False


@dataclass(frozen=True)
class MemberUpsertResult:
    """What one external member upsert did, with the URI of the member's connection."""

    created: bool
    connection_uri: str
    external_member: dict[str, Any]

    @property
    def status(self) -> Literal["created", "updated"]:
        return "created" if self.created else "updated"


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


DEFAULT_CONVENTIONS = ApiConventions()


def award_request_body(
    award: Award,
    business_id: int,
    *,
    limit_to_once_per_calendar_day: bool = False,
    api: ApiConventions = DEFAULT_CONVENTIONS,
) -> dict[str, Any]:
    """The POST /v2/transactions/ body for one award (also what a dry run reports).

    Relations, the quantity and the time are spelled by the connection's conventions (``api``).
    """
    body: dict[str, Any] = {
        "business": api.relation("businesses", business_id),
        "perk": api.relation("perks", award.perk_id),
        "quantity": api.quantity(award.quantity),
        "trans_source_id": award.trans_source_id,
    }
    if award.user_email is not None:
        body["user_email"] = award.user_email
    elif award.user_id is not None:
        body["user"] = api.relation("users", award.user_id)
    else:
        body["external_member_id"] = award.external_member_id
        body["external_system_id"] = award.external_system_id
    if award.location_id is not None:
        body["location"] = api.relation("locations", award.location_id)
    if award.transaction_dt is not None:
        body["transaction_dt"] = api.temporal(award.transaction_dt)
    if limit_to_once_per_calendar_day:
        body["limit_to_once_per_calendar_day"] = True
    return body


def member_request_body(
    member: Member, business_id: int, *, api: ApiConventions = DEFAULT_CONVENTIONS
) -> dict[str, Any]:
    """The POST /v2/external-members/ body for one member (also what a dry run reports)."""
    body: dict[str, Any] = {
        "business": api.relation("businesses", business_id),
        "external_system_id": member.external_system_id,
        "external_member_id": member.external_member_id,
        "user_email": member.user_email,
    }
    optional = {
        "first_name": member.first_name,
        "last_name": member.last_name,
        "external_membership_type": member.external_membership_type,
        "external_membership_status": member.external_membership_status,
        "external_join_dt": member.external_join_dt,
        "external_cancel_dt": member.external_cancel_dt,
        "external_home_location_id": member.external_home_location_id,
    }
    body.update({name: api.temporal(value) for name, value in optional.items() if value is not None})
    if member.home_location_id is not None:
        body["home_location"] = api.relation("locations", member.home_location_id)
    return body


def _object_path(collection: str, ref: ObjectRef, id_field: str) -> str:
    """The detail path of an object given as an id, a resource URI, or an object dict."""
    if isinstance(ref, Mapping):
        ref = ref.get("resource_uri") or ref.get(id_field) or ""
    if isinstance(ref, str) and ref.startswith(collection):
        return ref if ref.endswith("/") else ref + "/"
    try:
        return f"{collection}{validate_positive_int(ref, id_field)}/"
    except RecordValidationError:
        raise RecordValidationError(
            id_field, f"must be an id or a {collection}<id>/ URI, got {ref!r}"
        ) from None


class PerkvilleHook(HttpHook):
    """Talks to the Perkville v2 API with a bearer token, retries, pagination and typed errors.

    Nothing is looked up or sent until the first call. One hook is safe to share between threads:
    they share its pooled session, its rate limiter and its token.

    :param perkville_conn_id: the Airflow connection (type ``perkville``)
    :param max_requests_per_second: a client-side cap on request starts, across all threads
    :param pool_size: connections kept open to the API; at least the number of worker threads
    :param timeout: read timeout in seconds, or a (connect, read) pair; overrides the ``timeout`` extra
    :param retry_policy: attempts, backoff and time caps for retryable failures
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
        self.max_requests_per_second = max_requests_per_second
        self.limiter = RateLimiter(max_requests_per_second) if max_requests_per_second else None
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
        session = self._session_for(connection)
        session.headers["User-Agent"] = user_agent()
        session.headers["Accept"] = "application/json"
        transport = Transport(
            session,
            policy=self.retry_policy,
            limiter=self.limiter,
            timeout=normalise_timeout(self.timeout if self.timeout is not None else extra.get("timeout")),
        )
        return _Wiring(self.base_url, business_id, api, credentials, tokens, session, transport)

    def _set_base_url(self, connection: Any) -> None:
        """HttpHook's rule, except that a host without a scheme means HTTPS (HttpHook assumes HTTP)."""
        if connection.host and "://" not in connection.host and not connection.schema:
            connection = copy.copy(connection)
            connection.schema = "https"
        super()._set_base_url(connection)

    def _session_for(self, connection: Any) -> requests.Session:
        """HttpHook's session set-up (base URL, TLS, proxies, keep-alive pool) from one lookup."""
        session = requests.Session()
        self._set_base_url(connection)
        session = self._configure_session_from_auth(session, connection)
        session = self._configure_session_from_extra(session, connection, {})
        return self._configure_session_from_mount_adapters(session)

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """The hook's shared session (a fresh one only when headers or options are asked for)."""
        if headers or extra_options:
            return super().get_conn(headers, extra_options)
        return self._wire().session

    def _extract_auth(self, connection: Any) -> AuthBase:
        return _BearerAuth(self)

    def _configure_session_from_extra(
        self, session: requests.Session, connection: Any, extra_options: dict[str, Any]
    ) -> requests.Session:
        """HttpHook's proxies, TLS and cert settings from the extras, but no extra becomes a header.

        HttpHook sends every extra it does not know as an HTTP header; a Perkville connection's
        extras are settings (some of them secrets), never headers, whatever their name.
        """
        headers_before = dict(session.headers)
        session = super()._configure_session_from_extra(session, connection, extra_options)
        session.headers.clear()
        session.headers.update(headers_before)
        return session

    def _configure_session_from_mount_adapters(self, session: requests.Session) -> requests.Session:
        if self.adapter is not None:
            session.mount("https://", self.adapter)
            session.mount("http://", self.adapter)
        return session

    def get_token(self) -> str:
        """The bearer token: the pre-issued one, or this process's grant for the connection."""
        return self._wire().tokens.token(self._send_grant)

    def grant_token(self) -> str:
        """Run a new password grant now, whatever is cached or pre-issued (for minting a token)."""
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
        return Delivery(
            again.response,
            delivery.attempts + again.attempts,
            delivery.maybe_committed or again.maybe_committed,
        )

    def check_response(self, response: requests.Response) -> None:
        """Raise the typed Perkville error for any status of 400 or more."""
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
        """One API call with auth, retries and typed errors; the escape hatch for unwrapped actions."""
        response = self._deliver(method.upper(), path, params=params, json=json).response
        self.check_response(response)
        return response

    def request_json(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        return read_json(self.request(method, path, params=params, json=json))

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Yield every object of a list endpoint, one page in memory at a time.

        Walks ``limit``/``offset``, and follows ``meta.next`` when the API gives one.
        """
        query: dict[str, Any] = {"limit": page_size, "offset": 0, **(params or {})}
        next_path: str | None = path
        while next_path is not None:
            page = self.request_json("GET", next_path, params=query) or {}
            objects = page.get("objects") or []
            meta = page.get("meta")
            limit = int(query.get("limit") or page_size)
            yield from objects
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

    # -- resources -----------------------------------------------------------------------------

    def _api(self) -> ApiConventions:
        return self._wire().api

    def conventions(self) -> ApiConventions:
        """How this connection spells paths, relations, quantities and times (from its extras).

        :raises PerkvilleConfigurationError: an extra that cannot be used (no request is sent)
        """
        return self._api()

    def test_connection(self) -> tuple[bool, str]:
        """Read the business (when ``business_id`` is set), else ``users/me``; say which check ran.

        The business is "a known working endpoint" for other clients of the API, which found
        ``/me/`` unreliable.
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

    def get_current_user(self) -> dict[str, Any]:
        return self.request_json("GET", self._api().path("users_me"))

    def get_business(self, business_id: int | None = None) -> dict[str, Any]:
        return self.request_json("GET", self._api().detail_path("businesses", self._business(business_id)))

    def list_locations(self, business_id: int | None = None) -> list[dict[str, Any]]:
        return list(self.paginate(self._api().path("locations"), {"business": self._business(business_id)}))

    def list_perks(
        self, business_id: int | None = None, classification: str | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"business": self._business(business_id)}
        if classification:
            params["classification"] = classification
        return list(self.paginate(self._api().path("perks"), params))

    def iter_connections(self, business_id: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every connection of the business matching ``filters`` (e.g. ``status="ACTIVE"``)."""
        return self.paginate(
            self._api().path("connections"), {"business": self._business(business_id), **filters}
        )

    def find_connection(
        self, business_id: int | None = None, email: str | None = None, user_id: int | None = None
    ) -> dict[str, Any] | None:
        """The customer's connection at the business, found by email or user id, or None.

        What comes back is checked against what was asked (the email case-insensitively, the user
        id); when Perkville ignores the filter, the business's connections are walked instead.

        :raises PerkvilleLookupError: the filter is ignored and the bounded walk could not settle it
        """
        if (email is None) == (user_id is None):
            raise ValueError("find_connection needs exactly one of email or user_id")
        business = self._business(business_id)
        path = self._api().path("connections")
        if email is not None:
            email = validate_email(email, field="email")
            name, value, what = "user__emails__email", email, f"the connection of {email}"
        else:
            user_id = validate_ref(user_id, "user_id", "users")
            name, value, what = "user_id", user_id, f"the connection of user {user_id}"

        def matches(connection: Mapping[str, Any]) -> bool:
            if email is not None:
                return self._user_has_email(connection, email)
            return self._api().relation_id(connection.get("user"), "users") == user_id

        return self._lookups.find(
            path=path,
            filter_name=name,
            first=lambda: self.request_json(
                "GET", path, params={"business": business, name: value, "limit": 1}
            ),
            matches=matches,
            walk=lambda: self.paginate(path, {"business": business}),
            what=what,
        )

    def _user_has_email(self, connection: Mapping[str, Any], email: str) -> bool:
        """Whether the connection's customer has ``email`` (its ``user_email``, else its user's emails)."""
        if connection.get("user_email"):
            return str(connection["user_email"]).strip().lower() == email
        user_id = self._api().relation_id(connection.get("user"), "users")
        if user_id is None:
            return False
        user = self.request_json("GET", self._api().detail_path("users", user_id)) or {}
        return any(str(entry.get("email", "")).strip().lower() == email for entry in user.get("emails") or [])

    def set_connection_status(self, connection: ObjectRef, status: str) -> dict[str, Any]:
        """Join (``ACTIVE``) or leave (``INACTIVE``) the program; other values fail before sending.

        An empty answer (tastypie's 202 without ``always_return_data``) is followed by a read.
        """
        status = validate_connection_status(status)
        path = _object_path(self._api().path("connections"), connection, "connection_id")
        return self.request_json("PATCH", path, json={"status": status}) or self.request_json("GET", path)

    def upsert_external_member(
        self, member: Member | Mapping[str, Any], business_id: int | None = None
    ) -> MemberUpsertResult:
        """Create or update the member's external record (and its connection when missing).

        An answer without a readable body is settled by reading its ``Location`` (tastypie's
        created object), else by looking the record up.
        """
        if not isinstance(member, Member):
            member = validate_member(member)
        business = self._business(business_id)
        path = self._api().path("external_members")
        body = member_request_body(member, business, api=self._api())
        response = self.request("POST", path, json=body)
        record = written_object(response)
        if record is None:
            record = self._read_written_member(response, member, business)
        created = {201: True, 200: False}.get(response.status_code, bool(record.get("created")))
        connection_uri = record.get("connection") or response.headers.get("Location") or ""
        return MemberUpsertResult(created=created, connection_uri=connection_uri, external_member=record)

    def _read_written_member(
        self, response: requests.Response, member: Member, business: int
    ) -> dict[str, Any]:
        location = response.headers.get("Location")
        if location:
            found = self.request_json("GET", location) or {}
            if found.get("external_member_id") == member.external_member_id:
                return found
            if self._api().relation_id(found.get("resource_uri"), "connections") is not None:
                return {"connection": found["resource_uri"]}
        path = self._api().path("external_members")
        params = {"business": business, "external_system_id": member.external_system_id}
        found = self._lookups.find(
            path=path,
            filter_name="external_member_id",
            first=lambda: self.request_json(
                "GET", path, params={**params, "external_member_id": member.external_member_id, "limit": 1}
            ),
            matches=lambda item: (
                item.get("external_member_id") == member.external_member_id
                and item.get("external_system_id") == member.external_system_id
            ),
            walk=lambda: self.paginate(path, {"business": business}),
            what=f"external member {member.external_member_id}",
        )
        if found is None:
            raise PerkvilleAnswerError(
                f"answered {response.status_code} without a readable body, and the member is not there",
                status=response.status_code,
                method="POST",
                path=path,
            )
        return found

    def update_external_member(self, external_member: ObjectRef, fields: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH some fields of one external member record (by id, URI or object)."""
        api = self._api()
        path = _object_path(api.path("external_members"), external_member, "external_member_record_id")
        return self.request_json(
            "PATCH", path, json={name: api.temporal(value) for name, value in fields.items()}
        ) or self.request_json("GET", path)

    def iter_transactions(self, business_id: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        return self.paginate(
            self._api().path("transactions"), {"business": self._business(business_id), **filters}
        )

    def find_transaction(
        self, trans_source_id: str, business_id: int | None = None, *, award: Award | None = None
    ) -> dict[str, Any] | None:
        """The business's transaction with this ``trans_source_id``, or None.

        The answer is checked: a transaction with another ``trans_source_id`` is never taken for
        it. When Perkville ignores the filter, the transactions of the award's customer (or of the
        business) are walked, bounded, instead.

        :param award: the award the transaction is for, to narrow that walk to its customer
        :raises PerkvilleLookupError: the filter is ignored and the bounded walk could not settle it
        """
        business = self._business(business_id)
        path = self._api().path("transactions")
        walk_params: dict[str, Any] = {"business": business}
        if award is not None and award.user_email is not None:
            walk_params["user__emails__email"] = award.user_email
        elif award is not None and award.user_id is not None:
            walk_params["user"] = self._api().detail_path("users", award.user_id)
        return self._lookups.find(
            path=path,
            filter_name="trans_source_id",
            first=lambda: self.request_json(
                "GET", path, params={"business": business, "trans_source_id": trans_source_id, "limit": 1}
            ),
            matches=lambda item: str(item.get("trans_source_id")) == trans_source_id,
            walk=lambda: self.paginate(path, walk_params),
            what=f"the transaction {trans_source_id!r}",
        )

    def award_points(
        self,
        award: Award | Mapping[str, Any],
        business_id: int | None = None,
        limit_to_once_per_calendar_day: bool = False,
    ) -> AwardResult:
        """Award points exactly once per ``trans_source_id``, whatever Perkville answers to a repeat.

        A 201 that created is ``awarded``; a repeat is ``duplicate`` whether it comes back as 201
        or 200 with the existing transaction, as ``pv_duplicate_trans_source_id``, or as any other
        error on the ``trans_source_id`` field that a lookup confirms; ``pv_perk_daily_limit_reached``
        is ``daily_limited``. A 2xx without a readable body is settled by reading its ``Location``
        or by look-up. Any other refusal raises its typed error.
        """
        if not isinstance(award, Award):
            award = validate_award(award)
        business = self._business(business_id)
        body = award_request_body(
            award, business, limit_to_once_per_calendar_day=limit_to_once_per_calendar_day, api=self._api()
        )
        sent = self._witness.before_send()
        delivery = self._deliver("POST", self._api().path("transactions"), json=body)
        response = delivery.response
        lost = delivery.maybe_committed
        self._witness.observe_date(response.headers.get("Date"))
        if 200 <= response.status_code < 300:
            transaction = written_object(response) or self._read_written_award(response, award, business)
            return self._award_answered(award, response.status_code, transaction, sent, lost)
        try:
            self.check_response(response)
        except PerkvilleValidationError as error:
            return self._award_refused(award, business, error, lost)
        raise PerkvilleError(f"unexpected answer {response.status_code}", status=response.status_code)

    def _award_answered(
        self, award: Award, status: int, transaction: dict[str, Any], sent: Sent, lost: bool
    ) -> AwardResult:
        """A 2xx: awarded if this request created the transaction, else a duplicate (200, or a 201
        with a transaction that existed before the request: an idempotent create)."""
        if status == 201 and self._witness.created_now(sent, transaction, "transaction_id"):
            return AwardResult("awarded", award.trans_source_id, _points_of(transaction), transaction)
        return AwardResult("duplicate", award.trans_source_id, 0, transaction, lost)

    def _read_written_award(self, response: requests.Response, award: Award, business: int) -> dict[str, Any]:
        """The transaction a write answered without a readable body: its ``Location``, else a look-up."""
        location = response.headers.get("Location")
        found = self.request_json("GET", location) if location else None
        if not isinstance(found, dict) or str(found.get("trans_source_id")) != award.trans_source_id:
            found = self.find_transaction(award.trans_source_id, business, award=award)
        if found is None:
            raise PerkvilleAnswerError(
                f"answered {response.status_code} without a readable body, and no transaction "
                f"{award.trans_source_id!r} is there",
                status=response.status_code,
                method="POST",
                path=self._api().path("transactions"),
            )
        return found

    def _award_refused(
        self, award: Award, business_id: int, error: PerkvilleValidationError, lost: bool
    ) -> AwardResult:
        """A refused award: a duplicate, a daily limit, or a real error.

        After a lost answer, or a refusal about ``trans_source_id`` in words the hook does not
        know, the transaction is looked up: an attempt may have committed whatever the resend
        is told (Perkville does not document which check comes first).
        """
        if DUPLICATE_CODE in error.codes:
            return AwardResult("duplicate", award.trans_source_id, 0, None, lost)
        if lost or "trans_source_id" in error.fields():
            existing = self.find_transaction(award.trans_source_id, business_id, award=award)
            if existing is not None:
                return AwardResult("duplicate", award.trans_source_id, 0, existing, lost)
        if DAILY_LIMIT_CODE in error.codes:
            return AwardResult("daily_limited", award.trans_source_id, 0, None, lost)
        raise error

    def get_join_agreements(self, user_id: int, business_id: int | None = None) -> list[dict[str, Any]]:
        """The agreements the customer must see to join, each with ``is_accepted``."""
        params = {
            "business": self._business(business_id),
            "user_id": validate_ref(user_id, "user_id", "users"),
            "apply_to_join_flow": "true",
        }
        return list(self.paginate(self._api().path("agreements_view"), params))

    def accept_agreements(
        self, user_id: int, agreement_ids: Iterable[int], business_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Record that the customer accepted these agreements (call only when they did).

        An empty answer is followed by a read of the agreements view.
        """
        business = self._business(business_id)
        user = validate_ref(user_id, "user_id", "users")
        ids = [validate_positive_int(agreement, "agreement_ids") for agreement in agreement_ids]
        body = {
            "business": self._api().relation("businesses", business),
            "user_id": user,
            "agreement_ids": ids,
        }
        answer = self.request_json("POST", self._api().path("agreements_batch"), json=body)
        if answer:
            return page_objects(answer)
        return [a for a in self.get_join_agreements(user, business) if a.get("agreement_id") in ids]


def _points_of(transaction: Mapping[str, Any]) -> int:
    """Points credited by a transaction: per-unit points times quantity (which may be a decimal),
    rounded half up to whole points."""
    try:
        total = decimal.Decimal(str(transaction.get("points") or 0)) * decimal.Decimal(
            str(transaction.get("quantity") or 1)
        )
    except (decimal.InvalidOperation, TypeError, ValueError):
        return 0
    return int(total.to_integral_value(rounding=decimal.ROUND_HALF_UP)) if total.is_finite() else 0
