"""The Assets page: the member Asset, produced by the member sync."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.ui.conftest import MEMBER_SYNC, screenshot
from tests.ui.stack import Stack

MEMBERS_URI = "perkville://api.perkville.com/business/9823/external_members"


def test_assets_page_shows_the_members_asset_produced_by_the_member_sync(
    page: Page, stack: Stack, full_sync_run: str
) -> None:
    assets = stack.api.call("GET", "/assets", params={"uri_pattern": MEMBERS_URI})["assets"]
    assert [asset["uri"] for asset in assets] == [MEMBERS_URI]
    asset = assets[0]

    page.goto(f"{stack.base_url}/assets")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=asset["name"], exact=True))
    expect(row.get_by_role("link", name=asset["name"])).to_have_attribute("href", f"/assets/{asset['id']}")
    row.get_by_role("button", name="1 Task").click()  # Producing Tasks
    producer = page.get_by_role("link", name=f"{MEMBER_SYNC}.sync_members")
    expect(producer).to_have_attribute("href", f"/dags/{MEMBER_SYNC}/tasks/sync_members")
    screenshot(page, "assets")

    page.goto(f"{stack.base_url}/assets/{asset['id']}")
    expect(page.get_by_role("heading", name=re.compile(r"^\d+ Asset Events?$")).first).to_be_visible()
    expect(page.get_by_role("link", name=MEMBER_SYNC).first).to_be_visible()  # an event's source
    screenshot(page, "asset-members")
