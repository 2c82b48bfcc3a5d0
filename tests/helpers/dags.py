"""Where the DAGs live, and parsing one DAG file the way Airflow's DAG processor does."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE_DAGS = REPO_ROOT / "dags"
TEST_DAGS = REPO_ROOT / "tests" / "dags"


def load_dag(path: Path, dag_id: str):
    """Parse one DAG file the way the DAG processor does and return the named DAG."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)
