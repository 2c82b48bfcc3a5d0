"""Test DAG: the join flow for members given by a template, then balance lookups by XCom and template."""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from perkville_provider.operators.connections import (
    PerkvilleGetConnectionsOperator,
    PerkvilleJoinProgramOperator,
)


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
    params={
        "members": Param([], type="array"),
        "agreements_accepted": Param(False, type="boolean"),
        "emails": Param([], type="array"),
        "user_ids": Param([], type="array"),
        "report_dir": Param("", type="string"),
    },
)
def operators_connections():
    join = PerkvilleJoinProgramOperator(
        task_id="join_program",
        members="{{ params.members }}",
        agreements_accepted="{{ params.agreements_accepted }}",
        external_system_id="TEST_SYS",
        max_failure_ratio=0.5,
    )

    @task
    def emails_to_look_up(params=None) -> list[str]:
        return params["emails"]

    look_up = PerkvilleGetConnectionsOperator(
        task_id="get_connections",
        emails=emails_to_look_up(),
        user_ids="{{ params.user_ids }}",
        max_failure_ratio=0.5,
        report_path="{{ params.report_dir and params.report_dir ~ '/lookups.jsonl' }}",
    )
    join >> look_up


operators_connections()
