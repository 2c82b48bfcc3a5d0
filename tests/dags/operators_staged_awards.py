"""Test DAG: award points mapped over staged JSON Lines files (one path per mapped task).

The paths come through ``dag.test(run_conf=...)``; only they travel by XCom, never the records.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from perkville_provider.batch import merge_summaries
from perkville_provider.operators.transactions import PerkvilleAwardPointsOperator


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
    params={
        "paths": Param([], type="array", description="one staged file (path or URL) per mapped task"),
        "max_failure_ratio": Param(0.5, type="number"),
    },
)
def operators_staged_awards():
    @task
    def staged_paths(params=None) -> list[str]:
        return list(params["paths"])

    awarded = PerkvilleAwardPointsOperator.partial(
        task_id="award_points",
        perk_id=501,
        max_failure_ratio="{{ params.max_failure_ratio }}",
        max_workers=4,
        retries=0,
    ).expand(awards=staged_paths())

    @task
    def merged(summaries) -> dict:
        return merge_summaries(summaries)

    merged(awarded.output)


operators_staged_awards()
