"""The shared pace across machines, in Redis: where it is, how long a call to it may take.

Which Redis: the ``rate_limit_redis_conn_id`` extra names an Airflow connection of the redis
provider's type (host, port, login, password, the ``db`` and ``ssl`` extras), whose password
Airflow stores and masks as a password: the preferred way. The ``rate_limit_redis_url`` extra
(``redis://:pw@host:6379/0``) still works; its password is registered with the secrets masker
as soon as it is read, and every message names the URL with its password replaced.

How long: every call has socket connect and read timeouts (:data:`SOCKET_TIMEOUT`) and no
client-side retry, so a Redis that stopped answering (SIGSTOP, a partition) is a retriable
failure within the attempt, never a hung task; :meth:`RedisSchedule.abort` (``on_kill``) drops
the connections in use, which ends a blocked read at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlsplit, urlunsplit

from perkville_provider.exceptions import PerkvilleConfigurationError, PerkvilleNetworkError
from perkville_provider.pacing import Pace, PaceRules
from perkville_provider.redaction import register_secret

__all__ = ["SOCKET_TIMEOUT", "RedisSchedule", "redacted_url", "redis_url_of"]

log = logging.getLogger(__name__)

#: Seconds a Redis call may wait to connect, or for an answer: Redis answers in milliseconds.
SOCKET_TIMEOUT = 2.0

T = TypeVar("T")
Update = Callable[[Pace, float], T]


def redacted_url(url: str) -> str:
    """``url`` with its password (and user) replaced by ``***``: fit for a message."""
    try:
        parts = urlsplit(url)
        if parts.password is None and parts.username is None:
            return url
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "(a URL that cannot be parsed)"


def redis_url_of(conn_id: str, extra: Mapping[str, Any], get_connection: Callable[[str], Any]) -> str | None:
    """The Redis URL of the connection's shared budget (its password masked), or None when none is set.

    :param conn_id: the Perkville connection, named in errors
    :param extra: its extras (``rate_limit_redis_conn_id``, ``rate_limit_redis_url``)
    :param get_connection: looks an Airflow connection up by id (the hook's ``get_connection``)
    """
    redis_conn_id = extra.get("rate_limit_redis_conn_id") or None
    if redis_conn_id is not None:
        try:
            redis_conn = get_connection(str(redis_conn_id))
        except Exception as error:
            raise PerkvilleConfigurationError(
                f"connection {conn_id!r}: the rate_limit_redis_conn_id extra names {redis_conn_id!r}, "
                f"which cannot be read ({type(error).__name__})"
            ) from None
        return _url_from_connection(redis_conn)
    url = extra.get("rate_limit_redis_url") or None
    if url is None:
        return None
    url = str(url)
    with contextlib.suppress(ValueError):  # a URL that cannot be parsed is never shown (redacted_url)
        register_secret(urlsplit(url).password)
    return url


def _url_from_connection(connection: Any) -> str:
    """A ``redis://`` (or ``rediss://`` with the ``ssl`` extra) URL of a redis-type connection."""
    extra = connection.extra_dejson if isinstance(connection.extra_dejson, Mapping) else {}
    register_secret(connection.password)
    userinfo = ""
    if connection.login or connection.password:
        userinfo = quote(connection.login or "", safe="")
        userinfo += f":{quote(connection.password, safe='')}" if connection.password else ""
        userinfo += "@"
    ssl = str(extra.get("ssl", "")).lower() in ("true", "1", "yes")
    db = extra.get("db", connection.schema or 0) or 0
    host = connection.host or "127.0.0.1"
    return f"{'rediss' if ssl else 'redis'}://{userinfo}{host}:{connection.port or 6379}/{db}"


class RedisSchedule:
    """The pace across machines: spacing by a ``limits`` moving window, the adaptive state in a hash.

    The window holds ``UNITS`` per second and each start costs ``UNITS / rate`` of them (at most
    the whole window: below one start a second the in-memory spacing paces), so the one window
    follows the pace as it changes. Starts are also counted (a second window), to know the
    aggregate rate a 429 measures.
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
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:  # pragma: no cover - the extra is missing
            raise PerkvilleConfigurationError(
                "rate_limit_sharing 'redis' needs the redis-budget extra: "
                "pip install 'airflow-provider-perkville[redis-budget]'"
            ) from None
        try:
            self.storage = storage_from_string(
                url,
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=SOCKET_TIMEOUT,
                retry=Retry(NoBackoff(), 0),  # type: ignore[arg-type]
            )
        except Exception as error:
            raise PerkvilleConfigurationError(
                f"the shared budget's Redis {redacted_url(url)!r} cannot be used: "
                f"{type(error).__name__} (a redis:// or rediss:// URL, or a redis connection id)"
            ) from None
        self.window = MovingWindowRateLimiter(self.storage)
        self.spacing = RateLimitItemPerSecond(self.UNITS, namespace="perkville")
        self.counting = RateLimitItemPerSecond(self.COUNT_LIMIT, namespace="perkville-count")
        self.key = key
        self.state_key = f"perkville:pace:{key}"
        self.total_key = f"perkville:starts:{key}"
        self.rules = rules
        self.where = redacted_url(url)
        self._redis = cast(Any, self.storage).storage  # the redis client under limits' storage
        self._lock = threading.Lock()
        self._next_local = 0.0
        self._started = False
        self.stopped = threading.Event()

    def abort(self) -> None:
        """Drop every connection to Redis, those in use too: a blocked read ends at once."""
        self.stopped.set()
        self._redis.connection_pool.disconnect(inuse_connections=True)

    def _call(self, call: Callable[[], T]) -> T:
        """One Redis call; a stalled or gone Redis is a retriable network error naming it."""
        stopped = PerkvilleNetworkError("stopped: the task is being stopped, so the request was not sent")
        if self.stopped.is_set():
            raise stopped
        try:
            return call()
        except PerkvilleNetworkError:
            raise
        except Exception as error:
            from redis.exceptions import RedisError

            if self.stopped.is_set():  # abort closed the socket under the call: any error says so
                raise stopped from None
            if not isinstance(error, RedisError | OSError):
                raise
            cause = "timed out" if "Timeout" in type(error).__name__ else type(error).__name__
            raise PerkvilleNetworkError(
                f"the shared budget's Redis {self.where} did not answer ({cause}); the request was not sent"
            ) from None

    def _read(self) -> Pace:
        pace, problem = self.rules.read_stored(self._redis.get(self.state_key), time.time())
        if problem is None:
            return pace
        log.warning(
            "Perkville rate state %s in Redis %s cannot be trusted (%s); replaced by a fresh one",
            self.state_key,
            self.where,
            problem[:200],
        )
        return Pace()

    def update(self, rule: Update[T]) -> T:
        """Apply ``rule`` to the adaptive state, under a lock of redis-py's own (short, with a timeout).

        The starts are counted in Redis, not in the state (a start takes no lock): the rule sees
        them as counted there.
        """
        return self._call(lambda: self._update(rule))

    def _update(self, rule: Update[T]) -> T:
        lock = self._redis.lock(f"{self.state_key}:lock", timeout=5, blocking_timeout=SOCKET_TIMEOUT)
        with self._lock, lock:
            pace = self._read()
            now = time.time()
            self.rules.measured_elsewhere(pace, self._measured_rate(), self._total_starts(), now)
            result = rule(pace, now)
            self._redis.set(self.state_key, json.dumps(pace.as_dict()), ex=self.KEEP_SECONDS)
            return result

    def wait_turn(self, sleep: Callable[[float], None]) -> float:
        """Wait until the shared window has room at the current pace; the start time.

        A moving window admits a whole second's worth at once; this process's own starts are
        first spaced at the pace too (in memory), so a burst in the window is at most one start
        per worker process, and a start sent late by a busy process is not followed at once
        by the next. A process's first start, when nobody has started for a second, begins a new
        run (:meth:`PaceRules.new_run`). The wait for the window ends after the pace's longest
        wait whatever the window says.
        """
        if not self._started:
            self._started = True
            if self.measured_rate() == 0:
                self.update(self.rules.new_run)
        pace = self._call(self._read)
        self._call(lambda: self.window.hit(self.counting, self.key))
        self._call(lambda: self._redis.incr(self.total_key))
        rate = self.rules.rate(pace, time.time())
        if rate is None:
            return time.time()
        with self._lock:
            now = time.monotonic()
            local_start = max(now, self._next_local)
            self._next_local = local_start + 1.0 / rate
        if local_start > now:
            sleep(local_start - now)
        cost = min(self.UNITS, max(1, math.ceil(self.UNITS / rate)))
        give_up_at = time.monotonic() + self.rules.longest_wait
        while not self._call(lambda: self.window.hit(self.spacing, self.key, cost=cost)):
            if time.monotonic() > give_up_at:
                break
            reset = self._call(lambda: self.window.get_window_stats(self.spacing, self.key).reset_time)
            sleep(min(0.25, max(0.002, reset - time.time())) + random.uniform(0, 0.002))
        return time.time()

    def _total_starts(self) -> float:
        return float(self._redis.get(self.total_key) or 0)

    def total_starts(self) -> float:
        """Starts of every worker ever counted (to compare 429s with the starts they answer)."""
        return self._call(self._total_starts)

    def _measured_rate(self) -> float:
        stats = self.window.get_window_stats(self.counting, self.key)
        return float(self.COUNT_LIMIT - stats.remaining)

    def measured_rate(self) -> float:
        """Starts per second of every worker over the last second (the counting window)."""
        return self._call(self._measured_rate)
