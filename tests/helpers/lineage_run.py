"""Run the example DAGs once each, in a process of their own, for the OpenLineage tests.

OpenLineage's listener is an Airflow plugin, registered once per process when a transport is
configured; the test suite's own process runs without one, so these runs happen here, with the
file transport set in the environment by the caller. Writes each run's state and summary as JSON.

Usage: ``python -m tests.helpers.lineage_run <gym database> <result file>``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from perkville_provider.demo import data, export, runner
from tests.helpers.dags import EXAMPLE_DAGS


def main(gym_db: str, result_file: str) -> None:
    spec = data.read_spec(Path(gym_db))
    day = spec.checkin_days[-1]
    runs = [
        runner.run_dag(
            EXAMPLE_DAGS,
            runner.MEMBER_SYNC_DAG_ID,
            "sync",
            runner.member_sync_logical_date(spec),
            {"full_sync": True},
        ),
        runner.run_dag(
            EXAMPLE_DAGS, runner.AWARDS_DAG_ID, "awards", runner.award_logical_date(day, spec.timezone)
        ),
        runner.run_dag(
            EXAMPLE_DAGS, export.EXPORT_DAG_ID, "export", export.export_logical_date(day, spec.timezone)
        ),
    ]
    results = {run.dag_id: {"state": run.state, "summary": run.summary} for run in runs}
    Path(result_file).write_text(json.dumps(results, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
