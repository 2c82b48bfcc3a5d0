"""Test DAG: award points mapped over chunks, then merge the mapped summaries.

Everything a test varies comes through ``dag.test(run_conf=...)`` into the Params, so one DAG
file serves every award scenario (records inline, or staged file paths: one chunk each with
``chunk_size=1``).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from perkville_provider.batch import chunked, merge_summaries
from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
    params={
        "awards": Param([], type="array"),
        "chunk_size": Param(10, type="integer"),
        "max_failure_ratio": Param(0.0, type="number"),
        "dry_run": Param(False, type="boolean"),
        "once_a_day": Param(False, type="boolean"),
        "report_dir": Param("", type="string"),
    },
)
def operators_awards():
    @task
    def award_chunks(params=None) -> list[list[dict]]:
        return chunked(params["awards"], params["chunk_size"])

    awarded = PerkvilleAwardPointsOperator.partial(
        task_id="award_points",
        perk_id=501,
        limit_to_once_per_calendar_day="{{ params.once_a_day }}",
        max_failure_ratio="{{ params.max_failure_ratio }}",
        validate_only="{{ params.dry_run }}",
        max_workers=4,
        report_path="{{ params.report_dir and params.report_dir ~ '/awards-' ~ ti.map_index ~ '.jsonl' }}",
    ).expand(awards=award_chunks())

    @task
    def merged(summaries) -> dict:
        return merge_summaries(summaries)

    merged(awarded.output)


operators_awards()
