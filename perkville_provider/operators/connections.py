"""Connections (a customer's membership of a business's loyalty program): look up, and join.

The join flow is Perkville's "Joining the loyalty program" guide: find the connection by email;
when missing, create it through an external member record; accept the join agreements, only
when the caller states that the customer agreed; then set the connection ``ACTIVE``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from perkville_provider.batch import MAX_RESULTS_SHOWN, BatchJob, Outcome
from perkville_provider.bodies import member_request_body
from perkville_provider.exceptions import PerkvilleValidationError, customer_safe_message
from perkville_provider.operators._settings import as_bool, as_records, as_text
from perkville_provider.operators.base import BatchSettings, PerkvilleBatchOperator
from perkville_provider.records import (
    Member,
    RecordValidationError,
    validate_email,
    validate_member,
    validate_positive_int,
)
from perkville_provider.staging import BadLine

if TYPE_CHECKING:
    from perkville_provider.hooks.perkville import PerkvilleHook

__all__ = [
    "JOIN_STATUSES",
    "LOOKUP_STATUSES",
    "JoinRequest",
    "JoinStatus",
    "Lookup",
    "LookupStatus",
    "PerkvilleGetConnectionsOperator",
    "PerkvilleJoinProgramOperator",
    "connection_detail",
]

LookupStatus = Literal["found", "not_found"]
JoinStatus = Literal[
    "joined", "already_active", "agreement_required", "membership_not_active", "no_connection"
]
LOOKUP_STATUSES = get_args(LookupStatus)
JOIN_STATUSES = get_args(JoinStatus)
ACTIVE = "ACTIVE"
NO_CONNECTION = Outcome(
    "no_connection",
    field="external_member_id",
    code="no_connection",
    message="no Perkville connection for this email; give external_member_id and external_system_id "
    "to create one",
)
#: join refusals by API code, the stronger first: accepting terms cannot fix an inactive membership
JOIN_REFUSALS = (
    ("pv_connection_membership_not_active", "membership_not_active"),
    ("pv_agreement_required", "agreement_required"),
)


@dataclass(frozen=True)
class Lookup:
    """One connection to look up, by email or by user id."""

    email: str | None = None
    user_id: int | None = None


def connection_detail(connection: dict[str, Any]) -> dict[str, Any]:
    """What a lookup reports of a connection: its id, status and point balance."""
    return {
        "connection_id": connection.get("connection_id"),
        "connection_status": connection.get("status"),
        "point_balance": connection.get("point_balance"),
    }


class PerkvilleGetConnectionsOperator(PerkvilleBatchOperator):
    """Look up customers' connections by email and/or user id: status and point balance.

    Returns the batch summary with ``found``, ``not_found``, ``invalid``, ``failed`` and
    ``results``: per lookup its key, ``connection_id``, ``connection_status`` and
    ``point_balance``. ``results`` holds the first 100 lookups; the full list is in the report
    (``report_path``), so the XCom stays small for any number of lookups.

    :param emails: customer emails: a list, an XCom or a template rendering to one, or staged
        JSON Lines of ``{"email": ...}`` objects (a path/URL or ``ObjectStoragePath``, or a list)
    :param user_ids: Perkville user ids: a list, an XCom or a template rendering to one
    """

    template_fields: Sequence[str] = (*PerkvilleBatchOperator.template_fields, "emails", "user_ids")
    template_fields_renderers = {"emails": "json", "user_ids": "json"}
    lineage_resource = "connections"
    lineage_records = ("emails",)

    def __init__(self, *, emails: Any = None, user_ids: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.emails = emails
        self.user_ids = user_ids

    def records(self) -> Iterator[Mapping[str, Any] | BadLine]:
        """One lookup per email and per user id."""
        for email in as_records(self.emails, "emails"):
            # A staged file holds {"email": ...} objects (or bad lines), a list holds the emails.
            yield email if isinstance(email, Mapping | BadLine) else {"email": email}
        for user_id in as_records(self.user_ids, "user_ids"):
            yield {"user_id": user_id}

    def build_job(self, hook: PerkvilleHook, settings: BatchSettings) -> BatchJob[Lookup]:
        """Look up one connection."""

        def look_up(lookup: Lookup) -> Outcome:
            connection = hook.find_connection(
                business_id=settings.business_id, email=lookup.email, user_id=lookup.user_id
            )
            if connection is None:
                return Outcome("not_found")
            return Outcome("found", detail=connection_detail(connection))

        return BatchJob(
            name="get_connections",
            prepare=_lookup,
            process=look_up,
            key_fields=("email", "user_id"),
            statuses=LOOKUP_STATUSES,
            preview=lambda lookup: {
                name: value for name, value in dataclasses.asdict(lookup).items() if value is not None
            },
            inline_results=MAX_RESULTS_SHOWN,
        )


def _lookup(record: dict[str, Any]) -> Lookup:
    if "email" in record:
        return Lookup(email=validate_email(record["email"], field="email"))
    return Lookup(user_id=validate_positive_int(record["user_id"], "user_id"))


@dataclass(frozen=True)
class JoinRequest:
    """One customer to join: the email, and the external member that creates a missing connection."""

    user_email: str
    member: Member | None


def _join_request(
    record: Any, *, external_system_id: str | None, ignore_unknown_fields: bool = False
) -> JoinRequest:
    if not isinstance(record, Mapping) or not record.get("user_email"):
        raise RecordValidationError("user_email", "is required", code="required")
    email = validate_email(record["user_email"])
    if record.get("external_member_id") in (None, ""):
        return JoinRequest(email, None)
    member = validate_member(
        record, external_system_id=external_system_id, ignore_unknown_fields=ignore_unknown_fields
    )
    return JoinRequest(email, member)


def _user_id(connection: dict[str, Any]) -> int:
    """The connection's user id, from ``user_id`` or the ``user`` URI (``/v2/users/<id>/``)."""
    if connection.get("user_id"):
        return int(connection["user_id"])
    return int(str(connection["user"]).rstrip("/").rsplit("/", 1)[-1])


class PerkvilleJoinProgramOperator(PerkvilleBatchOperator):
    """Join customers to the business's loyalty program (set their connection ``ACTIVE``).

    Per member: find the connection by ``user_email``; if there is none, create it by posting the
    member as an external member (needs ``external_member_id`` and ``external_system_id``, else
    the outcome is ``no_connection``); accept the join agreements only when
    ``agreements_accepted=True`` (the caller states the customer agreed to the terms); then set
    the connection ``ACTIVE``. Outcomes: ``joined``, ``already_active``, ``agreement_required``
    and ``membership_not_active`` (with Perkville's customer-safe message), ``no_connection``,
    ``invalid``, ``failed``. Refusals are outcomes for the customer to act on, not task failures.

    :param members: records with ``user_email`` and, to create missing connections,
        ``external_member_id`` (plus any member field of ``PerkvilleSyncMembersOperator``)
    :param agreements_accepted: the customers have accepted the join terms; accept them on their
        behalf
    :param external_system_id: the source system of members that do not name their own
    """

    template_fields: Sequence[str] = (
        *PerkvilleBatchOperator.template_fields,
        "members",
        "agreements_accepted",
        "external_system_id",
    )
    template_fields_renderers = {"members": "json"}
    lineage_resource = "connections"
    lineage_records = ("members",)
    lineage_written = ("joined",)

    def __init__(
        self,
        *,
        members: Any,
        agreements_accepted: bool | str = False,
        external_system_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.members = members
        self.agreements_accepted = agreements_accepted
        self.external_system_id = external_system_id

    def records(self) -> Iterable[Any]:
        """The members to join, from the rendered parameter."""
        return as_records(self.members, "members")

    def build_job(self, hook: PerkvilleHook, settings: BatchSettings) -> BatchJob[JoinRequest]:
        """Join one member; checks this operator's own parameters."""
        accept = as_bool(self.agreements_accepted, "agreements_accepted")
        system_id = (
            None if not self.external_system_id else as_text(self.external_system_id, "external_system_id")
        )
        business_id = settings.business_id

        def preview(request: JoinRequest) -> dict[str, Any]:
            return {
                "user_email": request.user_email,
                "create_member": request.member
                and member_request_body(request.member, settings.business, api=hook.conventions()),
                "accept_agreements": accept,
                "status": ACTIVE,
            }

        def join(request: JoinRequest) -> Outcome:
            connection, created = _find_or_create_connection(hook, request, business_id)
            if connection is None:
                return NO_CONNECTION
            detail: dict[str, Any] = {"connection_id": connection.get("connection_id"), "created": created}
            if connection.get("status") == ACTIVE:
                return Outcome("already_active", detail=detail)
            if accept:
                detail["accepted_agreement_ids"] = _accept_pending_agreements(hook, connection, business_id)
            try:
                hook.set_connection_status(connection, ACTIVE)
            except PerkvilleValidationError as error:
                refusal = _refusal(error, detail, settings.perkville_url)
                if refusal is None:
                    raise
                return refusal
            return Outcome("joined", detail=detail)

        return BatchJob(
            name="join_program",
            prepare=functools.partial(
                _join_request,
                external_system_id=system_id,
                ignore_unknown_fields=settings.ignore_unknown_fields,
            ),
            process=join,
            key_fields=("user_email", "external_member_id"),
            statuses=JOIN_STATUSES,
            preview=preview,
            inline_results=MAX_RESULTS_SHOWN,
            order_key=lambda request: request.user_email,
        )


def _find_or_create_connection(
    hook: PerkvilleHook, request: JoinRequest, business_id: int | None
) -> tuple[dict[str, Any] | None, bool]:
    """The customer's connection, and whether it was created here.

    An external member post is the only way the API creates one; None when the connection is
    missing and the record cannot create it.
    """
    connection = hook.find_connection(business_id=business_id, email=request.user_email)
    if connection is not None or request.member is None:
        return connection, False
    hook.upsert_external_member(request.member, business_id=business_id)
    connection = hook.find_connection(business_id=business_id, email=request.user_email)
    if connection is None:
        raise LookupError("the external member was saved but its connection is not found")
    return connection, True


def _accept_pending_agreements(
    hook: PerkvilleHook, connection: dict[str, Any], business_id: int | None
) -> list[int]:
    user_id = _user_id(connection)
    pending = [
        int(agreement["agreement_id"])
        for agreement in hook.get_join_agreements(user_id, business_id=business_id)
        if not agreement.get("is_accepted")
    ]
    if pending:
        hook.accept_agreements(user_id, pending, business_id=business_id)
    return pending


def _refusal(
    error: PerkvilleValidationError, detail: dict[str, Any], perkville_url: str | None
) -> Outcome | None:
    """The join refusal outcome for the error's ``pv_*`` codes, with the customer-safe message."""
    for code, status in JOIN_REFUSALS:
        if code in error.codes:
            return Outcome(
                status,
                detail={**detail, "codes": list(error.codes)},
                code=code,
                field=error.field,
                message=customer_safe_message(code, perkville_url=perkville_url),
            )
    return None
