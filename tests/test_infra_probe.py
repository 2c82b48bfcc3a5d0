from __future__ import annotations

from tests.helpers.dags import TEST_DAGS, load_dag


def test_a_dag_file_runs_end_to_end_under_dag_test(airflow_db):
    dag = load_dag(TEST_DAGS / "infra_probe_dag.py", "infra_probe")
    run = dag.test()
    assert run.state == "success"
