"""Test DAG: sync members from an upstream task's XCom, mapped over chunks."""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from perkville_provider.batch import chunked, merge_summaries
from perkville_provider.operators.sync_members import PerkvilleSyncMembersOperator


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
    params={"members": Param([], type="array"), "chunk_size": Param(5, type="integer")},
)
def operators_members():
    @task
    def member_chunks(params=None) -> list[list[dict]]:
        return chunked(params["members"], params["chunk_size"])

    synced = PerkvilleSyncMembersOperator.partial(
        task_id="sync_members", external_system_id="TEST_SYS", max_failure_ratio=0.5
    ).expand(members=member_chunks())

    @task
    def merged(summaries) -> dict:
        return merge_summaries(summaries)

    merged(synced.output)


operators_members()
