"""OpenLineage: how the provider names what it reads and writes, and the facets it reports.

One naming convention for Perkville's resources, shared by the operators' OpenLineage datasets and
the ``perkville`` Airflow asset URIs (registered in ``get_provider_info``'s ``asset-uris``), so a
lineage backend draws the Airflow asset and the dataset as one node:

* namespace ``perkville://<API host>`` (the connection's host, ``api.perkville.com``; a port only
  when not the scheme's default), name ``business/<id>/<resource>``: ``transactions`` (awards),
  ``external_members`` (member sync), ``connections`` (join, look-ups, export);
* the asset URI ``perkville://<API host>/business/<id>/<resource>`` is the same node.

Staged files are named as OpenLineage names object storage (``file`` and the path, as the
common-io provider converts a ``file://`` asset; ``s3://bucket`` and the key...), SQL tables as
their SQL hook names them (:func:`sql_table`).

Everything OpenLineage is imported inside the functions that need it: the
``apache-airflow-providers-openlineage`` extra is optional, and parsing a DAG file imports nothing
of it. Without it the operators' lineage methods are never called, and :func:`add_sql_read` does
nothing.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Mapping, MutableSequence
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Asset
    from openlineage.client.event_v2 import Dataset

__all__ = [
    "OUTCOMES_FACET",
    "SCHEME",
    "asset_uri",
    "batch_lineage",
    "connection_target",
    "convert_asset_to_openlineage",
    "dataset_name",
    "namespace",
    "object_storage_dataset",
    "sanitize_uri",
    "sql_table",
]

log = logging.getLogger(__name__)

SCHEME = "perkville"
OUTCOMES_FACET = "perkville_outcomes"
_DEFAULT_PORTS = {"https": 443, "http": 80}
_BUSINESS_PATH = re.compile(r"^/?business/(\d+)/([a-z_]+)/?$")


def namespace(base_url: str) -> str:
    """The OpenLineage namespace of a Perkville API: ``perkville://<host>[:<port>]``."""
    parts = urlsplit(base_url if "://" in base_url else f"https://{base_url}")
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return f"{SCHEME}://{host}"


def dataset_name(business_id: Any, resource: str) -> str:
    """The dataset name of a business's resource: ``business/<id>/<resource>``."""
    return f"business/{int(business_id)}/{resource}"


def asset_uri(host: str, business_id: Any, resource: str) -> str:
    """The Airflow asset URI of the same node: ``perkville://<host>/business/<id>/<resource>``."""
    return f"{namespace(host)}/{dataset_name(business_id, resource)}"


def connection_target(conn_id: str, business_id: Any) -> tuple[str | None, Any]:
    """The API's base URL and the business (else the connection's default), read from the connection.

    For the lineage reported before ``execute`` ran: nothing is sent to Perkville.
    """
    from airflow.sdk import BaseHook

    from perkville_provider.session import base_url_of

    connection = BaseHook.get_connection(conn_id)
    return base_url_of(connection), business_id or connection.extra_dejson.get("business_id")


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's normaliser of ``perkville://`` asset URIs (``asset-uris`` in the provider info).

    The host is lower-cased and loses a default port (443), a trailing slash is dropped, so two
    spellings of one resource are one asset; a ``business/...`` path must name a numeric business
    and a resource.
    """
    if not uri.netloc:
        raise ValueError("A perkville:// URI must name the API host: perkville://api.perkville.com/...")
    host = (uri.hostname or "").lower()
    if uri.port is not None and uri.port != _DEFAULT_PORTS["https"]:
        host = f"{host}:{uri.port}"
    path = uri.path.rstrip("/")
    if path.startswith("/business") and not _BUSINESS_PATH.match(path):
        raise ValueError(
            f"A perkville:// asset path must be /business/<numeric id>/<resource>, got {uri.path!r}"
        )
    return uri._replace(netloc=host, path=path)


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any = None) -> Dataset | None:
    """The OpenLineage dataset of a ``perkville://<host>/business/<id>/<resource>`` asset.

    Other ``perkville://`` paths (an asset naming something of the provider's own) have no
    dataset.
    """
    from openlineage.client.event_v2 import Dataset

    parts = urlsplit(asset.uri)
    match = _BUSINESS_PATH.match(parts.path)
    if not match:
        return None
    return Dataset(namespace=f"{SCHEME}://{parts.netloc}", name=dataset_name(*match.groups()))


def object_storage_dataset(uri: str) -> Dataset:
    """A staged file's dataset, named as OpenLineage (and common-io's ``file`` converter) name it."""
    from openlineage.client.event_v2 import Dataset

    parts = urlsplit(str(uri))
    if parts.scheme in ("", "file"):
        return Dataset(namespace="file", name=parts.path or str(uri))
    return Dataset(namespace=f"{parts.scheme}://{parts.netloc}", name=parts.path.lstrip("/"))


def sql_table(hook: DbApiHook, table: str) -> Dataset:
    """A table's dataset, named as its SQL hook names it for OpenLineage.

    A hook that describes its database (``get_openlineage_database_info``: PostgreSQL, MySQL,
    Snowflake...) gives ``<scheme>://<authority>`` and ``<database>.<schema>.<table>``, as
    common-sql's SQL parser names the tables of a query. SQLite describes none: its namespace is
    ``sqlite://<file path>`` and its tables ``main.<table>`` (SQLite's schema).
    """
    from openlineage.client.event_v2 import Dataset

    connection = hook.get_connection(hook.get_conn_id())
    info = None
    try:
        info = hook.get_openlineage_database_info(connection)
    except Exception:  # a hook whose description fails: fall back to the connection
        log.debug("No OpenLineage database info from %s", type(hook).__name__, exc_info=True)
    parts = table.split(".")
    if info is not None:
        from airflow.providers.openlineage.sqlparser import SQLParser

        schema = parts[-2] if len(parts) > 1 else hook.get_openlineage_default_schema()
        database = info.database or connection.schema
        name = ".".join(p for p in (database, schema, parts[-1]) if p)
        if info.normalize_name_method is not None:
            name = info.normalize_name_method(name)
        return Dataset(namespace=SQLParser.create_namespace(info), name=name)
    conn_type = connection.conn_type or "sql"
    where = connection.host or ""
    if conn_type == "sqlite":
        schema = parts[-2] if len(parts) > 1 else "main"
        return Dataset(namespace=f"sqlite://{where}", name=f"{schema}.{parts[-1]}")
    authority = f"{where}:{connection.port}" if connection.port else where
    schema = parts[-2] if len(parts) > 1 else None
    name = ".".join(p for p in (connection.schema, schema, parts[-1]) if p)
    return Dataset(namespace=f"{conn_type}://{authority}", name=name)


def _read_tables(hook: DbApiHook, sql: str) -> list[str]:
    """The tables a query reads, parsed by OpenLineage's SQL parser; none when it cannot tell."""
    try:
        from airflow.providers.openlineage.sqlparser import SQLParser

        dialect = hook.get_openlineage_database_dialect(hook.get_connection(hook.get_conn_id()))
        parsed = SQLParser(dialect=dialect).parse(sql)
    except Exception:
        log.debug("Could not parse the query for lineage", exc_info=True)
        return []
    if not parsed:
        return []
    return [".".join(p for p in (t.schema, t.name) if p) for t in parsed.in_tables]


def _openlineage_available() -> bool:
    try:
        import openlineage.client.event_v2  # noqa: F401
    except ImportError:
        return False
    return True


def add_sql_read(hook: DbApiHook, sql: str, row_count: int) -> None:
    """Report a query the running ``@task`` ran through its SQL hook: the hook's lineage, the tables.

    The query goes to common-sql's hook-level lineage (``send_sql_hook_lineage``): a backend gets
    a query event whenever the hook describes its database. The tables the query reads, named by
    :func:`sql_table`, become inputs of the task's own event (see :func:`_task_lineage`). Nothing
    happens without OpenLineage, or outside a running task.
    """
    if not _openlineage_available():
        return
    try:
        from airflow.providers.common.sql.hooks.lineage import send_sql_hook_lineage

        send_sql_hook_lineage(context=hook, sql=sql, row_count=row_count)
    except ImportError:  # an older common-sql: the tables below still name the inputs
        pass
    try:
        from airflow.sdk import get_current_context

        task = get_current_context()["ti"].task
    except Exception:  # not inside a running task
        return
    _extend_unique(_task_lineage(task), (sql_table(hook, table) for table in _read_tables(hook, sql)))


def _task_lineage(task: Any) -> list[Dataset]:
    """The running task's SQL inputs, reported by a ``get_openlineage_facets_on_complete`` of its own.

    A ``@task`` has no lineage method. Without one, OpenLineage's listener takes the task's lineage
    from the hook-level lineage (the staged files ``ObjectStoragePath`` reports it wrote), and from
    ``inlets`` only when there is none: a table added to the inlets would be dropped as soon as a
    file is written. So the running task instance (in its own process) is given the method: the
    tables read, and the hook-level lineage's datasets as OpenLineage translates them.
    """
    found = task.__dict__.get("_perkville_sql_inputs")
    if found is None:
        found = []

        def on_complete(task_instance: Any) -> OperatorLineage:
            from airflow.providers.openlineage.extractors import OperatorLineage

            inputs, outputs = _hook_lineage()
            _extend_unique(inputs, found)
            return OperatorLineage(inputs=inputs, outputs=outputs)

        object.__setattr__(task, "_perkville_sql_inputs", found)
        object.__setattr__(task, "get_openlineage_facets_on_complete", on_complete)
    return found


def _hook_lineage() -> tuple[list[Dataset], list[Dataset]]:
    """The datasets the task's hooks reported (files written and read), translated by OpenLineage."""
    try:
        from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector
        from airflow.providers.openlineage.utils.utils import translate_airflow_asset

        collected = get_hook_lineage_collector().collected_assets
    except Exception:  # another release's layout: the SQL inputs alone
        return [], []
    inputs: list[Any] = []
    outputs: list[Any] = []
    for found, into in ((collected.inputs, inputs), (collected.outputs, outputs)):
        translated = (translate_airflow_asset(info.asset, info.context) for info in found)
        _extend_unique(into, (dataset for dataset in translated if dataset is not None))
    return inputs, outputs


def _extend_unique(lineage: MutableSequence[Any], datasets: Iterable[Dataset]) -> None:
    seen = {(getattr(d, "namespace", None), getattr(d, "name", None)) for d in lineage}
    for dataset in datasets:
        if (dataset.namespace, dataset.name) not in seen:
            seen.add((dataset.namespace, dataset.name))
            lineage.append(dataset)


@functools.cache
def _outcomes_facet_class() -> type:
    """The ``perkville_outcomes`` facet's class, defined once OpenLineage is imported."""
    import attrs
    from openlineage.client.facet_v2 import RunFacet

    @attrs.define
    class PerkvilleOutcomesRunFacet(RunFacet):
        """Records by outcome (``awarded``, ``duplicate``, ``invalid``, ``failed``...) of one task run."""

        outcomes: dict[str, int] = attrs.field(factory=dict)

    return PerkvilleOutcomesRunFacet


def outcomes_facet(counts: Mapping[str, int]) -> Any:
    """The custom ``perkville_outcomes`` run facet: how many records ended in each outcome."""
    return _outcomes_facet_class()(outcomes={name: int(value) for name, value in counts.items()})


def batch_lineage(
    *,
    base_url: str | None,
    business_id: Any,
    resource: str,
    read: Iterable[Dataset] = (),
    written: bool = True,
    rows: int | None = None,
    outcomes: Mapping[str, int] | None = None,
) -> OperatorLineage:
    """An operator's lineage: what it read, the Perkville resource, and on completion the counts.

    ``written``: the resource is the output (a batch operator); else it is an input (the export).
    ``rows``: the output-statistics facet of the output; ``outcomes``: the ``perkville_outcomes``
    run facet.
    """
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset

    inputs = list(read)
    outputs: list[Dataset] = []
    if base_url and business_id is not None:
        perkville = Dataset(namespace=namespace(base_url), name=dataset_name(business_id, resource))
        if not written:
            inputs.append(perkville)
        else:
            outputs.append(perkville if rows is None else with_rows(perkville, rows))
    run_facets = {OUTCOMES_FACET: outcomes_facet(outcomes)} if outcomes is not None else {}
    return OperatorLineage(inputs=inputs, outputs=outputs, run_facets=run_facets)


def with_rows(dataset: Dataset, rows: int) -> Dataset:
    """``dataset`` as an output carrying the output-statistics facet (``rows`` written)."""
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import output_statistics_output_dataset

    facet = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows)
    return OutputDataset(
        namespace=dataset.namespace,
        name=dataset.name,
        facets=dataset.facets,
        outputFacets={"outputStatistics": facet},
    )
