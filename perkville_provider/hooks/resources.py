"""The Perkville API's resources as hook methods: one method per API action.

:class:`PerkvilleResourcesMixin` is half of :class:`~perkville_provider.hooks.perkville.PerkvilleHook`:
it holds what each action sends and how its answer is read (``request_json`` among them), and builds
on the hook's request path (:class:`RequestPath`: ``request``, ``paginate``, ``check_response``...),
which lives with the connection wiring in ``hooks/perkville.py``.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from perkville_provider.answers import (
    CreationWitness,
    LookupGuard,
    Sent,
    answer_error,
    read_object,
    read_page,
    written_award,
    written_object,
)
from perkville_provider.api_conventions import DEFAULT_PATHS, ApiConventions
from perkville_provider.bodies import (
    AwardStatus,
    MemberStatus,
    award_request_body,
    member_request_body,
)
from perkville_provider.exceptions import (
    PerkvilleAnswerError,
    PerkvilleConfigurationError,
    PerkvilleError,
    PerkvilleValidationError,
)
from perkville_provider.model.fields import read_integer
from perkville_provider.records import (
    Award,
    Member,
    RecordValidationError,
    exact_decimal,
    validate_award,
    validate_connection_status,
    validate_email,
    validate_member,
    validate_positive_int,
    validate_ref,
)

if TYPE_CHECKING:
    import requests

    from perkville_provider.transport import Delivery

__all__ = [
    "AGREEMENTS_VIEW_PATH",
    "AGREEMENT_ACCEPT_PATH",
    "BUSINESSES_PATH",
    "CONNECTIONS_PATH",
    "DAILY_LIMIT_CODE",
    "DUPLICATE_CODE",
    "EXTERNAL_MEMBERS_PATH",
    "LOCATIONS_PATH",
    "PERKS_PATH",
    "TRANSACTIONS_PATH",
    "USERS_ME_PATH",
    "AwardResult",
    "MemberUpsertResult",
    "ObjectRef",
    "PerkvilleResourcesMixin",
    "RequestPath",
    "transaction_points",
]

# The default paths (the connection's ``paths`` extra overrides any of them; see the sandbox
# README). The batch agreement endpoint's real path is not documented.
AGREEMENT_ACCEPT_PATH = DEFAULT_PATHS["agreements_batch"]
USERS_ME_PATH = DEFAULT_PATHS["users_me"]
BUSINESSES_PATH = DEFAULT_PATHS["businesses"]
LOCATIONS_PATH = DEFAULT_PATHS["locations"]
PERKS_PATH = DEFAULT_PATHS["perks"]
CONNECTIONS_PATH = DEFAULT_PATHS["connections"]
EXTERNAL_MEMBERS_PATH = DEFAULT_PATHS["external_members"]
TRANSACTIONS_PATH = DEFAULT_PATHS["transactions"]
AGREEMENTS_VIEW_PATH = DEFAULT_PATHS["agreements_view"]

DUPLICATE_CODE = "pv_duplicate_trans_source_id"
DAILY_LIMIT_CODE = "pv_perk_daily_limit_reached"

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
    def status(self) -> MemberStatus:
        """``created`` or ``updated``, as the batch summary counts it."""
        return "created" if self.created else "updated"


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


class RequestPath(Protocol):
    """The hook's request path, which every API action builds on: the one statement of its shape.

    :class:`~perkville_provider.hooks.perkville.PerkvilleHook` implements it in
    ``hooks/perkville.py`` (with the connection wiring it needs); :class:`PerkvilleResourcesMixin`
    is typed against it, so a type checker holds the hook to these signatures.
    """

    _lookups: LookupGuard
    _witness: CreationWitness

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> requests.Response:
        """One API call with auth, rate limit, retries and typed errors."""

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, *, page_size: int = ...
    ) -> Iterator[dict[str, Any]]:
        """Every object of a list endpoint, one page in memory at a time."""

    def check_response(self, response: requests.Response) -> None:
        """Raise the typed Perkville error for any status of 400 or more."""

    def _deliver(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Delivery:
        """Send with retries and the token re-grant; the answer whatever its status."""

    def _own_location(self, response: requests.Response) -> str | None:
        """The answer's ``Location`` when it is on the API's origin."""

    def _business(self, business_id: int | str | None) -> int:
        """The business asked for, else the connection's ``business_id`` extra."""

    def _api(self) -> ApiConventions:
        """How the connection spells paths, relations, quantities and times."""


# The mixin's base is the protocol for a type checker only: at run time the protocol's empty
# bodies must never shadow HttpHook's methods or hide a method the hook lacks.
if TYPE_CHECKING:
    _RequestPathBase = RequestPath
else:
    _RequestPathBase = object


class PerkvilleResourcesMixin(_RequestPathBase):
    """The API actions of :class:`~perkville_provider.hooks.perkville.PerkvilleHook`."""

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        allow_empty: bool = False,
    ) -> dict[str, Any]:
        """:meth:`request`, returning the answer's JSON object.

        :param method: the HTTP method
        :param path: the API path (``/v2/...``) or a full URL on the API's origin
        :param params: the query parameters
        :param json: the JSON body
        :param allow_empty: an empty answer (a 202 or 204 to a write) is ``{}`` rather than an error
        :return: the decoded object
        :raises PerkvilleMalformedAnswerError: the answer is empty, not JSON, or not a JSON object
        :raises PerkvilleError: the typed error for a refusal, or ``PerkvilleNetworkError``
        """
        response = self.request(method, path, params=params, json=json)
        if allow_empty and not response.content:
            return {}
        return read_object(response)

    def get_current_user(self) -> dict[str, Any]:
        """The user the connection's token belongs to (``GET /v2/users/me/``).

        :return: the user object, with its ``emails``
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        return self.request_json("GET", self._api().path("users_me"))

    def get_business(self, business_id: int | None = None) -> dict[str, Any]:
        """One business.

        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :return: the business object
        :raises PerkvilleConfigurationError: when no business is given or configured
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        return self.request_json("GET", self._api().detail_path("businesses", self._business(business_id)))

    def list_locations(self, business_id: int | None = None) -> list[dict[str, Any]]:
        """Every location of the business, all pages read.

        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :return: the location objects
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        return list(self.paginate(self._api().path("locations"), {"business": self._business(business_id)}))

    def list_perks(
        self, business_id: int | None = None, classification: str | None = None
    ) -> list[dict[str, Any]]:
        """Every perk of the business, all pages read.

        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :param classification: only perks of this classification (``EARN``, ``REDEEM``...)
        :return: the perk objects
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        params: dict[str, Any] = {"business": self._business(business_id)}
        if classification:
            params["classification"] = classification
        return list(self.paginate(self._api().path("perks"), params))

    def iter_connections(self, business_id: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every connection of the business matching ``filters``, one page in memory at a time.

        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :param filters: API query filters, e.g. ``status="ACTIVE"``
        :return: an iterator of connection objects
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        path = self._api().path("connections")
        return self.paginate(path, {"business": self._business(business_id), **filters})

    def iter_external_members(
        self, business_id: int | None = None, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """Every external member record of the business matching ``filters``, a page at a time.

        A filter Perkville ignores returns more records, never fewer: callers that filter (the
        member sync's plan, on ``external_system_id``) check each record themselves.

        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :param filters: API query filters, e.g. ``external_system_id="MY_SYS"``
        :return: an iterator of external member records
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        path = self._api().path("external_members")
        return self.paginate(path, {"business": self._business(business_id), **filters})

    def find_connection(
        self, business_id: int | None = None, email: str | None = None, user_id: int | None = None
    ) -> dict[str, Any] | None:
        """The customer's connection at the business, found by email or by user id.

        What comes back is checked against what was asked (the email case-insensitively, the user
        id); when Perkville ignores the filter, the business's connections are walked instead.

        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :param email: the customer's email (give this or ``user_id``)
        :param user_id: the customer's Perkville user id (or ``/v2/users/<id>/``)
        :return: the connection object, or None when the customer has none
        :raises PerkvilleConfigurationError: unless exactly one of ``email`` and ``user_id`` is given
        :raises RecordValidationError: when the email or the id is malformed (nothing is sent)
        :raises PerkvilleLookupError: the filter is ignored and the bounded walk could not settle it
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        if (email is None) == (user_id is None):
            raise PerkvilleConfigurationError("find_connection needs exactly one of email or user_id")
        business = self._business(business_id)
        path = self._api().path("connections")
        value: str | int
        wanted_user: int | None = None
        if email is not None:
            email = validate_email(email, field="email")
            name, value, what = "user__emails__email", email, f"the connection of {email}"
        else:
            wanted_user = validate_ref(user_id, "user_id", "users")
            name, value, what = "user_id", wanted_user, f"the connection of user {wanted_user}"

        def matches(connection: Mapping[str, Any]) -> bool:
            if email is not None and connection.get("user_email"):
                return str(connection["user_email"]).strip().lower() == email
            if email is not None:  # no email on the connection: read its user (one request)
                return self._user_has_email(connection, email)
            return self._api().relation_id(connection.get("user"), "users") == wanted_user

        return self._lookups.find(
            path=path,
            filter_name=name,
            first=lambda: self._first_objects(path, {"business": business, name: value}),
            matches=matches,
            walk=lambda: self.paginate(path, {"business": business}),
            what=what,
            confirm=None if email is None else lambda connection: self._user_has_email(connection, email),
        )

    def _user_has_email(self, connection: Mapping[str, Any], email: str) -> bool:
        """Whether the connection's customer has ``email`` among all its emails (one more read)."""
        user_id = self._api().relation_id(connection.get("user"), "users")
        if user_id is None:
            return False
        user = self.request_json("GET", self._api().detail_path("users", user_id))
        return any(str(entry.get("email", "")).strip().lower() == email for entry in user.get("emails") or [])

    def _first_objects(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A look-up's filtered list, one object at most, checked to be a list answer."""
        objects, _ = read_page(self.request("GET", path, params={**params, "limit": 1}))
        return objects

    def set_connection_status(self, connection: ObjectRef, status: str) -> dict[str, Any]:
        """Join (``ACTIVE``) or leave (``INACTIVE``) the program.

        An empty answer (tastypie's 202 without ``always_return_data``) is followed by a read.

        :param connection: the connection, as an id, a ``/v2/connections/<id>/`` URI or an object
        :param status: ``ACTIVE`` or ``INACTIVE`` (any case)
        :return: the updated connection
        :raises RecordValidationError: for another status or a bad reference (nothing is sent)
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        status = validate_connection_status(status)
        path = _object_path(self._api().path("connections"), connection, "connection_id")
        answer = self.request_json("PATCH", path, json={"status": status}, allow_empty=True)
        return answer or self.request_json("GET", path)

    def upsert_external_member(
        self, member: Member | Mapping[str, Any], business_id: int | None = None
    ) -> MemberUpsertResult:
        """Create or update the member's external record (and its connection when missing).

        An answer without a readable body is settled by reading its ``Location`` (tastypie's
        created object), else by looking the record up.

        :param member: a validated ``Member``, or a record to validate
        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :return: whether it was created, and the URI of the member's connection
        :raises RecordValidationError: when the record is invalid (nothing is sent)
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        if not isinstance(member, Member):
            member = validate_member(member)
        business = self._business(business_id)
        body = member_request_body(member, business, api=self._api())
        response = self.request("POST", self._api().path("external_members"), json=body)
        record = written_object(response) or self._read_written_member(response, member, business)
        created = {201: True, 200: False}.get(response.status_code, bool(record.get("created")))
        connection_uri = record.get("connection") or response.headers.get("Location") or ""
        return MemberUpsertResult(created=created, connection_uri=connection_uri, external_member=record)

    def _read_written_member(
        self, response: requests.Response, member: Member, business: int
    ) -> dict[str, Any]:
        """The member record a write answered without a readable body: its ``Location``, else a look-up."""
        location = self._own_location(response)
        if location:
            found = self.request_json("GET", location) or {}
            if found.get("external_member_id") == member.external_member_id:
                return found
            if self._api().relation_id(found.get("resource_uri"), "connections") is not None:
                return {"connection": found["resource_uri"]}
        path = self._api().path("external_members")
        params = {"business": business, "external_system_id": member.external_system_id}
        record = self._lookups.find(
            path=path,
            filter_name="external_member_id",
            first=lambda: self._first_objects(
                path, {**params, "external_member_id": member.external_member_id}
            ),
            matches=lambda item: (
                item.get("external_member_id") == member.external_member_id
                and item.get("external_system_id") == member.external_system_id
            ),
            walk=lambda: self.paginate(path, {"business": business}),
            what=f"external member {member.external_member_id}",
        )
        if record is None:
            raise PerkvilleAnswerError(
                f"answered {response.status_code} without a readable body, and the member is not there",
                status=response.status_code,
                method="POST",
                path=path,
            )
        return record

    def update_external_member(self, external_member: ObjectRef, fields: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH some fields of one external member record.

        :param external_member: the record, as an id, a URI or an object
        :param fields: the fields to change (dates and times are spelled as the connection says)
        :return: the updated record
        :raises RecordValidationError: for a bad reference (nothing is sent)
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        api = self._api()
        path = _object_path(api.path("external_members"), external_member, "external_member_record_id")
        changes = {name: api.temporal(value) for name, value in fields.items()}
        return self.request_json("PATCH", path, json=changes, allow_empty=True) or self.request_json(
            "GET", path
        )

    def iter_transactions(self, business_id: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every transaction of the business matching ``filters``, one page in memory at a time.

        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :param filters: API query filters, e.g. ``user=/v2/users/5/``
        :return: an iterator of transaction objects
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        path = self._api().path("transactions")
        return self.paginate(path, {"business": self._business(business_id), **filters})

    def find_transaction(
        self, trans_source_id: str, business_id: int | None = None, *, award: Award | None = None
    ) -> dict[str, Any] | None:
        """The business's transaction with this ``trans_source_id``.

        The answer is checked: a transaction with another ``trans_source_id`` is never taken for
        it. When Perkville ignores the filter, the transactions of the award's customer (or of the
        business) are walked, bounded, instead.

        :param trans_source_id: the award's idempotency key
        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :param award: the award the transaction is for, to narrow that walk to its customer
        :return: the transaction, or None when there is none
        :raises PerkvilleLookupError: the filter is ignored and the bounded walk could not settle it
        :raises PerkvilleError: when Perkville refuses or does not answer
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
            first=lambda: self._first_objects(
                path, {"business": business, "trans_source_id": trans_source_id}
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

        :param award: a validated ``Award``, or a record to validate
        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :param limit_to_once_per_calendar_day: ask Perkville to refuse a second award of the perk that day
        :return: the outcome (``awarded``, ``duplicate`` or ``daily_limited``) and the points credited
        :raises RecordValidationError: when the record is invalid (nothing is sent)
        :raises PerkvilleError: for any other refusal, or when Perkville does not answer
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
            transaction = written_award(response, award.trans_source_id) or self._read_written_award(
                response, award, business
            )
            return self._award_answered(award, response, transaction, sent, lost)
        try:
            self.check_response(response)
        except PerkvilleValidationError as error:
            return self._award_refused(award, business, error, lost)
        raise PerkvilleError(f"unexpected answer {response.status_code}", status=response.status_code)

    def _award_answered(
        self, award: Award, response: requests.Response, transaction: dict[str, Any], sent: Sent, lost: bool
    ) -> AwardResult:
        """A 2xx: awarded if this request created the transaction, else a duplicate.

        A 200, or another 2xx with a transaction that existed before the request (an idempotent
        create), is a duplicate; a 202 or 204 is settled on the transaction read back. A
        transaction whose points cannot be read is a typed answer error, never 0 points.
        """
        try:
            points = transaction_points(transaction)
        except ValueError as error:
            raise answer_error(
                response, f"the transaction {award.trans_source_id!r} it answered with has {error}"
            ) from None
        if response.status_code != 200 and self._witness.created_now(sent, transaction, "transaction_id"):
            return AwardResult("awarded", award.trans_source_id, points, transaction)
        return AwardResult("duplicate", award.trans_source_id, 0, transaction, lost)

    def _read_written_award(self, response: requests.Response, award: Award, business: int) -> dict[str, Any]:
        """The transaction a write answered without a readable body: its ``Location``, else a look-up."""
        location = self._own_location(response)
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
        is told (Perkville does not document which check comes first), and a recovered award's
        points are read from it.
        """
        if DUPLICATE_CODE in error.codes and not lost:
            return AwardResult("duplicate", award.trans_source_id, 0, None, lost)
        if lost or "trans_source_id" in error.fields():
            existing = self.find_transaction(award.trans_source_id, business_id, award=award)
            if existing is not None:
                return AwardResult("duplicate", award.trans_source_id, 0, existing, lost)
        if DUPLICATE_CODE in error.codes:
            return AwardResult("duplicate", award.trans_source_id, 0, None, lost)
        if DAILY_LIMIT_CODE in error.codes:
            return AwardResult("daily_limited", award.trans_source_id, 0, None, lost)
        raise error

    def get_join_agreements(self, user_id: int, business_id: int | None = None) -> list[dict[str, Any]]:
        """The agreements the customer must see to join, each with ``is_accepted``.

        :param user_id: the customer's Perkville user id (or ``/v2/users/<id>/``)
        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :return: the agreement objects
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
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

        :param user_id: the customer's Perkville user id (or ``/v2/users/<id>/``)
        :param agreement_ids: the agreements accepted
        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :return: the acceptance objects
        :raises RecordValidationError: for a malformed id (nothing is sent)
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        business = self._business(business_id)
        user = validate_ref(user_id, "user_id", "users")
        ids = [validate_positive_int(agreement, "agreement_ids") for agreement in agreement_ids]
        body = {
            "business": self._api().relation("businesses", business),
            "user_id": user,
            "agreement_ids": ids,
        }
        response = self.request("POST", self._api().path("agreements_batch"), json=body)
        if response.content:
            objects, _ = read_page(response, paged=False)
            return objects
        return [a for a in self.get_join_agreements(user, business) if a.get("agreement_id") in ids]


def transaction_points(transaction: Mapping[str, Any]) -> int:
    """Points credited by a transaction: per-unit points times quantity (which may be a decimal).

    Rounded half up to whole points. Read with the export's field definitions: ``points`` a 64-bit
    integer, ``quantity`` an exact decimal of 2 places (1 when absent).

    :raises ValueError: naming the field that is not what a transaction holds (``"ten"`` points)
    """
    try:
        points = read_integer(transaction.get("points"))
    except ValueError as error:
        raise ValueError(f"points {error}") from None
    if points is None:
        raise ValueError("points is missing")
    quantity = transaction.get("quantity")
    try:
        exact = decimal.Decimal(1) if quantity is None else exact_decimal(quantity)
    except RecordValidationError as error:
        raise ValueError(error.message) from None
    return int((points * exact).to_integral_value(rounding=decimal.ROUND_HALF_UP))
