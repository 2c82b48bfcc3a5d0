"""Every metric the provider emits, in one place: through Airflow's ``Stats``, prefixed ``perkville.``.

The task process's ``Stats`` (the Task SDK's ``airflow.sdk.observability.stats``, set up by the task
runner from ``[metrics]``) sends them wherever the deployment sends Airflow's own: StatsD, Datadog
or OpenTelemetry. Nothing here decides a backend.

The call sites elsewhere are one line each (``metrics.record(...)`` in the batch engine,
``metrics.request_timer(...)`` and ``metrics.waited(...)`` in the transport, ``metrics.pace(...)``
in the rate budget, :func:`breaker_opened` for a circuit breaker). Each returns at once when the
task has no metrics backend: whether it has one is looked up once per task, in :func:`task_scope`,
so a record costs a flag test when metrics are off (``bench/bench_metrics.py``).

Counters are added up in the process and sent at most once a second (and when the task's scope
ends): one metric through Airflow's ``Stats`` costs 25 to 50 µs (name checks, then a UDP
datagram), and a record would otherwise send five. The request-duration timer is a sample: at
most ``TIMER_SAMPLES_PER_SECOND`` requests a second are timed (every request at Perkville's
usual rates), which keeps the timer's percentiles and bounds its cost; the request counters are
exact.

The tags (``dag``, ``task``, ``business``) are the task's, set once by :func:`task_scope` for the
whole batch and read by every worker thread. StatsD without tags (``statsd_influxdb_enabled`` off)
drops them, so what a dashboard splits on (the outcome, the endpoint, the status class) is in the
metric's name. The names and their meaning are listed in the README ("Observability").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
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
#: Counters and the pace's gauges are sent at most this often.
FLUSH_INTERVAL_SECONDS = 1.0
#: The request-duration timer is sent for at most this many requests a second (per process).
TIMER_SAMPLES_PER_SECOND = 20

T = TypeVar("T")

_ID_SEGMENT = re.compile(r"^\d+$")
_lock = threading.Lock()
_stats: Any = None
"""The Task SDK's stats module while a task with a metrics backend runs; None otherwise."""
_tags: dict[str, str] = {}
_pace_sent_at = 0.0
_counts: dict[str, int] = {}
_flushed_at = 0.0
_timer_second = 0
_timer_samples = 0


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
    stats: Any
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
        _flush()
        with _lock:
            _stats, _tags = previous


def set_business(business_id: Any) -> None:
    """Tag the rest of the task's metrics with ``business_id`` (once the connection's default is read)."""
    global _tags
    with _lock:
        _tags = {**_tags, "business": str(business_id or "")}


def _name(*parts: str) -> str:
    return ".".join((PREFIX, *parts))


def _count(name: str, value: int = 1) -> None:
    """Add to a counter; the counters go out once a second at most (see the module's doc)."""
    with _lock:
        _counts[name] = _counts.get(name, 0) + value
        due = time.monotonic() - _flushed_at >= FLUSH_INTERVAL_SECONDS
    if due:
        _flush()


def _flush() -> None:
    """Send the counters added up since the last flush."""
    global _flushed_at
    with _lock:
        stats, tags = _stats, _tags
        counts = dict(_counts)
        _counts.clear()
        _flushed_at = time.monotonic()
    if stats is None:
        return
    for name, value in counts.items():
        if value:
            stats.incr(name, count=value, tags=tags)


def record(status: str, counters: Mapping[str, int]) -> None:
    """One record's outcome: ``perkville.records.<status>``, and its points when it awarded some."""
    if _stats is None:
        return
    _count(_name("records", status))
    points = counters.get("points") if status == "awarded" else None
    if points:
        _count(_name("points_awarded"), int(points))


@functools.lru_cache(maxsize=256)
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

    __slots__ = ("path", "started", "status")

    def __init__(self, path: str = "") -> None:
        self.path = path
        self.status: int | None = None
        self.started = 0.0

    def __enter__(self) -> _Answer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        stats = _stats
        if stats is None or not self.path:
            return
        endpoint = endpoint_of(self.path)
        if _timer_sample(self.started):
            seconds = time.perf_counter() - self.started
            stats.timing(_name("request_duration", endpoint), dt.timedelta(seconds=seconds), tags=_tags)
        _count(_name("requests", endpoint, status_class(self.status)))
        if self.status == 429:
            _count(_name("rate_limited"))


def _timer_sample(now: float) -> bool:
    """Whether this request's duration is sent: the first ``TIMER_SAMPLES_PER_SECOND`` of each second."""
    global _timer_second, _timer_samples
    second = int(now)
    with _lock:
        if second != _timer_second:
            _timer_second, _timer_samples = second, 0
        _timer_samples += 1
        return _timer_samples <= TIMER_SAMPLES_PER_SECOND


def request_timer(path: str) -> _Answer:
    """Time one attempt: ``perkville.requests.<endpoint>.<class>`` and its duration, 429s apart.

    A context manager; the transport sets the answer's ``status`` on it. Left unset, the attempt
    is counted ``network`` (no complete answer).
    """
    return _Answer(path if _stats is not None else "")


def waited(acquire: Callable[[], T]) -> T:
    """Call ``acquire`` (the rate budget's wait for a turn), adding the wait to ``perkville.rate_wait_ms``.

    A counter of milliseconds, not a timer: its rate is the share of time the workers spend held
    back by the budget (1000 ms/s: one worker waiting all the time).
    """
    if _stats is None:
        return acquire()
    started = time.perf_counter()
    result = acquire()
    _count(_name("rate_wait_ms"), round((time.perf_counter() - started) * 1000))
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
    if not changed and now - _pace_sent_at < FLUSH_INTERVAL_SECONDS:
        return
    _pace_sent_at = now
    if rate is not None:
        stats.gauge(_name("pace", "rate"), float(rate), tags=_tags)
    if learned_limit is not None:
        stats.gauge(_name("pace", "learned_limit"), float(learned_limit), tags=_tags)


def breaker_opened(endpoint: str = "") -> None:
    """A circuit breaker opened: ``perkville.breaker.opened[.<endpoint>]``, sent at once.

    For the circuit breaker to call when it opens.
    """
    if _stats is None:
        return
    _count(_name("breaker", "opened", endpoint_of(endpoint)) if endpoint else _name("breaker", "opened"))
    _flush()
