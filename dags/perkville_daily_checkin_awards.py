"""
### Perkville daily check-in awards

Awards Perkville points for every gym check-in, exactly once, and never skips one.

1. **extract_checkin_awards** picks the run's **day** (in `business_timezone`): the `day` Param
   when given; else the day of the data interval; else, for a run without a logical date (CLI,
   REST or UI trigger with no logical date), yesterday. It reads the check-ins of that day **and of
   the `lookback_days` before it** from the source database (`source_conn_id`, query `CHECKINS_SQL`),
   so a check-in uploaded late, or a day whose run failed or never ran, is awarded by the next run.
   When runs were missed for longer than the lookback, the window widens back to the day after
   the last day a successful run covered, by at most `max_catchup_days`; past that bound the run
   awards what it can and its report **fails with the exact `airflow backfill create` command** for
   the days left out (widening without bound could make one run re-read months).
   Each check-in becomes an award keyed `MYGYM:DT:CHECKIN:12345` (`trans_source_id`): Perkville
   refuses a second award with the same id, so re-reading a day awards nothing twice. Rows that
   earlier runs' reports (on object storage) show as already settled are not re-sent
   (`skip_known_awards`). The awards are staged as JSON Lines under `staging_root`, one file per
   chunk of `chunk_size`; only the paths travel by XCom.
2. **upsert_checkin_members** makes sure every member with a check-in in the window exists in
   Perkville before any award: the extract also stages the members not yet sent by a successful
   member sync (changed since its watermark, or all of them before the first sync), and this task
   upserts just those. So the first day of a fresh deployment, or a member who joins and checks in
   within the hour, is awarded, not refused with `pv_user_not_found`. (Scheduling on the members
   Asset instead would not help a member who joined after the last sync; creating members inside
   the award operator would mix two API resources in one operator.)
3. **award_checkin_points** (`PerkvilleAwardPointsOperator`, one mapped task per staged chunk)
   sends them with `limit_to_once_per_calendar_day`: a member's second check-in of a day is
   `daily_limited`, however many runs re-read it.
4. **report** logs one table per day: the run's own day, and the earlier days re-read ("late":
   check-ins awarded after their day's run; re-read rows and the duplicates among them); it fails
   the run over `max_failure_ratio` (judged on the days no earlier successful run covered) and
   records the last covered day on the Asset
   `perkville://api.perkville.com/business/<business_id>/transactions`.
5. **cleanup_staging** deletes staged runs older than `staging_retention_days`.

Why not `catchup=True`: it creates one run per missed day only when the scheduler was down, not
for a failed run nobody cleared, nor for late rows; and on a fresh deployment it would start
hundreds of runs back to `start_date`. The lookback covers all three.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, TriggerRule, dag, task
from perkville_example_awards import (
    AWARD_REPORTS,
    AWARD_TASK,
    AWARDS_ASSET,
    chunk_failure_ratio,
    extract_awards,
    report_awards,
)
from perkville_example_common import (
    BUSINESS_TIMEZONE,
    DEFAULT_ARGS,
    MEMBER_COLUMNS,
    MEMBERS_ASSET,
    cleanup_staging,
    common_params,
    operator_settings,
    sql_params,
    staging_params,
)

from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator
from perkville_provider.operators.sync_members import PerkvilleSyncMembersOperator
from perkville_provider.run_tally import report_name
from perkville_provider.staging import REPORTS_DIR, chunk_in_current_run, run_staging_dir

CHECKIN_PERK_ID = 501

CHECKINS_SQL = """\
SELECT c.checkin_id,
       c.club_code,
       c.checked_in_at,
       m.email AS user_email
FROM checkins AS c
LEFT JOIN members AS m ON m.member_id = c.member_id
WHERE c.checked_in_at >= :window_start AND c.checked_in_at < :window_end
ORDER BY c.checked_in_at, c.checkin_id"""

MEMBERS_TO_UPSERT_SQL = f"""\
SELECT {MEMBER_COLUMNS}
FROM members
WHERE updated_at >= :changed_since
  AND member_id IN (SELECT member_id FROM checkins
                    WHERE checked_in_at >= :window_start AND checked_in_at < :window_end)
ORDER BY member_id"""  # noqa: S608 (a constant column list; values are binds)


def staged_report_path(root: str, dag_id: str, run_id: str, map_index: int, try_number: int = 1) -> str:
    """Where a chunk's try writes its per-record report.

    One file per try, so that the run's report counts every try (see
    ``perkville_provider.run_tally``); later runs read them to skip settled rows.
    """
    name = report_name(AWARD_REPORTS, map_index, try_number)
    return str(run_staging_dir(root, dag_id, run_id) / REPORTS_DIR / name)


@dag(
    dag_id="perkville_daily_checkin_awards",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=BUSINESS_TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=BUSINESS_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    render_template_as_native_obj=True,
    user_defined_macros={
        "staged_report_path": staged_report_path,
        "chunk_failure_ratio": chunk_failure_ratio,
    },
    params={
        **common_params(max_failure_ratio=0.2),
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Day to award",
            description="A date in the business timezone. Empty: the data interval's day, or yesterday.",
        ),
        "lookback_days": Param(
            3,
            type="integer",
            minimum=0,
            maximum=14,
            title="Lookback (days)",
            description="Also re-read this many days before the day: late check-ins, missed runs.",
        ),
        "max_catchup_days": Param(
            14,
            type="integer",
            minimum=0,
            maximum=60,
            title="Catch-up bound (days)",
            description="After missed runs, widen the window back this far at most; beyond, fail with "
            "the backfill command.",
        ),
        "skip_known_awards": Param(
            True,
            type="boolean",
            title="Skip rows earlier runs' reports show as settled",
        ),
        "perk_id": Param(CHECKIN_PERK_ID, type="integer", minimum=1, title="Perk awarded per check-in"),
        "business_timezone": Param(
            BUSINESS_TIMEZONE,
            type="string",
            title="Business timezone",
            description="The calendar day of a run is taken in this timezone (IANA name).",
        ),
        "chunk_size": Param(500, type="integer", minimum=1, maximum=10_000, title="Awards per mapped task"),
        **sql_params(
            {
                "checkins_sql": (CHECKINS_SQL, ":window_start, :window_end (UTC)", "check-ins"),
                "members_sql": (
                    MEMBERS_TO_UPSERT_SQL,
                    ":changed_since, :window_start, :window_end (UTC)",
                    "members to upsert first",
                ),
            }
        ),
        **staging_params(),
    },
    doc_md=__doc__,
    tags=["perkville", "example"],
)
def perkville_daily_checkin_awards() -> None:
    @task(inlets=[MEMBERS_ASSET, AWARDS_ASSET])
    def extract_checkin_awards(**context: Any) -> list[str]:
        # Airflow maps only over a return value: the chunk names; the rest under its own keys.
        staged = extract_awards(context, {"checkins_sql": CHECKINS_SQL, "members_sql": MEMBERS_TO_UPSERT_SQL})
        context["ti"].xcom_push(key="members", value=staged["members"])
        context["ti"].xcom_push(key="plan", value=staged["plan"])
        return staged["award_chunks"]

    extracted = extract_checkin_awards()

    members = PerkvilleSyncMembersOperator(
        task_id="upsert_checkin_members",
        members=extracted["members"],
        external_system_id="{{ params.external_system_id }}",
        # Only members who checked in, created when the member sync has not run yet: a share of
        # the known members means nothing here. The member sync DAG keeps the guard.
        max_change_ratio=None,
        **operator_settings(),
    )

    awarded = PerkvilleAwardPointsOperator.partial(
        task_id=AWARD_TASK,
        perk_id="{{ params.perk_id }}",
        limit_to_once_per_calendar_day=True,
        report_path="{{ staged_report_path(params.staging_root, dag.dag_id, run_id, ti.map_index, "
        "ti.try_number) }}",
        # A chunk fails on its own bad records over the threshold (the report still sums the run).
        **{
            **operator_settings(),
            "max_failure_ratio": "{{ chunk_failure_ratio(ti.xcom_pull(task_ids='extract_checkin_awards', "
            "key='plan'), ti.map_index, params.max_failure_ratio) }}",
        },
    ).expand(awards=extracted.map(chunk_in_current_run))  # short names in XCom, full paths here
    members >> awarded

    # Also after failed chunks: it reads every chunk's and try's report file, not their XCom.
    @task(
        task_id="report",
        retries=0,
        trigger_rule=TriggerRule.ALL_DONE,
        outlets=[AWARDS_ASSET],
    )
    def report(members_summary: Any, plan: dict[str, Any], **context: Any) -> dict[str, Any]:
        return report_awards(members_summary, plan, context)

    done = report(members.output, extracted["plan"])
    awarded >> done

    @task(task_id="cleanup_staging", trigger_rule=TriggerRule.ALL_DONE)
    def cleanup(params: dict[str, Any], dag: Any = None) -> list[str]:
        return cleanup_staging(params["staging_root"], dag.dag_id, params["staging_retention_days"])

    done >> cleanup().as_teardown()


perkville_daily_checkin_awards()
