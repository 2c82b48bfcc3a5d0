"""The Perkville API's resources as hook methods: one method per API action.

:class:`PerkvilleResourcesMixin` is half of :class:`~perkville_provider.hooks.perkville.PerkvilleHook`:
it holds what each action sends and how its answer is read, and builds on the hook's request path
(``request``, ``request_json``, ``paginate``, ``check_response``, ``_deliver``, ``_business``), which
lives with the connection wiring in ``hooks/perkville.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from perkville_provider.answers import list_page
from perkville_provider.bodies import (
    AwardStatus,
    MemberStatus,
    award_request_body,
    json_value,
    member_request_body,
)
from perkville_provider.exceptions import (
    PerkvilleConfigurationError,
    PerkvilleError,
    PerkvilleValidationError,
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
    "transaction_points",
]

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


class PerkvilleResourcesMixin:
    """The API actions of :class:`~perkville_provider.hooks.perkville.PerkvilleHook`."""

    if TYPE_CHECKING:  # the hook's request path, defined in hooks/perkville.py

        def request_json(  # noqa: D102
            self,
            method: str,
            path: str,
            *,
            params: Mapping[str, Any] | None = None,
            json: Any = None,
            allow_empty: bool = False,
        ) -> dict[str, Any]: ...
        def request(  # noqa: D102
            self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
        ) -> requests.Response: ...
        def paginate(  # noqa: D102
            self, path: str, params: Mapping[str, Any] | None = None
        ) -> Iterator[dict[str, Any]]: ...
        def check_response(self, response: requests.Response) -> None: ...  # noqa: D102
        def _deliver(self, method: str, path: str, *, json: Any = None) -> Delivery: ...
        def _business(self, business_id: int | str | None) -> int: ...

    def get_current_user(self) -> dict[str, Any]:
        """The user the connection's token belongs to (``GET /v2/users/me/``).

        :return: the user object, with its ``emails``
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        return self.request_json("GET", USERS_ME_PATH)

    def get_business(self, business_id: int | None = None) -> dict[str, Any]:
        """One business.

        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :return: the business object
        :raises PerkvilleConfigurationError: when no business is given or configured
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        return self.request_json("GET", f"{BUSINESSES_PATH}{self._business(business_id)}/")

    def list_locations(self, business_id: int | None = None) -> list[dict[str, Any]]:
        """Every location of the business, all pages read.

        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :return: the location objects
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        return list(self.paginate(LOCATIONS_PATH, {"business": self._business(business_id)}))

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
        return list(self.paginate(PERKS_PATH, params))

    def iter_connections(self, business_id: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every connection of the business matching ``filters``, one page in memory at a time.

        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :param filters: API query filters, e.g. ``status="ACTIVE"``
        :return: an iterator of connection objects
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        return self.paginate(CONNECTIONS_PATH, {"business": self._business(business_id), **filters})

    def find_connection(
        self, business_id: int | None = None, email: str | None = None, user_id: int | None = None
    ) -> dict[str, Any] | None:
        """The customer's connection at the business, found by email or by user id.

        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :param email: the customer's email (give this or ``user_id``)
        :param user_id: the customer's Perkville user id
        :return: the connection object, or None when the customer has none
        :raises PerkvilleConfigurationError: unless exactly one of ``email`` and ``user_id`` is given
        :raises RecordValidationError: when the email or the id is malformed (nothing is sent)
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        if (email is None) == (user_id is None):
            raise PerkvilleConfigurationError("find_connection needs exactly one of email or user_id")
        params: dict[str, Any] = {"business": self._business(business_id), "limit": 1}
        if email is not None:
            params["user__emails__email"] = validate_email(email, field="email")
        else:
            params["user_id"] = validate_positive_int(user_id, "user_id")
        objects, _ = list_page(self.request("GET", CONNECTIONS_PATH, params=params))
        return objects[0] if objects else None

    def set_connection_status(self, connection: ObjectRef, status: str) -> dict[str, Any]:
        """Join (``ACTIVE``) or leave (``INACTIVE``) the program.

        :param connection: the connection, as an id, a ``/v2/connections/<id>/`` URI or an object
        :param status: ``ACTIVE`` or ``INACTIVE`` (any case)
        :return: the updated connection
        :raises RecordValidationError: for another status or a bad reference (nothing is sent)
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        status = validate_connection_status(status)
        path = _object_path(CONNECTIONS_PATH, connection, "connection_id")
        return self.request_json("PATCH", path, json={"status": status}, allow_empty=True)

    def upsert_external_member(
        self, member: Member | Mapping[str, Any], business_id: int | None = None
    ) -> MemberUpsertResult:
        """Create or update the member's external record (and its connection when missing).

        :param member: a validated ``Member``, or a record to validate
        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :return: whether it was created, and the URI of the member's connection
        :raises RecordValidationError: when the record is invalid (nothing is sent)
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        if not isinstance(member, Member):
            member = validate_member(member)
        body = member_request_body(member, self._business(business_id))
        response = self.request("POST", EXTERNAL_MEMBERS_PATH, json=body)
        record = response.json()
        created = {201: True, 200: False}.get(response.status_code, bool(record.get("created")))
        connection_uri = record.get("connection") or response.headers.get("Location") or ""
        return MemberUpsertResult(created=created, connection_uri=connection_uri, external_member=record)

    def update_external_member(self, external_member: ObjectRef, fields: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH some fields of one external member record.

        :param external_member: the record, as an id, a URI or an object
        :param fields: the fields to change (dates and times are sent in ISO 8601)
        :return: the updated record
        :raises RecordValidationError: for a bad reference (nothing is sent)
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        path = _object_path(EXTERNAL_MEMBERS_PATH, external_member, "external_member_record_id")
        return self.request_json(
            "PATCH", path, json={name: json_value(value) for name, value in fields.items()}, allow_empty=True
        )

    def iter_transactions(self, business_id: int | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every transaction of the business matching ``filters``, one page in memory at a time.

        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :param filters: API query filters, e.g. ``trans_source_id=...``
        :return: an iterator of transaction objects
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        return self.paginate(TRANSACTIONS_PATH, {"business": self._business(business_id), **filters})

    def find_transaction(self, trans_source_id: str, business_id: int | None = None) -> dict[str, Any] | None:
        """The business's transaction with this ``trans_source_id``.

        :param trans_source_id: the award's idempotency key
        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :return: the transaction, or None when there is none
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
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
            award, business, limit_to_once_per_calendar_day=limit_to_once_per_calendar_day
        )
        delivery = self._deliver("POST", TRANSACTIONS_PATH, json=body)
        response = delivery.response
        lost = delivery.maybe_committed
        if response.status_code in (200, 201):
            transaction = response.json()
            if response.status_code == 201:
                points = transaction_points(transaction)
                return AwardResult("awarded", award.trans_source_id, points, transaction)
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
        """The agreements the customer must see to join, each with ``is_accepted``.

        :param user_id: the customer's Perkville user id
        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :return: the agreement objects
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
        params = {
            "business": self._business(business_id),
            "user_id": validate_positive_int(user_id, "user_id"),
            "apply_to_join_flow": "true",
        }
        return list(self.paginate(AGREEMENTS_VIEW_PATH, params))

    def accept_agreements(
        self, user_id: int, agreement_ids: Iterable[int], business_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Record that the customer accepted these agreements (call only when they did).

        :param user_id: the customer's Perkville user id
        :param agreement_ids: the agreements accepted
        :param business_id: the business; defaults to the connection's ``business_id`` extra
        :return: the acceptance objects
        :raises RecordValidationError: for a malformed id (nothing is sent)
        :raises PerkvilleError: when Perkville refuses or does not answer
        """
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
