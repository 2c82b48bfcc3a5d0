"""What the two Perkville example DAGs share: the defaults, the common Params, the SQL extract
and the report step.

The source is any database Airflow has a SQL connection for: the extract asks the connection for
its hook (a common-sql ``DbApiHook``) and runs the query through SQLAlchemy with named binds
(``:name``), so the same query text works on SQLite, PostgreSQL or MySQL; switching the source
means changing the connection, not the DAG. Rows leave the extract as plain JSON values, staged as
JSON Lines under the ``staging_root`` Param; only paths and counts travel by XCom.

This file holds no DAG (it is listed in ``.airflowignore``); Airflow puts the DAG folder on
``sys.path``, which is how the DAG files import it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

import pendulum
from airflow.sdk import Asset, Param

from perkville_provider import staging
from perkville_provider.batch import format_summary, merge_summaries
from perkville_provider.lineage import add_sql_read, asset_uri
from perkville_provider.operators.base import raise_for_failure_ratio

BUSINESS_ID = 9823
BUSINESS_TIMEZONE = "America/New_York"
PERKVILLE_CONN_ID = "perkville_default"
SOURCE_CONN_ID = "gym_source_db"
SOURCE_SYSTEM = "MYGYM"
CLUB_LOCATIONS = {"DT": 101, "WS": 102}
"""The gym's club codes and the Perkville location ids they map to."""
PERKVILLE_API_HOST = "api.perkville.com"
"""The API the assets name: the OpenLineage datasets of a connection to this host are the same nodes."""
MEMBERS_ASSET = Asset(
    uri=asset_uri(PERKVILLE_API_HOST, BUSINESS_ID, "external_members"), name="perkville_members"
)
"""Updated by the member sync; its asset state holds the sync's watermark (``synced_until``)."""

SOURCE_TIME_FORMAT = "YYYY-MM-DD HH:mm:ss"
"""How times are bound into the source queries: UTC, comparable with a TIMESTAMP or sortable text."""

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "loyalty",
    # Safe to retry: awards are keyed by trans_source_id and member sync is an upsert.
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=1),
    "retry_exponential_backoff": True,
}

STAGING_ROOT_ENV_VAR = "PERKVILLE_STAGING_ROOT"
MEMBERS_PER_FILE = 10_000
"""Members per staged file (the sync operator reads the list of files, one line at a time)."""
MEMBER_COLUMNS = """\
member_id         AS external_member_id,
       email             AS user_email,
       first_name,
       last_name,
       membership_type   AS external_membership_type,
       membership_status AS external_membership_status,
       join_date         AS external_join_dt,
       cancel_date       AS external_cancel_dt,
       home_club"""
"""The member fields both DAGs read (the sync, and the awards for members not yet synced)."""

log = logging.getLogger(__name__)


def default_staging_root() -> str:
    """``$PERKVILLE_STAGING_ROOT``, else ``file://$AIRFLOW_HOME/perkville-staging`` (one machine)."""
    configured = os.environ.get(STAGING_ROOT_ENV_VAR, "").strip()
    if configured:
        return configured if "://" in configured else f"file://{os.path.abspath(configured)}"
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return f"file://{os.path.abspath(home)}/perkville-staging"


def staging_params() -> dict[str, Param]:
    """Where the extract steps stage records (see ``perkville_provider.staging``), and for how long."""
    return {
        "staging_root": Param(
            default_staging_root(),
            type="string",
            title="Staging root",
            description=(
                "Object storage URL every worker can read (file:// on a shared folder, s3://, gs://, "
                "abfs://...). Records are staged there as JSON Lines; only paths travel by XCom."
            ),
        ),
        "staging_retention_days": Param(
            30,
            type="integer",
            minimum=1,
            title="Staging retention (days)",
            description="Staged runs older than this are deleted by the run's cleanup step.",
        ),
    }


def cleanup_staging(root: str, dag_id: str, retention_days: int) -> list[str]:
    """Delete the staged runs of ``dag_id`` past their retention; return what was removed."""
    removed = staging.remove_expired_runs(
        root, dag_id, retention_days=int(retention_days), now=pendulum.now("UTC")
    )
    log.info("Removed %d staged runs older than %s days from %s", len(removed), retention_days, root)
    return removed


def common_params(*, max_failure_ratio: float) -> dict[str, Param]:
    """The Params both DAGs show in the trigger form."""
    return {
        "business_id": Param(
            BUSINESS_ID,
            type="integer",
            minimum=1,
            title="Perkville business id",
            description="The business every record is sent to (the demo sandbox's is 9823).",
        ),
        "perkville_conn_id": Param(
            PERKVILLE_CONN_ID,
            type="string",
            title="Perkville connection id",
            description="The Airflow connection of type perkville to send with (Admin > Connections; "
            "one set by an AIRFLOW_CONN_ environment variable works too, but is not listed there).",
        ),
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
        "max_workers": Param(
            8,
            type="integer",
            minimum=1,
            maximum=64,
            title="Concurrent requests",
            description="Records each task sends at once; the pace is still the connection's rate budget.",
        ),
        "max_requests_per_second": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            title="Requests per second, for the whole Perkville connection",
            description="One budget for the connection, shared by every task that sends with it (all "
            "of this run's tasks, and other runs'), on every worker: never multiplied by the tasks. "
            "Empty: the connection's "
            "max_requests_per_second extra, else adaptive pacing that slows down on 429. Shared by the "
            "processes of one machine by default; the connection's rate_limit_redis_url extra shares "
            "it across workers. See README 'Rate limits'.",
        ),
        "dry_run": Param(False, type="boolean", title="Dry run: validate and report, send nothing"),
    }


def operator_settings() -> dict[str, Any]:
    """The operator arguments both DAGs take from their Params.

    The failure threshold is judged by the report over the whole run (``max_failure_ratio=1.0``
    here); a task only asks for a retry when records failed transiently (resending is safe).
    """
    return {
        "perkville_conn_id": "{{ params.perkville_conn_id }}",
        "business_id": "{{ params.business_id }}",
        "max_workers": "{{ params.max_workers }}",
        "max_requests_per_second": "{{ params.max_requests_per_second }}",
        "max_failure_ratio": 1.0,
        "retry_transient_failures": True,
        "validate_only": "{{ params.dry_run }}",
    }


SQL_PARAMS_ENV_VAR = "PERKVILLE_EXAMPLE_SQL_PARAMS"
"""Set to ``1`` where the source queries may be overridden at trigger time (off by default)."""


def sql_params_allowed() -> bool:
    """Whether the deployment opted in to source queries as trigger Params (see :func:`sql_params`)."""
    return os.environ.get(SQL_PARAMS_ENV_VAR, "").strip() == "1"


def sql_params(queries: Mapping[str, tuple[str, str, str]]) -> dict[str, Param]:
    """The source queries as trigger Params, only where the deployment opted in; else none.

    A query Param runs whatever SQL the person triggering the run types, with the source
    connection's rights: anyone allowed to trigger the DAG could read other tables out as member
    fields, or (on SQLite) copy the whole database with ``VACUUM INTO``. So the queries are the DAG
    author's constants, and only a deployment that trusts every triggerer with the source database
    sets ``PERKVILLE_EXAMPLE_SQL_PARAMS=1`` (the local cluster does, to sample a day).

    :param queries: Param name -> (the default query, the named binds it may use, its title: what
        it reads, so the DAG's queries are told apart in the trigger form)
    """
    if not sql_params_allowed():
        return {}
    return {
        name: Param(
            default,
            type="string",
            format="multiline",
            title=f"Source query: {title} (runs as the source connection)",
            description=f"WARNING: whoever triggers this DAG can run any SQL here on the source database "
            f"with the source connection's rights ({SQL_PARAMS_ENV_VAR}=1 is set). Named binds: {binds}.",
        )
        for name, (default, binds, title) in queries.items()
    }


def source_sql(params: Mapping[str, Any], name: str, default: str) -> str:
    """The query to run: the DAG author's, or the trigger Param's where the deployment opted in."""
    if sql_params_allowed() and isinstance(params.get(name), str) and params[name].strip():
        return str(params[name])
    return default


def to_member(row: dict[str, Any], club_locations: dict[str, int]) -> dict[str, Any]:
    """A source member row as a member record: the home club becomes its Perkville location id."""
    member = {name: value for name, value in row.items() if name != "home_club"}
    member["home_location_id"] = club_locations.get(row.get("home_club") or "")
    return member


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
    """Run ``sql`` with named ``binds`` on the connection's SQL hook; rows as JSON-friendly dicts.

    With OpenLineage, the read goes to the SQL hook's own lineage and the tables it reads become
    inputs of the running task (``perkville_provider.lineage.add_sql_read``).
    """
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
    add_sql_read(hook, sql, len(rows))
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


def stage_changed_members(
    context: Mapping[str, Any], synced_until: str | None, members_sql: str
) -> dict[str, Any]:
    """The member sync's extract: read the run's change window, stage the members as JSON Lines.

    :return: ``members`` (the staged paths) and ``window`` (since, until, why, how many)
    """
    from perkville_example_windows import member_window, run_end

    params, dag_run = context["params"], context["dag_run"]
    window = member_window(
        full_sync=bool(params["full_sync"]),
        synced_until=synced_until,
        data_interval_start=context.get("data_interval_start"),
        until=run_end(context.get("data_interval_end"), dag_run.run_after),
    )
    log.info("Reading %s: [%s, %s)", window.reason, window.since, window.until)
    rows = fetch_rows(
        params["source_conn_id"],
        source_sql(params, "members_sql", members_sql),
        {"changed_since": source_time(window.since), "changed_until": source_time(window.until)},
    )
    run_dir = staging.run_staging_dir(params["staging_root"], dag_run.dag_id, dag_run.run_id)
    members = (to_member(row, params["club_locations"]) for row in rows)
    chunks = staging.stage_in_chunks(run_dir, "members", members, MEMBERS_PER_FILE)
    staging.write_manifest(run_dir, dag_id=dag_run.dag_id, run_id=dag_run.run_id, since=window.since)
    summary = {
        "since": window.since.isoformat(),
        "until": window.until.isoformat(),
        "reason": window.reason,
        "members": sum(count for _, count in chunks),
    }
    return {"members": [str(run_dir / name) for name, _ in chunks], "window": summary}
