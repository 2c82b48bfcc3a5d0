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
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import pendulum
import requests
from airflow.providers.http.hooks.http import HttpHook
from requests.auth import AuthBase

from perkville_provider.answers import json_object, list_page
from perkville_provider.auth import Credentials, TokenProvider, token_provider
from perkville_provider.connection_settings import Limits, read_settings
from perkville_provider.deadline import DeadlineAdapter
from perkville_provider.exceptions import (
    PerkvilleConfigurationError,
    PerkvilleError,
    PerkvilleValidationError,
    error_from_response,
)
from perkville_provider.origin import Origin
from perkville_provider.pagination import walk_pages
from perkville_provider.records import (
    Award,
    Member,
    RecordValidationError,
    validate_award,
    validate_connection_status,
    validate_email,
    validate_member,
    validate_positive_int,
)
from perkville_provider.redaction import redact_text
from perkville_provider.transport import (
    Delivery,
    RateLimiter,
    RetryPolicy,
    Timeout,
    Transport,
    parse_retry_after,
    user_agent,
)

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.perkville.com"
#: The batch agreement endpoint; its real path is not documented (see the sandbox README).
AGREEMENT_ACCEPT_PATH = "/v2/agreements-batch/"
USERS_ME_PATH = "/v2/users/me/"
BUSINESSES_PATH = "/v2/businesses/"
LOCATIONS_PATH = "/v2/locations/"
PERKS_PATH = "/v2/perks/"
CONNECTIONS_PATH = "/v2/connections/"
EXTERNAL_MEMBERS_PATH = "/v2/external-members/"
TRANSACTIONS_PATH = "/v2/transactions/"
AGREEMENTS_VIEW_PATH = "/v2/agreements-view/"

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


def _json_value(value: Any) -> Any:
    if isinstance(value, pendulum.DateTime | pendulum.Date):
        return value.isoformat()
    return value


def award_request_body(
    award: Award, business_id: int, *, limit_to_once_per_calendar_day: bool = False
) -> dict[str, Any]:
    """The POST /v2/transactions/ body for one award (also what a dry run reports)."""
    body: dict[str, Any] = {
        "business": business_id,
        "perk": award.perk_id,
        "quantity": award.quantity,
        "trans_source_id": award.trans_source_id,
    }
    if award.user_email is not None:
        body["user_email"] = award.user_email
    elif award.user_id is not None:
        body["user"] = award.user_id
    else:
        body["external_member_id"] = award.external_member_id
        body["external_system_id"] = award.external_system_id
    if award.location_id is not None:
        body["location"] = award.location_id
    if award.transaction_dt is not None:
        body["transaction_dt"] = _json_value(award.transaction_dt)
    if limit_to_once_per_calendar_day:
        body["limit_to_once_per_calendar_day"] = True
    return body


def member_request_body(member: Member, business_id: int) -> dict[str, Any]:
    """The POST /v2/external-members/ body for one member (also what a dry run reports)."""
    body: dict[str, Any] = {
        "business": business_id,
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
        "home_location": member.home_location_id,
    }
    body.update({name: _json_value(value) for name, value in optional.items() if value is not None})
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
        adapter = DeadlineAdapter(
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
        session = self._session_for(connection)
        settings.check_urls(self.base_url)
        settings.warn_about_token_domain(self.base_url)
        tokens = token_provider(settings.credentials)
        session.headers["User-Agent"] = user_agent()
        session.headers["Accept"] = "application/json"
        transport = Transport(session, policy=self.retry_policy, limiter=self.limiter, limits=settings.limits)
        return _Wiring(
            self.base_url,
            settings.business_id,
            settings.credentials,
            tokens,
            session,
            transport,
            settings.limits,
            Origin.of(self.base_url),
        )

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
        resent = again.response.request.headers.get("Authorization", "").removeprefix("Bearer ")
        if again.response.status_code == 401:
            wiring.tokens.replace_refused(resent, self._send_grant)
        else:
            wiring.tokens.confirm(resent)
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
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        allow_empty: bool = False,
    ) -> dict[str, Any]:
        """One API call whose answer is a JSON object.

        :param allow_empty: an empty answer (a 202 or 204 to a write) is ``{}`` rather than an error
        :raises PerkvilleMalformedResponseError: the answer is empty, not JSON, or not an object
        """
        response = self.request(method, path, params=params, json=json)
        if allow_empty and not response.content:
            return {}
        return json_object(response)

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

        Walks ``limit``/``offset`` and follows ``meta.next`` on the API's origin only; a walk that
        would not end, or a link elsewhere, is a typed error (see :mod:`perkville_provider.pagination`).

        :raises PerkvilleForeignLinkError: ``meta.next`` points to another origin (not followed)
        :raises PerkvillePaginationError: a page already read, a repeated page, or past ``max_pages``
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

    def _business(self, business_id: int | str | None) -> int:
        if business_id not in (None, ""):
            return validate_positive_int(business_id, "business_id")
        default = self._wire().business_id
        if default is None:
            raise PerkvilleConfigurationError(
                f"no business: pass business_id or set the business_id extra of connection "
                f"{self.perkville_conn_id!r}"
            )
        return default

    # -- resources -----------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """A cheap authenticated call (who am I) for the UI button and `airflow connections test`."""
        try:
            user = self.get_current_user()
        except PerkvilleError as error:
            return False, str(error)
        except Exception as error:
            return False, redact_text(f"{type(error).__name__}: {error}")
        emails = [entry.get("email") for entry in user.get("emails") or [] if entry.get("primary")]
        who = emails[0] if emails else f"user {user.get('user_id')}"
        return True, f"Connected to Perkville at {self._wire().base_url} as {who}"

    def get_current_user(self) -> dict[str, Any]:
        return self.request_json("GET", USERS_ME_PATH)

    def get_business(self, business_id: int | None = None) -> dict[str, Any]:
        return self.request_json("GET", f"{BUSINESSES_PATH}{self._business(business_id)}/")

    def list_locations(self, business_id: int | None = None) -> list[dict[str, Any]]:
        return list(self.paginate(LOCATIONS_PATH, {"business": self._business(business_id)}))

    def list_perks(
        self, business_id: int | None = None, classification: str | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"business": self._business(business_id)}
        if classification:
            params["classification"] = classification
        return list(self.paginate(PERKS_PATH, params))

    def iter_connections(self, business_id: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every connection of the business matching ``filters`` (e.g. ``status="ACTIVE"``)."""
        return self.paginate(CONNECTIONS_PATH, {"business": self._business(business_id), **filters})

    def find_connection(
        self, business_id: int | None = None, email: str | None = None, user_id: int | None = None
    ) -> dict[str, Any] | None:
        """The customer's connection at the business, found by email or user id, or None."""
        if (email is None) == (user_id is None):
            raise ValueError("find_connection needs exactly one of email or user_id")
        params: dict[str, Any] = {"business": self._business(business_id), "limit": 1}
        if email is not None:
            params["user__emails__email"] = validate_email(email, field="email")
        else:
            params["user_id"] = validate_positive_int(user_id, "user_id")
        objects, _ = list_page(self.request("GET", CONNECTIONS_PATH, params=params))
        return objects[0] if objects else None

    def set_connection_status(self, connection: ObjectRef, status: str) -> dict[str, Any]:
        """Join (``ACTIVE``) or leave (``INACTIVE``) the program; other values fail before sending."""
        status = validate_connection_status(status)
        path = _object_path(CONNECTIONS_PATH, connection, "connection_id")
        return self.request_json("PATCH", path, json={"status": status}, allow_empty=True)

    def upsert_external_member(
        self, member: Member | Mapping[str, Any], business_id: int | None = None
    ) -> MemberUpsertResult:
        """Create or update the member's external record (and its connection when missing)."""
        if not isinstance(member, Member):
            member = validate_member(member)
        body = member_request_body(member, self._business(business_id))
        response = self.request("POST", EXTERNAL_MEMBERS_PATH, json=body)
        record = response.json()
        created = {201: True, 200: False}.get(response.status_code, bool(record.get("created")))
        connection_uri = record.get("connection") or response.headers.get("Location") or ""
        return MemberUpsertResult(created=created, connection_uri=connection_uri, external_member=record)

    def update_external_member(self, external_member: ObjectRef, fields: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH some fields of one external member record (by id, URI or object)."""
        path = _object_path(EXTERNAL_MEMBERS_PATH, external_member, "external_member_record_id")
        return self.request_json(
            "PATCH", path, json={name: _json_value(value) for name, value in fields.items()}, allow_empty=True
        )

    def iter_transactions(self, business_id: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        return self.paginate(TRANSACTIONS_PATH, {"business": self._business(business_id), **filters})

    def find_transaction(self, trans_source_id: str, business_id: int | None = None) -> dict[str, Any] | None:
        """The business's transaction with this ``trans_source_id``, or None."""
        params = {"business": self._business(business_id), "trans_source_id": trans_source_id, "limit": 1}
        objects, _ = list_page(self.request("GET", TRANSACTIONS_PATH, params=params))
        return objects[0] if objects else None

    def award_points(
        self,
        award: Award | Mapping[str, Any],
        business_id: int | None = None,
        limit_to_once_per_calendar_day: bool = False,
    ) -> AwardResult:
        """Award points exactly once per ``trans_source_id``, whatever Perkville answers to a repeat.

        201 is ``awarded``; a repeat is ``duplicate`` whether it comes back as 200 with the existing
        transaction, as ``pv_duplicate_trans_source_id``, or as any other error on the
        ``trans_source_id`` field that a lookup confirms; ``pv_perk_daily_limit_reached`` is
        ``daily_limited``. Any other refusal raises its typed error.
        """
        if not isinstance(award, Award):
            award = validate_award(award)
        business = self._business(business_id)
        body = award_request_body(
            award, business, limit_to_once_per_calendar_day=limit_to_once_per_calendar_day
        )
        delivery = self._deliver("POST", TRANSACTIONS_PATH, json=body)
        response = delivery.response
        lost = delivery.maybe_committed
        if response.status_code in (200, 201):
            transaction = response.json()
            if response.status_code == 201:
                return AwardResult(
                    "awarded", award.trans_source_id, transaction_points(transaction), transaction
                )
            return AwardResult("duplicate", award.trans_source_id, 0, transaction, lost)
        try:
            self.check_response(response)
        except PerkvilleValidationError as error:
            return self._award_refused(award, business, error, lost)
        raise PerkvilleError(f"unexpected answer {response.status_code}", status=response.status_code)

    def _award_refused(
        self, award: Award, business_id: int, error: PerkvilleValidationError, lost: bool
    ) -> AwardResult:
        """A refused award: a duplicate, a daily limit, or a real error.

        After a lost answer, or a refusal about ``trans_source_id`` in words the hook does not
        know, the transaction is looked up: an attempt may have committed whatever the resend
        is told (Perkville does not document which check comes first), and a recovered award's
        points are read from it.
        """
        if DUPLICATE_CODE in error.codes and not lost:
            return AwardResult("duplicate", award.trans_source_id, 0, None, lost)
        if lost or "trans_source_id" in error.fields():
            existing = self.find_transaction(award.trans_source_id, business_id)
            if existing is not None:
                return AwardResult("duplicate", award.trans_source_id, 0, existing, lost)
        if DUPLICATE_CODE in error.codes:
            return AwardResult("duplicate", award.trans_source_id, 0, None, lost)
        if DAILY_LIMIT_CODE in error.codes:
            return AwardResult("daily_limited", award.trans_source_id, 0, None, lost)
        raise error

    def get_join_agreements(self, user_id: int, business_id: int | None = None) -> list[dict[str, Any]]:
        """The agreements the customer must see to join, each with ``is_accepted``."""
        params = {
            "business": self._business(business_id),
            "user_id": validate_positive_int(user_id, "user_id"),
            "apply_to_join_flow": "true",
        }
        return list(self.paginate(AGREEMENTS_VIEW_PATH, params))

    def accept_agreements(
        self, user_id: int, agreement_ids: Iterable[int], business_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Record that the customer accepted these agreements (call only when they did)."""
        body = {
            "business": self._business(business_id),
            "user_id": validate_positive_int(user_id, "user_id"),
            "agreement_ids": [
                validate_positive_int(agreement, "agreement_ids") for agreement in agreement_ids
            ],
        }
        objects, _ = list_page(self.request("POST", AGREEMENT_ACCEPT_PATH, json=body), paged=False)
        return objects


def transaction_points(transaction: Mapping[str, Any]) -> int:
    """Points credited by a transaction: per-unit points times quantity."""
    try:
        return int(transaction.get("points") or 0) * int(transaction.get("quantity") or 1)
    except (TypeError, ValueError):
        return 0
