"""Item 7 of the cluster scenario: one rate budget shared by both Celery workers through the
cluster's Redis (issue 12), measured from the sandbox.

The sandbox limits requests per API client (every worker's own token together) for the item's
run; the run's Perkville connection (``perkville_shared_budget``, created through the REST API)
carries the limit as its budget (``max_requests_per_second``) and ``rate_limit_redis_url`` on the
cluster's Redis, in a database of its own. The figures come from the sandbox's per-second counts
(``/_sandbox/stats/per-second``): the rate it accepted over the run's busy span (from the first to
the last second with awards, the two partial edge seconds left out) and the 429s the limit
answered; exactly once from the ledger.

The goals (at least 90% of the limit, at most 1% answered 429: the bench's 95% and 0.5% less the
cluster's noise) are printed ``meets``/``misses``; the check fails only on failed tasks, loss or
duplicates, or more than 5% answered 429, a budget plainly not shared.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from typing import Any

from cluster_config import SANDBOX_JITTER_MS, SANDBOX_LATENCY_MS, redis_url
from scenario_common import (
    AWARD_TASK,
    AWARDS_DAG,
    RATE_DAY,
    RUN_TIMEOUT,
    Scenario,
    check_day_exactly_once,
    day_bounds,
    sampled_checkins_sql,
    source_day,
)

from perkville_provider.sandbox.connection import airflow_connection

ITEM = "7"
RUN_ID = "day4_shared_budget"
BUDGET_CONN_ID = "perkville_shared_budget"
BUDGET_REDIS_DB = 2
"""The shared budget's Redis database: the cluster's Redis, apart from Celery's 0 and 1."""
LIMIT = 20.0
"""Requests per second the sandbox allows the API client during the item."""
SENDING_SECONDS = 50
"""The day is sampled to about this many seconds of requests at the limit (the item: 60-90 s)."""
CHUNKS = 8
"""As many chunks as the two workers have task slots."""
AWARD_ENDPOINT = "POST /v2/transactions/"
GOAL_SHARE_OF_LIMIT, GOAL_THROTTLED, FAIL_THROTTLED = 0.90, 0.01, 0.05


def create_budget_connection(sc: Scenario) -> None:
    """The sandbox's Perkville connection with the shared budget, in Airflow's metadata database."""
    conn = airflow_connection(
        f"http://127.0.0.1:{sc.state.ports['sandbox']}",
        extra={
            "max_requests_per_second": LIMIT,
            "rate_limit_redis_url": redis_url(sc.state, BUDGET_REDIS_DB),
        },
    )
    body = {"connection_id": BUDGET_CONN_ID, **conn, "extra": json.dumps(conn["extra"])}
    try:
        sc.api.request("POST", "/connections", json=body)
    except RuntimeError:
        # The error's text may echo the body (FastAPI's validation errors do): the secrets stay out.
        raise RuntimeError(f"POST /connections {BUDGET_CONN_ID}: refused (answer withheld)") from None


def item7_shared_rate_budget(sc: Scenario) -> None:
    every_checkin, _ = source_day(RATE_DAY)
    sample_every = max(1, round(len(every_checkin) / (LIMIT * SENDING_SECONDS)))
    sample, _ = source_day(RATE_DAY, sample_every)
    conf = {
        "chunk_size": max(1, math.ceil(len(sample) / CHUNKS)),
        "perkville_conn_id": BUDGET_CONN_ID,
        "checkins_sql": sampled_checkins_sql(sc.api, sample_every),
        # The day alone: the days before it are items 2 to 5's (and the chunks stay CHUNKS).
        "lookback_days": 0,
    }
    create_budget_connection(sc)
    latency = {"latency_ms": SANDBOX_LATENCY_MS, "jitter_ms": SANDBOX_JITTER_MS}
    sc.sandbox.set_faults({**latency, "rate_limit_per_second": LIMIT, "rate_limit_scope": "client"})
    started = time.time()
    try:
        start, end = day_bounds(RATE_DAY)
        sc.api.trigger(AWARDS_DAG, RUN_ID, start, end, conf)
        run = sc.api.wait_for_run(AWARDS_DAG, RUN_ID, RUN_TIMEOUT)
    finally:
        sc.sandbox.set_faults(latency)
    seconds = sc.sandbox.per_second(started, time.time())
    tis = [ti for ti in sc.api.task_instances(AWARDS_DAG, RUN_ID) if ti["task_id"] == AWARD_TASK]
    failed = [ti["map_index"] for ti in tis if ti["state"] != "success" or ti["try_number"] > 1]
    hosts = Counter(ti["hostname"] for ti in tis)
    sc.check(
        ITEM,
        "shared budget run, every chunk on its first try",
        run["state"] == "success" and not failed,
        f"run {run['state']}; {len(sample)} check-ins (every {sample_every}th of {len(every_checkin)}) "
        f"in {len(tis)} chunks: "
        + ", ".join(f"{h} {n}" for h, n in sorted(hosts.items()))
        + f"; {len(failed)} failed or retried",
    )
    check_rate_at_sandbox(sc, seconds)
    check_day_exactly_once(sc, ITEM, RATE_DAY, sc.sandbox.ledger(), sample_every)


def check_rate_at_sandbox(sc: Scenario, seconds: list[dict[str, Any]]) -> None:
    """The rate the sandbox accepted over the busy span against the limit, and the 429 share."""
    statuses: Counter[str] = Counter()
    for entry in seconds:
        for by_status in entry["requests"].values():
            statuses.update(by_status)
    throttled, answered = statuses["429"], sum(statuses.values())
    share_429 = throttled / max(1, answered)
    rate, span = busy_span_rate(seconds)
    share = rate / LIMIT
    sc.check(
        ITEM,
        "rate at the sandbox, budget shared through Redis",
        share_429 <= FAIL_THROTTLED,
        f"aggregate {rate:.1f} req/s over {span} s = {share:.0%} of the {LIMIT:g}/s limit "
        f"({_goal(share >= GOAL_SHARE_OF_LIMIT)} >= {GOAL_SHARE_OF_LIMIT:.0%}), "
        f"{throttled:,} of {answered:,} answered 429 ({share_429:.1%}; "
        f"{_goal(share_429 <= GOAL_THROTTLED)} <= {GOAL_THROTTLED:.0%}, fails over {FAIL_THROTTLED:.0%})",
    )


def busy_span_rate(seconds: list[dict[str, Any]]) -> tuple[float, int]:
    """Requests/s the sandbox accepted (every endpoint: the limit counts them all) over the full
    seconds between the first and the last second with awards; and that span in seconds."""
    awarding = [entry["second"] for entry in seconds if AWARD_ENDPOINT in entry["requests"]]
    if len(awarding) < 3:
        return 0.0, 0
    first, last = awarding[0], awarding[-1]
    accepted = sum(
        count
        for entry in seconds
        if first < entry["second"] < last
        for by_status in entry["requests"].values()
        for status, count in by_status.items()
        if status != "429"
    )
    span = last - first - 1
    return accepted / span, span


def _goal(met: bool) -> str:
    return "meets" if met else "misses"
