"""The balance export DAG through dag.test(): the membership database ends up holding the ledger."""

from __future__ import annotations

import io
import sqlite3

import pendulum
import requests

from perkville_provider.demo import export, runner
from perkville_provider.sandbox import seed
from tests.helpers.dags import EXAMPLE_DAGS
from tests.helpers.e2e import task_states

ASSET_URIS = {"perkville://9823/connections-export", "perkville://9823/transactions-export"}


def table(gym, name: str) -> dict[int, dict]:
    with sqlite3.connect(gym.path) as db:
        db.row_factory = sqlite3.Row
        rows = {row[0]: dict(row) for row in db.execute(f"SELECT * FROM {name}")}  # noqa: S608
    db.close()
    return rows


def export_day(gym, day: pendulum.Date) -> runner.RunResult:
    logical_date = export.export_logical_date(day, gym.spec.timezone)
    return runner.run_dag(EXAMPLE_DAGS, export.EXPORT_DAG_ID, "export", logical_date)


def summaries(run: runner.RunResult) -> dict[str, dict]:
    return {task: runner.report_summary(run.dag_id, run.run_id, task) for task in export.EXPORT_TASK_IDS}


def asset_events(run_id: str) -> set[str]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(AssetModel.uri).join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
        return {uri for (uri,) in rows.filter(AssetEvent.source_run_id == run_id)}


def award_through_the_api(sandbox, moments: list[pendulum.DateTime]) -> None:
    """Transactions made straight through the sandbox's API (quicker here than the awards DAG)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sandbox.token()}"
    for i, moment in enumerate(moments):
        body = {
            "business": sandbox.business_id,
            "perk": seed.CHECKIN_PERK_ID,
            "user_email": seed.CUSTOMER_USERNAME,
            "trans_source_id": f"export-test-{i}",
            "transaction_dt": moment.isoformat(),
        }
        answer = session.post(f"{sandbox.base_url}/v2/transactions/", json=body, timeout=10)
        assert answer.status_code == 201, answer.text


def test_the_export_lands_the_ledgers_balances_and_the_days_transactions_and_a_rerun_changes_nothing(
    airflow_db, sandbox, gym
):
    day = gym.spec.checkin_days[1]
    start = pendulum.datetime(day.year, day.month, day.day, tz=gym.spec.timezone)
    award_through_the_api(sandbox, [start, start.add(hours=20), start.subtract(seconds=1), start.add(days=1)])

    run = export_day(gym, day)

    assert run.state == "success", task_states(run.run_id)
    ledger = sandbox.admin.ledger()
    connections = table(gym, export.CONNECTIONS_TABLE)
    assert {c["connection_id"]: c["point_balance"] for c in ledger["connections"]} == {
        cid: row["point_balance"] for cid, row in connections.items()
    }
    assert connections[seed.CUSTOMER_CONNECTION_ID]["point_balance"] == 120 + 4 * 10
    expected = {
        t["transaction_id"]
        for t in ledger["transactions"]
        if start <= pendulum.parse(t["transaction_dt"]) < start.add(days=1)
    }
    assert len(expected) == 2
    assert set(table(gym, export.TRANSACTIONS_TABLE)) == expected
    done = summaries(run)
    assert done["export_connections"]["inserted"] == len(ledger["connections"])
    assert done["export_transactions"]["inserted"] == 2
    assert asset_events(run.run_id) == ASSET_URIS
    out = io.StringIO()
    assert export.print_export(done, gym.path, ledger, sandbox.business_id, out).ok
    assert f"Balances match the sandbox ledger for all {len(ledger['connections'])}" in out.getvalue()

    before = table(gym, export.CONNECTIONS_TABLE), table(gym, export.TRANSACTIONS_TABLE)
    again = export_day(gym, day)

    assert again.state == "success"
    assert (table(gym, export.CONNECTIONS_TABLE), table(gym, export.TRANSACTIONS_TABLE)) == before
    assert all(s["inserted"] == s["updated"] == 0 for s in summaries(again).values())


def test_the_demos_balance_check_catches_a_balance_that_differs_from_the_ledger(airflow_db, sandbox, gym):
    assert export_day(gym, gym.spec.checkin_days[0]).state == "success"
    with sqlite3.connect(gym.path) as db:
        db.execute("UPDATE perkville_connections SET point_balance = 7 WHERE connection_id = 5001")
    db.close()

    check = export.check_balances(gym.path, sandbox.admin.ledger(), sandbox.business_id)

    assert check.mismatches == ["connection 5001: ledger 120, table 7"]


def test_a_run_without_a_logical_date_exports_the_last_full_business_day(airflow_db, sandbox, gym):
    dag = runner.load_example_dags(EXAMPLE_DAGS)[export.EXPORT_DAG_ID]

    run = dag.test()

    assert str(getattr(run.state, "value", run.state)) == "success", task_states(run.run_id)
    window = runner.report_summary(export.EXPORT_DAG_ID, run.run_id, "export_transactions")["window"]
    start, end = pendulum.parse(window["start"]), pendulum.parse(window["end"])
    assert end.in_timezone(gym.spec.timezone).time() == pendulum.time(0)
    assert end.in_timezone(gym.spec.timezone).subtract(days=1) == start
