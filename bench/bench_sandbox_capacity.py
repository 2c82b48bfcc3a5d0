"""The sandbox's raw capacity with no injected latency: awards/s and list reads/s, side by side.

The sandbox must never be what limits the provider's benchmarks. This starts a sandbox (a child
process, so the server does not share the GIL with the client) and drives it with two simple
concurrent keep-alive clients:

- ``raw``: N asyncio connections speaking minimal HTTP/1.1 (a few microseconds of client CPU per
  request), which shows what the server itself can do;
- ``requests``: N threads with one ``requests.Session`` each, which shows what one Python process
  using ``requests`` (as the hook does) can get out of it; on 2 cores this client is the limit.

Awards are ``POST /v2/transactions/`` with unique ``trans_source_id`` values; reads are
``GET /v2/connections/?business=...&limit=20`` pages. Afterwards the sandbox's ledger must hold
every award that answered 201 exactly once. Run: ``.venv/bin/python bench/bench_sandbox_capacity.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from perkville_provider.sandbox.server import SandboxHandle, run_sandbox

TARGET_AWARDS_PER_SECOND = 1000
CHECKIN_PERK_ID = 501

# One request, as (method, path, JSON body or None), for worker ``i``'s ``n``-th call.
RequestFactory = Callable[[int, int], tuple[str, str, dict | None]]


@dataclass
class Result:
    requests: int
    seconds: float
    failures: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def awards(sandbox: SandboxHandle, run: str) -> RequestFactory:
    def make(i: int, n: int) -> tuple[str, str, dict | None]:
        body = {
            "business": sandbox.business_id,
            "user_email": sandbox.customer_username,
            "perk": CHECKIN_PERK_ID,
            "trans_source_id": f"bench:{run}:{i}:{n}",
        }
        return "POST", "/v2/transactions/", body

    return make


def reads(sandbox: SandboxHandle) -> RequestFactory:
    path = f"/v2/connections/?business={sandbox.business_id}&limit=20"
    return lambda i, n: ("GET", path, None)


def drive_requests(
    base_url: str, token: str, workers: int, seconds: float, factory: RequestFactory
) -> Result:
    """N threads, one keep-alive ``requests.Session`` each, for ``seconds``."""
    counts, failures = [0] * workers, [0] * workers
    stop = threading.Event()
    start_line = threading.Barrier(workers + 1)

    def worker(i: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        start_line.wait()
        while not stop.is_set():
            method, path, body = factory(i, counts[i])
            if session.request(method, base_url + path, json=body, timeout=30).status_code >= 300:
                failures[i] += 1
            counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    start_line.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return Result(sum(counts), time.perf_counter() - began, sum(failures))


def drive_raw(base_url: str, token: str, workers: int, seconds: float, factory: RequestFactory) -> Result:
    """N asyncio keep-alive connections speaking minimal HTTP/1.1, for ``seconds``."""
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
            writer.write(encode(*factory(i, counts[i])))
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


CLIENTS = {"raw": drive_raw, "requests": drive_requests}


def measure(db: str, client: str, workers: int, seconds: float) -> tuple[Result, Result, bool]:
    """Awards then reads against one fresh sandbox; True when the ledger holds each 201 exactly once."""
    drive = CLIENTS[client]
    with run_sandbox(db=db) as sandbox:
        token = sandbox.token()
        drive(sandbox.base_url, token, workers, 0.3, awards(sandbox, "warm-up"))
        award = drive(sandbox.base_url, token, workers, seconds, awards(sandbox, "run"))
        read = drive(sandbox.base_url, token, workers, seconds, reads(sandbox))
        ledger = sandbox.admin.ledger()["transactions"]
    ids = [t["trans_source_id"] for t in ledger if t["trans_source_id"].startswith("bench:run:")]
    exact = len(ids) == len(set(ids)) == award.requests - award.failures
    return award, read, exact


def main() -> None:
    parser = argparse.ArgumentParser(description="Sandbox capacity with latency 0.")
    parser.add_argument("--workers", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    args = parser.parse_args()
    print(
        f"Perkville sandbox capacity: latency 0, {args.workers} keep-alive connections, "
        f"{args.seconds:g}s per figure, {os.cpu_count()} CPUs"
    )
    print(
        f"{'client':<9} {'database':<9} {'awards/s':>9} {'reads/s':>9} "
        f"{'reads/awards':>13} {'non-2xx':>8} {'ledger':>7}"
    )
    best = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for client in CLIENTS:
            for label, db in (("memory", ":memory:"), ("file-WAL", os.path.join(tmp, f"{client}.db"))):
                award, read, exact = measure(db, client, args.workers, args.seconds)
                best = max(best, award.per_second)
                print(
                    f"{client:<9} {label:<9} {award.per_second:>9.0f} {read.per_second:>9.0f} "
                    f"{read.per_second / award.per_second:>13.2f} {award.failures + read.failures:>8} "
                    f"{'exact' if exact else 'WRONG':>7}"
                )
    verdict = "met" if best >= TARGET_AWARDS_PER_SECOND else "NOT met"
    print(
        f"target >= {TARGET_AWARDS_PER_SECOND} awards/s: {verdict} (best {best:.0f}/s, "
        f"{best / TARGET_AWARDS_PER_SECOND:.2f}x)"
    )


if __name__ == "__main__":
    main()
