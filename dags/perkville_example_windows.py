"""Which rows a run of the example DAGs reads, so that no check-in and no member change is skipped.

Pure functions of the run (its data interval or Params, or neither) and of the state the last
successful runs left on the DAGs' Assets (Airflow 3.3's asset state store, ``context
["asset_state_store"]``):

- the member sync reads the members changed since ``synced_until``, the end of the window the last
  successful sync covered (less a small overlap: upserts are safe to repeat), up to the run's end;
- the check-in awards read the run's day and the ``lookback_days`` before it, widened back to the
  day after ``awarded_through`` (the last day a successful run covered) when runs were missed, but
  never more than ``max_catchup_days``: past that bound the run awards what it can and its report
  fails with the exact ``airflow backfill create`` command for the days left out.

This file holds no DAG (it is listed in ``.airflowignore``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pendulum
from airflow.sdk.exceptions import AirflowFailException

log = logging.getLogger(__name__)

EPOCH = pendulum.datetime(1970, 1, 1, tz="UTC")
MEMBER_SYNC_OVERLAP = pendulum.duration(minutes=5)
"""Re-read this much before the watermark: a row committed late with an earlier ``updated_at``."""
SYNCED_UNTIL = "synced_until"
"""Asset state key (members Asset): the end of the window the last successful member sync covered."""
AWARDED_THROUGH = "awarded_through"
"""Asset state key (awards Asset): the last day every day up to which a successful run covered."""


@dataclass(frozen=True)
class MemberWindow:
    """The members a sync run sends: changed in ``[since, until)``; ``reason`` says why."""

    since: pendulum.DateTime
    until: pendulum.DateTime
    reason: str


def run_end(data_interval_end: Any, run_after: Any) -> pendulum.DateTime:
    """The end of what a run may read: its data interval's end, or, for a run without a logical
    date, the moment it was queued for (``run_after``: the same on every retry)."""
    moment = data_interval_end if data_interval_end is not None else run_after
    if moment is None:
        raise ValueError("a run has either a data interval or a run_after time")
    return pendulum.instance(moment).in_timezone("UTC")


def member_window(
    *,
    full_sync: bool,
    synced_until: str | None,
    data_interval_start: Any,
    until: pendulum.DateTime,
) -> MemberWindow:
    """The change window of a member sync run.

    ``full_sync`` or no watermark yet (the first sync ever): everyone. Otherwise from the
    watermark less :data:`MEMBER_SYNC_OVERLAP`, or from the data interval's start when that is
    earlier (a backfill of an old hour reads that hour).
    """
    if full_sync:
        return MemberWindow(EPOCH, until, "full sync: every member")
    if not synced_until:
        return MemberWindow(EPOCH, until, "first sync (no watermark yet): every member")
    since = pendulum.parse(synced_until).in_timezone("UTC") - MEMBER_SYNC_OVERLAP
    reason = f"members changed since the last successful sync's end {synced_until} (less 5 minutes)"
    if data_interval_start is not None and pendulum.instance(data_interval_start) < since:
        since = pendulum.instance(data_interval_start).in_timezone("UTC")
        reason = "members changed in this run's data interval and since (an older interval)"
    return MemberWindow(since, until, reason)


def checked_watermark(raw: Any, *, where: str, now: pendulum.DateTime) -> str | None:
    """A watermark read back from the asset state store, checked before it is trusted.

    Empty: None (no successful run yet). Not an ISO 8601 date or time: an error naming the asset
    and the key (a retry cannot fix it; fix or delete the key). After ``now``: ``now`` (in the
    watermark's own form, a date or a time) with a WARNING, so that one run with a future ``day``
    or a skewed clock cannot hide every later day from the lookback and the gap report.

    :param where: the asset and its state key, for the messages
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    text = str(raw).strip()
    date_only = re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) is not None
    try:
        parsed = pendulum.parse(text, tz="UTC", exact=True)
    except (ValueError, TypeError, OverflowError):
        parsed = None
    if not isinstance(parsed, pendulum.DateTime | pendulum.Date):
        raise AirflowFailException(
            f"{where} holds {text[:80]!r}, not an ISO 8601 date or time: fix it, or delete the key "
            "(the next run then starts as the first one)"
        )
    moment = parsed if isinstance(parsed, pendulum.DateTime) else _comparable(parsed)
    if moment <= now:
        return text
    clamped = now.to_date_string() if date_only else now.in_timezone("UTC").isoformat()
    log.warning("%s is %s, in the future (now %s): read as %s", where, text, now.isoformat(), clamped)
    return clamped


def state_watermark(context: Mapping[str, Any], asset: Any, key: str, timezone: str = "UTC") -> str | None:
    """:func:`checked_watermark` of an asset's state key, against the wall clock in ``timezone``."""
    raw = context["asset_state_store"][asset].get(key)
    where = f"the asset {getattr(asset, 'uri', asset)} state key {key!r}"
    return checked_watermark(raw, where=where, now=pendulum.now(timezone))


def later_watermark(current: str | None, candidate: pendulum.DateTime | pendulum.Date) -> str:
    """The watermark to keep: never moved back by a late backfill of an older window."""
    if current and pendulum.parse(current) >= _comparable(candidate):
        return current
    return candidate.isoformat()


def _comparable(value: pendulum.DateTime | pendulum.Date) -> Any:
    if isinstance(value, dt.datetime):
        return value
    return pendulum.datetime(value.year, value.month, value.day, tz="UTC")


def award_day(
    day_param: str | None,
    data_interval_start: Any,
    run_after: Any,
    timezone: str,
    now: pendulum.DateTime | None = None,
) -> tuple[pendulum.Date, str]:
    """The business day a run awards, and where it comes from.

    The ``day`` Param when given (a day after today in the business's timezone is refused before
    anything is read or sent: it would move the watermark into the future); else the day of the
    data interval's start in the business's timezone; else (a run without a logical date)
    yesterday in the business's timezone, as of the moment the run was queued for.
    """
    if day_param:
        try:
            day = pendulum.Date.fromisoformat(str(day_param).strip())
        except ValueError:
            raise AirflowFailException(
                f"the day Param must be a date (YYYY-MM-DD), got {day_param!r}"
            ) from None
        today = pendulum.instance(now or pendulum.now(timezone)).in_timezone(timezone).date()
        if day > today:
            raise AirflowFailException(
                f"the day Param {day} is in the future (today in {timezone} is {today}): "
                "its check-ins are not all in yet"
            )
        return day, "the day Param"
    if data_interval_start is not None:
        return pendulum.instance(data_interval_start).in_timezone(timezone).date(), "the data interval"
    queued = pendulum.instance(run_after).in_timezone(timezone)
    return queued.date().subtract(days=1), "yesterday (a run without a logical date)"


@dataclass(frozen=True)
class AwardWindow:
    """The days an awards run reads, oldest first, and the days it leaves to a backfill."""

    day: pendulum.Date
    first_day: pendulum.Date
    judged_from: pendulum.Date
    """Days from here on were covered by no earlier successful run: the threshold is judged on them."""
    uncovered: tuple[pendulum.Date, pendulum.Date] | None = None

    @property
    def days(self) -> list[pendulum.Date]:
        return [self.first_day.add(days=n) for n in range((self.day - self.first_day).days + 1)]


def award_window(
    day: pendulum.Date, *, lookback_days: int, max_catchup_days: int, awarded_through: str | None
) -> AwardWindow:
    """The days a run awards: ``day`` and the ``lookback_days`` before it, widened to the day
    after ``awarded_through`` when runs were missed, up to ``max_catchup_days`` before ``day``.

    A gap longer than that is left ``uncovered`` (for the report to fail with the backfill command).
    """
    first_day = day.subtract(days=lookback_days)
    if not awarded_through:
        return AwardWindow(day, first_day, judged_from=day)
    next_day = pendulum.Date.fromisoformat(awarded_through[:10]).add(days=1)
    judged_from = min(max(next_day, first_day), day)
    if next_day >= first_day:
        return AwardWindow(day, first_day, judged_from=judged_from)
    bound = day.subtract(days=max(max_catchup_days, lookback_days))
    if next_day >= bound:
        return AwardWindow(day, next_day, judged_from=next_day)
    return AwardWindow(day, bound, judged_from=bound, uncovered=(next_day, bound.subtract(days=1)))


def backfill_command(dag_id: str, first: pendulum.Date, last: pendulum.Date, timezone: str) -> str:
    """The ``airflow backfill create`` command whose runs award ``first`` to ``last``.

    A backfill creates one run per logical date in ``[--from-date, --to-date]``; on this DAG's
    timetable a run's logical date is its data interval's start, the day it awards.
    """
    start = pendulum.datetime(first.year, first.month, first.day, tz=timezone)
    end = pendulum.datetime(last.year, last.month, last.day, tz=timezone)
    return (
        f"airflow backfill create --dag-id {dag_id} --from-date {start.isoformat()} "
        f"--to-date {end.isoformat()} --reprocess-behavior failed"
    )
