"""One rate budget per Perkville connection, shared by every task that uses it.

The budget (``max_requests_per_second``) belongs to the connection, not to a task: the daily
awards DAG runs its chunks as parallel task instances, and a per-task limit multiplies by their
number. Where the budget's schedule is kept decides who shares it (``rate_limit_sharing``):

* ``"machine"`` (the default): a small state file under a lock (``fcntl.flock``), shared by every
  process on the machine: LocalExecutor, ``dag.test``, a Celery worker's processes. No service.
  The folder is private and the file checked before it is trusted (:mod:`perkville_provider.state_file`).
* ``"redis"`` (the default when ``rate_limit_redis_conn_id`` or ``rate_limit_redis_url`` is set):
  every worker of a cluster; the spacing is a ``limits`` moving window in that Redis (the
  ``redis-budget`` extra), the adaptive state a small hash beside it, so a 429 slows every worker
  down (see :mod:`perkville_provider.redis_budget`).
* ``"process"``: each task alone (the provider's behaviour before the shared budget).

Whatever the sharing, the pace adapts (:mod:`perkville_provider.pacing`) unless
``adaptive_pacing`` is false: a 429 cuts it for all who share it, success brings it back.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from perkville_provider import metrics
from perkville_provider.connection_settings import SettingError, flag, read_setting
from perkville_provider.exceptions import PerkvilleConfigurationError
from perkville_provider.pacing import HEADROOM, Pace, PaceChange, PaceRules
from perkville_provider.redis_budget import RedisSchedule, redis_url_of
from perkville_provider.state_file import STATE_DIR_ENV, MachineSchedule, state_dir
from perkville_provider.waits import bounded_wait

__all__ = [
    "HEADROOM",
    "SHARINGS",
    "STATE_DIR_ENV",
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
    :param redis_url: the Redis that holds the shared state (``"redis"`` sharing), its password
        already registered with the masker
    :param state_dir: where the machine's state files live (``"machine"`` sharing)
    :param max_wait: the longest ``Retry-After`` honoured (the retry policy's): no wait of the
        pace, and nothing it stores, goes beyond it
    """

    conn_id: str
    max_requests_per_second: float | None
    sharing: str = "machine"
    adaptive: bool = True
    redis_url: str | None = field(default=None, repr=False)
    state_dir: str | None = None
    max_wait: float = 60.0

    @classmethod
    def from_extras(
        cls,
        conn_id: str,
        extra: Mapping[str, Any],
        *,
        max_requests_per_second: float | None = None,
        max_wait: float = 60.0,
        get_connection: Callable[[str], Any] | None = None,
    ) -> RateBudget:
        """The settings from a connection's extras; a bad value is an error naming its extra.

        Reads ``max_requests_per_second``, ``rate_limit_sharing``, ``adaptive_pacing``,
        ``rate_limit_redis_conn_id`` (looked up with ``get_connection``), ``rate_limit_redis_url``
        and ``rate_limit_dir`` from ``extra`` as
        :func:`~perkville_provider.connection_settings.connection_extras` reads them (nulls dropped).
        """
        name = "max_requests_per_second"
        budget = read_setting(conn_id, name, _rate, max_requests_per_second, "argument of the hook")
        if budget is None:
            budget = read_setting(conn_id, name, _rate, extra.get(name))
        redis_url = redis_url_of(conn_id, extra, get_connection or _no_connections)
        sharing = str(extra.get("rate_limit_sharing") or ("redis" if redis_url else "machine")).strip()
        if sharing not in SHARINGS:
            raise PerkvilleConfigurationError(
                f"connection {conn_id!r}: rate_limit_sharing must be one of {', '.join(SHARINGS)}, "
                f"got {sharing!r}"
            )
        if sharing == "redis" and not redis_url:
            raise PerkvilleConfigurationError(
                f"connection {conn_id!r}: rate_limit_sharing 'redis' needs the rate_limit_redis_conn_id "
                "(or rate_limit_redis_url) extra"
            )
        adaptive = read_setting(conn_id, "adaptive_pacing", flag, extra.get("adaptive_pacing", True))
        state = extra.get("rate_limit_dir") or None
        return cls(conn_id, budget, sharing, adaptive, redis_url, state, max_wait)

    @property
    def paced(self) -> bool:
        """Whether requests go through a limiter at all (a budget, or adaptive pacing)."""
        return self.max_requests_per_second is not None or self.adaptive

    def rules(self) -> PaceRules:
        """The pacing rules: the ceiling is the budget less the headroom."""
        ceiling = self.max_requests_per_second * HEADROOM if self.max_requests_per_second else None
        return PaceRules(ceiling=ceiling, adaptive=self.adaptive, max_wait=self.max_wait)

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
            return SharedPace(rules, MachineSchedule(path, rules), label=self.conn_id)
        return SharedPace(rules, RedisSchedule(self.redis_url or "", key, rules), label=self.conn_id)


def _no_connections(conn_id: str) -> Any:
    raise LookupError(f"no connection lookup here for {conn_id!r}")


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

    def acquire(self, stop: threading.Event | None = None) -> float:
        """Wait until this request may start; the start time, to hand back with a 429.

        A start booked ahead is booked again when a decrease came while it waited. Each wait is
        at most the pace's longest wait, and ``stop`` (the task's, set by ``on_kill``) ends it.

        :raises WaitStopped: ``stop`` was set
        """
        if isinstance(self.schedule, RedisSchedule):
            return self.schedule.wait_turn(functools.partial(self._pause, stop))
        while True:
            start, booked_at = self._book()
            if start <= booked_at:
                return start
            self._pause(stop, start - booked_at)
            if self.schedule.update(functools.partial(self.rules.sent, booked_at=booked_at)):
                return start

    def _pause(self, stop: threading.Event | None, seconds: float) -> None:
        """The one wait rule (:mod:`perkville_provider.waits`); an injected sleep when no stop is given."""
        if stop is None:
            self._sleep(min(seconds, self.rules.longest_wait))
        else:
            bounded_wait(seconds, self.rules.longest_wait, stop)

    def abort(self) -> None:
        """A killed task: end the waits on a shared store (a Redis call blocked on its socket)."""
        if isinstance(self.schedule, RedisSchedule):
            self.schedule.abort()

    def _book(self) -> tuple[float, float]:
        """Book the next start on the shared pace; the start and when it was booked."""
        rules = self.rules

        def rule(pace: Pace, now: float) -> tuple[float, float, float | None, float, float | None]:
            start = rules.reserve(pace, now)
            recovered_from = pace.decreased_at if rules.recovered(pace, now) else 0.0
            return start, recovered_from, pace.throttled_rate, now, rules.rate(pace, now)

        start, recovered_from, rate, booked_at, paced = self.schedule.update(rule)
        metrics.pace(paced, rate)
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
            metrics.pace(change.after, None, changed=True)
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
