"""Browser tests of the Airflow UI (``make test-ui``): one real Airflow for the session, Chromium per test.

Not part of ``make test`` (``tests/ui`` is in ``norecursedirs``). Needs the ``ui`` extra
(playwright) and Debian's ``chromium`` at ``/usr/bin/chromium``; ``playwright install`` is never
used. Screenshots go to ``.artifacts/ui/``.

The runs the tests look at are triggered with explicit logical dates inside the demo data
(check-ins on 2026-11-17..19, America/New_York), so nothing depends on the wall clock.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.ui.stack import REPO_ROOT, RUN_TIMEOUT, Stack, run_stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # No network: every host but this machine is unresolvable (what the tests open elsewhere, the
    # Perkville business link, is watched as a request, never answered by the tests).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
ARTIFACTS = REPO_ROOT / ".artifacts" / "ui"
VIEWPORT = {"width": 1400, "height": 900}
UI_TIMEOUT_MS = 60_000
NAVIGATION_TIMEOUT_MS = 120_000
"""Generous: on a busy 2-core machine Airflow's one API worker can stall for half a minute while
SQLite is locked by the scheduler; a timeout here must mean broken, not slow."""
expect.set_options(timeout=UI_TIMEOUT_MS)

MEMBER_SYNC = "perkville_member_sync"
AWARDS = "perkville_daily_checkin_awards"
FULL_SYNC_LOGICAL_DATE = "2026-11-17T05:00:00Z"
"""Before the first demo check-in (2026-11-17 in New York): every member exists by then."""
AWARDS_LOGICAL_DATE = "2026-11-20T05:00:00Z"
"""Midnight of 2026-11-20 in New York: the run awards 2026-11-19, the last demo day, and re-reads
the three days before it (the lookback), which the demo's first awards run awards too."""
AWARDS_CHUNK_SIZE = 10
"""Small chunks, so that each day's check-ins map to several task instances."""
AWARDS_CONF = {"chunk_size": AWARDS_CHUNK_SIZE, "max_failure_ratio": 0.5}
"""A chunk fails on its own bad rows past the threshold: with ten rows a chunk may hold three of
a day's bad rows (30%), which the run is not about."""
FAILED_CHUNKS_LOGICAL_DATE = "2026-11-20T06:00:00Z"
FAILED_CHUNKS_CONF = {"day": "2026-11-19", "lookback_days": 0, "max_failure_ratio": 0.0, "chunk_size": 5}
"""The awards run's day again, allowing no failure: what the first run settled is skipped, the
invalid rows it met are read again, and their chunks fail on their own."""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # A CI timeout sends SIGTERM: turn it into an interrupt, so that pytest's teardown stops the stack.
    signal.signal(signal.SIGTERM, _interrupt)
    with run_stack(tmp_path_factory.mktemp("airflow-ui")) as running:
        yield running


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def new_page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    return page


@pytest.fixture(scope="session")
def login_state(browser: Browser, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sign in once through the simple auth manager's form with its generated password."""
    state = tmp_path_factory.mktemp("browser") / "state.json"
    context = browser.new_context(viewport=VIEWPORT)
    page = new_page(context)
    page.goto(f"{stack.base_url}/")
    page.get_by_label("Username").fill(stack.username)
    page.get_by_label("Password").fill(stack.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{stack.base_url}/")
    context.storage_state(path=state)
    context.close()
    return state


@pytest.fixture
def page(browser: Browser, login_state: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A signed-in page; on a failure its last view is saved next to the screenshots."""
    context = browser.new_context(viewport=VIEWPORT, storage_state=login_state)
    page = new_page(context)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        page.screenshot(path=ARTIFACTS / f"FAILED-{request.node.name}.png", full_page=True)
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=full_page)
    return path


@dataclass
class DemoRuns:
    """The runs most tests look at, triggered through the REST API as soon as Airflow is up, one
    after the other in a background thread, while the first browser tests run."""

    full_sync: Future[str]
    awards: Future[str]
    failed_chunks: Future[str]


def _run_to_end(
    stack: Stack, dag_id: str, logical_date: str, conf: dict, after: Future | None, expected: str = "success"
) -> str:
    if after is not None:
        after.result()
    run_id = stack.api.trigger(dag_id, logical_date=logical_date, conf=conf)
    state = stack.api.wait_for_run(dag_id, run_id)
    assert state == expected, f"{dag_id} run {run_id} ended {state}"
    return run_id


@pytest.fixture(scope="session", autouse=True)
def demo_runs(stack: Stack) -> Iterator[DemoRuns]:
    """Unpause both DAGs (runs of a paused DAG never start), then: the first load, a member sync
    with ``full_sync``, so that every demo member is in Perkville; then the awards of 2026-11-19
    (and its lookback) in chunks of ten."""
    for dag_id in (MEMBER_SYNC, AWARDS):
        stack.api.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="demo-runs") as pool:
        full_sync = pool.submit(
            _run_to_end, stack, MEMBER_SYNC, FULL_SYNC_LOGICAL_DATE, {"full_sync": True}, None
        )
        awards = pool.submit(_run_to_end, stack, AWARDS, AWARDS_LOGICAL_DATE, AWARDS_CONF, full_sync)
        failed_chunks = pool.submit(
            _run_to_end, stack, AWARDS, FAILED_CHUNKS_LOGICAL_DATE, FAILED_CHUNKS_CONF, awards, "failed"
        )
        yield DemoRuns(full_sync, awards, failed_chunks)


@pytest.fixture
def full_sync_run(demo_runs: DemoRuns) -> str:
    return demo_runs.full_sync.result(timeout=RUN_TIMEOUT)


@pytest.fixture
def awards_run(demo_runs: DemoRuns) -> str:
    return demo_runs.awards.result(timeout=2 * RUN_TIMEOUT)


@pytest.fixture
def failed_chunks_run(demo_runs: DemoRuns) -> str:
    return demo_runs.failed_chunks.result(timeout=3 * RUN_TIMEOUT)
