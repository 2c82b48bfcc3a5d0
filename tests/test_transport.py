"""transport.py on its own: which failures may have reached the server, and the limiter's schedule.

``_never_sent`` decides whether a write whose answer was lost may have been applied, so it is
tested against real loopback sockets: a refused connection, a server that drops the request, a
server that never answers. The limiter is tested through an injected clock: what it schedules,
never how long anything took.
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from perkville_provider.exceptions import PerkvilleConfigurationError
from perkville_provider.network_errors import never_sent as _never_sent
from perkville_provider.transport import RateLimiter


def _error_of(url: str, *, timeout: float = 2.0) -> requests.RequestException:
    with pytest.raises(requests.RequestException) as info:
        requests.get(url, timeout=timeout)
    return info.value


@pytest.fixture
def listening() -> Iterator[tuple[socket.socket, str]]:
    """A loopback socket that accepts connections; what it does with them is up to the test."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    yield server, f"http://127.0.0.1:{server.getsockname()[1]}/"
    server.close()


def test_a_refused_connection_was_never_sent():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # free now, closed below: nothing listens there
    error = _error_of(f"http://127.0.0.1:{port}/")
    assert isinstance(error, requests.ConnectionError)
    assert _never_sent(error) is True


def test_a_connect_timeout_was_never_sent():
    assert _never_sent(requests.ConnectTimeout("connect timed out")) is True


def test_a_request_dropped_after_it_was_read_may_have_been_applied(listening):
    server, url = listening

    def read_then_drop() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    thread = threading.Thread(target=read_then_drop, daemon=True)
    thread.start()
    error = _error_of(url)
    thread.join(5)
    assert isinstance(error, requests.ConnectionError)
    assert _never_sent(error) is False


def test_a_request_without_an_answer_may_have_been_applied(listening):
    server, url = listening
    accepted = threading.Event()

    def read_and_wait() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            accepted.wait(5)

    thread = threading.Thread(target=read_and_wait, daemon=True)
    thread.start()
    error = _error_of(url, timeout=0.3)
    accepted.set()
    thread.join(5)
    assert isinstance(error, requests.ReadTimeout)
    assert _never_sent(error) is False


class FakeClock:
    """A clock that moves only when the limiter sleeps (or the test says time passed)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_limiter_spaces_starts_evenly_a_little_under_the_limit():
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(4):
        limiter.acquire()
        starts.append(clock.now)
    interval = 1 / (10 * RateLimiter.HEADROOM)
    assert clock.sleeps == pytest.approx([interval] * 3)
    assert [later - earlier for earlier, later in itertools.pairwise(starts)] == pytest.approx([interval] * 3)
    assert interval > 1 / 10


def test_the_limiter_lets_a_request_start_at_once_after_a_quiet_spell():
    clock = FakeClock()
    limiter = RateLimiter(2, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 5.0
    limiter.acquire()
    assert clock.sleeps == []


def test_the_limiter_is_shared_by_threads_without_two_starts_in_one_slot():
    clock = FakeClock()
    lock = threading.Lock()
    scheduled: list[float] = []

    def record(seconds: float) -> None:
        with lock:
            scheduled.append(seconds)

    limiter = RateLimiter(5, clock=clock, sleep=record)
    threads = [threading.Thread(target=limiter.acquire) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    interval = 1 / (5 * RateLimiter.HEADROOM)
    assert sorted(scheduled) == pytest.approx([interval * n for n in range(1, 6)])


@pytest.mark.parametrize("rate", [0, -1])
def test_a_limit_that_is_not_positive_is_a_configuration_error(rate):
    with pytest.raises(PerkvilleConfigurationError, match="max_requests_per_second must be positive"):
        RateLimiter(rate)
