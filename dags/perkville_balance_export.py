"""
### Perkville balance export

Brings Perkville back into the gym's own systems, nightly: every customer's point balance and the
day's transactions land in the membership database, where staff screens and BI tools read them.

1. **export_window** picks the day to export: the run's data interval, or, for a run triggered
   without a logical date, the last full day in `business_timezone`.
2. **export_connections** (`PerkvilleToSqlOperator`) walks all the business's connections (point
   balance, lifetime points, status, user, home location, membership fields) and upserts them into
   `perkville_connections` of `target_conn_id`. Perkville documents no modification filter for
   connections, so this is a full walk; unchanged rows are not rewritten.
3. **export_transactions** (`PerkvilleToSqlOperator`) upserts the window's transactions into
   `perkville_transactions`.

Both tables are created when missing and keyed on Perkville's ids: re-running a day leaves them as
they were. Each task returns its summary (pages, rows read, inserted, updated, unchanged) and
updates an Asset per table (`perkville://9823/connections-export`,
`perkville://9823/transactions-export`), so downstream DAGs can be scheduled on a fresh table.
Nothing but the summaries travels through XCom.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, task
from perkville_example_common import (
    BUSINESS_ID,
    BUSINESS_TIMEZONE,
    DEFAULT_ARGS,
    PERKVILLE_CONN_ID,
    SOURCE_CONN_ID,
)

from perkville_provider.transfers.perkville_to_sql import PerkvilleToSqlOperator, export_window

CONNECTIONS_TABLE = "perkville_connections"
TRANSACTIONS_TABLE = "perkville_transactions"
CONNECTIONS_EXPORT = Asset(
    name="perkville_connections_export", uri=f"perkville://{BUSINESS_ID}/connections-export"
)
TRANSACTIONS_EXPORT = Asset(
    name="perkville_transactions_export", uri=f"perkville://{BUSINESS_ID}/transactions-export"
)


@dag(
    dag_id="perkville_balance_export",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=BUSINESS_TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=BUSINESS_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    render_template_as_native_obj=True,
    params={
        "business_id": Param(BUSINESS_ID, type="integer", minimum=1, title="Perkville business id"),
        "perkville_conn_id": Param(PERKVILLE_CONN_ID, type="string", title="Perkville connection id"),
        "target_conn_id": Param(
            SOURCE_CONN_ID,
            type="string",
            title="Membership database connection id",
            description="Any SQL connection (sqlite, postgres, mysql...); the tables are created if missing.",
        ),
        "business_timezone": Param(
            BUSINESS_TIMEZONE,
            type="string",
            title="Business timezone",
            description="A run without a logical date exports the last full day in this timezone.",
        ),
    },
    doc_md=__doc__,
    tags=["perkville", "example"],
)
def perkville_balance_export() -> None:
    @task(multiple_outputs=True)
    def pick_export_window(
        params: dict[str, Any], data_interval_start: Any = None, data_interval_end: Any = None
    ) -> dict[str, str]:
        start, end = export_window(
            data_interval_start, data_interval_end, timezone=params["business_timezone"]
        )
        return {"start": start.isoformat(), "end": end.isoformat()}

    window = pick_export_window.override(task_id="export_window")()
    shared: dict[str, Any] = {
        "sql_conn_id": "{{ params.target_conn_id }}",
        "perkville_conn_id": "{{ params.perkville_conn_id }}",
        "business_id": "{{ params.business_id }}",
    }
    PerkvilleToSqlOperator(
        task_id="export_connections",
        resource="connections",
        table=CONNECTIONS_TABLE,
        outlets=[CONNECTIONS_EXPORT],
        **shared,
    )
    PerkvilleToSqlOperator(
        task_id="export_transactions",
        resource="transactions",
        table=TRANSACTIONS_TABLE,
        window_start=window["start"],
        window_end=window["end"],
        outlets=[TRANSACTIONS_EXPORT],
        **shared,
    )


perkville_balance_export()
