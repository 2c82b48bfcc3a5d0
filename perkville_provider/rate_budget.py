"""One rate budget per Perkville connection, shared by every task that uses it.

The budget (``max_requests_per_second``) belongs to the connection, not to a task: the daily
awards DAG runs its chunks as parallel task instances, and a per-task limit multiplies by their
number. Where the budget's schedule is kept decides who shares it (``rate_limit_sharing``):

* ``"machine"`` (the default): a small state file under a lock (``fcntl.flock``), shared by every
  process on the machine: LocalExecutor, ``dag.test``, a Celery worker's processes. No service.
* ``"redis"`` (the default when ``rate_limit_redis_url`` is set): every worker of a cluster; the
  spacing is a ``limits`` moving window in that Redis (the ``redis-budget`` extra), the adaptive
  state a small hash beside it, so a 429 slows every worker down.
* ``"process"``: each task alone (the provider's behaviour before the shared budget).

Whatever the sharing, the pace adapts (:mod:`perkville_provider.pacing`) unless
``adaptive_pacing`` is false: a 429 cuts it for all who share it, success brings it back.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import math
import os
import random
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from perkville_provider.connection_settings import SettingError, flag, read_setting
from perkville_provider.exceptions import PerkvilleConfigurationError
from perkville_provider.pacing import HEADROOM, Pace, PaceChange, PaceRules

__all__ = [
    "HEADROOM",
    "SHARINGS",
    "MachineSchedule",
    "ProcessSchedule",
    "RateBudget",
    "RateLimiter",
    "RedisSchedule",
    "SharedPace",
    "state_dir",
]

log = logging.getLogger(__name__)

SHARINGS = ("machine", "redis", "process")
STATE_DIR_ENV = "PERKVILLE_RATE_LIMIT_DIR"

T = TypeVar("T")
Update = Callable[[Pace, float], T]


class Schedule(Protocol):
    """Where a connection's :class:`Pace` lives; ``update`` runs a rule on it atomically."""

    def update(self, rule: Update[T]) -> T: ...


def _rate(value: Any) -> float | None:
    """A budget in requests per second; None when not set."""
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not number > 0 or math.isinf(number):
        raise SettingError(f"must be a positive number of requests per second, got {value!r}")
    return number


@dataclass(frozen=True)
class RateBudget:
    """A connection's rate settings, from its extras (a hook argument overrides the budget).

    :param conn_id: the connection, named in errors and in the shared state's key
    :param max_requests_per_second: the budget of the whole connection, or None (unknown: adapt)
    :param sharing: ``"machine"``, ``"redis"`` or ``"process"``
    :param adaptive: whether a 429 slows everyone sharing the budget down
    :param redis_url: the Redis that holds the shared state (``"redis"`` sharing)
    :param state_dir: where the machine's state files live (``"machine"`` sharing)
    """

    conn_id: str
    max_requests_per_second: float | None
    sharing: str = "machine"
    adaptive: bool = True
    redis_url: str | None = None
    state_dir: str | None = None

    @classmethod
    def from_extras(
        cls, conn_id: str, extra: Mapping[str, Any], *, max_requests_per_second: float | None = None
    ) -> RateBudget:
        """The settings from a connection's extras; a bad value is an error naming its extra.

        Reads ``max_requests_per_second``, ``rate_limit_sharing``, ``adaptive_pacing``,
        ``rate_limit_redis_url`` and ``rate_limit_dir`` from ``extra`` as
        :func:`~perkville_provider.connection_settings.connection_extras` reads them (nulls dropped).
        """
        name = "max_requests_per_second"
        budget = read_setting(conn_id, name, _rate, max_requests_per_second, "argument of the hook")
        if budget is None:
            budget = read_setting(conn_id, name, _rate, extra.get(name))
        redis_url = extra.get("rate_limit_redis_url") or None
        sharing = str(extra.get("rate_limit_sharing") or ("redis" if redis_url else "machine")).strip()
        if sharing not in SHARINGS:
            raise PerkvilleConfigurationError(
                f"connection {conn_id!r}: rate_limit_sharing must be one of {', '.join(SHARINGS)}, "
                f"got {sharing!r}"
            )
        if sharing == "redis" and not redis_url:
            raise PerkvilleConfigurationError(
                f"connection {conn_id!r}: rate_limit_sharing 'redis' needs the rate_limit_redis_url extra"
            )
        adaptive = read_setting(conn_id, "adaptive_pacing", flag, extra.get("adaptive_pacing", True))
        return cls(conn_id, budget, sharing, adaptive, redis_url, extra.get("rate_limit_dir") or None)

    @property
    def paced(self) -> bool:
        """Whether requests go through a limiter at all (a budget, or adaptive pacing)."""
        return self.max_requests_per_second is not None or self.adaptive

    def rules(self) -> PaceRules:
        """The pacing rules: the ceiling is the budget less the headroom."""
        ceiling = self.max_requests_per_second * HEADROOM if self.max_requests_per_second else None
        return PaceRules(ceiling=ceiling, adaptive=self.adaptive)

    def limiter(self, api_identity: str) -> SharedPace | None:
        """The limiter for this budget, or None when nothing is paced.

        :param api_identity: what tells this connection's API apart (base URL, client, user), so
            two connections to different APIs never share a schedule
        """
        if not self.paced:
            return None
        key = hashlib.sha256(f"{self.conn_id}\n{api_identity}".encode()).hexdigest()[:24]
        rules = self.rules()
        if self.sharing == "process":
            return SharedPace(rules, ProcessSchedule(), label=self.conn_id)
        if self.sharing == "machine":
            path = state_dir(self.state_dir) / f"{key}.json"
            return SharedPace(rules, MachineSchedule(path), label=self.conn_id)
        return SharedPace(rules, RedisSchedule(self.redis_url or "", key, rules), label=self.conn_id)


def state_dir(configured: str | None = None) -> Path:
    """The machine's state directory, created when missing.

    The ``rate_limit_dir`` extra, else ``$PERKVILLE_RATE_LIMIT_DIR``, else
    ``airflow-provider-perkville-rate`` in the system's temporary directory.
    """
    chosen = configured or os.environ.get(STATE_DIR_ENV)
    path = Path(chosen) if chosen else Path(tempfile.gettempdir()) / "airflow-provider-perkville-rate"
    path.mkdir(parents=True, exist_ok=True)
    return path


class ProcessSchedule:
    """The pace in this process's memory, shared by its threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._pace = Pace()
        self._lock = threading.Lock()
        self.clock = clock

    def update(self, rule: Update[T]) -> T:
        """Apply ``rule`` to the pace under the thread lock."""
        with self._lock:
            return rule(self._pace, self.clock())


class MachineSchedule:
    """The pace in a JSON file under an exclusive ``flock``: every process on the machine shares it.

    The lock is held only to read, apply one rule and write a few dozen bytes; nobody sleeps under it.
    """

    clock = staticmethod(time.time)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # flock excludes processes; threads share one descriptor
        self._fd: int | None = None
        self._fd_pid = 0

    def _descriptor(self) -> int:
        """The state file's descriptor, opened once per process.

        A forked child opens its own: ``flock`` belongs to the open file, so a descriptor
        inherited across a fork would hold the parent's lock, not one of its own.
        """
        if self._fd is None or self._fd_pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._fd_pid = os.getpid()
            weakref.finalize(self, os.close, self._fd)
        return self._fd

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        with self._lock:
            fd = self._descriptor()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield fd
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def update(self, rule: Update[T]) -> T:
        """Read the pace, apply ``rule``, write it back, all under the file's lock."""
        with self._locked() as fd:
            raw = os.pread(fd, 4096, 0)
            try:
                pace = Pace.from_dict(json.loads(raw)) if raw else Pace()
            except (ValueError, TypeError):
                pace = Pace()
            result = rule(pace, self.clock())
            data = json.dumps(pace.as_dict()).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            return result


class RedisSchedule:
    """The pace across machines: spacing by a ``limits`` moving window, the adaptive state in a hash.

    The window holds ``UNITS`` per second and each start costs ``UNITS / rate`` of them, so the
    one window follows the pace as it changes. Starts are also counted (a second window), to know
    the aggregate rate a 429 measures.
    """

    UNITS = 1000
    COUNT_LIMIT = 1_000_000
    #: The learned limit outlives a run: the next day's run starts paced at it.
    KEEP_SECONDS = 7 * 24 * 3600

    def __init__(self, url: str, key: str, rules: PaceRules) -> None:
        try:
            from limits import RateLimitItemPerSecond
            from limits.storage import storage_from_string
            from limits.strategies import MovingWindowRateLimiter
        except ImportError:  # pragma: no cover - the extra is missing
            raise PerkvilleConfigurationError(
                "rate_limit_sharing 'redis' needs the redis-budget extra: "
                "pip install 'airflow-provider-perkville[redis-budget]'"
            ) from None
        self.storage = storage_from_string(url)
        self.window = MovingWindowRateLimiter(self.storage)
        self.spacing = RateLimitItemPerSecond(self.UNITS, namespace="perkville")
        self.counting = RateLimitItemPerSecond(self.COUNT_LIMIT, namespace="perkville-count")
        self.key = key
        self.state_key = f"perkville:pace:{key}"
        self.total_key = f"perkville:starts:{key}"
        self.rules = rules
        self._redis = cast(Any, self.storage).storage  # the redis client under limits' storage
        self._lock = threading.Lock()
        self._next_local = 0.0
        self._started = False

    def _read(self) -> Pace:
        raw = self._redis.get(self.state_key)
        return Pace.from_dict(json.loads(raw)) if raw else Pace()

    def update(self, rule: Update[T]) -> T:
        """Apply ``rule`` to the adaptive state, under a lock of redis-py's own (short, with a timeout).

        The starts are counted in Redis, not in the state (a start takes no lock): the rule sees
        them as counted there.
        """
        with self._lock, self._redis.lock(f"{self.state_key}:lock", timeout=5, blocking_timeout=5):
            pace = self._read()
            now = time.time()
            self.rules.measured_elsewhere(pace, self.measured_rate(), self.total_starts(), now)
            result = rule(pace, now)
            self._redis.set(self.state_key, json.dumps(pace.as_dict()), ex=self.KEEP_SECONDS)
            return result

    def wait_turn(self, sleep: Callable[[float], None]) -> float:
        """Wait until the shared window has room at the current pace; the start time.

        A moving window admits a whole second's worth at once; this process's own starts are
        first spaced at the pace too (in memory), so a burst in the window is at most one start
        per worker process, and a start sent late by a busy process is not followed at once
        by the next. A process's first start, when nobody has started for a second, begins a new
        run (:meth:`PaceRules.new_run`).
        """
        if not self._started:
            self._started = True
            if self.measured_rate() == 0:
                self.update(self.rules.new_run)
        pace = self._read()
        self.window.hit(self.counting, self.key)
        self._redis.incr(self.total_key)
        rate = self.rules.rate(pace, time.time())
        if rate is None:
            return time.time()
        with self._lock:
            now = time.monotonic()
            local_start = max(now, self._next_local)
            self._next_local = local_start + 1.0 / rate
        if local_start > now:
            sleep(local_start - now)
        cost = max(1, math.ceil(self.UNITS / rate))
        while not self.window.hit(self.spacing, self.key, cost=cost):
            reset = self.window.get_window_stats(self.spacing, self.key).reset_time
            sleep(min(0.25, max(0.002, reset - time.time())) + random.uniform(0, 0.002))
        return time.time()

    def total_starts(self) -> float:
        """Starts of every worker ever counted (to compare 429s with the starts they answer)."""
        return float(self._redis.get(self.total_key) or 0)

    def measured_rate(self) -> float:
        """Starts per second of every worker over the last second (the counting window)."""
        stats = self.window.get_window_stats(self.counting, self.key)
        return float(self.COUNT_LIMIT - stats.remaining)


class SharedPace:
    """The limiter the transport asks before each start and tells about each 429.

    :param rules: the pacing rules
    :param schedule: where the pace is kept (and so who shares it)
    :param label: the connection, for the log lines
    """

    def __init__(
        self,
        rules: PaceRules,
        schedule: ProcessSchedule | MachineSchedule | RedisSchedule,
        *,
        label: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rules = rules
        self.schedule = schedule
        self.label = label
        self._sleep = sleep
        self._recovery_logged = 0.0

    def acquire(self) -> float:
        """Wait until this request may start; the start time, to hand back with a 429.

        A start booked ahead is booked again when a decrease came while it waited.
        """
        if isinstance(self.schedule, RedisSchedule):
            return self.schedule.wait_turn(self._sleep)
        while True:
            start, booked_at = self._book()
            if start <= booked_at:
                return start
            self._sleep(start - booked_at)
            if self.schedule.update(functools.partial(self.rules.sent, booked_at=booked_at)):
                return start

    def _book(self) -> tuple[float, float]:
        """Book the next start on the shared pace; the start and when it was booked."""
        rules = self.rules

        def rule(pace: Pace, now: float) -> tuple[float, float, float | None, float]:
            start = rules.reserve(pace, now)
            recovered_from = pace.decreased_at if rules.recovered(pace, now) else 0.0
            return start, recovered_from, pace.throttled_rate, now

        start, recovered_from, rate, booked_at = self.schedule.update(rule)
        if recovered_from > self._recovery_logged:
            self._recovery_logged = recovered_from
            log.info("Perkville pace on connection %s is back to %.1f requests/s", self.label, rate or 0.0)
        return start, booked_at

    def throttled(self, sent_at: float, retry_after: float | None) -> PaceChange | None:
        """A 429 answered the request that started at ``sent_at``: slow everyone down, once.

        The server's ``Retry-After`` says how long its window stays full: 429s within it report
        the same congestion and change nothing more.
        """
        change = self.schedule.update(lambda pace, now: self.rules.throttled(pace, sent_at, now, retry_after))
        if change is not None:
            log.warning(
                "Perkville answered 429 on connection %s: pacing %.1f -> %.1f requests/s for every "
                "task sharing its budget (Retry-After %s)",
                self.label,
                change.before,
                change.after,
                "none" if retry_after is None else f"{retry_after:g} s",
            )
        return change


class RateLimiter(SharedPace):
    """A fixed pace for the threads of one process: ``max_per_second`` less the headroom.

    The per-hook limiter of ``rate_limit_sharing: "process"`` without adaptation, and the simplest
    limiter to hand a :class:`~perkville_provider.transport.Transport` directly.
    """

    HEADROOM = HEADROOM

    def __init__(
        self,
        max_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_per_second <= 0:
            raise PerkvilleConfigurationError(
                f"max_requests_per_second must be positive, got {max_per_second!r}"
            )
        rules = PaceRules(ceiling=max_per_second * HEADROOM, adaptive=False)
        super().__init__(rules, ProcessSchedule(clock), label="this hook", sleep=sleep)
