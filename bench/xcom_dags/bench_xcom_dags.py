"""The two shapes of the awards DAG that bench/bench_xcom_bytes.py compares (dry runs, no API):

- ``bench_awards_inline``: today's shape before issue 11: the extract returns every award, cut
  into chunks, as one XCom; each mapped task pulls the whole value and indexes its chunk;
- ``bench_awards_staged``: the extract stages one JSON Lines file per chunk and returns the paths.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from perkville_provider.batch import chunked
from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator
from perkville_provider.staging import chunk_in_current_run, run_staging_dir, stage_in_chunks

PARAMS = {
    "count": Param(10_000, type="integer"),
    "chunk_size": Param(500, type="integer"),
    "staging_root": Param("", type="string"),
}


def awards(count: int) -> list[dict]:
    """Awards shaped like the example DAG's (``to_award``), about 150 bytes each as JSON."""
    day = pendulum.datetime(2026, 11, 19, 6, tz="UTC")
    return [
        {
            "trans_source_id": f"MYGYM:DT:CHECKIN:{100000 + n}",
            "user_email": f"member.{n % 5000}@example.org",
            "location_id": 101,
            "transaction_dt": day.add(seconds=n).isoformat(),
        }
        for n in range(count)
    ]


def _award_operator():
    return PerkvilleAwardPointsOperator.partial(
        task_id="award_checkin_points", perk_id=501, validate_only=True, max_failure_ratio=1.0, max_workers=1
    )


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), params=PARAMS, tags=["bench"])
def bench_awards_inline():
    @task
    def extract(params=None) -> list[list[dict]]:
        return chunked(awards(params["count"]), params["chunk_size"])

    _award_operator().expand(awards=extract())


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), params=PARAMS, tags=["bench"])
def bench_awards_staged():
    @task
    def extract(params=None, dag_run=None) -> list[str]:
        run_dir = run_staging_dir(params["staging_root"], dag_run.dag_id, dag_run.run_id)
        return [
            name
            for name, _ in stage_in_chunks(run_dir, "awards", awards(params["count"]), params["chunk_size"])
        ]

    _award_operator().expand(awards=extract().map(chunk_in_current_run))  # as the example DAG does


bench_awards_inline()
bench_awards_staged()
