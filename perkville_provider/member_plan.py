"""The member sync's plan: what a run would create, update, skip and deactivate, before it sends.

A reverse-ETL run must know its changes before the first write: ``update_only`` and
``create_only`` need to know which members Perkville already has, ``on_missing="deactivate"``
needs the members the source no longer lists, and the mass-change guard needs all of it counted
against the business's known members. One read of the business's external members (for the
sync's ``external_system_id``) answers all three; the plan keeps ids and the first few of each
kind, never the whole source.

No Airflow here: the operator turns a refusal into a task failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from perkville_provider.records import Member, RecordValidationError

__all__ = [
    "DEFAULT_INACTIVE_STATUS",
    "DEFAULT_MAX_CHANGE_RATIO",
    "ON_MISSING",
    "PLAN_SAMPLE_SIZE",
    "SYNC_MODES",
    "KnownMembers",
    "MemberPlan",
    "OnMissing",
    "SyncMode",
    "guard_refusal",
    "plan_members",
    "skip_reason",
]

SyncMode = Literal["upsert", "update_only", "create_only"]
OnMissing = Literal["ignore", "deactivate"]
SYNC_MODES: tuple[str, ...] = get_args(SyncMode)
ON_MISSING: tuple[str, ...] = get_args(OnMissing)
DEFAULT_INACTIVE_STATUS = "INACTIVE"
DEFAULT_MAX_CHANGE_RATIO = 0.2
PLAN_SAMPLE_SIZE = 5
"""How many of each planned kind a dry run lists (the counts are always complete)."""

_COMPARED_TEXT = (
    "user_email",
    "first_name",
    "last_name",
    "external_membership_type",
    "external_membership_status",
)
_COMPARED_DATES = ("external_join_dt", "external_cancel_dt")


class KnownMembers:
    """The business's external members of one source system, by ``external_member_id``.

    Records of other systems (a filter Perkville ignores returns them too) are left out.
    """

    def __init__(self, records: Iterable[Mapping[str, Any]], external_system_id: str) -> None:
        self.system_id = external_system_id
        self.by_id: dict[str, Mapping[str, Any]] = {
            str(record["external_member_id"]): record
            for record in records
            if record.get("external_system_id") == external_system_id and record.get("external_member_id")
        }

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, member: Member) -> Mapping[str, Any] | None:
        """The member's record in Perkville, or None (also for a member of another system)."""
        if member.external_system_id != self.system_id:
            return None
        return self.by_id.get(member.external_member_id)


def skip_reason(mode: str, member: Member, existing: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """``(code, message)`` when ``mode`` forbids this member's write, else None."""
    if mode == "update_only" and existing is None:
        return (
            "member_not_found",
            f"update_only: member {member.external_member_id} of {member.external_system_id} is not in "
            "Perkville; not created",
        )
    if mode == "create_only" and existing is not None:
        return (
            "member_exists",
            f"create_only: member {member.external_member_id} of {member.external_system_id} is already "
            "in Perkville; not changed",
        )
    return None


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip().casefold()


def _day(value: Any) -> str:
    return "" if value is None else str(value.isoformat() if hasattr(value, "isoformat") else value)[:10]


def differs(member: Member, existing: Mapping[str, Any]) -> bool:
    """Whether sending ``member`` would change a field Perkville holds (only the fields it gives).

    Text is compared without case or surrounding space and dates by their day: this decides what
    the guard and the dry run count as an update, never what is sent (every record is sent).
    """
    for name in _COMPARED_TEXT:
        value = getattr(member, name)
        if value is not None and _text(value) != _text(existing.get(name)):
            return True
    return any(
        getattr(member, name) is not None and _day(getattr(member, name)) != _day(existing.get(name))
        for name in _COMPARED_DATES
    )


@dataclass
class MemberPlan:
    """What the run would do, counted in full, with the first few of each kind for the dry run."""

    known: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("create", "update", "unchanged", "skip", "invalid", "deactivate"), 0
        )
    )
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deactivations: list[Mapping[str, Any]] = field(default_factory=list)
    guard: str | None = None
    """What the mass-change guard would say of this run (a dry run reports it; None: it passes)."""

    def add(self, kind: str, sample: dict[str, Any]) -> None:
        """Count one record of ``kind``; keep it as a sample while there are few."""
        self.counts[kind] += 1
        shown = self.samples.setdefault(kind, [])
        if len(shown) < PLAN_SAMPLE_SIZE:
            shown.append(sample)

    @property
    def changes(self) -> int:
        """Members the run would change: created, updated with a new value, deactivated."""
        return self.counts["create"] + self.counts["update"] + self.counts["deactivate"]

    def as_summary(self) -> dict[str, Any]:
        """The dry run's report: ``planned`` counts and the first few of each kind."""
        return {
            "known_members": self.known,
            "planned": dict(self.counts),
            "planned_first": self.samples,
            "guard": self.guard or "passes",
        }


def plan_members(
    records: Iterable[Any],
    prepare: Callable[[Any], Member],
    known: KnownMembers,
    *,
    mode: str,
    on_missing: str,
    inactive_status: str,
) -> MemberPlan:
    """Validate every record once and sort it into the plan; list the members to deactivate.

    A member whose source row is invalid is still in the source: it is never deactivated.
    """
    plan = MemberPlan(known=len(known))
    present: set[str] = set()
    for index, record in enumerate(records):
        try:
            member = prepare(record)
        except RecordValidationError as error:
            raw_id = record.get("external_member_id") if isinstance(record, Mapping) else None
            if raw_id not in (None, ""):
                present.add(str(raw_id).strip())
            plan.add("invalid", {"index": index, "field": error.field, "message": error.message})
            continue
        if member.external_system_id == known.system_id:
            present.add(member.external_member_id)
        existing = known.get(member)
        sample = {"index": index, "external_member_id": member.external_member_id}
        reason = skip_reason(mode, member, existing)
        if reason is not None:
            plan.add("skip", {**sample, "code": reason[0]})
        elif existing is None:
            plan.add("create", sample)
        else:
            plan.add("update" if differs(member, existing) else "unchanged", sample)
    if on_missing == "deactivate":
        inactive = inactive_status.casefold()
        for member_id, record in sorted(known.by_id.items()):
            if member_id not in present and _text(record.get("external_membership_status")) != inactive:
                plan.deactivations.append(record)
                plan.add("deactivate", {"external_member_id": member_id})
    return plan


def guard_refusal(plan: MemberPlan, *, max_change_ratio: float | None, max_changes: int | None) -> str | None:
    """Why the guard stops this run before any write, or None when it may go on.

    The ratio is over the business's known members of the system; with none known (a first load)
    only ``max_changes`` applies.
    """
    changes = plan.changes
    counted = (
        f"{changes} changes ({plan.counts['create']} creates, {plan.counts['update']} updates, "
        f"{plan.counts['deactivate']} deactivations) for {plan.known} known members"
    )
    if max_changes is not None and changes > max_changes:
        return f"{counted}: more than max_changes={max_changes}"
    if max_change_ratio is not None and plan.known and changes / plan.known > max_change_ratio:
        return f"{counted} ({changes / plan.known:.0%}): more than max_change_ratio={max_change_ratio:g}"
    return None
