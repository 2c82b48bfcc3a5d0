"""Probes of pace: rate-limit headers and latency.

The server's rate-limit headers, and the round-trip latency of a few reads with the
``max_workers`` it implies.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import Any

from perkville_provider.batch import DEFAULT_MAX_WORKERS
from perkville_provider.doctor.findings import DIFFERS, HOLDS, NOT_SEEN, Finding
from perkville_provider.doctor.prober import Prober
from perkville_provider.rate_budget import RateBudget

__all__ = ["probe_latency", "probe_rate_headers"]

_LATENCY_READS = 6
_MAX_SUGGESTED_WORKERS = 64


def probe_rate_headers(p: Prober) -> None:
    """The rate-limit headers the server sent on any answer (none: the hook adapts to 429s)."""
    seen: dict[str, str] = {}
    for exchange in p.guard.exchanges:
        seen.update(exchange.rate_headers)
    if not seen:
        p.report.add(Finding("rate.headers", "rate-limit headers", "none on any answer", HOLDS))
        return
    shown = ", ".join(f"{name}: {value}" for name, value in sorted(seen.items()))
    p.report.add(
        Finding(
            "rate.headers",
            "rate-limit headers",
            shown,
            DIFFERS,
            advice="set max_requests_per_second to the budget they state",
        )
    )


def probe_latency(p: Prober, conn_id: str, extras: Mapping[str, Any]) -> None:
    """p50/p95 of a few reads, and the ``max_workers`` that fills the connection's budget."""
    api = p.hook.conventions()
    path = api.detail_path("businesses", p.business_id) if p.business_id else api.path("users_me")
    start = len(p.guard.exchanges)
    for _ in range(_LATENCY_READS):
        p.get(path)
    times = sorted(e.seconds for e in p.guard.exchanges[start:] if e.status == 200)
    if not times:
        p.report.add(Finding("latency", "round-trip latency", f"GET {path} did not answer 200", NOT_SEEN))
        return
    p50 = statistics.median(times)
    p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
    budget = RateBudget.from_extras(conn_id, extras).max_requests_per_second
    seen = f"{len(times)} x GET {path}: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
    if budget:
        workers = max(1, min(_MAX_SUGGESTED_WORKERS, math.ceil(budget * p95)))
        advice = f"max_workers={workers} fills max_requests_per_second={budget:g} at p95"
    else:
        per_worker = 1 / max(p50, 1e-3)
        advice = (
            f"one worker makes ~{per_worker:.0f} req/s; max_workers={DEFAULT_MAX_WORKERS} (default) "
            f"~{per_worker * DEFAULT_MAX_WORKERS:.0f} req/s before any rate limit"
        )
    p.report.add(Finding("latency", "round-trip latency", seen, HOLDS, advice=advice))
