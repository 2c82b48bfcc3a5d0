"""Admin -> Connections -> Add, type Perkville: the form, saving it, and its Test button."""

from __future__ import annotations

import contextlib
import json

import pytest
import requests
from playwright.sync_api import Locator, Page, Route, expect

from perkville_provider.sandbox import seed
from tests.ui.conftest import screenshot
from tests.ui.stack import Stack

CONN_ID = "perkville_from_the_form"
EXTRA_FIELDS = {
    "Client ID": "API client id from Perkville's registration.",
    "Client secret": "API client secret from Perkville's registration.",
    "Token": "A pre-issued long-lived token",
    "Token URL": "OAuth token endpoint",
    "Business ID": "Default business for every call that does not name one.",
    "Scope": "Space-separated scopes to request",
    "Timeout (s)": "Read timeout in seconds",
}
SECRET_EXTRAS = ("Client secret", "Token")


def open_add_form(page: Page, stack: Stack) -> Locator:
    page.goto(f"{stack.base_url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    form = page.get_by_role("dialog")
    form.get_by_role("combobox", name="Connection Type").click()
    page.get_by_role("option", name="Perkville", exact=True).click()
    return form


def extra_field(form: Locator, label: str) -> Locator:
    """An extra's input, found through its visible label (Airflow does not tie the two for a11y)."""
    group = form.get_by_role("group").filter(has=form.page.get_by_text(label, exact=True))
    return group.locator("input, textarea").first


def test_perkville_form_has_labelled_fields_and_masked_secrets(page: Page, stack: Stack) -> None:
    form = open_add_form(page, stack)
    for label, placeholder in (
        ("API base URL", "https://api.perkville.com"),
        ("Staff username (email)", "staff@your-business.com"),
    ):
        expect(form.get_by_label(label, exact=True)).to_have_attribute("placeholder", placeholder)
    expect(form.get_by_label("Staff password", exact=True)).to_have_attribute("type", "password")
    for hidden in ("Schema", "Port"):
        expect(form.get_by_label(hidden, exact=True)).to_have_count(0)

    form.get_by_role("button", name="Extra Fields", exact=True).click()
    for label, description in EXTRA_FIELDS.items():
        expect(form.get_by_text(label, exact=True)).to_be_visible()
        expect(form.get_by_text(description, exact=False)).to_be_visible()
        field = extra_field(form, label)
        expect(field).to_be_visible()
        assert (field.get_attribute("type") == "password") == (label in SECRET_EXTRAS), label
    screenshot(page, "connection-form-extras")


def test_connection_saved_through_the_form_tests_ok_and_says_why_when_not(page: Page, stack: Stack) -> None:
    page.route("**/api/v2/connections/test", send_no_port_for_portless_connection)
    form = open_add_form(page, stack)
    form.get_by_label("Connection ID").fill(CONN_ID)
    form.get_by_label("API base URL").fill(stack.sandbox_url)
    form.get_by_label("Staff username (email)").fill(seed.ADMIN_USERNAME)
    form.get_by_label("Staff password").fill(seed.ADMIN_PASSWORD)
    screenshot(page, "connection-form")
    form.get_by_role("button", name="Extra Fields", exact=True).click()
    extra_field(form, "Client ID").fill(seed.CLIENT_ID)
    extra_field(form, "Client secret").fill(seed.CLIENT_SECRET)
    extra_field(form, "Token URL").fill(f"{stack.sandbox_url}/api/token/")
    extra_field(form, "Business ID").fill(str(seed.BUSINESS_ID))
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Connection has been successfully created.")).to_be_visible()
    stored = stack.api.call("GET", f"/connections/{CONN_ID}")
    assert stored["conn_type"] == "perkville"
    assert json.loads(stored["extra"])["client_id"] == seed.CLIENT_ID

    toast = press_test(page, stack)
    expect(toast).to_contain_text("Test Connection Successful")
    # The hook's message names the check it made: the business read with the connection's token.
    expect(toast).to_contain_text(
        f"Connected to Perkville at {stack.sandbox_url}: read business {seed.BUSINESS_ID}"
    )
    screenshot(page, "connection-test-ok")

    row = page.get_by_role("row").filter(has_text=CONN_ID)
    row.get_by_role("button", name="Edit Connection").click()
    page.get_by_role("dialog").get_by_label("Staff password").fill("not-the-password")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(page.get_by_text("Connection has been successfully updated.")).to_be_visible()

    toast = press_test(page, stack)
    expect(toast).to_contain_text("Test Connection Failed")
    expect(toast).to_contain_text("Perkville refused the username or password")
    expect(toast).not_to_contain_text("not-the-password")
    screenshot(page, "connection-test-wrong-password")


def press_test(page: Page, stack: Stack) -> Locator:
    """Press the connection's Test button in the list; the toast that answers."""
    page.goto(f"{stack.base_url}/connections")
    row = page.get_by_role("row").filter(has_text=CONN_ID)
    row.get_by_role("button", name="Test Connection").click()
    toast = page.get_by_role("status").filter(has_text="Test Connection")
    expect(toast).to_be_visible()
    return toast


def send_no_port_for_portless_connection(route: Route) -> None:
    """Airflow 3.3.2's Test button sends ``port: 0`` for a connection without a port (``Number(null)``)
    and its API then refuses with 400 "The host or port to test differs from the stored connection"
    for every such connection. apache/airflow#73298 (after 3.3.2) treats 0 as no port; this does
    the same on the way out, and nothing else."""
    body = json.loads(route.request.post_data or "{}")
    if body.get("port") == 0:
        del body["port"]
    route.continue_(post_data=json.dumps(body))


@pytest.fixture(autouse=True)
def _no_leftover_connection(stack: Stack):
    yield
    with contextlib.suppress(requests.HTTPError):
        stack.api.call("DELETE", f"/connections/{CONN_ID}")
