"""PerkvilleToSqlOperator: Perkville's connections (balances) and transactions into any SQL table.

Data flows hook -> this operator -> SQL table, one page at a time, never through XCom: the
operator walks a Perkville list page by page (:meth:`PerkvilleHook.iter_pages`), projects each
object onto the table's columns (:mod:`perkville_provider.transfers.tables`) and upserts the page
in its own transaction through the connection's common-sql ``DbApiHook``. Memory holds one page
whatever the size of the list; a failure mid-walk leaves every committed page in the table and
says how far the walk got; a re-run of the same window leaves the table as it was.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import BaseHook, BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from perkville_provider import metrics
from perkville_provider.operators._settings import (
    as_bool,
    as_optional_ref,
    as_positive_int,
    as_text,
    setting_error,
)
from perkville_provider.operators.base import DEFAULT_CONN_ID
from perkville_provider.records import RecordValidationError
from perkville_provider.transfers.tables import (
    LAYOUTS,
    InvalidRow,
    TableLayout,
    Value,
    validate_table_name,
)
from perkville_provider.transfers.writer import TableWriter

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from perkville_provider.api_conventions import ApiConventions
    from perkville_provider.hooks.perkville import PerkvilleHook

#: Perkville's largest page (the sandbox caps ``limit`` at 1000, as the third-party exporters use)
DEFAULT_EXPORT_PAGE_SIZE = 1000
MAX_INVALID_SHOWN = 10
#: the filter format Perkville's list filters take (seconds and ``Z``, as Django parses them)
FILTER_TIME_FORMAT = "YYYY-MM-DD HH:mm:ss[Z]"


@dataclass
class ExportSummary:
    """What one export did; the task's XCom. ``complete`` is False in the error of a stopped walk."""

    resource: str
    table: str
    pages: int = 0
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    outside_window: int = 0
    last_key_committed: int | None = None
    elapsed_s: float = 0.0
    complete: bool = False
    window: dict[str, str | None] = field(default_factory=dict)
    invalid_rows: list[str] = field(default_factory=list)

    def progress(self) -> str:
        """How far the export got, in one line (the log, and the error of a stopped walk)."""
        return (
            f"{self.pages} pages committed, {self.rows_read} rows read: {self.inserted} inserted, "
            f"{self.updated} updated, {self.unchanged} unchanged, {self.invalid} invalid"
            + (f", {self.outside_window} outside the window" if self.outside_window else "")
            + (f"; last {self.resource} id committed: {self.last_key_committed}" if self.pages else "")
        )


@dataclass(frozen=True)
class ExportSettings:
    """The operator's parameters, checked after rendering."""

    layout: TableLayout
    table: str
    sql_conn_id: str
    perkville_conn_id: str
    business_id: int | None
    page_size: int
    create_table: bool
    filters: dict[str, str]
    window: tuple[dt.datetime, dt.datetime] | None

    def window_summary(self) -> dict[str, str | None]:
        """What the summary says of the export's scope: the window, or the modification filter."""
        scope: dict[str, str | None] = {
            "start": self.window[0].isoformat() if self.window else None,
            "end": self.window[1].isoformat() if self.window else None,
        }
        if "last_mod_dt__gte" in self.filters:
            scope["modified_since"] = self.filters["last_mod_dt__gte"]
        return scope


def _moment(value: Any, name: str) -> dt.datetime | None:
    """A window bound from a datetime or rendered text; naive means UTC."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    try:
        moment = pendulum.instance(value) if isinstance(value, dt.datetime) else pendulum.parse(str(value))
    except (ValueError, TypeError, pendulum.parsing.exceptions.ParserError):
        raise setting_error(name, f"must be a datetime (ISO 8601), got {value!r}") from None
    if not isinstance(moment, dt.datetime):
        raise setting_error(name, f"must be a datetime (ISO 8601), got {value!r}")
    return pendulum.instance(moment, tz="UTC").in_timezone("UTC")


def filter_time(moment: dt.datetime) -> str:
    """A moment as Perkville's list filters take it (UTC, seconds, ``Z``)."""
    return pendulum.instance(moment).in_timezone("UTC").format(FILTER_TIME_FORMAT)


def export_window(
    start: Any, end: Any, *, timezone: str, now: dt.datetime | None = None
) -> tuple[pendulum.DateTime, pendulum.DateTime]:
    """The window a scheduled export covers.

    That is the run's data interval when it has one, else the last full day in ``timezone``
    before ``now`` (a run triggered without a logical date has no data interval).
    """
    if start is not None and end is not None:
        return pendulum.instance(start), pendulum.instance(end)
    today = pendulum.instance(now or pendulum.now("UTC")).in_timezone(timezone).start_of("day")
    return today.subtract(days=1), today


class PerkvilleToSqlOperator(BaseOperator):
    """Export a Perkville list (connections with their balances, or transactions) into a SQL table.

    Walks the list page by page and upserts each page, in its own transaction, on the object's id
    into ``table`` of any Airflow SQL connection (common-sql ``DbApiHook``: SQLite, PostgreSQL,
    MySQL...). The table is created when missing (see the README for the columns). Rows that did
    not change are not written; a re-run of the same window leaves the table as it was.

    Incremental exports: transactions by a time window on ``transaction_dt`` (``window_start`` <=
    t < ``window_end``; the filter is sent to Perkville and checked again on each row);
    connections by a full walk, or with ``modified_since`` by Perkville's ``last_mod_dt__gte``
    filter (undocumented for connections by Perkville: a full walk is the safe default).

    Returns the summary (``pages``, ``rows_read``, ``inserted``, ``updated``, ``unchanged``,
    ``invalid``, ``elapsed_s``...). Rows that cannot be read (say, an id that is not a number) are
    skipped, counted and named in ``invalid_rows``; a failure mid-walk raises an error saying how
    far the walk got, every page before it committed.

    :param sql_conn_id: the Airflow SQL connection to write to
    :param resource: ``"connections"`` or ``"transactions"``
    :param table: the table, optionally ``schema.table``; default ``perkville_<resource>``
    :param perkville_conn_id: the Perkville connection
    :param business_id: the business; defaults to the connection's ``business_id`` extra
    :param window_start: transactions: the window's start (inclusive), a datetime or ISO text
    :param window_end: transactions: the window's end (exclusive)
    :param modified_since: connections: only those changed at or after this moment
    :param page_size: objects per page, which is also the rows per transaction
    :param create_table: create the table when missing
    :param hook_params: extra arguments for the ``PerkvilleHook`` (e.g. ``retry_policy``)
    """

    template_fields: Sequence[str] = (
        "sql_conn_id",
        "table",
        "perkville_conn_id",
        "business_id",
        "window_start",
        "window_end",
        "modified_since",
        "page_size",
    )
    ui_color = "#fde8d7"

    def __init__(
        self,
        *,
        sql_conn_id: str,
        resource: str,
        table: str | None = None,
        perkville_conn_id: str = DEFAULT_CONN_ID,
        business_id: int | str | None = None,
        window_start: Any = None,
        window_end: Any = None,
        modified_since: Any = None,
        page_size: int | str = DEFAULT_EXPORT_PAGE_SIZE,
        create_table: bool | str = True,
        hook_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql_conn_id = sql_conn_id
        self.resource = resource
        self.table = table
        self.perkville_conn_id = perkville_conn_id
        self.business_id = business_id
        self.window_start = window_start
        self.window_end = window_end
        self.modified_since = modified_since
        self.page_size = page_size
        self.create_table = create_table
        self.hook_params = dict(hook_params or {})

    def settings(self) -> ExportSettings:
        """The parameters, checked now that templates are rendered; nothing is sent before this."""
        layout = LAYOUTS.get(str(self.resource))
        if layout is None:
            raise setting_error("resource", f"must be one of {sorted(LAYOUTS)}, got {self.resource!r}")
        try:
            table = validate_table_name(f"perkville_{layout.resource}" if self.table is None else self.table)
        except RecordValidationError as error:
            raise setting_error("table", error.message) from None
        start = _moment(self.window_start, "window_start")
        end = _moment(self.window_end, "window_end")
        modified_since = _moment(self.modified_since, "modified_since")
        window = self._window(layout, start, end, modified_since)
        filters: dict[str, str] = {}
        if window is not None:
            filters = {
                "transaction_dt__gte": filter_time(window[0]),
                "transaction_dt__lt": filter_time(window[1]),
            }
        if modified_since is not None:
            filters["last_mod_dt__gte"] = filter_time(modified_since)
        return ExportSettings(
            layout=layout,
            table=table,
            sql_conn_id=as_text(self.sql_conn_id, "sql_conn_id"),
            perkville_conn_id=as_text(self.perkville_conn_id, "perkville_conn_id"),
            business_id=as_optional_ref(self.business_id, "business_id", "businesses"),
            page_size=min(as_positive_int(self.page_size, "page_size"), DEFAULT_EXPORT_PAGE_SIZE),
            create_table=as_bool(self.create_table, "create_table"),
            filters=filters,
            window=window,
        )

    @staticmethod
    def _window(
        layout: TableLayout, start: dt.datetime | None, end: dt.datetime | None, modified_since: Any
    ) -> tuple[dt.datetime, dt.datetime] | None:
        if layout.resource != "transactions":
            if start is not None or end is not None:
                raise setting_error("window_start", "a window applies to transactions; use modified_since")
            return None
        if modified_since is not None:
            raise setting_error("modified_since", "applies to connections; transactions take a window")
        if (start is None) != (end is None):
            raise setting_error("window_end", "give both window_start and window_end, or neither")
        if start is None or end is None:
            return None
        if not start < end:
            raise setting_error("window_end", f"must be after window_start ({start} >= {end})")
        return start, end

    def make_hook(self, settings: ExportSettings) -> PerkvilleHook:
        """The Perkville hook (imported here: parsing a DAG file does not load the HTTP stack)."""
        from perkville_provider.hooks.perkville import PerkvilleHook

        return PerkvilleHook(perkville_conn_id=settings.perkville_conn_id, **self.hook_params)

    def execute(self, context: Context) -> dict[str, Any]:
        """Check the settings, create the table if missing, walk and upsert; return the summary."""
        settings = self.settings()
        sql = sql_hook(settings.sql_conn_id)
        writer = TableWriter(sql, settings.layout, settings.table)
        if settings.create_table:
            writer.create_if_missing()
        writer.check_table()
        with metrics.task_scope(dag_id=self.dag_id, task_id=self.task_id, business_id=settings.business_id):
            summary = self._export(settings, writer)
        self.log.info("Exported %s into %s: %s", summary.resource, summary.table, summary.progress())
        return asdict(summary)

    def _export(self, settings: ExportSettings, writer: TableWriter) -> ExportSummary:
        """Read the business, then walk its list into the table, page by page."""
        hook = self.make_hook(settings)
        api = hook.conventions()
        business_id = int(hook.get_business(settings.business_id)["business_id"])
        metrics.set_business(business_id)
        self._lineage_target = (hook.base_url, business_id)
        summary = self._summary = ExportSummary(
            resource=settings.layout.resource,
            table=settings.table,
            window=settings.window_summary(),
        )
        pages = hook.iter_pages(
            api.path(settings.layout.resource),
            {"business": business_id, **settings.filters},
            page_size=settings.page_size,
        )
        export_pages(pages, writer, summary, window=settings.window, api=api, log=self.log)
        return summary

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        """OpenLineage at the start: the Perkville resource read, the table written."""
        return self._lineage(None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage at the end: also the rows written (inserted and updated) and the counts."""
        return self._lineage(getattr(self, "_summary", None))

    def _lineage(self, summary: ExportSummary | None) -> OperatorLineage:
        """The resource (``business/<id>/<resource>``) in, the table (as its SQL hook names it) out."""
        from perkville_provider import lineage

        settings = self.settings()
        target = getattr(self, "_lineage_target", None)
        base_url, business_id = target or lineage.connection_target(
            settings.perkville_conn_id, settings.business_id
        )
        counts = (
            {name: getattr(summary, name) for name in ("inserted", "updated", "unchanged", "invalid")}
            if summary is not None
            else None
        )
        result = lineage.batch_lineage(
            base_url=base_url,
            business_id=business_id,
            resource=settings.layout.resource,
            written=False,
            outcomes=counts,
        )
        table = lineage.sql_table(sql_hook(settings.sql_conn_id), settings.table)
        rows = summary.inserted + summary.updated if summary is not None else None
        result.outputs.append(table if rows is None else lineage.with_rows(table, rows))
        return result


#: What to install for the export: common-sql (the extra) and the target database's own provider.
SQL_EXTRA_HINT = "pip install 'airflow-provider-perkville[sql]'"


def sql_hook(conn_id: str) -> DbApiHook:
    """The connection's common-sql hook; a missing provider or a connection of another kind fails at once."""
    try:
        from airflow.providers.common.sql.hooks.sql import DbApiHook
    except ImportError as error:
        raise AirflowFailException(
            f"PerkvilleToSqlOperator needs the [sql] extra (common-sql is not installed): {SQL_EXTRA_HINT}"
        ) from error

    connection = BaseHook.get_connection(conn_id)
    try:
        hook = connection.get_hook()
    except AirflowException as error:
        if "Unknown hook type" not in str(error):
            raise
        raise AirflowFailException(
            f"sql_conn_id: connection {conn_id!r} is of type {connection.conn_type!r}, and no installed "
            f"provider has a hook for it: install that database's provider (for {connection.conn_type!r}, "
            f"usually apache-airflow-providers-{connection.conn_type}) beside the [sql] extra"
        ) from error
    if not isinstance(hook, DbApiHook):
        raise AirflowFailException(
            f"sql_conn_id: connection {conn_id!r} gives a {type(hook).__name__}, not a SQL (DbApiHook) hook"
        )
    return hook


def export_pages(
    pages: Iterable[list[dict[str, Any]]],
    writer: TableWriter,
    summary: ExportSummary,
    *,
    window: tuple[dt.datetime, dt.datetime] | None,
    api: ApiConventions,
    log: Any,
) -> ExportSummary:
    """Upsert page after page, each in its own transaction; on a failure say how far it got.

    A row that cannot be read, that a column cannot hold, or that the database refuses is skipped
    and named (``invalid``); only a failure of the walk or of the table stops the export.
    """
    started = time.monotonic()
    position = 0
    try:
        for page in pages:
            rows: list[tuple[Value, ...]] = []
            for obj in page:
                position += 1
                row = _row(writer.layout, obj, position, summary, log, api, window)
                if row is None:
                    continue
                if window is not None and not _in_window(writer.layout, row, window):
                    summary.outside_window += 1
                    continue
                rows.append(row)
            written = writer.upsert(rows)
            for refusal in written.refused:
                _skip(summary, refusal, log)
            summary.pages += 1
            summary.rows_read += len(page)
            summary.inserted += written.inserted
            summary.updated += written.updated
            summary.unchanged += written.unchanged
            if rows:
                summary.last_key_committed = int(rows[-1][0])  # type: ignore[arg-type]
            summary.elapsed_s = round(time.monotonic() - started, 3)
    except Exception as error:
        summary.elapsed_s = round(time.monotonic() - started, 3)
        # A refusal a retry cannot fix (401, 403, 404, 400) fails the task now; anything else
        # (5xx after the hook's retries, network, a database error) is left to Airflow's retries.
        stop = AirflowFailException if getattr(error, "retriable", True) is False else AirflowException
        raise stop(
            f"export of {summary.resource} into {summary.table} stopped at page {summary.pages + 1}: "
            f"{type(error).__name__}: {error}. Committed so far: {summary.progress()}. "
            "Every committed page is in the table; a re-run exports the whole window again."
        ) from error
    summary.complete = True
    summary.elapsed_s = round(time.monotonic() - started, 3)
    return summary


def _row(
    layout: TableLayout,
    obj: Any,
    position: int,
    summary: ExportSummary,
    log: Any,
    api: ApiConventions,
    window: tuple[dt.datetime, dt.datetime] | None,
) -> tuple[Value, ...] | None:
    try:
        if not isinstance(obj, Mapping):
            raise InvalidRow(
                f"{layout.resource} #{position} of the walk",
                "object",
                f"is a {type(obj).__name__}, not an object",
            )
        row = layout.row(obj, position, api)
        if window is not None and row[layout.column_names.index("transaction_dt")] is None:
            raise InvalidRow(
                f"{layout.resource} {row[0]} (#{position} of the walk)",
                "transaction_dt",
                "is missing: the row cannot be placed in the window",
            )
        return row
    except InvalidRow as error:
        _skip(summary, str(error), log)
        return None


def _skip(summary: ExportSummary, reason: str, log: Any) -> None:
    """Count a skipped row and name it (the reason names the row by id, never by its data)."""
    summary.invalid += 1
    if len(summary.invalid_rows) < MAX_INVALID_SHOWN:
        summary.invalid_rows.append(reason)
    log.warning("Skipped: %s", reason)


def _in_window(layout: TableLayout, row: tuple[Value, ...], window: tuple[dt.datetime, dt.datetime]) -> bool:
    """A transaction inside the window; Perkville may ignore a filter it does not know."""
    moment = row[layout.column_names.index("transaction_dt")]
    return isinstance(moment, dt.datetime) and window[0] <= moment < window[1]
