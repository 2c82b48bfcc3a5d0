"""The perkville.* metrics, received by a StatsD server of the test's own, against the sandbox's counts."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from perkville_provider import metrics
from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator
from tests.helpers.operator_runs import TaskInstanceStub

LINE = re.compile(r"^airflow\.(?P<name>[^,:]+)(?P<tags>(,[^,:=]+=[^,:]*)*):(?P<value>[-\d.]+)\|(?P<kind>\w+)")


class StatsdServer:
    """A StatsD server on 127.0.0.1: every line it receives, parsed, until closed."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.lines: list[dict[str, object]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                packet = self.socket.recv(65535)
            except TimeoutError:
                continue
            for line in packet.decode().splitlines():
                match = LINE.match(line)
                if match:
                    tags = dict(tag.split("=", 1) for tag in match["tags"].split(",") if tag)
                    self.lines.append(
                        {
                            "name": match["name"],
                            "tags": tags,
                            "value": float(match["value"]),
                            "kind": match["kind"],
                        }
                    )

    def total(self, name: str) -> float:
        return sum(float(line["value"]) for line in self.lines if line["name"] == name)

    def names(self) -> set[str]:
        return {str(line["name"]) for line in self.lines}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.socket.close()


@pytest.fixture
def statsd(monkeypatch: pytest.MonkeyPatch) -> Iterator[StatsdServer]:
    """Airflow's Stats of this process sending to a StatsD server of the test's (as a task runner would)."""
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    server = StatsdServer()
    for name, value in {
        "STATSD_ON": "True",
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": str(server.port),
        "STATSD_PREFIX": "airflow",
        "STATSD_INFLUXDB_ENABLED": "True",
    }.items():
        monkeypatch.setenv(f"AIRFLOW__METRICS__{name}", value)
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
    try:
        yield server
    finally:
        from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger

        stats.initialize(factory=NoStatsLogger, export_legacy_names=False)
        server.close()


AWARDS = [{"trans_source_id": f"METRIC:{n}", "user_email": "casey@example.com"} for n in range(40)]
BAD = [{"trans_source_id": "METRIC:bad", "user_email": "not-an-email"}]
UNKNOWN = [{"trans_source_id": "METRIC:unknown", "user_email": "nobody-here@example.com"}]


def _sandbox_429s(sandbox) -> int:
    return sum(int(by_status.get("429", 0)) for by_status in sandbox.admin.stats()["requests"].values())


@pytest.mark.soak  # 429s answered with Retry-After 1: a few seconds of waits
def test_the_counters_match_the_run_and_the_sandbox_counts_the_same_429s(sandbox, statsd):
    before_429 = _sandbox_429s(sandbox)
    sandbox.admin.set_faults(throttle_rate=0.15, seed=3)
    operator = PerkvilleAwardPointsOperator(
        task_id="award", awards=AWARDS + BAD + UNKNOWN, perk_id=502, max_workers=4, max_failure_ratio=1.0
    )

    summary = operator.execute({"ti": TaskInstanceStub()})

    sandbox.admin.clear_faults()
    time.sleep(0.3)  # the last datagrams
    throttled = _sandbox_429s(sandbox) - before_429
    assert throttled > 0, "the seed must answer some requests 429"
    assert statsd.total("perkville.rate_limited") == throttled
    assert statsd.total("perkville.records.awarded") == summary["awarded"] > 0
    assert statsd.total("perkville.records.invalid") == summary["invalid"] == 1
    assert statsd.total("perkville.records.failed") == summary["failed"]
    assert statsd.total("perkville.points_awarded") == summary["points"] > 0
    assert statsd.total("perkville.requests.transactions.2xx") >= summary["awarded"]
    assert sum(statsd.total(name) for name in statsd.names() if name.endswith(".4xx")) >= throttled
    assert any(line["name"] == "perkville.request_duration.transactions" for line in statsd.lines)
    awarded = next(line for line in statsd.lines if line["name"] == "perkville.records.awarded")
    assert awarded["tags"] == {"dag": operator.dag_id, "task": "award", "business": "9823"}


def test_nothing_is_sent_outside_a_task_or_without_a_backend(statsd):
    metrics.record("awarded", {"points": 5})
    with metrics.task_scope(dag_id="d", task_id="t", business_id=1):
        metrics.record("awarded", {"points": 5})
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability import stats

    stats.initialize(factory=NoStatsLogger, export_legacy_names=False)
    with metrics.task_scope(dag_id="d", task_id="t", business_id=1):
        assert metrics._stats is None
        metrics.record("awarded", {"points": 5})
    time.sleep(0.3)
    assert statsd.total("perkville.records.awarded") == 1
    assert statsd.total("perkville.points_awarded") == 5


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/v2/transactions/", "transactions"),
        ("/v2/connections/12/", "connections"),
        ("/v2/external-members/", "external_members"),
        ("/api/token/", "api_token"),
        ("/", "other"),
    ],
)
def test_a_request_path_names_its_endpoint_without_ids(path, endpoint):
    assert metrics.endpoint_of(path) == endpoint


def test_status_classes():
    assert [metrics.status_class(s) for s in (200, 301, 429, 503, None)] == [
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "network",
    ]
