"""
### Perkville member sync (hourly)

Keeps the gym's members in Perkville in step with the membership system.

1. **extract_changed_members** reads the members changed in the run's data interval
   (`updated_at` in `[data_interval_start, data_interval_end)`) from the source database
   connection (`source_conn_id`, any SQL connection). Tick `full_sync` to send every member,
   e.g. for the first load. The query is the `members_sql` Param.
2. **sync_members** upserts them as Perkville external members (`PerkvilleSyncMembersOperator`):
   a member is created in Perkville (user and connection) the first time, updated afterwards.
   Rows that cannot be sent (no member id, a missing or malformed email...) are reported, never
   sent, and never stop the others.
3. **report** logs one table (created, updated, invalid with the reason for each row...) and fails
   the run loudly when more than `max_failure_ratio` of the rows failed.

Updates the Asset `perkville://<business_id>/members`. Re-running a window is safe (upserts).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, task
from perkville_example_common import (
    BUSINESS_ID,
    DEFAULT_ARGS,
    common_params,
    fetch_rows,
    report,
    require_data_interval,
    source_time,
    sql_param,
)

from perkville_provider.operators.sync_members import PerkvilleSyncMembersOperator

MEMBERS_ASSET = Asset(uri=f"perkville://{BUSINESS_ID}/members", name="perkville_members")

MEMBERS_SQL = """\
SELECT member_id         AS external_member_id,
       email             AS user_email,
       first_name,
       last_name,
       membership_type   AS external_membership_type,
       membership_status AS external_membership_status,
       join_date         AS external_join_dt,
       cancel_date       AS external_cancel_dt,
       home_club
FROM members
WHERE updated_at >= :changed_since AND updated_at < :changed_until
ORDER BY updated_at, member_id"""

FULL_SYNC_SINCE = pendulum.datetime(1970, 1, 1, tz="UTC")


def to_member(row: dict[str, Any], club_locations: dict[str, int]) -> dict[str, Any]:
    """A source row as a member record: the home club becomes its Perkville location id."""
    member = {name: value for name, value in row.items() if name != "home_club"}
    member["home_location_id"] = club_locations.get(row.get("home_club") or "")
    return member


@dag(
    dag_id="perkville_member_sync",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    render_template_as_native_obj=True,
    params={
        **common_params(max_failure_ratio=0.2),
        "full_sync": Param(False, type="boolean", title="Full sync: every member, not only the changed"),
        "members_sql": sql_param(MEMBERS_SQL, binds=":changed_since, :changed_until (UTC)"),
    },
    doc_md=__doc__,
    tags=["perkville", "example"],
)
def perkville_member_sync() -> None:
    @task
    def extract_changed_members(
        params: dict[str, Any], data_interval_start: Any = None, data_interval_end: Any = None
    ) -> list[dict[str, Any]]:
        start, end = require_data_interval(data_interval_start, data_interval_end)
        since = FULL_SYNC_SINCE if params["full_sync"] else start
        rows = fetch_rows(
            params["source_conn_id"],
            params["members_sql"],
            {"changed_since": source_time(since), "changed_until": source_time(end)},
        )
        return [to_member(row, params["club_locations"]) for row in rows]

    sync = PerkvilleSyncMembersOperator(
        task_id="sync_members",
        members=extract_changed_members(),
        external_system_id="{{ params.external_system_id }}",
        perkville_conn_id="{{ params.perkville_conn_id }}",
        business_id="{{ params.business_id }}",
        max_workers="{{ params.max_workers }}",
        # The threshold is judged by the report over the whole run; a chunk only asks for a
        # retry when records failed transiently (resending is safe).
        max_failure_ratio=1.0,
        retry_transient_failures=True,
        dry_run="{{ params.dry_run }}",
        outlets=[MEMBERS_ASSET],
    )

    @task(task_id="report", retries=0)
    def report_sync(summary: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        return report([summary], max_failure_ratio=params["max_failure_ratio"])

    report_sync(sync.output)


perkville_member_sync()
