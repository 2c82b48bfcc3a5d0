"""What the two Perkville example DAGs share: the defaults, the common Params, the SQL extract
and the report step.

The source is any database Airflow has a SQL connection for: the extract asks the connection for
its hook (a common-sql ``DbApiHook``) and runs the query through SQLAlchemy with named binds
(``:name``), so the same query text works on SQLite, PostgreSQL or MySQL; switching the source
means changing the connection, not the DAG. Rows leave the extract as plain JSON values, since
they travel by XCom.

This file holds no DAG (it is listed in ``.airflowignore``); Airflow puts the DAG folder on
``sys.path``, which is how the DAG files import it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pendulum
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException

from perkville_provider.batch import format_summary, merge_summaries
from perkville_provider.operators.base import raise_for_failure_ratio

BUSINESS_ID = 9823
BUSINESS_TIMEZONE = "America/New_York"
PERKVILLE_CONN_ID = "perkville_default"
SOURCE_CONN_ID = "gym_source_db"
SOURCE_SYSTEM = "MYGYM"
CLUB_LOCATIONS = {"DT": 101, "WS": 102}
"""The gym's club codes and the Perkville location ids they map to."""

SOURCE_TIME_FORMAT = "YYYY-MM-DD HH:mm:ss"
"""How times are bound into the source queries: UTC, comparable with a TIMESTAMP or sortable text."""

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "loyalty",
    # Safe to retry: awards are keyed by trans_source_id and member sync is an upsert.
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=1),
    "retry_exponential_backoff": True,
}

log = logging.getLogger(__name__)


def common_params(*, max_failure_ratio: float) -> dict[str, Param]:
    """The Params both DAGs show in the trigger form."""
    return {
        "business_id": Param(BUSINESS_ID, type="integer", minimum=1, title="Perkville business id"),
        "perkville_conn_id": Param(PERKVILLE_CONN_ID, type="string", title="Perkville connection id"),
        "source_conn_id": Param(
            SOURCE_CONN_ID,
            type="string",
            title="Source database connection id",
            description="Any SQL connection (sqlite, postgres, mysql...) holding the membership data.",
        ),
        "external_system_id": Param(
            SOURCE_SYSTEM,
            type="string",
            pattern="^[^:]+$",
            title="Source system id",
            description="Names the membership system in Perkville and prefixes every trans_source_id.",
        ),
        "club_locations": Param(
            CLUB_LOCATIONS,
            type="object",
            title="Club code to Perkville location id",
        ),
        "max_failure_ratio": Param(
            max_failure_ratio,
            type="number",
            minimum=0,
            maximum=1,
            title="Failure threshold",
            description="Share of records that may fail (invalid rows included) before the run fails.",
        ),
        "max_workers": Param(8, type="integer", minimum=1, maximum=64, title="Concurrent requests"),
        "dry_run": Param(False, type="boolean", title="Dry run: validate and report, send nothing"),
    }


def sql_param(default: str, *, binds: str) -> Param:
    """A query Param; ``binds`` documents the named binds the DAG supplies."""
    return Param(
        default,
        type="string",
        format="multiline",
        title="Source query",
        description=f"Runs on the source connection. Named binds available: {binds}.",
    )


def require_data_interval(start: Any, end: Any) -> tuple[pendulum.DateTime, pendulum.DateTime]:
    """The run's data interval. A run triggered without a logical date has none, and retrying
    cannot give it one: fail at once, saying how to trigger it."""
    if start is None or end is None:
        raise AirflowFailException(
            "this run has no data interval (it was triggered without a logical date); trigger it "
            "with one, e.g. `airflow dags trigger <dag_id> --logical-date 2026-11-21T00:00:00+00:00`"
        )
    return pendulum.instance(start), pendulum.instance(end)


def source_time(moment: dt.datetime) -> str:
    """A moment as bound into the source queries (see ``SOURCE_TIME_FORMAT``)."""
    return pendulum.instance(moment).in_timezone("UTC").format(SOURCE_TIME_FORMAT)


def as_utc_iso(value: Any) -> str | None:
    """A source timestamp (UTC, as text or a naive/aware datetime) as ISO 8601 with its offset."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = pendulum.instance(value, tz="UTC")
    else:
        moment = pendulum.parse(str(value), tz="UTC")
    return moment.in_timezone("UTC").isoformat()


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.decode()
    return value


def fetch_rows(conn_id: str, sql: str, binds: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run ``sql`` with named ``binds`` on the connection's SQL hook; rows as JSON-friendly dicts."""
    from airflow.sdk import BaseHook
    from sqlalchemy import text

    hook = BaseHook.get_connection(conn_id).get_hook()
    engine = hook.get_sqlalchemy_engine()
    try:
        with engine.connect() as connection:
            result = connection.execute(text(sql), dict(binds))
            rows = [{name: _json_value(value) for name, value in row.items()} for row in result.mappings()]
    finally:
        engine.dispose()
    log.info("%d rows from %s", len(rows), conn_id)
    return rows


def report(summaries: Iterable[Mapping[str, Any] | None], *, max_failure_ratio: float) -> dict[str, Any]:
    """Log one readable table for the run and fail loudly when failures exceed the threshold.

    ``summaries`` are the operators' XCom summaries (one, or one per mapped chunk). The threshold
    is judged here, over the whole run: a chunk holding a few of the day's bad rows must not fail
    on its own. The merged summary is returned, so it is this run's XCom too.
    """
    merged = merge_summaries(summaries)
    log.info("\n%s", format_summary(merged))
    raise_for_failure_ratio(merged, float(max_failure_ratio))
    return merged
