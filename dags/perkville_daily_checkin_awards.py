"""
### Perkville daily check-in awards

Awards Perkville points for every gym check-in of a day, exactly once.

1. **extract_checkin_awards** reads the check-ins of the run's day from the source database
   connection (`source_conn_id`, any SQL connection; the query is the `checkins_sql` Param).
   The day is the calendar day of the data interval's start in `business_timezone`.
   Each check-in becomes an award of `perk_id` whose `trans_source_id` is built from the source
   system, the club and the check-in id (`MYGYM:DT:CHECKIN:12345`), the pattern Perkville's own
   integrations use: Perkville refuses a second award with the same id, so re-running or
   backfilling a day awards nothing twice, and a check-in exported twice is reported as a
   duplicate. The awards are cut into chunks of `chunk_size` (larger if needed to stay within
   `[core] max_map_length` mapped tasks).
2. **award_checkin_points** (`PerkvilleAwardPointsOperator`, one mapped task per chunk) sends
   them with `limit_to_once_per_calendar_day`: a member's second check-in of the day is reported
   as daily-limited. Rows that cannot be sent (no member, a missing or malformed email...) are
   reported with the reason and never stop the others.
3. **report** adds up the chunks' summaries into one table (awarded, points, duplicates,
   daily-limited, invalid, failed) and fails the run loudly over `max_failure_ratio`.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, TriggerRule, dag, task
from perkville_example_common import (
    BUSINESS_TIMEZONE,
    DEFAULT_ARGS,
    as_utc_iso,
    common_params,
    fetch_rows,
    report,
    require_data_interval,
    source_time,
    sql_param,
)

from perkville_provider.batch import chunked
from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator
from perkville_provider.records import RecordValidationError, build_trans_source_id

CHECKIN_PERK_ID = 501

CHECKINS_SQL = """\
SELECT c.checkin_id,
       c.club_code,
       c.checked_in_at,
       m.email AS user_email
FROM checkins AS c
LEFT JOIN members AS m ON m.member_id = c.member_id
WHERE c.checked_in_at >= :day_start AND c.checked_in_at < :day_end
ORDER BY c.checked_in_at, c.checkin_id"""


def award_day(data_interval_start: pendulum.DateTime, timezone: str) -> pendulum.Date:
    """The business day a run awards: the data interval's start, as a date in the business's timezone."""
    return pendulum.instance(data_interval_start).in_timezone(timezone).date()


def to_award(row: dict[str, Any], *, source_system: str, club_locations: dict[str, int]) -> dict[str, Any]:
    """A check-in row as an award record keyed by ``SOURCE:CLUB:CHECKIN:<id>``.

    A row whose key cannot be built keeps an empty ``trans_source_id``, so the operator reports
    it as invalid instead of this task failing the whole day.
    """
    try:
        trans_source_id = build_trans_source_id(source_system, row["club_code"], "CHECKIN", row["checkin_id"])
    except RecordValidationError:
        trans_source_id = None
    return {
        "trans_source_id": trans_source_id,
        "user_email": row.get("user_email"),
        "location_id": club_locations.get(row.get("club_code") or ""),
        "transaction_dt": as_utc_iso(row.get("checked_in_at")),
    }


def chunk_size_for(count: int, wanted: int) -> int:
    """``wanted``, or larger when needed to stay within Airflow's limit on mapped task instances."""
    from airflow.sdk.configuration import conf

    max_chunks = conf.getint("core", "max_map_length", fallback=1024)
    return max(wanted, -(-count // max_chunks))


@dag(
    dag_id="perkville_daily_checkin_awards",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=BUSINESS_TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=BUSINESS_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    render_template_as_native_obj=True,
    params={
        **common_params(max_failure_ratio=0.2),
        "perk_id": Param(CHECKIN_PERK_ID, type="integer", minimum=1, title="Perk awarded per check-in"),
        "business_timezone": Param(
            BUSINESS_TIMEZONE,
            type="string",
            title="Business timezone",
            description="The calendar day of a run is taken in this timezone (IANA name).",
        ),
        "chunk_size": Param(500, type="integer", minimum=1, maximum=10_000, title="Awards per mapped task"),
        "checkins_sql": sql_param(CHECKINS_SQL, binds=":day_start, :day_end (UTC)"),
    },
    doc_md=__doc__,
    tags=["perkville", "example"],
)
def perkville_daily_checkin_awards() -> None:
    @task
    def extract_checkin_awards(
        params: dict[str, Any], data_interval_start: Any = None, data_interval_end: Any = None
    ) -> list[list[dict]]:
        start, _ = require_data_interval(data_interval_start, data_interval_end)
        day = award_day(start, params["business_timezone"])
        start = pendulum.datetime(day.year, day.month, day.day, tz=params["business_timezone"])
        rows = fetch_rows(
            params["source_conn_id"],
            params["checkins_sql"],
            {"day_start": source_time(start), "day_end": source_time(start.add(days=1))},
        )
        awards = [
            to_award(row, source_system=params["external_system_id"], club_locations=params["club_locations"])
            for row in rows
        ]
        return chunked(awards, chunk_size_for(len(awards), params["chunk_size"]))

    awarded = PerkvilleAwardPointsOperator.partial(
        task_id="award_checkin_points",
        perk_id="{{ params.perk_id }}",
        limit_to_once_per_calendar_day=True,
        perkville_conn_id="{{ params.perkville_conn_id }}",
        business_id="{{ params.business_id }}",
        max_workers="{{ params.max_workers }}",
        # The threshold is judged by the report over the whole run; a chunk only asks for a
        # retry when records failed transiently (resending is safe).
        max_failure_ratio=1.0,
        retry_transient_failures=True,
        dry_run="{{ params.dry_run }}",
    ).expand(awards=extract_checkin_awards())

    @task(task_id="report", retries=0, trigger_rule=TriggerRule.NONE_FAILED)
    def report_awards(summaries: Any, params: dict[str, Any]) -> dict[str, Any]:
        return report(summaries, max_failure_ratio=params["max_failure_ratio"])

    report_awards(awarded.output)


perkville_daily_checkin_awards()
