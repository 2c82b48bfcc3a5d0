"""The sandbox's raw capacity with no injected latency: awards/s and list reads/s, side by side.

The sandbox must never be what limits the provider's benchmarks. This starts a sandbox (a child
process, so the server does not share the GIL with the client) and drives it with simple
concurrent keep-alive clients:

- ``raw``: N asyncio connections speaking minimal HTTP/1.1 (a few microseconds of client CPU per
  request), which shows what the server itself can do;
- ``requests``: N threads with one ``requests.Session`` each, in one process: what one Python
  process using ``requests`` (as the hook does) gets out of it; here the client's GIL is the limit;
- ``requests x2``: the same N threads split over two processes.

Awards are ``POST /v2/transactions/`` with unique ``trans_source_id`` values; reads are
``GET /v2/connections/?business=...&limit=20`` pages. Afterwards the sandbox's ledger must hold
every award that answered 201 exactly once. ``server us/award`` is the sandbox process's CPU time
per award (from ``/proc``): 1,000,000 / it is what one core of the server can do.
Run: ``.venv/bin/python bench/bench_sandbox_capacity.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from perkville_provider.sandbox import seed
from perkville_provider.sandbox.launcher import run_sandbox

TARGET_AWARDS_PER_SECOND = 1000
START_DELAY_SECONDS = 1.5  # lets client processes start before their common start time

# One request, as (method, path, JSON body or None), for worker ``i``'s ``n``-th call.
Request = tuple[str, str, dict | None]


@dataclass(frozen=True)
class Load:
    """What to send, as plain data so a client process can rebuild it: ``awards`` or ``reads``."""

    kind: str
    run: str = "run"

    def request(self, i: int, n: int) -> Request:
        if self.kind == "reads":
            return "GET", f"/v2/connections/?business={seed.BUSINESS_ID}&limit=20", None
        body = {
            "business": seed.BUSINESS_ID,
            "user_email": seed.CUSTOMER_USERNAME,
            "perk": seed.CHECKIN_PERK_ID,
            "trans_source_id": f"bench:{self.run}:{i}:{n}",
        }
        return "POST", "/v2/transactions/", body


@dataclass
class Result:
    requests: int
    seconds: float
    failures: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def _wait_until(start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))


def drive_requests(
    base_url: str,
    token: str,
    workers: int,
    seconds: float,
    load: Load,
    first_worker: int = 0,
    start_at: float = 0,
) -> Result:
    """``workers`` threads, one keep-alive ``requests.Session`` each, for ``seconds``."""
    counts, failures = [0] * workers, [0] * workers
    stop = threading.Event()
    start_line = threading.Barrier(workers + 1)

    def worker(slot: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        start_line.wait()
        while not stop.is_set():
            method, path, body = load.request(first_worker + slot, counts[slot])
            if session.request(method, base_url + path, json=body, timeout=30).status_code >= 300:
                failures[slot] += 1
            counts[slot] += 1

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(workers)]
    for t in threads:
        t.start()
    _wait_until(start_at)
    start_line.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return Result(sum(counts), time.perf_counter() - began, sum(failures))


def drive_requests_in_processes(
    base_url: str, token: str, workers: int, seconds: float, load: Load, processes: int = 2
) -> Result:
    """``drive_requests`` split over ``processes`` processes that start at one agreed time."""
    share = workers // processes
    start_at = time.time() + START_DELAY_SECONDS
    jobs = [(base_url, token, share, seconds, load, p * share, start_at) for p in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.starmap(drive_requests, jobs)
    return Result(
        sum(r.requests for r in results), max(r.seconds for r in results), sum(r.failures for r in results)
    )


def drive_raw(base_url: str, token: str, workers: int, seconds: float, load: Load) -> Result:
    """``workers`` asyncio keep-alive connections speaking minimal HTTP/1.1, for ``seconds``."""
    url = urlsplit(base_url)
    counts, failures = [0] * workers, [0] * workers

    def encode(method: str, path: str, body: dict | None) -> bytes:
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        return head.encode() + payload

    async def worker(i: int, deadline: float) -> None:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        while time.perf_counter() < deadline:
            writer.write(encode(*load.request(i, counts[i])))
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            if int(head[9:12]) >= 300:
                failures[i] += 1
            counts[i] += 1
        writer.close()

    async def run() -> float:
        began = time.perf_counter()
        await asyncio.gather(*(worker(i, began + seconds) for i in range(workers)))
        return time.perf_counter() - began

    elapsed = asyncio.run(run())
    return Result(sum(counts), elapsed, sum(failures))


Driver = Callable[[str, str, int, float, Load], Result]
CLIENTS: dict[str, Driver] = {
    "raw": drive_raw,
    "requests": drive_requests,
    "requests x2": drive_requests_in_processes,
}


def process_cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process (Linux ``/proc``), to report the server's cost per request."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Measurement:
    awards: Result
    reads: Result
    server_us_per_award: float
    exact: bool


def measure(db: str, drive: Driver, workers: int, seconds: float) -> Measurement:
    """Awards then reads against one fresh sandbox; exact when the ledger holds each 201 exactly once."""
    with run_sandbox(db=db) as sandbox:
        token = sandbox.token()
        drive_raw(sandbox.base_url, token, workers, 0.3, Load("awards", "warm-up"))
        cpu_before = process_cpu_seconds(sandbox.process.pid)
        award = drive(sandbox.base_url, token, workers, seconds, Load("awards"))
        server_cpu = process_cpu_seconds(sandbox.process.pid) - cpu_before
        read = drive(sandbox.base_url, token, workers, seconds, Load("reads"))
        ledger = sandbox.admin.ledger()["transactions"]
    ids = [t["trans_source_id"] for t in ledger if t["trans_source_id"].startswith("bench:run:")]
    exact = len(ids) == len(set(ids)) == award.requests - award.failures
    return Measurement(award, read, server_cpu / award.requests * 1e6, exact)


def main() -> None:
    parser = argparse.ArgumentParser(description="Sandbox capacity with latency 0.")
    parser.add_argument("--workers", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    args = parser.parse_args()
    print(
        f"Perkville sandbox capacity: latency 0, {args.workers} keep-alive connections, "
        f"{args.seconds:g}s per figure, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'client':<12} {'database':<9} {'awards/s':>9} {'reads/s':>9} {'reads/awards':>13} "
        f"{'server us/award':>16} {'non-2xx':>8} {'ledger':>7}"
    )
    best = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, drive in CLIENTS.items():
            for label, db in (("memory", ":memory:"), ("file-WAL", os.path.join(tmp, f"{name}.db"))):
                m = measure(db, drive, args.workers, args.seconds)
                best = max(best, m.awards.per_second)
                print(
                    f"{name:<12} {label:<9} {m.awards.per_second:>9.0f} {m.reads.per_second:>9.0f} "
                    f"{m.reads.per_second / m.awards.per_second:>13.2f} {m.server_us_per_award:>16.0f} "
                    f"{m.awards.failures + m.reads.failures:>8} {'exact' if m.exact else 'WRONG':>7}"
                )
    verdict = "met" if best >= TARGET_AWARDS_PER_SECOND else "NOT met"
    print(
        f"target >= {TARGET_AWARDS_PER_SECOND} awards/s: {verdict} "
        f"(best {best:.0f}/s, {best / TARGET_AWARDS_PER_SECOND:.2f}x the target)"
    )


if __name__ == "__main__":
    main()
