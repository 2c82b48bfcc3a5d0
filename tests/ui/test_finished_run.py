"""A finished awards run in the UI: the mapped chunks, their logs, the report, the extra link."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import AWARDS, MEMBER_SYNC, screenshot
from tests.ui.stack import Stack

AWARD_TASK = "award_checkin_points"
BUSINESS_URL = "https://www.perkville.com/biz/9823/"


def run_url(stack: Stack, dag_id: str, run_id: str) -> str:
    return f"{stack.base_url}/dags/{dag_id}/runs/{quote(run_id)}"


def staged_chunks(stack: Stack, run_id: str) -> list[str]:
    """The chunk files the run's extract staged (its XCom holds only their names)."""
    return xcom(stack, run_id, "extract_checkin_awards")


def mapped_indexes(stack: Stack, run_id: str) -> list[int]:
    return sorted(
        ti["map_index"] for ti in stack.api.task_instances(AWARDS, run_id) if ti["task_id"] == AWARD_TASK
    )


def log_view(page: Page):
    """The log panel of a task instance page (its Logs tab is the default)."""
    view = page.get_by_role("code").first
    expect(view).to_contain_text("Post Execute")
    return view


def test_grid_shows_the_mapped_chunks(page: Page, stack: Stack, awards_run: str) -> None:
    indexes = mapped_indexes(stack, awards_run)
    chunks = staged_chunks(stack, awards_run)
    assert len(chunks) > 1, "the window's check-ins in chunks of 10"
    assert indexes == list(range(len(chunks))), "one mapped task instance per staged chunk"
    page.goto(run_url(stack, AWARDS, awards_run))
    expect(page.get_by_text("award_checkin_points [ ]")).to_be_visible()  # the grid's mapped row
    for index in indexes:
        link = page.get_by_role("link", name=str(index), exact=True)
        expect(link).to_have_attribute(
            "href", f"/dags/{AWARDS}/runs/{awards_run}/tasks/{AWARD_TASK}/mapped/{index}"
        )
    task_instances = len(stack.api.task_instances(AWARDS, awards_run))
    expect(page.get_by_role("heading", name=f"{task_instances} Task Instances")).to_be_visible()
    screenshot(page, "run-grid")


def test_a_chunk_log_shows_its_summary_table(page: Page, stack: Stack, awards_run: str) -> None:
    summary = xcom(stack, awards_run, AWARD_TASK, map_index=1)
    page.goto(f"{run_url(stack, AWARDS, awards_run)}/tasks/{AWARD_TASK}/mapped/1")
    view = log_view(page)
    expect(view).to_contain_text("Summary: Perkville award_points")
    for outcome in ("total", "awarded", "duplicate", "daily_limited", "invalid", "failed"):
        expect(view).to_contain_text(f"{outcome} {summary[outcome]}")
    total = summary["total"]  # staged: the total is known from the start
    expect(view).to_contain_text(f"award_points: 0/{total} records (0%), starting")
    expect(view).to_contain_text(f"award_points: {total}/{total} (100%) records in")
    screenshot(page, "chunk-log")


def test_the_report_log_shows_the_days_table(page: Page, stack: Stack, awards_run: str) -> None:
    merged = xcom(stack, awards_run, "report")
    chunks = range(len(staged_chunks(stack, awards_run)))
    assert merged["total"] == sum(xcom(stack, awards_run, AWARD_TASK, map_index=i)["total"] for i in chunks)
    page.goto(f"{run_url(stack, AWARDS, awards_run)}/tasks/report")
    view = log_view(page)
    own_day = merged["own_day"]
    expect(view).to_contain_text(f"Awarded day {merged['day']}")
    expect(view).to_contain_text(" ".join(["day", *own_day, "skipped_known"]))  # the table's header
    expect(view).to_contain_text(" ".join([merged["day"], "own", *map(str, own_day.values())]))
    screenshot(page, "report-log")
    # The run's counts across its tries, on the report and on the Asset event a downstream DAG reads.
    assert merged["run"]["awarded"] == sum(
        xcom(stack, awards_run, AWARD_TASK, map_index=i)["awarded"] for i in chunks
    ), "one try each: the run added what the chunks awarded"
    assert merged["tries"]["1"]["total"] == merged["total"]
    events = stack.api.call("GET", "/assets/events", params={"source_run_id": awards_run})["asset_events"]
    (event,) = [e for e in events if e["uri"] == "perkville://api.perkville.com/business/9823/transactions"]
    assert event["extra"]["run"] == merged["run"]
    assert event["extra"]["tries"] == merged["tries"]


@pytest.mark.parametrize(
    ("dag_id", "task_path"),
    [(AWARDS, f"{AWARD_TASK}/mapped/1"), (MEMBER_SYNC, "sync_members")],
    ids=["mapped-award-chunk", "member-sync"],
)
def test_perkville_business_link_opens_the_business(
    page: Page, stack: Stack, awards_run: str, full_sync_run: str, dag_id: str, task_path: str
) -> None:
    """Airflow 3.3 lists a task instance's extra links on its Details tab."""
    run_id = awards_run if dag_id == AWARDS else full_sync_run
    page.goto(f"{run_url(stack, dag_id, run_id)}/tasks/{task_path}/details")
    link = page.get_by_role("link", name="Perkville business")
    expect(link).to_have_attribute("href", BUSINESS_URL)
    screenshot(page, f"extra-link-{dag_id}")
    # The page it opens is watched, not answered: the browser resolves no host but this machine
    # (CHROMIUM_ARGS), so the request leaves for perkville.com and fails there.
    with page.context.expect_event("request", lambda request: request.url == BUSINESS_URL) as opened:
        link.click()
    assert opened.value.url == BUSINESS_URL


def xcom(stack: Stack, run_id: str, task_id: str, map_index: int = -1) -> dict:
    entry = stack.api.call(
        "GET",
        f"/dags/{AWARDS}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
        params={"map_index": map_index, "deserialize": "true"},
    )
    return entry["value"]


def test_a_chunk_over_the_threshold_is_red_and_the_report_still_adds_up_the_run(
    page: Page, stack: Stack, failed_chunks_run: str
) -> None:
    """Rows that cannot be awarded fail their chunk (not only the report); the log groups them."""
    states = {
        ti["map_index"]: ti["state"]
        for ti in stack.api.task_instances(AWARDS, failed_chunks_run)
        if ti["task_id"] == AWARD_TASK
    }
    failed = sorted(index for index, state in states.items() if state == "failed")
    assert failed, states
    report = [ti for ti in stack.api.task_instances(AWARDS, failed_chunks_run) if ti["task_id"] == "report"]
    # It ran after the failed chunks (it judges only the days no earlier run covered: none here).
    assert [ti["state"] for ti in report] in (["success"], ["failed"]), report
    page.goto(run_url(stack, AWARDS, failed_chunks_run))
    expect(page.get_by_text("award_checkin_points [ ]")).to_be_visible()
    screenshot(page, "failed-chunk-grid")

    page.goto(f"{run_url(stack, AWARDS, failed_chunks_run)}/tasks/{AWARD_TASK}/mapped/{failed[0]}")
    view = page.get_by_role("code").first
    expect(view).to_contain_text("failures by code (count, first keys: one message)")
    expect(view).to_contain_text(re.compile(r"award_points: 0/\d+ records \(0%\), starting"))
    expect(view).to_contain_text(re.compile(r"award_points: (\d+)/\1 \(100%\) records in"))
    screenshot(page, "failed-chunk-log")

    page.goto(f"{run_url(stack, AWARDS, failed_chunks_run)}/tasks/report")
    view = page.get_by_role("code").first
    expect(view).to_contain_text("this run across its tries (what it added to the ledger)")
