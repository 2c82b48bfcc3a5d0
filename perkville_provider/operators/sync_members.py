"""Syncing members from a membership system into Perkville as external member records."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, get_args

from perkville_provider import staging
from perkville_provider.batch import BatchJob, Outcome
from perkville_provider.bodies import MemberStatus, member_request_body
from perkville_provider.member_plan import (
    DEFAULT_INACTIVE_STATUS,
    DEFAULT_MAX_CHANGE_RATIO,
    ON_MISSING,
    SYNC_MODES,
    KnownMembers,
    MemberPlan,
    guard_refusal,
    plan_members,
    skip_reason,
)
from perkville_provider.operators._settings import (
    as_bool,
    as_choice,
    as_optional_positive_int,
    as_records,
    as_text,
    optional_ratio,
    setting_error,
)
from perkville_provider.operators.base import BatchSettings, PerkvilleBatchOperator, enforce_mass_change_guard
from perkville_provider.records import Member, validate_member

if TYPE_CHECKING:
    from airflow.sdk import Context

    from perkville_provider.hooks.perkville import PerkvilleHook

__all__ = [
    "MEMBER_STATUSES",
    "PerkvilleSyncMembersOperator",
]

MEMBER_STATUSES = (*get_args(MemberStatus), "skipped", "deactivated")


class Deactivation(dict):
    """A known member the full sync's source no longer lists, queued after the source's records.

    A mapping (its ``external_member_id``...) so that reports key it like a source record.
    """


@dataclass(frozen=True)
class SyncSettings:
    """The member sync's own parameters, checked before any request."""

    external_system_id: str
    mode: str
    on_missing: str
    inactive_status: str
    max_change_ratio: float | None
    max_changes: int | None
    allow_mass_change: bool


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
    :param mode: ``upsert`` (create or update), ``update_only`` (a member Perkville does not have
        is ``skipped``, never created) or ``create_only`` (a member Perkville has is ``skipped``,
        never changed)
    :param on_missing: ``ignore``, or ``deactivate``: the records are the whole source (a full
        sync, one unmapped task), and every member Perkville knows for this
        ``external_system_id`` that they do not list gets ``external_membership_status`` set to
        ``inactive_status`` once (reported ``deactivated``)
    :param inactive_status: the status a member who left gets (``INACTIVE``)
    :param max_change_ratio: the guard: a run that would change (create, update with a new value,
        deactivate) more than this share of the system's known members stops before any write;
        None turns it off. Not applied when Perkville knows no member yet (a first load)
    :param max_changes: the guard's absolute limit on changes per run, or None
    :param allow_mass_change: let this run through the guard (a trigger Param, for one run)
    """

    template_fields: Sequence[str] = (
        *PerkvilleBatchOperator.template_fields,
        "members",
        "external_system_id",
        "mode",
        "on_missing",
        "inactive_status",
        "max_change_ratio",
        "max_changes",
        "allow_mass_change",
    )
    template_fields_renderers = {"members": "json"}
    lineage_resource = "external_members"
    lineage_records = ("members",)
    lineage_written = ("created", "updated")

    def __init__(
        self,
        *,
        members: Any,
        external_system_id: str,
        mode: str = "upsert",
        on_missing: str = "ignore",
        inactive_status: str = DEFAULT_INACTIVE_STATUS,
        max_change_ratio: float | str | None = DEFAULT_MAX_CHANGE_RATIO,
        max_changes: int | str | None = None,
        allow_mass_change: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.members = members
        self.external_system_id = external_system_id
        self.mode = mode
        self.on_missing = on_missing
        self.inactive_status = inactive_status
        self.max_change_ratio = max_change_ratio
        self.max_changes = max_changes
        self.allow_mass_change = allow_mass_change
        self._plan: MemberPlan | None = None
        self._sync: SyncSettings | None = None

    def sync_settings(self) -> SyncSettings:
        """This operator's parameters, checked now that templates are rendered."""
        sync = SyncSettings(
            external_system_id=as_text(self.external_system_id, "external_system_id"),
            mode=as_choice(self.mode, "mode", SYNC_MODES),
            on_missing=as_choice(self.on_missing, "on_missing", ON_MISSING),
            inactive_status=as_text(self.inactive_status, "inactive_status"),
            max_change_ratio=optional_ratio(self.max_change_ratio, "max_change_ratio"),
            max_changes=as_optional_positive_int(self.max_changes, "max_changes"),
            allow_mass_change=as_bool(self.allow_mass_change, "allow_mass_change"),
        )
        if sync.mode == "create_only" and sync.on_missing == "deactivate":
            raise setting_error(
                "on_missing", "deactivate changes existing members, which mode='create_only' never does"
            )
        return sync

    def settings(self) -> BatchSettings:
        """The shared parameters and this operator's, all checked before the first request."""
        self._sync = self.sync_settings()
        return super().settings()

    def before_batch(self, context: Context, hook: PerkvilleHook, settings: BatchSettings) -> None:
        """Plan the run from the source and Perkville's known members; the guard may stop it here."""
        sync = self._sync or self.sync_settings()
        self._plan = None
        map_index = getattr(context.get("ti"), "map_index", -1)
        mapped = isinstance(map_index, int) and map_index >= 0
        if sync.on_missing == "deactivate" and mapped:
            raise setting_error(
                "on_missing",
                "deactivate needs the whole source in one task; this is mapped task "
                f"{map_index}, which sees one chunk (run the full sync unmapped)",
            )
        if mapped and sync.max_change_ratio is not None:
            # A chunk cannot judge the run's share, and earlier chunks' creates grow "known".
            self.log.info("Mapped task: max_change_ratio is judged only by unmapped (whole-source) runs.")
            sync = self._sync = dataclasses.replace(sync, max_change_ratio=None)
        needs_plan = (
            sync.mode != "upsert"
            or sync.on_missing == "deactivate"
            or settings.dry_run
            or sync.max_change_ratio is not None
            or sync.max_changes is not None
        )
        if not needs_plan:
            return
        try:
            known = KnownMembers(
                hook.iter_external_members(settings.business_id, external_system_id=sync.external_system_id),
                sync.external_system_id,
            )
        except Exception:
            if not settings.dry_run:
                raise
            self.log.warning("Dry run: could not read Perkville's members; planning as if it had none.")
            known = KnownMembers((), sync.external_system_id)
        plan = self._plan = plan_members(
            self.records(),
            staging.rejecting_bad_lines(self._validator(sync, settings)),
            known,
            mode=sync.mode,
            on_missing=sync.on_missing,
            inactive_status=sync.inactive_status,
        )
        self._known = known
        self.log.info("Plan: %s", plan.counts)
        refusal = guard_refusal(plan, max_change_ratio=sync.max_change_ratio, max_changes=sync.max_changes)
        if settings.dry_run:
            plan.guard = refusal
            return
        enforce_mass_change_guard(
            refusal, allow=sync.allow_mass_change, limits="max_change_ratio or max_changes", logger=self.log
        )

    def batch_records(self, settings: BatchSettings) -> Iterable[Any]:
        """The source's records, then (not in a dry run) the members who left, to deactivate."""
        if settings.dry_run or self._plan is None or not self._plan.deactivations:
            return self.records()
        return itertools.chain(self.records(), (Deactivation(record) for record in self._plan.deactivations))

    def summary_extras(self, settings: BatchSettings) -> Mapping[str, Any]:
        """A dry run's plan: planned creates, updates, deactivations, skips, invalid; first few of each."""
        return self._plan.as_summary() if settings.dry_run and self._plan is not None else {}

    def _validator(self, sync: SyncSettings, settings: BatchSettings) -> Any:
        return partial(
            validate_member,
            external_system_id=sync.external_system_id,
            ignore_unknown_fields=settings.ignore_unknown_fields,
        )

    def records(self) -> Iterable[Any]:
        """The records to run, from the rendered parameter."""
        return as_records(self.members, "members")

    def build_job(self, hook: PerkvilleHook, settings: BatchSettings) -> BatchJob[Member | Deactivation]:
        """Validate, send and preview one record (or deactivate one member who left)."""
        sync = self._sync or self.sync_settings()
        validate = self._validator(sync, settings)
        known = self._known if self._plan is not None else None

        def prepare(record: Any) -> Member | Deactivation:
            return record if isinstance(record, Deactivation) else validate(record)

        def send(item: Member | Deactivation) -> Outcome:
            if isinstance(item, Deactivation):
                return _deactivate(hook, item, sync.inactive_status)
            reason = skip_reason(sync.mode, item, known.get(item)) if known is not None else None
            if reason is not None:
                return Outcome("skipped", code=reason[0], message=reason[1])
            result = hook.upsert_external_member(item, business_id=settings.business_id)
            return Outcome(result.status, detail={"connection_uri": result.connection_uri})

        def order_key(item: Member | Deactivation) -> tuple[str, str]:
            if isinstance(item, Deactivation):
                return (sync.external_system_id, str(item["external_member_id"]))
            return (item.external_system_id, item.external_member_id)

        def preview(item: Member | Deactivation) -> Any:
            if isinstance(item, Deactivation):
                return {"external_membership_status": sync.inactive_status}
            return member_request_body(item, settings.business, api=hook.conventions())

        return BatchJob(
            name="sync_members",
            prepare=prepare,
            process=send,
            key_fields=("external_member_id", "user_email"),
            statuses=MEMBER_STATUSES,
            order_key=order_key,
            preview=preview,
        )


def _deactivate(hook: PerkvilleHook, record: Deactivation, inactive_status: str) -> Outcome:
    """Set a member who left to the inactive status (one PATCH of its external member record)."""
    ref = record.get("resource_uri") or record.get("external_member_record_id")
    if ref is None:  # listed by Perkville without a way to address it: nothing to PATCH
        return Outcome(
            "failed",
            code="no_member_reference",
            message="Perkville listed this member without a resource_uri",
        )
    hook.update_external_member(ref, {"external_membership_status": inactive_status})
    return Outcome("deactivated", detail={"connection_uri": record.get("connection") or ""})
