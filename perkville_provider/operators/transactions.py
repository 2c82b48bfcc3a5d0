"""Awarding points: one transaction per award record, exactly once per ``trans_source_id``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from perkville_provider.batch import BatchJob, Outcome
from perkville_provider.operators.base import (
    BatchSettings,
    PerkvilleBatchOperator,
    as_bool,
    as_optional_positive_int,
    as_records,
)
from perkville_provider.records import Award, validate_award

if TYPE_CHECKING:
    from perkville_provider.hooks.perkville import AwardResult, PerkvilleHook

AWARD_STATUSES = ("awarded", "duplicate", "daily_limited")


class PerkvilleAwardPointsOperator(PerkvilleBatchOperator):
    """Award points for a batch of records (check-ins, classes, purchases...).

    Each award: ``trans_source_id`` (required, unique across the business: the idempotency key),
    one user identifier (``user_email``, ``user_id``, or ``external_member_id`` with
    ``external_system_id``), ``perk_id`` (or the operator's), ``quantity`` (default 1), optional
    ``location_id`` and ``transaction_dt``. A repeated ``trans_source_id`` is counted
    ``duplicate``, a second award of a perk on one day under ``limit_to_once_per_calendar_day`` is
    ``daily_limited``; neither is a failure, and re-running a batch awards nothing twice.

    Returns the batch summary: ``total``, ``awarded``, ``duplicate``, ``daily_limited``,
    ``invalid``, ``failed``, ``points``, ``recovered`` (duplicates whose first answer was lost in
    transit: most likely written by this very run, so ``points`` may undercount them) and the
    first failures.

    :param awards: the award records: a list, an XCom (``XComArg``) or a template rendering to one
        (inline, for small batches), or staged JSON Lines: an ``ObjectStoragePath``, a path/URL
        string, or a list of them, read lazily (see :mod:`perkville_provider.staging`)
    :param perk_id: the perk of every award that does not name its own
    :param limit_to_once_per_calendar_day: ask Perkville to award each perk at most once per user
        and calendar day
    """

    template_fields: Sequence[str] = (
        *PerkvilleBatchOperator.template_fields,
        "awards",
        "perk_id",
        "limit_to_once_per_calendar_day",
    )
    template_fields_renderers = {"awards": "json"}

    def __init__(
        self,
        *,
        awards: Any,
        perk_id: int | str | None = None,
        limit_to_once_per_calendar_day: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.awards = awards
        self.perk_id = perk_id
        self.limit_to_once_per_calendar_day = limit_to_once_per_calendar_day

    def records(self) -> Iterable[Any]:
        return as_records(self.awards, "awards")

    def build_job(self, hook: PerkvilleHook, settings: BatchSettings) -> BatchJob[Award]:
        from perkville_provider.hooks.perkville import award_request_body

        perk_id = as_optional_positive_int(self.perk_id, "perk_id")
        once_a_day = as_bool(self.limit_to_once_per_calendar_day, "limit_to_once_per_calendar_day")

        def award(record: Award) -> Outcome:
            result = hook.award_points(
                record, business_id=settings.business_id, limit_to_once_per_calendar_day=once_a_day
            )
            return award_outcome(result)

        return BatchJob(
            name="award_points",
            prepare=partial(validate_award, default_perk_id=perk_id),
            process=award,
            key_fields=("trans_source_id",),
            statuses=AWARD_STATUSES,
            metrics=("points", "recovered"),
            preview=lambda record: award_request_body(
                record, settings.business_id, limit_to_once_per_calendar_day=once_a_day
            ),
        )


def award_outcome(result: AwardResult) -> Outcome:
    """The record's outcome; only a new award adds to ``points`` (a duplicate was counted before)."""
    transaction = result.transaction or {}
    detail: dict[str, Any] = {"points": result.points, "transaction_id": transaction.get("transaction_id")}
    if result.recovered_after_lost_response:
        detail["recovered_after_lost_response"] = True
    points = result.points if result.status == "awarded" else 0
    recovered = int(result.recovered_after_lost_response)
    return Outcome(result.status, detail=detail, metrics={"points": points or 0, "recovered": recovered})
