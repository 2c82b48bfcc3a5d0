"""A minimal DAG proving the test harness: dag.test() against SQLite metadata."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, tags=["test"])
def infra_probe():
    @task
    def numbers() -> list[int]:
        return [1, 2, 3]

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    total(numbers())


infra_probe()
