"""Each example DAG's trigger form: its Params, the defaults, no logical date, bad Params."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.ui.conftest import AWARDS, MEMBER_SYNC, screenshot
from tests.ui.stack import Stack

PICKER_CLOSES_MS = 5_000
NO_LOGICAL_DATE_DAY = "2026-11-19"
"""Without a logical date the awards DAG awards yesterday by the wall clock, far from the demo data
(and, weeks after the demo runs, past the catch-up bound, a gap it fails on by design: see
``tests/dags_e2e/test_awards_never_skip.py``); the form's "Day to award" keeps the test inside it."""
DEFAULT_RUN_DATES = {
    # UTC date and time typed into the form's Logical Date: inside the demo data, never "now".
    MEMBER_SYNC: ("2026/11/18", "05:00"),
    AWARDS: ("2026/11/19", "05:00"),  # midnight in New York: awards 2026-11-18
}


def open_trigger_form(page: Page, stack: Stack, dag_id: str) -> Locator:
    page.goto(f"{stack.base_url}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger Dag").click()
    form = page.get_by_role("dialog").filter(has_text=f"Trigger Dag - {dag_id}")
    expect(form).to_be_visible()
    return form


def set_logical_date(page: Page, form: Locator, date_time: tuple[str, str] | None) -> None:
    """Type a UTC date and time into the Logical Date picker, or clear it (``None``)."""
    form.get_by_test_id("datetime-input").click()
    picker = page.get_by_role("dialog").filter(has=page.get_by_role("textbox", name="Logical Date"))
    if date_time is None:
        picker.get_by_role("button", name="Clear start date").click()
        # Clearing closes the picker by itself: an Escape then would close the trigger form too.
        try:
            picker.wait_for(state="hidden", timeout=PICKER_CLOSES_MS)
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
    else:
        picker.get_by_role("textbox", name="Logical Date").fill(date_time[0])
        picker.get_by_role("textbox", name="HH:mm").fill(date_time[1])
        page.keyboard.press("Escape")
    expect(picker).to_be_hidden()


def param_group(form: Locator, title: str) -> Locator:
    """A Param's field group in the form: its label, input and description."""
    label = form.page.locator("label").filter(has_text=re.compile(rf"^{re.escape(title)}\W*$"))
    return form.get_by_role("group").filter(has=label).first


def param_field(form: Locator, title: str) -> Locator:
    return param_group(form, title).locator("input, textarea").first


def press_trigger(page: Page, form: Locator) -> dict[str, Any]:
    """Press Trigger; the new run as the API answered the form."""
    with page.expect_response(
        lambda answer: answer.request.method == "POST" and answer.url.endswith("/dagRuns")
    ) as answer:
        form.get_by_role("button", name="Trigger", exact=True).click()
    assert answer.value.ok, answer.value.text()
    return answer.value.json()


def declared_params(stack: Stack, dag_id: str) -> dict[str, dict[str, Any]]:
    """The DAG's Params as Airflow serialised them: each one's schema holds its title and description."""
    return {
        name: param["schema"]
        for name, param in stack.api.call("GET", f"/dags/{dag_id}/details")["params"].items()
    }


@pytest.mark.parametrize("dag_id", [MEMBER_SYNC, AWARDS])
def test_trigger_form_shows_every_param_with_title_and_description(
    page: Page, stack: Stack, dag_id: str
) -> None:
    params = declared_params(stack, dag_id)
    assert params, dag_id
    form = open_trigger_form(page, stack, dag_id)
    for name, schema in params.items():
        assert schema.get("title"), f"{dag_id}: Param {name} has no title"
        field = param_group(form, schema["title"])
        expect(field).to_be_visible()
        if schema.get("description"):
            expect(field).to_contain_text(schema["description"])
    screenshot(page, f"trigger-form-{dag_id}")


@pytest.mark.parametrize("dag_id", [MEMBER_SYNC, AWARDS])
def test_trigger_with_the_defaults_succeeds(
    page: Page, stack: Stack, full_sync_run: str, dag_id: str
) -> None:
    form = open_trigger_form(page, stack, dag_id)
    set_logical_date(page, form, DEFAULT_RUN_DATES[dag_id])
    run = press_trigger(page, form)
    date, time = DEFAULT_RUN_DATES[dag_id]
    assert run["logical_date"].startswith(f"{date.replace('/', '-')}T{time}"), run["logical_date"]
    assert stack.api.wait_for_run(dag_id, run["dag_run_id"]) == "success"


@pytest.mark.parametrize("dag_id", [MEMBER_SYNC, AWARDS])
def test_trigger_without_a_logical_date_succeeds(
    page: Page, stack: Stack, full_sync_run: str, dag_id: str
) -> None:
    form = open_trigger_form(page, stack, dag_id)
    set_logical_date(page, form, None)
    expect(form.get_by_test_id("datetime-input")).not_to_contain_text("2026")
    if dag_id == AWARDS:
        param_field(form, "Day to award").fill(NO_LOGICAL_DATE_DAY)
    run = press_trigger(page, form)
    assert run["logical_date"] is None
    assert stack.api.wait_for_run(dag_id, run["dag_run_id"]) == "success"
    if dag_id == AWARDS:
        assert run["conf"]["day"] == NO_LOGICAL_DATE_DAY


def test_chunk_size_zero_is_refused_by_the_form_and_the_api(page: Page, stack: Stack) -> None:
    form = open_trigger_form(page, stack, AWARDS)
    chunk_size = form.get_by_role("spinbutton", name="Awards per mapped task")
    chunk_size.fill("0")
    page.keyboard.press("Tab")
    expect(chunk_size).to_have_value("1")  # the form holds it to the Param's minimum
    screenshot(page, "trigger-form-chunk-size-zero")

    # The REST API (and so the CLI) refuses it, naming the Param, and creates no run.
    runs_before = stack.api.call("GET", f"/dags/{AWARDS}/dagRuns")["total_entries"]
    answer = stack.api.session.post(
        f"{stack.base_url}/api/v2/dags/{AWARDS}/dagRuns",
        json={"logical_date": "2026-11-17T05:00:00Z", "conf": {"chunk_size": 0}},
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert "chunk_size" in answer.text
    assert stack.api.call("GET", f"/dags/{AWARDS}/dagRuns")["total_entries"] == runs_before


def test_unknown_timezone_fails_the_run_at_once_naming_the_param(
    page: Page, stack: Stack, full_sync_run: str
) -> None:
    form = open_trigger_form(page, stack, AWARDS)
    set_logical_date(page, form, ("2026/11/18", "05:00"))  # a day no other test runs
    param_field(form, "Business timezone").fill("Mars/Olympus_Mons")
    run = press_trigger(page, form)
    # "At once": failed, not up for a retry (retries could never fix a bad Param).
    assert stack.api.wait_for_run(AWARDS, run["dag_run_id"], or_retry=True) == "failed"
    failed = [ti for ti in stack.api.task_instances(AWARDS, run["dag_run_id"]) if ti["state"] == "failed"]
    # The report runs once every upstream ended (to sum failed chunks too): it fails with no plan.
    assert sorted(ti["task_id"] for ti in failed) == ["extract_checkin_awards", "report"]
    log = stack.api.log(AWARDS, run["dag_run_id"], "extract_checkin_awards")
    assert "business_timezone" in log
    assert "Mars/Olympus_Mons" in log
