"""Wall-clock deadlines for requests in flight, and a way to free threads stuck inside them.

``requests`` bounds each wait for bytes (the read timeout), never a whole answer: a server (or a
proxy) trickling one byte per second holds a thread forever. Here every attempt runs under a
deadline: the connections of the hook's session note their socket with the attempt running on
their thread, and one watchdog thread shuts that socket down when the deadline passes, which ends
the blocked read at once. :meth:`Deadlines.abort` does the same for every attempt in flight (a
killed task), and refuses new ones.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from requests.adapters import HTTPAdapter
from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class Attempt:
    """One request attempt: its deadline, its sockets, and why it was cut short (if it was).

    An attempt started inside another on the same thread (the token grant that the first request
    of a task runs) is nested: its deadline is never later than the outer one's
    (``inherited`` says the outer one binds), and its sockets are the outer one's too while it
    runs, so cutting the outer cuts it.
    """

    deadline_at: float

    def __init__(self, deadline_at: float, parent: Attempt | None = None) -> None:
        self.parent = parent
        self.inherited = parent is not None and parent.deadline_at <= deadline_at
        self.deadline_at = min(deadline_at, parent.deadline_at) if parent is not None else deadline_at
        self.cut: str | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def watch(self, sock: socket.socket | None) -> None:
        """Note a socket of this attempt (cut at once if the attempt already was)."""
        if sock is None:
            return
        with self._lock:
            if sock not in self._sockets:
                self._sockets.append(sock)
            cut = self.cut
        if self.parent is not None:
            self.parent.watch(sock)
        if cut is not None:
            _shut(sock)

    def forget(self, sockets: list[socket.socket]) -> None:
        """A nested attempt is over: its sockets go back to the pool, no longer this one's."""
        with self._lock:
            self._sockets = [sock for sock in self._sockets if sock not in sockets]
        if self.parent is not None:
            self.parent.forget(sockets)

    def finish(self) -> None:
        """The attempt is over: its sockets go back to the pool and are never cut."""
        with self._lock:
            self.cut = self.cut or "done"
            sockets, self._sockets = self._sockets, []
        if self.parent is not None:
            self.parent.forget(sockets)

    def cut_short(self, reason: str) -> None:
        """Cut the attempt: shut its sockets down, which ends any blocked read or write."""
        with self._lock:
            if self.cut is not None:
                return
            self.cut = reason
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    """End every blocked read and write on ``sock`` (the connection is then dropped by the pool)."""
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread for the process: cuts attempts whose deadline has passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Attempt]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, attempt: Attempt) -> None:
        with self._wake:
            heapq.heappush(self._heap, (attempt.deadline_at, next(self._order), attempt))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="perkville-deadlines", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and (self._heap[0][2].cut is not None):
                    heapq.heappop(self._heap)
                if not self._heap:
                    if not self._wake.wait(timeout=30.0) and not self._heap:
                        self._thread = None
                        return
                    continue
                deadline_at, _, attempt = self._heap[0]
                wait = deadline_at - time.monotonic()
                if wait > 0:
                    self._wake.wait(timeout=wait)
                    continue
                heapq.heappop(self._heap)
            attempt.cut_short("deadline")


_WATCHDOG = _Watchdog()


class Deadlines:
    """The attempts of one transport: each under its deadline, all cut by :meth:`abort`."""

    def __init__(self) -> None:
        self._in_flight: set[Attempt] = set()
        self._lock = threading.Lock()
        self.stopped = threading.Event()

    @contextmanager
    def attempt(self, seconds: float) -> Iterator[Attempt]:
        """Run one attempt on this thread with a deadline ``seconds`` from now.

        Inside another attempt (a token grant run by a request's auth) the deadlines compose: the
        inner one ends by the outer's deadline, and when it ends the outer one is this thread's
        attempt again (it was cleared, and the outer request then read its answer unwatched).
        """
        outer: Attempt | None = getattr(_current, "attempt", None)
        now = time.monotonic()
        attempt = Attempt(now + seconds, outer)
        with self._lock:
            if self.stopped.is_set():
                attempt.cut = "stopped"
            elif outer is not None and (outer.cut not in (None, "done") or outer.deadline_at <= now):
                attempt.cut = outer.cut or "deadline"
            self._in_flight.add(attempt)
        _WATCHDOG.add(attempt)
        _current.attempt = attempt
        try:
            yield attempt
        finally:
            _current.attempt = outer
            attempt.finish()
            with self._lock:
                self._in_flight.discard(attempt)

    def abort(self) -> None:
        """Cut every attempt in flight now, and every later one at its start."""
        with self._lock:
            self.stopped.set()
            in_flight = list(self._in_flight)
        for attempt in in_flight:
            attempt.cut_short("stopped")


def _watch_current(sock: Any) -> None:
    attempt = getattr(_current, "attempt", None)
    if attempt is not None:
        attempt.watch(sock)


class _Watched:
    """Connection mixin: the socket is noted with the thread's attempt.

    It is noted when connected and when an answer is awaited (a pooled keep-alive connection
    connects once and answers many times).
    """

    sock: Any

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _watch_current(self.sock)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _watch_current(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(TCPKeepAliveAdapter):
    """Keep-alive connections whose sockets the attempt deadlines can cut (proxied ones too)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """The keep-alive pool manager, with watched connection pools."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_WATCHED_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """A proxy manager with watched connection pools."""
        manager = HTTPAdapter.proxy_manager_for(self, proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
        return manager
