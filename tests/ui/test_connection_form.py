"""Admin -> Connections -> Add, type Perkville: the form, saving it, and its Test button."""

from __future__ import annotations

import contextlib
import json
import re
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Locator, Page, expect

from perkville_provider.sandbox import seed
from tests.ui.conftest import screenshot
from tests.ui.stack import Stack

CONN_ID = "perkville_from_the_form"
EXTRA_FIELDS = {
    "Client ID": "API client id from Perkville's registration.",
    "Client secret": "API client secret from Perkville's registration.",
    "Token": "A pre-issued long-lived token",
    "OAuth token URL": "OAuth token endpoint",
    "Business ID": "Default business for every call that does not name one",
    "Scope": "Space-separated scopes to request",
    "Timeout (s)": "Read timeout in seconds",
    "Requests per second": "The connection's rate budget",
    "Rate budget Redis URL": "shared by every worker",
    "Resource paths": "Paths that differ from the defaults",
    "Related objects sent as": "uri (/v2/perks/501/) or id (501).",
    "Quantities sent as": "number (9.99) or string",
    "Date-times sent as": "api (2026-05-01 11:30:00+00:00)",
}
SECRET_EXTRAS = ("Client secret", "Token", "Rate budget Redis URL")
CHOICES = ("Rate budget shared by", "Related objects sent as", "Quantities sent as", "Date-times sent as")
EDITORS = ("Resource paths",)  # a JSON editor, not an input
FLAGS = ("Adaptive pacing", "Verify TLS certificates", "Allow plain HTTP")


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
    expect(form.get_by_label("Schema", exact=True)).to_have_count(0)
    # Shown for Airflow 3.3.2's Test button, which needs a stored port (the README says why).
    expect(form.get_by_label("Port (443, or the one in the URL)", exact=True)).to_have_attribute(
        "placeholder", "443"
    )

    form.get_by_role("button", name="Extra Fields", exact=True).click()
    for label, description in EXTRA_FIELDS.items():
        expect(form.get_by_text(label, exact=True)).to_be_visible()
        expect(form.get_by_text(description, exact=False)).to_be_visible()
        if label in CHOICES or label in EDITORS:
            continue
        field = extra_field(form, label)
        expect(field).to_be_visible()
        assert (field.get_attribute("type") == "password") == (label in SECRET_EXTRAS), label
    for label in (*CHOICES, *FLAGS):
        expect(form.get_by_text(label, exact=True).first).to_be_visible()
    for label in FLAGS:
        expect(form.get_by_role("checkbox", name=label)).to_have_count(1)
    expect(form.get_by_role("spinbutton", name="Business ID")).to_be_visible()  # a number, not a text area
    expect(form.get_by_role("link", name="the provider's documentation")).to_have_attribute(
        "href", "https://pypi.org/project/airflow-provider-perkville/#connection-set-up"
    )
    screenshot(page, "connection-form-extras", full_page=True)


def test_connection_saved_through_the_form_tests_ok_and_says_why_when_not(page: Page, stack: Stack) -> None:
    """The Test button as Airflow 3.3.2 ships it: it tests the stored connection with its port."""
    form = open_add_form(page, stack)
    form.get_by_label("Connection ID").fill(CONN_ID)
    form.get_by_label("API base URL").fill(stack.sandbox_url)
    form.get_by_label("Port (443, or the one in the URL)").fill(str(urlsplit(stack.sandbox_url).port))
    form.get_by_label("Staff username (email)").fill(seed.ADMIN_USERNAME)
    form.get_by_label("Staff password").fill(seed.ADMIN_PASSWORD)
    screenshot(page, "connection-form")
    form.get_by_role("button", name="Extra Fields", exact=True).click()
    extra_field(form, "Client ID").fill(seed.CLIENT_ID)
    extra_field(form, "Client secret").fill(seed.CLIENT_SECRET)
    token_url = f"{stack.sandbox_url}/api/token/"
    extra_field(form, "OAuth token URL").fill(token_url)
    extra_field(form, "Business ID").fill(str(seed.BUSINESS_ID))
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Connection has been successfully created.")).to_be_visible()
    stored = stack.api.call("GET", f"/connections/{CONN_ID}")
    assert stored["conn_type"] == "perkville"
    extra = json.loads(stored["extra"])
    assert extra["client_id"] == seed.CLIENT_ID
    assert extra["business_id"] == seed.BUSINESS_ID  # a number, not the text "9823"
    assert extra["oauth_url"] == token_url  # not masked: its name holds no "token"
    # Untouched fields hold their defaults, or "": null only for the secrets left empty.
    assert {name for name, value in extra.items() if value is None} == {"token", "rate_limit_redis_url"}

    toast = press_test(page, stack)
    expect(toast).to_contain_text("Test Connection Successful")
    # The hook's message names the check it made: the business read with the connection's token.
    expect(toast).to_contain_text(
        f"Connected to Perkville at {stack.sandbox_url}: read business {seed.BUSINESS_ID}"
    )
    screenshot(page, "connection-test-ok")

    row = page.get_by_role("row").filter(has_text=CONN_ID)
    row.get_by_role("button", name="Edit Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Staff password").fill("not-the-password")
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    expect(extra_field(dialog, "OAuth token URL")).to_have_value(token_url)  # readable, not ***
    screenshot(page, "connection-edit-extras")
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Connection has been successfully updated.")).to_be_visible()

    toast = press_test(page, stack)
    expect(toast).to_contain_text("Test Connection Failed")
    expect(toast).to_contain_text("Perkville refused the username or password")
    expect(toast).to_contain_text("check this connection")
    # Airflow tests a copy under a random id: the message names no connection the user does not have.
    expect(toast).not_to_contain_text(re.compile(r"connection '"))
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


@pytest.fixture(autouse=True)
def _no_leftover_connection(stack: Stack):
    yield
    with contextlib.suppress(requests.HTTPError):
        stack.api.call("DELETE", f"/connections/{CONN_ID}")
