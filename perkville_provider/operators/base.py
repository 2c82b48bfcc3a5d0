"""What every Perkville batch operator shares: its common parameters, execute(), and the verdict.

A concrete operator only says where its records come from (:meth:`PerkvilleBatchOperator.records`)
and how one record is handled (:meth:`PerkvilleBatchOperator.build_job`); validation of the shared
parameters, the hook, the extra link, the batch run, the summary in the log and the failure
verdict happen here once.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.exceptions import AirflowProviderDeprecationWarning
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from perkville_provider import metrics, staging
from perkville_provider.batch import (
    DEFAULT_MAX_WORKERS,
    FAILED,
    INVALID,
    WOULD_SEND,
    BatchJob,
    exceeds_failure_ratio,
    failure_count,
    failures_are_retriable,
    format_summary,
    run_batch,
)
from perkville_provider.links import PerkvilleBusinessLink, business_url
from perkville_provider.operators._settings import (
    as_bool,
    as_optional_ref,
    as_positive_int,
    as_text,
    optional_rate,
    ratio,
    report_path,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from perkville_provider.hooks.perkville import PerkvilleHook

__all__ = [
    "DEFAULT_CONN_ID",
    "BatchSettings",
    "PerkvilleBatchOperator",
    "enforce_mass_change_guard",
    "judge_batch",
    "raise_for_failure_ratio",
]

DEFAULT_CONN_ID = "perkville_default"
MIN_POOL_SIZE = 16


def raise_for_failure_ratio(summary: Mapping[str, Any], max_failure_ratio: float) -> None:
    """Fail the task when more records failed than ``max_failure_ratio`` allows.

    A retry resends nothing twice (awards carry ``trans_source_id``, member posts are upserts), so
    a batch with transient failures raises ``AirflowException`` and Airflow's retries apply; a batch
    whose failures are all permanent (invalid records, refused data) raises
    ``AirflowFailException``: a retry would fail the same way.
    """
    if not exceeds_failure_ratio(summary, max_failure_ratio):
        return
    failed, total = failure_count(summary), int(summary["total"])
    message = (
        f"{failed} of {total} records failed ({failed / total:.1%}), more than "
        f"max_failure_ratio={max_failure_ratio:g}.\n{format_summary(summary)}"
    )
    if failures_are_retriable(summary):
        raise AirflowException(message)
    raise AirflowFailException(message)


def judge_batch(summary: Mapping[str, Any], settings: BatchSettings) -> None:
    """The task's verdict once the batch is done: raise when Airflow should retry or fail it.

    A stopped batch is retried (the rest was never sent); over ``max_failure_ratio`` the task
    fails (see :func:`raise_for_failure_ratio`); with ``retry_transient_failures``, records that
    failed transiently ask for a retry even within the ratio. Resending is always safe.
    """
    if summary.get("stop_reason") and summary.get("stop_retriable"):  # an outage: a retry may pass
        raise AirflowException(
            f"The batch stopped: {summary['stop_reason']}. The records not sent are left for a retry "
            "of the task (nothing already sent is sent twice)."
        )
    if summary.get("stop_reason"):
        raise AirflowFailException(
            f"The batch stopped: {summary['stop_reason']}. No further record was sent; a later run "
            "sends the rest once this is fixed (nothing already sent is sent twice)."
        )
    if summary.get("stopped"):
        raise AirflowException(
            "The task was stopped before the end of the batch; a retry sends the rest "
            "(what was sent already is not sent twice)."
        )
    raise_for_failure_ratio(summary, settings.max_failure_ratio)
    if settings.retry_transient_failures and summary.get("retriable_failures"):
        raise AirflowException(
            f"{summary['retriable_failures']} records failed transiently; a retry of the task "
            "resends them (nothing already sent is sent twice)."
        )


def enforce_mass_change_guard(refusal: str | None, *, allow: bool, limits: str, logger: Any) -> None:
    """Stop the run before any write when the guard refuses it, unless this run is allowed through.

    :param refusal: what the guard counted and which limit it passed, or None (the run may go on)
    :param allow: ``allow_mass_change`` for this run (a trigger Param)
    :param limits: the parameters to raise instead, named in the message
    """
    if refusal is None:
        return
    if allow:
        logger.warning("Mass-change guard overridden for this run (allow_mass_change): %s", refusal)
        return
    raise AirflowFailException(
        f"Mass-change guard: {refusal}. Nothing was sent. If the source is right, run once with "
        f"allow_mass_change=True (the DAG's allow_mass_change Param), or raise {limits}."
    )


@dataclass(frozen=True)
class BatchSettings:
    """The shared parameters, validated after rendering."""

    perkville_conn_id: str
    business_id: int | None
    max_workers: int
    max_requests_per_second: float | None
    max_failure_ratio: float
    dry_run: bool
    report_path: Any
    retry_transient_failures: bool = False
    perkville_url: str | None = None
    ignore_unknown_fields: bool = False

    @property
    def business(self) -> int:
        """The business the batch writes to, resolved by the pre-flight (never ``None`` in a request)."""
        if self.business_id is None:
            raise AirflowFailException(
                "business_id: no business: pass business_id or set the connection's business_id extra"
            )
        return self.business_id


class PerkvilleBatchOperator(BaseOperator):
    """Base of the Perkville operators: runs a batch of records through the shared engine.

    :param perkville_conn_id: the Perkville connection
    :param business_id: the business; defaults to the connection's ``business_id`` extra
    :param max_workers: records sent concurrently (one pooled session shared by all)
    :param max_requests_per_second: the connection's budget of requests per second (retries
        included), shared by every task using the connection; None: the connection's extra, else
        adaptive pacing (see :mod:`perkville_provider.rate_budget`)
    :param max_failure_ratio: share of records (0 to 1) allowed to end ``invalid`` or ``failed``
        before the task fails; the whole batch is attempted first either way
    :param validate_only: validate and report what would be sent, send no write (a dry run; named
        so because ``BaseOperator.dry_run()`` is Airflow's own method. ``dry_run=`` is still
        accepted, with a deprecation warning)
    :param retry_transient_failures: also fail the task (for Airflow to retry it) when any record
        failed transiently (5xx, 429, network) after the hook's retries, whatever
        ``max_failure_ratio`` allows; for mapped chunks whose threshold is judged over the whole run
    :param report_path: where to write the per-record JSON Lines report (``ObjectStoragePath`` or
        a path/URL string), or None
    :param ignore_unknown_fields: ignore record fields the operator does not know (a SQL extract
        with extra columns); by default such a record is ``invalid``, naming the field, so that a
        misspelled ``quantity`` is never silently dropped
    """

    template_fields: Sequence[str] = (
        "perkville_conn_id",
        "business_id",
        "max_workers",
        "max_requests_per_second",
        "max_failure_ratio",
        "validate_only",
        "report_path",
        "retry_transient_failures",
        "ignore_unknown_fields",
    )
    ui_color = "#fde8d7"
    ui_fgcolor = "#000000"
    operator_extra_links = (PerkvilleBusinessLink(),)
    #: OpenLineage: the business's resource the operator writes (``business/<id>/<resource>``)
    lineage_resource = ""
    #: OpenLineage: the parameters whose staged files are read (their URIs are the inputs)
    lineage_records: tuple[str, ...] = ()
    #: OpenLineage: the outcomes that wrote a row (the output's statistics); none: it only reads
    lineage_written: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        perkville_conn_id: str = DEFAULT_CONN_ID,
        business_id: int | str | None = None,
        max_workers: int | str = DEFAULT_MAX_WORKERS,
        max_requests_per_second: float | str | None = None,
        max_failure_ratio: float | str = 0.0,
        validate_only: bool | str = False,
        report_path: Any = None,
        retry_transient_failures: bool | str = False,
        ignore_unknown_fields: bool | str = False,
        **kwargs: Any,
    ) -> None:
        if "dry_run" in kwargs:
            warnings.warn(
                f"{type(self).__name__}: dry_run= is deprecated (it hid BaseOperator.dry_run()); "
                "use validate_only=",
                AirflowProviderDeprecationWarning,
                stacklevel=2,
            )
            validate_only = kwargs.pop("dry_run")
        super().__init__(**kwargs)
        self.perkville_conn_id = perkville_conn_id
        self.business_id = business_id
        self.max_workers = max_workers
        self.max_requests_per_second = max_requests_per_second
        self.max_failure_ratio = max_failure_ratio
        self.validate_only = validate_only
        self.report_path = report_path
        self.retry_transient_failures = retry_transient_failures
        self.ignore_unknown_fields = ignore_unknown_fields

    def records(self) -> Iterable[Any]:
        """The raw records to run, read from the operator's rendered parameters."""
        raise NotImplementedError

    def build_job(self, hook: PerkvilleHook, settings: BatchSettings) -> BatchJob[Any]:
        """How one record is validated, sent and previewed; checks the operator's own parameters."""
        raise NotImplementedError

    def before_batch(self, context: Context, hook: PerkvilleHook, settings: BatchSettings) -> None:
        """Read or check what the whole batch needs before its first record (a plan, a guard)."""

    def batch_records(self, settings: BatchSettings) -> Iterable[Any]:
        """What the batch runs: the records, and whatever the operator adds after them."""
        return self.records()

    def summary_extras(self, settings: BatchSettings) -> Mapping[str, Any]:
        """What the operator adds to the batch summary (a dry run's plan)."""
        return {}

    def settings(self) -> BatchSettings:
        """The shared parameters, checked now that templates are rendered."""
        return BatchSettings(
            perkville_conn_id=as_text(self.perkville_conn_id, "perkville_conn_id"),
            business_id=as_optional_ref(self.business_id, "business_id", "businesses"),
            max_workers=as_positive_int(self.max_workers, "max_workers"),
            max_requests_per_second=optional_rate(self.max_requests_per_second),
            max_failure_ratio=ratio(self.max_failure_ratio),
            dry_run=as_bool(self.validate_only, "validate_only"),
            report_path=report_path(self.report_path),
            retry_transient_failures=as_bool(self.retry_transient_failures, "retry_transient_failures"),
            ignore_unknown_fields=as_bool(self.ignore_unknown_fields, "ignore_unknown_fields"),
        )

    def make_hook(self, settings: BatchSettings) -> PerkvilleHook:
        """One hook per run, shared by every worker: one token, one pool, one rate limiter.

        Imported here so that parsing a DAG file does not load the HTTP stack.
        """
        from perkville_provider.hooks.perkville import PerkvilleHook

        return PerkvilleHook(
            perkville_conn_id=settings.perkville_conn_id,
            max_requests_per_second=settings.max_requests_per_second,
            pool_size=max(MIN_POOL_SIZE, settings.max_workers),
        )

    def execute(self, context: Context) -> dict[str, Any]:
        """Run the batch and judge it; the summary goes to XCom."""
        settings = self.settings()
        with metrics.task_scope(dag_id=self.dag_id, task_id=self.task_id, business_id=settings.business_id):
            summary = self._send(context, settings)
        self.log.info("Summary:\n%s", format_summary(summary))
        judge_batch(summary, self._settings)
        return summary

    def _send(self, context: Context, settings: BatchSettings) -> dict[str, Any]:
        """Read the business, then run every record through the batch engine; the summary."""
        hook = self._hook = self.make_hook(settings)
        settings = self._settings = self._with_business(context, hook, settings)
        metrics.set_business(settings.business_id)
        self.before_batch(context, hook, settings)
        job = self.build_job(hook, settings)
        job = dataclasses.replace(job, prepare=staging.rejecting_bad_lines(job.prepare))
        self._stop_sending = threading.Event()
        self._lineage_target = (hook.base_url, settings.business_id)
        summary = self._summary = run_batch(
            self.batch_records(settings),
            job,
            max_workers=settings.max_workers,
            dry_run=settings.dry_run,
            report_path=settings.report_path,
            logger=self.log,
            stop=self._stop_sending,
        )
        names = (WOULD_SEND,) if settings.dry_run else job.statuses
        self._outcomes = {name: int(summary.get(name, 0)) for name in (*names, INVALID, FAILED)}
        summary = self._summary = {**summary, **self.summary_extras(settings)}
        return summary

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        """OpenLineage at the start: the staged files to read and the resource to write."""
        return self._lineage(None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage at the end: also the rows written and the ``perkville_outcomes`` counts."""
        return self._lineage(getattr(self, "_summary", None))

    def _lineage(self, summary: Mapping[str, Any] | None) -> OperatorLineage:
        """This run's lineage (see :mod:`perkville_provider.lineage` for the names).

        Before ``execute`` the API and the business are read from the connection (nothing is sent).
        A dry run writes nothing: its resource is not an output.
        """
        from perkville_provider import lineage

        base_url, business_id = getattr(self, "_lineage_target", None) or self._connection_target()
        read = [
            lineage.object_storage_dataset(str(uri))
            for name in self.lineage_records
            for uri in staging.staged_uris(getattr(self, name, None))
        ]
        dry_run = bool(summary and summary.get("dry_run"))
        written = bool(self.lineage_written) and not dry_run
        rows = sum(int(summary.get(name, 0)) for name in self.lineage_written) if summary else None
        outcomes = getattr(self, "_outcomes", None) if summary else None
        return lineage.batch_lineage(
            base_url=base_url,
            business_id=business_id,
            resource=self.lineage_resource,
            read=read,
            written=written,
            rows=rows if written else None,
            outcomes=outcomes,
        )

    def _connection_target(self) -> tuple[str | None, Any]:
        """The API's base URL and the business, from the connection and the rendered parameters."""
        from perkville_provider import lineage

        try:
            settings = self.settings()
            return lineage.connection_target(settings.perkville_conn_id, settings.business_id)
        except Exception:  # bad parameters fail in execute(), with their own error
            return None, None

    def on_kill(self) -> None:
        """Stop taking records and cut the requests in flight.

        The batch ends within moments, even with every worker stuck inside a request (a resend
        later is safe).
        """
        stop = getattr(self, "_stop_sending", None)
        if stop is not None:
            stop.set()
        hook = getattr(self, "_hook", None)
        if hook is not None:
            hook.abort()

    def _with_business(self, context: Context, hook: PerkvilleHook, settings: BatchSettings) -> BatchSettings:
        """Read the business once: its id and its URL, saved for the extra link.

        The id is the connection's default when not given.

        This is also the batch's pre-flight: a wrong connection, token or business fails here,
        before any record is sent. A dry run goes on without it (it sends nothing anyway).
        """
        try:
            business = hook.get_business(settings.business_id)
        except Exception:
            if not settings.dry_run:
                raise
            self.log.warning("Dry run: could not read the business; validating the records anyway.")
            return dataclasses.replace(settings, business_id=hook.resolve_business_id(settings.business_id))
        business_id = business.get("business_id") or hook.resolve_business_id(settings.business_id)
        url = business_url(business, business_id)
        PerkvilleBusinessLink.persist(context, url)
        return dataclasses.replace(settings, business_id=business_id, perkville_url=url)
