"""The one batch engine under every Perkville operator.

Every operator does the same thing to a batch: check each record before any request, send the
valid ones concurrently through one shared hook, and account for each record exactly once. This
module owns that loop so that concurrency, progress logging, the bounded summary, the JSON Lines
report, dry runs and the failure verdict exist once. It needs no Airflow: an operator supplies a
:class:`BatchJob` (how to validate, send and preview one record) and turns the verdict into an
Airflow exception.

Memory stays flat whatever the batch size: the input is consumed lazily with a bounded window of
records in flight, per-record outcomes go to the report file as they complete, and the summary
keeps only counters and the first few failures and results.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence, Sized
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import islice
from typing import Any, Generic, Protocol, TypeVar

from perkville_provider import metrics
from perkville_provider.failure_groups import LOGGED_PER_CODE, FailureGroups, format_groups, merge_groups
from perkville_provider.records import RecordValidationError
from perkville_provider.redaction import redact_optional
from perkville_provider.report_file import ReportPath, WritablePath, report_writer
from perkville_provider.retries import CLIENT_ERROR_STATUSES, is_retriable_status
from perkville_provider.same_key import SameKeyOrder

__all__ = [
    "DEFAULT_MAX_WORKERS",
    "FAILED",
    "INVALID",
    "MAX_FAILURES_SHOWN",
    "MAX_RESULTS_SHOWN",
    "PROGRESS_INTERVAL_SECONDS",
    "SUMMARY_MAX_BYTES",
    "WOULD_SEND",
    "BatchJob",
    "Outcome",
    "ReportPath",
    "WritablePath",
    "chunked",
    "error_code",
    "exceeds_failure_ratio",
    "failure_count",
    "failures_are_retriable",
    "fit_summary",
    "format_summary",
    "is_retriable",
    "merge_summaries",
    "run_batch",
]

INVALID = "invalid"
FAILED = "failed"
WOULD_SEND = "would_send"

DEFAULT_MAX_WORKERS = 8
MAX_FAILURES_SHOWN = 100
MAX_RESULTS_SHOWN = 100
PROGRESS_INTERVAL_SECONDS = 5.0
SUMMARY_MAX_BYTES = 48_000
"""The summary is cut to this size (XCom-friendly, far under 64 KB) whatever the batch size."""

_KEY_MAX_CHARS = 80
_MESSAGE_MAX_CHARS = 240
_CODE_MAX_CHARS = 64
_FIELD_MAX_CHARS = 100
_REPORT_MESSAGE_MAX_CHARS = 2_000

Prepared = TypeVar("Prepared")
log = logging.getLogger(__name__)


class BatchLogger(Protocol):
    """What the engine logs through: a stdlib logger or an operator's (Airflow's structlog) ``self.log``."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any) -> Any: ...

    def error(self, msg: Any, /, *args: Any) -> Any: ...


@dataclass(frozen=True)
class Outcome:
    """What happened to one record: a status, details for the report, and counters to add up.

    ``status`` is an outcome name (``awarded``, ``created``, ``joined``, ``invalid``, ``failed``...).
    ``detail`` goes to the record's report line (and to the inline results, when the job keeps
    some). ``metrics`` are summed across the batch (e.g. ``points``). ``code``, ``field`` and
    ``message`` explain an outcome that is not a plain success.
    """

    status: str
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    metrics: Mapping[str, int] = dataclasses.field(default_factory=dict)
    code: str | None = None
    field: str | None = None
    message: str | None = None
    retriable: bool = False
    stops_batch: bool = False

    @property
    def is_failure(self) -> bool:
        """Whether the record counts against ``max_failure_ratio`` (invalid or failed)."""
        return self.status in (INVALID, FAILED)

    @classmethod
    def invalid(cls, error: RecordValidationError) -> Outcome:
        """The outcome of a record that failed validation (it was never sent)."""
        return cls(INVALID, code=error.code, field=error.field, message=error.message)

    @classmethod
    def failed(cls, error: BaseException) -> Outcome:
        """A failure from the exception that caused it: typed errors give their code and field."""
        return cls(
            FAILED,
            code=error_code(error),
            field=getattr(error, "field", None),
            message=str(error) or type(error).__name__,
            retriable=is_retriable(error),
            stops_batch=getattr(error, "stops_batch", False) is True,
        )

    def redacted(self) -> Outcome:
        """This outcome with its texts fit to store and log: secrets out, length bounded.

        The field, code and message may come from the server (or a proxy echoing the request).
        """
        return dataclasses.replace(
            self,
            field=redact_optional(self.field, limit=_FIELD_MAX_CHARS),
            code=redact_optional(self.code, limit=_CODE_MAX_CHARS),
            message=redact_optional(self.message, limit=_REPORT_MESSAGE_MAX_CHARS),
        )


def error_code(error: BaseException) -> str:
    """The error's API code (``pv_user_not_found``...) when it has one, else its class name."""
    code = getattr(error, "code", None)
    if not code:
        codes = getattr(error, "codes", None)
        code = next(iter(codes), None) if codes else None
    return str(code) if code else type(error).__name__


def is_retriable(error: BaseException) -> bool:
    """Whether a later retry of the task could succeed where this error failed.

    A typed error may say so itself (``retriable``); otherwise a 4xx answer other than 408/425/429
    is permanent, and anything else (5xx, lost connections, unexpected errors) may pass next time.
    """
    explicit = getattr(error, "retriable", None)
    if isinstance(explicit, bool):
        return explicit
    status = getattr(error, "status", None) or getattr(error, "status_code", None)
    if isinstance(status, int) and status in CLIENT_ERROR_STATUSES:
        return is_retriable_status(status)
    return not isinstance(error, ValueError | TypeError | LookupError)


@dataclass(frozen=True)
class BatchJob(Generic[Prepared]):
    """How one operator handles one record; the engine does the rest.

    ``prepare`` validates a raw record (raising ``RecordValidationError``) and returns what
    ``process`` sends; ``process`` makes the API calls and returns the :class:`Outcome`; ``preview``
    says what would be sent, for dry runs. ``statuses`` and ``metrics`` name the counters every
    summary carries (zero included), so a summary always has the same keys. ``order_key`` names
    what two records must not write at once (a member id, a ``trans_source_id``): records with the
    same key are sent one after the other, in input order, so the last one wins every time.
    """

    name: str
    prepare: Callable[[Any], Prepared]
    process: Callable[[Prepared], Outcome]
    key_fields: Sequence[str]
    statuses: Sequence[str]
    metrics: Sequence[str] = ()
    preview: Callable[[Prepared], Any] | None = None
    inline_results: int = 0
    order_key: Callable[[Prepared], Hashable] | None = None

    def key_of(self, record: Any) -> str | None:
        """The record's identity in reports (its first present key field), readable even if invalid."""
        if isinstance(record, Mapping):
            for name in self.key_fields:
                value = record.get(name)
                if value not in (None, ""):
                    return _clip(value, _KEY_MAX_CHARS)
        return None


class _FirstByIndex:
    """Keeps the ``limit`` entries with the lowest record index, in O(limit) memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen = 0
        self._heap: list[tuple[int, dict[str, Any]]] = []

    def add(self, index: int, entry: dict[str, Any]) -> None:
        self.seen += 1
        if self.limit <= 0:
            return
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, (-index, entry))
        elif -self._heap[0][0] > index:
            heapq.heapreplace(self._heap, (-index, entry))

    def entries(self) -> list[dict[str, Any]]:
        return [entry for _, entry in sorted(self._heap, key=lambda item: -item[0])]


class _Tally:
    """The running summary: counters, first failures, first results. Main thread only."""

    def __init__(self, job: BatchJob[Any], *, dry_run: bool) -> None:
        self.job = job
        self.dry_run = dry_run
        statuses = [WOULD_SEND] if dry_run else list(job.statuses)
        self.counts: dict[str, int] = dict.fromkeys([*statuses, INVALID, FAILED], 0)
        self.metrics: dict[str, int] = dict.fromkeys(job.metrics, 0)
        self.retriable_failures = 0
        self.repeated_keys = 0
        self.stopped = False
        self.stop_reason: str | None = None
        self.stop_retriable = False
        self.done = 0
        self.failures = _FirstByIndex(MAX_FAILURES_SHOWN)
        self.groups = FailureGroups()
        self.results = _FirstByIndex(job.inline_results)

    def add(self, index: int, key: str | None, outcome: Outcome) -> int:
        """Count one outcome; for a failure, return how many of its code were seen (else 0)."""
        self.done += 1
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        for name, value in outcome.metrics.items():
            self.metrics[name] = self.metrics.get(name, 0) + value
        if outcome.is_failure:
            self.retriable_failures += outcome.retriable
            self.failures.add(index, _failure_entry(index, key, outcome))
            message = _clip(outcome.message, _MESSAGE_MAX_CHARS) if outcome.message else None
            return self.groups.add(index, key, outcome.status, outcome.code, message)
        if self.job.inline_results:
            self.results.add(index, _result_entry(index, key, outcome))
        return 0

    def summary(self, *, elapsed: float, report_path: str | None) -> dict[str, Any]:
        failures = self.failures.entries()
        summary: dict[str, Any] = {
            "operation": self.job.name,
            "dry_run": self.dry_run,
            "total": self.done,
            **self.counts,
            **self.metrics,
            "retriable_failures": self.retriable_failures,
            **({"repeated_keys": self.repeated_keys} if self.job.order_key else {}),
            "stopped": self.stopped,
            **({"stop_reason": self.stop_reason} if self.stop_reason else {}),
            **({"stop_retriable": True} if self.stop_retriable else {}),
            "failures": failures,
            "failures_not_shown": self.failures.seen - len(failures),
            "failures_by_code": self.groups.as_dict(),
        }
        if self.job.inline_results:
            results = self.results.entries()
            summary["results"] = results
            summary["results_not_shown"] = self.results.seen - len(results)
        summary["report_path"] = report_path
        summary["elapsed_seconds"] = round(elapsed, 3)
        return fit_summary(summary)


def _clip(value: Any, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _failure_entry(index: int, key: str | None, outcome: Outcome) -> dict[str, Any]:
    return {
        "index": index,
        "key": key,
        "status": outcome.status,
        "field": outcome.field,
        "code": outcome.code,
        "message": _clip(outcome.message, _MESSAGE_MAX_CHARS) if outcome.message else None,
    }


def _result_entry(index: int, key: str | None, outcome: Outcome) -> dict[str, Any]:
    entry: dict[str, Any] = {"index": index, "key": key, "status": outcome.status, **outcome.detail}
    if outcome.code:
        entry["code"] = outcome.code
    if outcome.message:
        entry["message"] = _clip(outcome.message, _MESSAGE_MAX_CHARS)
    return entry


def _json_size(value: Any) -> int:
    return len(json.dumps(value, default=str).encode())


def fit_summary(summary: dict[str, Any], max_bytes: int = SUMMARY_MAX_BYTES) -> dict[str, Any]:
    """Drop trailing inline results, then failures, until the summary fits in ``max_bytes``."""
    for listed, hidden in (("results", "results_not_shown"), ("failures", "failures_not_shown")):
        entries = summary.get(listed)
        while entries and _json_size(summary) > max_bytes:
            drop = max(1, len(entries) // 4)
            del entries[-drop:]
            summary[hidden] = summary.get(hidden, 0) + drop
    return summary


class _Progress:
    """Logs done/total, rate and time left every ``interval`` seconds on long batches."""

    def __init__(self, name: str, total: int | None, interval: float, logger: BatchLogger) -> None:
        self.name = name
        self.total = total
        self.interval = interval
        self.logger = logger
        self.started = time.monotonic()
        self._next = self.started + interval

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def start(self) -> None:
        """Say how many records the batch holds, when that is known (staged files, lists)."""
        if self.total:
            self.logger.info("%s: 0/%d records (0%%), starting", self.name, self.total)

    def maybe_log(self, done: int) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        if self.total:
            left = (self.total - done) / rate if rate > 0 else math.inf
            eta = f"{left:.0f}s left" if math.isfinite(left) else "time left unknown"
            self.logger.info(
                "%s: %d/%d records (%.0f%%), %.1f records/s, %s",
                self.name,
                done,
                self.total,
                100.0 * done / self.total,
                rate,
                eta,
            )
        else:
            self.logger.info("%s: %d records, %.1f records/s", self.name, done, rate)


def _report_line(index: int, key: str | None, outcome: Outcome) -> dict[str, Any]:
    line: dict[str, Any] = {"index": index, "key": key, "status": outcome.status}
    for name in ("field", "code", "message"):
        value = getattr(outcome, name)
        if value is not None:
            line[name] = value
    line.update(outcome.detail)
    if any(outcome.metrics.values()):
        line["metrics"] = dict(outcome.metrics)  # so a run's report can be summed from the files
    return line


def _process_safely(process: Callable[[Prepared], Outcome], prepared: Prepared) -> Outcome:
    """Run one record; any exception becomes that record's ``failed`` outcome, never the batch's."""
    try:
        return process(prepared)
    except Exception as error:
        return Outcome.failed(error)


def _prepare_safely(job: BatchJob[Prepared], record: Any) -> Prepared | Outcome:
    try:
        return job.prepare(record)
    except RecordValidationError as error:
        return Outcome.invalid(error)
    except Exception as error:  # a record shaped so oddly the validator tripped: still one record
        return Outcome(INVALID, code=type(error).__name__, field="record", message=str(error))


def run_batch(
    records: Iterable[Any],
    job: BatchJob[Any],
    *,
    max_workers: int = DEFAULT_MAX_WORKERS,
    dry_run: bool = False,
    report_path: ReportPath | None = None,
    logger: BatchLogger | None = None,
    progress_interval: float = PROGRESS_INTERVAL_SECONDS,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Validate and send every record, ``max_workers`` at a time; return the bounded summary.

    Each record ends in exactly one outcome. Invalid records are never sent; an exception while
    sending one record fails that record only. With ``dry_run`` nothing is sent: each valid
    record is reported ``would_send`` with what would have been sent.

    Setting ``stop`` (a killed task) takes no new record; the ones in flight finish and are
    counted, and the summary says ``stopped``. What was not taken is simply not in ``total``:
    a later run sends it, and nothing already sent is sent twice.
    """
    if max_workers < 1:
        raise ValueError(f"max_workers must be 1 or more, got {max_workers}")
    logger = logger or log
    tally = _Tally(job, dry_run=dry_run)
    progress = _Progress(
        job.name, len(records) if isinstance(records, Sized) else None, progress_interval, logger
    )
    window = max_workers * 4
    failures_logged = 0
    progress.start()

    with (
        report_writer(report_path) as report,
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"perkville-{job.name}") as pool,
    ):
        pending: dict[Future[Outcome], tuple[int, str | None, Hashable | None]] = {}
        order = SameKeyOrder(job.order_key)

        def send(index: int, key: str | None, prepared: Any, order_key: Hashable | None) -> None:
            pending[pool.submit(_process_safely, job.process, prepared)] = (index, key, order_key)

        def account(index: int, key: str | None, outcome: Outcome) -> None:
            nonlocal failures_logged
            outcome = outcome.redacted()
            if outcome.stops_batch and tally.stop_reason is None:
                tally.stop_reason = outcome.message
                tally.stop_retriable = outcome.retriable  # an outage (breaker.py): a retry may pass
                logger.error("%s: stopping the batch: %s", job.name, outcome.message)
            of_code = tally.add(index, key, outcome)
            metrics.record(outcome.status, outcome.metrics)
            report(_report_line(index, key, outcome))
            if of_code == LOGGED_PER_CODE + 1:
                logger.warning(
                    "%s: more records fail with %s; counted, not logged one by one", job.name, outcome.code
                )
            if 0 < of_code <= LOGGED_PER_CODE and failures_logged < MAX_FAILURES_SHOWN:
                failures_logged += 1
                logger.warning(
                    "%s: record %d (%s) %s: %s %s: %s",
                    job.name,
                    index,
                    key,
                    outcome.status,
                    outcome.field or "-",
                    outcome.code,
                    outcome.message,
                )

        def drain(timeout: float | None) -> None:
            done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                index, key, order_key = pending.pop(future)
                account(index, key, future.result())
                held = None if tally.stopped else order.release(order_key)
                if held is not None:
                    send(*held, order_key)
            progress.maybe_log(tally.done)

        for index, record in enumerate(records):
            key = job.key_of(record)
            prepared = _prepare_safely(job, record)
            order_key = None if isinstance(prepared, Outcome) else order.key_of(prepared)
            tally.repeated_keys += order.seen_before(order_key)
            if isinstance(prepared, Outcome):
                account(index, key, prepared)
            elif dry_run:
                preview = job.preview(prepared) if job.preview else None
                account(index, key, Outcome(WOULD_SEND, detail={"request": preview}))
            else:
                while len(pending) + order.held >= window:
                    drain(progress_interval)
                if not order.hold(order_key, (index, key, prepared)):
                    send(index, key, prepared, order_key)
            progress.maybe_log(tally.done)
            if tally.stop_reason is not None or (stop is not None and stop.is_set()):
                logger.warning("%s: stopped after %d records; no new record is sent", job.name, index + 1)
                tally.stopped = True
                break
        while pending:
            drain(progress_interval)

    elapsed = progress.elapsed()
    of_total = f"/{progress.total} ({100.0 * tally.done / progress.total:.0f}%)" if progress.total else ""
    logger.info(
        "%s: %d%s records in %.1fs (%.1f records/s)",
        job.name,
        tally.done,
        of_total,
        elapsed,
        tally.done / elapsed if elapsed > 0 else 0.0,
    )
    if groups := format_groups(tally.groups.as_dict()):
        logger.warning("%s: %s", job.name, "\n".join(groups))
    return tally.summary(elapsed=elapsed, report_path=None if report_path is None else str(report_path))


def failure_count(summary: Mapping[str, Any]) -> int:
    """Records that did not go through: invalid plus failed (duplicates and daily limits are not)."""
    return int(summary.get(INVALID, 0)) + int(summary.get(FAILED, 0))


def exceeds_failure_ratio(summary: Mapping[str, Any], max_failure_ratio: float) -> bool:
    """Whether more records failed than ``max_failure_ratio`` (0 to 1) of the batch allows."""
    total = int(summary.get("total", 0))
    return total > 0 and failure_count(summary) / total > max_failure_ratio


def failures_are_retriable(summary: Mapping[str, Any]) -> bool:
    """Whether a retry could help: some failure was transient (validation errors never are)."""
    return int(summary.get("retriable_failures", 0)) > 0


def chunked(records: Iterable[Any], size: int) -> list[list[Any]]:
    """Split records into lists of ``size``, for ``.expand()`` of an operator over chunks."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"chunk size must be a positive integer, got {size!r}")
    iterator = iter(records)
    return list(iter(lambda: list(islice(iterator, size)), []))


_NOT_SUMMED = frozenset({"elapsed_seconds", "failures_not_shown", "results_not_shown", "failures_by_code"})


def merge_summaries(summaries: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Add up the summaries of mapped tasks into one, keeping the caps on failures and results.

    Each listed failure or result gains ``chunk``: the position of its summary in ``summaries``
    (the map index when given a mapped task's XCom). ``None`` entries (skipped tasks) are ignored.
    """
    merged: dict[str, Any] = {"total": 0}
    failures = _FirstByIndex(MAX_FAILURES_SHOWN)
    results = _FirstByIndex(MAX_RESULTS_SHOWN)
    hidden = {"failures": 0, "results": 0}
    report_paths: list[str] = []
    elapsed = 0.0
    has_results = False
    offset = 0
    groups: list[Mapping[str, Any] | None] = []
    for chunk, summary in enumerate(summaries):
        if not summary:
            continue
        groups.append(summary.get("failures_by_code"))
        merged.setdefault("operation", summary.get("operation"))
        merged["dry_run"] = bool(merged.get("dry_run")) or bool(summary.get("dry_run"))
        merged["stopped"] = bool(merged.get("stopped")) or bool(summary.get("stopped"))
        if summary.get("stop_reason") and not merged.get("stop_reason"):
            merged["stop_reason"] = summary["stop_reason"]
            merged.update({"stop_retriable": True} if summary.get("stop_retriable") else {})
        for name, value in summary.items():
            if isinstance(value, int) and not isinstance(value, bool) and name not in _NOT_SUMMED:
                merged[name] = merged.get(name, 0) + value
        for listed, keeper in (("failures", failures), ("results", results)):
            entries = summary.get(listed) or []
            has_results = has_results or (listed == "results" and listed in summary)
            hidden[listed] += int(summary.get(f"{listed}_not_shown", 0))
            for entry in entries:
                keeper.add(offset + int(entry.get("index", 0)), {**entry, "chunk": chunk})
        if summary.get("report_path"):
            report_paths.append(str(summary["report_path"]))
        elapsed = max(elapsed, float(summary.get("elapsed_seconds") or 0.0))
        offset += int(summary.get("total", 0))
    merged["failures"] = failures.entries()
    merged["failures_not_shown"] = hidden["failures"] + failures.seen - len(merged["failures"])
    merged["failures_by_code"] = merge_groups(groups)
    if has_results:
        merged["results"] = results.entries()
        merged["results_not_shown"] = hidden["results"] + results.seen - len(merged["results"])
    merged["report_paths"] = report_paths
    merged["elapsed_seconds"] = round(elapsed, 3)
    return fit_summary(merged)


_LAYOUT_KEYS = frozenset(
    {
        "operation",
        "dry_run",
        "failures",
        "failures_not_shown",
        "failures_by_code",
        "results",
        "results_not_shown",
        "report_path",
        "report_paths",
        "elapsed_seconds",
        "retriable_failures",
        "stopped",
        "stop_reason",
        "stop_retriable",
        "planned",
        "planned_first",
        "guard",
    }
)


def format_summary(summary: Mapping[str, Any], *, max_failures: int = 20) -> str:
    """A readable table of a summary for the task log: counts, then the first failures."""
    title = f"Perkville {summary.get('operation') or 'batch'}"
    title += " (dry run)" if summary.get("dry_run") else ""
    title += " (stopped early: the rest was not sent)" if summary.get("stopped") else ""
    counts = [(name, value) for name, value in summary.items() if name not in _LAYOUT_KEYS]
    counts += [(f"planned {name}", value) for name, value in (summary.get("planned") or {}).items()]
    if summary.get("guard"):
        counts.append(("guard", summary["guard"]))
    width = max([len(name) for name, _ in counts] + [8])
    lines = [title, "-" * len(title)]
    lines += [f"{name:<{width}}  {value:>10}" for name, value in counts]
    ratio = failure_count(summary) / summary["total"] if summary.get("total") else 0.0
    lines.append(f"{'failure ratio':<{width}}  {ratio:>10.2%}")
    failures = list(summary.get("failures") or [])
    not_shown = int(summary.get("failures_not_shown", 0)) + max(0, len(failures) - max_failures)
    groups = format_groups(summary.get("failures_by_code") or {})
    lines += ["", *groups] if groups else []
    if failures:
        lines += ["", "first failures (index, key, field, code: message):"]
        for entry in failures[:max_failures]:
            where = f"{entry.get('chunk')}/{entry.get('index')}" if "chunk" in entry else entry.get("index")
            lines.append(
                f"  {where}  {entry.get('key')}  {entry.get('field') or '-'}  "
                f"{entry.get('code')}: {entry.get('message')}"
            )
    if not_shown:
        lines.append(f"  ... and {not_shown} more failures (see the report file)")
    paths = summary.get("report_paths") or ([summary["report_path"]] if summary.get("report_path") else [])
    if summary.get("results_not_shown"):
        where = "in the report" if paths else "only in a report: set report_path"
        lines.append(f"{summary['results_not_shown']} results not in the summary ({where})")
    lines += [f"report: {path}" for path in paths]
    return "\n".join(lines)
