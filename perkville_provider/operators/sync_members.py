"""Syncing members from a membership system into Perkville as external member records."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, get_args

from perkville_provider.batch import BatchJob, Outcome
from perkville_provider.bodies import MemberStatus, member_request_body
from perkville_provider.operators._settings import as_records, as_text
from perkville_provider.operators.base import BatchSettings, PerkvilleBatchOperator
from perkville_provider.records import Member, validate_member

if TYPE_CHECKING:
    from perkville_provider.hooks.perkville import PerkvilleHook

__all__ = [
    "MEMBER_STATUSES",
    "PerkvilleSyncMembersOperator",
]

MEMBER_STATUSES = get_args(MemberStatus)


class PerkvilleSyncMembersOperator(PerkvilleBatchOperator):
    """Create or update external member records (an upsert on the member id).

    A new member's Perkville user and connection are created too.

    Each member: ``external_member_id`` and ``user_email`` (required), and any of ``first_name``,
    ``last_name``, ``external_membership_type``, ``external_membership_status``,
    ``external_join_dt``, ``external_cancel_dt``, ``home_location_id``. A member's own
    ``external_system_id`` overrides the operator's.

    Returns the batch summary: ``total``, ``created``, ``updated``, ``invalid``, ``failed`` and the
    first failures.

    :param members: the member records: a list, an XCom (``XComArg``) or a template rendering to one
        (inline, for small batches), or staged JSON Lines: an ``ObjectStoragePath``, a path/URL
        string, or a list of them, read lazily (see :mod:`perkville_provider.staging`)
    :param external_system_id: the source system, e.g. ``MY_MEMBERSHIP_SYS`` (must match what an
        existing Perkville integration uses, or members are duplicated)
    """

    template_fields: Sequence[str] = (
        *PerkvilleBatchOperator.template_fields,
        "members",
        "external_system_id",
    )
    template_fields_renderers = {"members": "json"}

    def __init__(self, *, members: Any, external_system_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.members = members
        self.external_system_id = external_system_id

    def records(self) -> Iterable[Any]:
        """The records to run, from the rendered parameter."""
        return as_records(self.members, "members")

    def build_job(self, hook: PerkvilleHook, settings: BatchSettings) -> BatchJob[Member]:
        """Validate, send and preview one record; checks this operator's own parameters."""
        system_id = as_text(self.external_system_id, "external_system_id")

        def upsert(member: Member) -> Outcome:
            result = hook.upsert_external_member(member, business_id=settings.business_id)
            return Outcome(result.status, detail={"connection_uri": result.connection_uri})

        return BatchJob(
            name="sync_members",
            prepare=partial(
                validate_member,
                external_system_id=system_id,
                ignore_unknown_fields=settings.ignore_unknown_fields,
            ),
            process=upsert,
            key_fields=("external_member_id", "user_email"),
            statuses=MEMBER_STATUSES,
            order_key=lambda member: (member.external_system_id, member.external_member_id),
            preview=lambda member: member_request_body(member, settings.business, api=hook.conventions()),
        )
