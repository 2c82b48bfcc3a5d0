"""Awarding points: one transaction per award record, exactly once per ``trans_source_id``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, get_args

from perkville_provider.batch import BatchJob, Outcome
from perkville_provider.bodies import AwardStatus, award_request_body
from perkville_provider.operators._settings import (
    as_bool,
    as_optional_ref,
    as_records,
    optional_positive_number,
    setting_error,
)
from perkville_provider.operators.base import BatchSettings, PerkvilleBatchOperator, enforce_mass_change_guard
from perkville_provider.records import Award, RecordValidationError, validate_award, validate_max_quantity

if TYPE_CHECKING:
    from airflow.sdk import Context

    from perkville_provider.hooks.perkville import AwardResult, PerkvilleHook

__all__ = [
    "AWARD_STATUSES",
    "PerkvilleAwardPointsOperator",
    "award_outcome",
]

AWARD_STATUSES = get_args(AwardStatus)


class PerkvilleAwardPointsOperator(PerkvilleBatchOperator):
    """Award points for a batch of records (check-ins, classes, purchases...).

    Each award: ``trans_source_id`` (required, unique across the business: the idempotency key),
    one user identifier (``user_email``, ``user_id``, or ``external_member_id`` with
    ``external_system_id``), ``perk_id`` (or the operator's), ``quantity`` (default 1), optional
    ``location_id`` and ``transaction_dt``. A repeated ``trans_source_id`` is counted
    ``duplicate``, a second award of a perk on one day under ``limit_to_once_per_calendar_day`` is
    ``daily_limited``; neither is a failure, and re-running a batch awards nothing twice.

    Returns the batch summary: ``total``, ``awarded``, ``duplicate``, ``daily_limited``,
    ``invalid``, ``failed``, ``points`` (of the ``awarded`` transactions), ``recovered`` (the
    duplicates whose first answer was lost in transit: most likely written by this very run),
    ``recovered_points`` (their points, read from the transaction) and the first failures. See
    the README ("Counts against the ledger") for what reconciles exactly.

    :param awards: the award records: a list, an XCom (``XComArg``) or a template rendering to one
        (inline, for small batches), or staged JSON Lines: an ``ObjectStoragePath``, a path/URL
        string, or a list of them, read lazily (see :mod:`perkville_provider.staging`)
    :param perk_id: the perk of every award that does not name its own
    :param limit_to_once_per_calendar_day: ask Perkville to award each perk at most once per user
        and calendar day
    :param max_quantity: the largest ``quantity`` an award may carry (default 10,000); above it the
        record is ``invalid``. Quantities may have 2 decimal places (money amounts of a
        per-dollar perk)
    :param max_awards_ratio: the mass-change guard, off by default: a run (a mapped task: its chunk)
        with more award records than this multiple of ``recent_daily_awards`` stops before any write
    :param recent_daily_awards: the recent daily average of awards, as the DAG knows it (None: the
        guard waits for one)
    :param allow_mass_change: let this run through the guard (a trigger Param, for one run)
    """

    template_fields: Sequence[str] = (
        *PerkvilleBatchOperator.template_fields,
        "awards",
        "perk_id",
        "limit_to_once_per_calendar_day",
        "max_quantity",
        "max_awards_ratio",
        "recent_daily_awards",
        "allow_mass_change",
    )
    template_fields_renderers = {"awards": "json"}
    lineage_resource = "transactions"
    lineage_records = ("awards",)
    lineage_written = ("awarded",)

    def __init__(
        self,
        *,
        awards: Any,
        perk_id: int | str | None = None,
        limit_to_once_per_calendar_day: bool | str = False,
        max_quantity: int | str | None = None,
        max_awards_ratio: float | str | None = None,
        recent_daily_awards: float | str | None = None,
        allow_mass_change: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_awards_ratio = max_awards_ratio
        self.recent_daily_awards = recent_daily_awards
        self.allow_mass_change = allow_mass_change
        self.max_quantity = max_quantity
        self.awards = awards
        self.perk_id = perk_id
        self.limit_to_once_per_calendar_day = limit_to_once_per_calendar_day

    def records(self) -> Iterable[Any]:
        """The records to run, from the rendered parameter."""
        return as_records(self.awards, "awards")

    def before_batch(self, context: Context, hook: PerkvilleHook, settings: BatchSettings) -> None:
        """The mass-change guard: more awards than ``max_awards_ratio`` x the daily average stop here."""
        ratio = optional_positive_number(self.max_awards_ratio, "max_awards_ratio")
        average = optional_positive_number(self.recent_daily_awards, "recent_daily_awards")
        allow = as_bool(self.allow_mass_change, "allow_mass_change")
        if ratio is None:
            return
        if average is None:
            self.log.info("No recent daily average of awards yet: the mass-change guard is not applied.")
            return
        count = sum(1 for _ in self.records())
        refusal = (
            f"{count} awards in this run, more than max_awards_ratio={ratio:g} x the recent daily "
            f"average of {average:g}"
            if count > ratio * average
            else None
        )
        if not settings.dry_run:
            enforce_mass_change_guard(refusal, allow=allow, limits="max_awards_ratio", logger=self.log)

    def build_job(self, hook: PerkvilleHook, settings: BatchSettings) -> BatchJob[Award]:
        """Validate, send and preview one record; checks this operator's own parameters."""
        perk_id = as_optional_ref(self.perk_id, "perk_id", "perks")
        once_a_day = as_bool(self.limit_to_once_per_calendar_day, "limit_to_once_per_calendar_day")
        try:
            max_quantity = validate_max_quantity(self.max_quantity)
        except RecordValidationError as error:
            raise setting_error("max_quantity", error.message) from None

        def award(record: Award) -> Outcome:
            result = hook.award_points(
                record, business_id=settings.business_id, limit_to_once_per_calendar_day=once_a_day
            )
            return award_outcome(result)

        return BatchJob(
            name="award_points",
            prepare=partial(
                validate_award,
                default_perk_id=perk_id,
                max_quantity=max_quantity,
                ignore_unknown_fields=settings.ignore_unknown_fields,
            ),
            process=award,
            key_fields=("trans_source_id",),
            statuses=AWARD_STATUSES,
            metrics=("points", "recovered", "recovered_points"),
            order_key=lambda record: record.trans_source_id,
            preview=lambda record: award_request_body(
                record,
                settings.business,
                limit_to_once_per_calendar_day=once_a_day,
                api=hook.conventions(),
            ),
        )


def award_outcome(result: AwardResult) -> Outcome:
    """The record's outcome.

    Only a new award adds to ``points`` (a duplicate was counted before), a recovered one to
    ``recovered_points``.
    """
    from perkville_provider.hooks.resources import transaction_points  # the hook is loaded by now

    transaction = result.transaction or {}
    detail: dict[str, Any] = {"points": result.points, "transaction_id": transaction.get("transaction_id")}
    if result.recovered_after_lost_response:
        detail["recovered_after_lost_response"] = True
    points = result.points if result.status == "awarded" else 0
    recovered = int(result.recovered_after_lost_response)
    # A lost answer settled without the transaction found (a duplicate refusal): its points unknown.
    recovered_points = transaction_points(transaction) if recovered and transaction else 0
    metrics = {"points": points or 0, "recovered": recovered, "recovered_points": recovered_points}
    return Outcome(result.status, detail=detail, metrics=metrics)
