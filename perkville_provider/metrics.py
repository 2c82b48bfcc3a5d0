"""Every metric the provider emits, in one place: through Airflow's ``Stats``, prefixed ``perkville.``.

The task process's ``Stats`` (the Task SDK's ``airflow.sdk.observability.stats``, set up by the task
runner from ``[metrics]``) sends them wherever the deployment sends Airflow's own: StatsD, Datadog
or OpenTelemetry. Nothing here decides a backend.

The call sites elsewhere are one line each (``metrics.record(...)`` in the batch engine,
``metrics.request_timer(...)`` and ``metrics.waited(...)`` in the transport, ``metrics.pace(...)``
in the rate budget, :func:`breaker_opened` for a circuit breaker). Each returns at once when the
task has no metrics backend: whether it has one is looked up once per task, in :func:`task_scope`,
so a record costs a flag test when metrics are off (``bench/bench_metrics.py``).

The tags (``dag``, ``task``, ``business``) are the task's, set once by :func:`task_scope` for the
whole batch and read by every worker thread. StatsD without tags (``statsd_influxdb_enabled`` off)
drops them, so what a dashboard splits on (the outcome, the endpoint, the status class) is in the
metric's name. The names and their meaning are listed in the README ("Observability").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

__all__ = [
    "PREFIX",
    "breaker_opened",
    "endpoint_of",
    "pace",
    "record",
    "request_timer",
    "set_business",
    "status_class",
    "task_scope",
    "waited",
]

PREFIX = "perkville"
#: Gauges of the pace are sent at most this often (the pace is asked before every request).
PACE_INTERVAL_SECONDS = 1.0

T = TypeVar("T")

_ID_SEGMENT = re.compile(r"^\d+$")
_lock = threading.Lock()
_stats: Any = None
"""The Task SDK's stats module while a task with a metrics backend runs; None otherwise."""
_tags: dict[str, str] = {}
_pace_sent_at = 0.0


def _backend_is_on() -> bool:
    """Whether the task's ``Stats`` sends anywhere (the task runner configured StatsD, Datadog or OTel)."""
    try:
        from airflow.sdk._shared.observability.metrics import stats as shared

        backend = shared._get_backend()
    except Exception:  # another release's layout: send, and let Stats decide
        return True
    return type(backend).__name__ != "NoStatsLogger"


@contextlib.contextmanager
def task_scope(*, dag_id: str | None, task_id: str | None, business_id: Any = None) -> Iterator[None]:
    """Emit this task's metrics, tagged ``dag``, ``task`` and ``business``, while the block runs.

    Outside a scope (a hook used in a plain script, the sandbox, the tests' own helpers) nothing is
    emitted.
    """
    global _stats, _tags
    try:
        from airflow.sdk.observability import stats
    except ImportError:  # pragma: no cover - an Airflow without the Task SDK's stats
        stats = None
    tags = {"dag": str(dag_id or ""), "task": str(task_id or ""), "business": str(business_id or "")}
    with _lock:
        previous = _stats, _tags
        _stats = stats if stats is not None and _backend_is_on() else None
        _tags = tags
    try:
        yield
    finally:
        with _lock:
            _stats, _tags = previous


def set_business(business_id: Any) -> None:
    """Tag the rest of the task's metrics with ``business_id`` (once the connection's default is read)."""
    global _tags
    with _lock:
        _tags = {**_tags, "business": str(business_id or "")}


def _name(*parts: str) -> str:
    return ".".join((PREFIX, *parts))


def record(status: str, counters: Mapping[str, int]) -> None:
    """One record's outcome: ``perkville.records.<status>``, and its points when it awarded some."""
    stats = _stats
    if stats is None:
        return
    stats.incr(_name("records", status), tags=_tags)
    points = counters.get("points") if status == "awarded" else None
    if points:
        stats.incr(_name("points_awarded"), count=int(points), tags=_tags)


def endpoint_of(path: str) -> str:
    """A request path as a metric segment: its resource, without ids or the API version.

    ``/v2/connections/12/`` -> ``connections``, ``/v2/external-members/`` -> ``external_members``,
    ``/api/token/`` -> ``api_token``; ``other`` for an empty path.
    """
    segments = [s for s in path.strip("/").split("/") if s and not _ID_SEGMENT.match(s)]
    if segments and re.match(r"^v\d+$", segments[0]):
        segments = segments[1:]
    name = "_".join(segments) if segments else "other"
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)[:40] or "other"


def status_class(status: int | None) -> str:
    """``2xx``... ``5xx`` for an answer, ``network`` for none (a timeout, a lost connection)."""
    if status is None:
        return "network"
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


class _Answer:
    """What :func:`request_timer` measures: the transport sets ``status`` when an answer came."""

    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status: int | None = None


@contextlib.contextmanager
def request_timer(path: str) -> Iterator[_Answer]:
    """Time one attempt: ``perkville.requests.<endpoint>.<class>`` and its duration, 429s apart.

    The transport sets the answer's ``status`` on the yielded object; left unset, the attempt is
    counted ``network`` (no complete answer).
    """
    answer = _Answer()
    stats = _stats
    if stats is None:
        yield answer
        return
    started = time.perf_counter()
    try:
        yield answer
    finally:
        endpoint = endpoint_of(path)
        seconds = time.perf_counter() - started
        stats.incr(_name("requests", endpoint, status_class(answer.status)), tags=_tags)
        stats.timing(_name("request_duration", endpoint), dt.timedelta(seconds=seconds), tags=_tags)
        if answer.status == 429:
            stats.incr(_name("rate_limited"), tags=_tags)


def waited(acquire: Callable[[], T]) -> T:
    """Call ``acquire`` (the rate budget's wait for a turn), timing it as ``perkville.rate_wait``."""
    stats = _stats
    if stats is None:
        return acquire()
    started = time.perf_counter()
    result = acquire()
    stats.timing(_name("rate_wait"), dt.timedelta(seconds=time.perf_counter() - started), tags=_tags)
    return result


def pace(rate: float | None, learned_limit: float | None, *, changed: bool = False) -> None:
    """The paced rate and the learned limit (requests/s) as gauges, at most once a second.

    ``changed`` (a decrease after 429s) sends them at once.
    """
    global _pace_sent_at
    stats = _stats
    if stats is None:
        return
    now = time.monotonic()
    if not changed and now - _pace_sent_at < PACE_INTERVAL_SECONDS:
        return
    _pace_sent_at = now
    if rate is not None:
        stats.gauge(_name("pace", "rate"), float(rate), tags=_tags)
    if learned_limit is not None:
        stats.gauge(_name("pace", "learned_limit"), float(learned_limit), tags=_tags)


def breaker_opened(endpoint: str = "") -> None:
    """A circuit breaker opened: ``perkville.breaker.opened`` (for the breaker to call)."""
    stats = _stats
    if stats is None:
        return
    tags = {**_tags, "endpoint": endpoint} if endpoint else _tags
    stats.incr(_name("breaker", "opened"), tags=tags)
