"""
### Perkville member sync (hourly)

Keeps the gym's members in Perkville in step with the membership system; no change is skipped.

1. **extract_changed_members** reads the members changed since the **watermark**: the end of the
   window the last successful sync covered (less 5 minutes, since upserts are safe to repeat), up
   to this run's end (its data interval's end, or, for a run without a logical date, the moment it
   was queued). So hours whose runs failed or never ran (scheduler down, a failed run nobody
   cleared) are covered by the next successful run. The first sync ever, or `full_sync`, sends
   every member. The watermark lives in Airflow's **asset state store** on the Asset
   `perkville://api.perkville.com/business/<business_id>/external_members` (key `synced_until`),
   Airflow 3.3's home for a producer's watermark: it belongs to the data, survives any run, and
   needs no Variable. (The previous successful run's `prev_data_interval_end_success` is not
   enough: a run without a logical date has no data interval, and a full sync triggered by hand
   would not move it.) The rows are staged
   as JSON Lines under `staging_root`; only the paths travel by XCom.
2. **sync_members** upserts them as Perkville external members (`PerkvilleSyncMembersOperator`):
   a member is created in Perkville (user and connection) the first time, updated afterwards.
   Rows that cannot be sent (no member id, a missing or malformed email...) are reported, never
   sent, and never stop the others. A `full_sync` also sets members who left the source to
   `INACTIVE` (`on_missing="deactivate"`). The mass-change guard stops a run that would change
   more than 20% of the known members before it sends anything (a source query gone wrong);
   `allow_mass_change` lets one run through.
3. **report** logs one table (created, updated, invalid with the reason for each row...), fails
   the run loudly when more than `max_failure_ratio` of the rows failed, and otherwise moves the
   watermark to this run's end (never backwards).
4. **cleanup_staging** deletes staged runs older than `staging_retention_days`.

Updates the Asset `perkville://api.perkville.com/business/<business_id>/external_members` (the
same node as the sync's OpenLineage output). Re-running a window is safe (upserts).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, TriggerRule, dag, task
from perkville_example_common import (
    DEFAULT_ARGS,
    MEMBER_COLUMNS,
    MEMBERS_ASSET,
    cleanup_staging,
    common_params,
    operator_settings,
    report,
    sql_params,
    stage_changed_members,
    staging_params,
)
from perkville_example_windows import SYNCED_UNTIL, later_watermark, state_watermark

from perkville_provider.operators.sync_members import PerkvilleSyncMembersOperator

MEMBERS_SQL = f"""\
SELECT {MEMBER_COLUMNS}
FROM members
WHERE updated_at >= :changed_since AND updated_at < :changed_until
ORDER BY updated_at, member_id"""  # noqa: S608 (a constant column list; values are binds)


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
        "full_sync": Param(
            False,
            type="boolean",
            title="Full sync: every member, not only the changed",
            description="Members Perkville knows and the source no longer lists are set INACTIVE.",
        ),
        "allow_mass_change": Param(
            False,
            type="boolean",
            title="Allow a mass change (this run only)",
            description="Send even when the run would change more than 20% of the known members.",
        ),
        **sql_params(
            {"members_sql": (MEMBERS_SQL, ":changed_since, :changed_until (UTC)", "changed members")}
        ),
        **staging_params(),
    },
    doc_md=__doc__,
    tags=["perkville", "example"],
)
def perkville_member_sync() -> None:
    @task(multiple_outputs=True, inlets=[MEMBERS_ASSET])
    def extract_changed_members(**context: Any) -> dict[str, Any]:
        synced_until = state_watermark(context, MEMBERS_ASSET, SYNCED_UNTIL)
        return stage_changed_members(context, synced_until, MEMBERS_SQL)

    extracted = extract_changed_members()

    sync = PerkvilleSyncMembersOperator(
        task_id="sync_members",
        members=extracted["members"],
        external_system_id="{{ params.external_system_id }}",
        on_missing="{{ 'deactivate' if params.full_sync else 'ignore' }}",
        allow_mass_change="{{ params.allow_mass_change }}",
        **operator_settings(),
        outlets=[MEMBERS_ASSET],
    )

    @task(task_id="report", retries=0, inlets=[MEMBERS_ASSET])
    def report_sync(summary: dict[str, Any], window: dict[str, Any], **context: Any) -> dict[str, Any]:
        params = context["params"]
        merged = report([summary], max_failure_ratio=params["max_failure_ratio"])
        if not params["dry_run"]:
            current = state_watermark(context, MEMBERS_ASSET, SYNCED_UNTIL)
            context["asset_state_store"][MEMBERS_ASSET].set(
                SYNCED_UNTIL, later_watermark(current, pendulum.parse(window["until"]))
            )
        return {**merged, "window": window}

    done = report_sync(sync.output, extracted["window"])

    @task(task_id="cleanup_staging", trigger_rule=TriggerRule.ALL_DONE)
    def cleanup(params: dict[str, Any], dag: Any = None) -> list[str]:
        return cleanup_staging(params["staging_root"], dag.dag_id, params["staging_retention_days"])

    done >> cleanup().as_teardown()


perkville_member_sync()
