"""App icons in real Chromium against a real gateway: the built-in poll app's icon (its
``web/icon.png``, served by the gateway) loads as an ``<img alt="">`` in the Discover page and
in a chat's app menu, under the chat page's Content-Security-Policy; an app without an icon
shows its initial.

Every wait is on the page's state, never a sleep.
"""

from __future__ import annotations

import pytest

from gateway.keys import MINIAPPS
from miniapps.host.registry import discover
from tests.helpers import ApiClient
from tests.miniapps.test_capabilities import APPS_DIR, _world_readable
from tests.web.test_chat_browser import TIMEOUT, befriend, chat_item, sign_in

pytestmark = pytest.mark.timeout(120)


async def expect_loaded_icon(item) -> None:
    """The item's icon is an image that has loaded (a broken one would be replaced by the
    letter, or have no natural width)."""
    from playwright.async_api import expect

    icon = item.get_by_test_id("app-icon")
    await expect(icon).to_have_attribute("alt", "")
    await expect(icon).to_have_js_property("tagName", "IMG")
    await expect(icon).to_have_js_property("naturalWidth", 64)


async def test_the_poll_icon_loads_in_discover_and_the_app_menu(web_gateway, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    base, app = web_gateway
    _world_readable(APPS_DIR)
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    app[MINIAPPS].apps["viewer"] = apps["viewer"]  # an app without an icon
    rest = ApiClient(base)
    try:
        ann, bea = await befriend(rest, "ann", "bea")
        status, body = await rest.post(
            "/api/v1/conversations",
            json={"type": "group", "title": "Icons", "member_ids": [bea["user"]["id"]]},
            token=ann["access_token"],
        )
        assert status == 201, body
        cid = body["conversation"]["id"]
        status, body = await rest.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "poll"}, token=ann["access_token"]
        )
        assert status == 201, body
    finally:
        await rest.close()

    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(base + "/")
    await sign_in(page, "ann")

    await page.get_by_test_id("discover-button").click()
    sheet = page.get_by_test_id("discover-sheet")
    await expect_loaded_icon(sheet.locator("[data-testid=discover-item][data-app-id=poll]"))
    viewer = sheet.locator("[data-testid=discover-item][data-app-id=viewer]")
    await expect(viewer.get_by_test_id("app-icon")).to_have_text("V")
    await expect(viewer.get_by_test_id("app-icon")).to_have_js_property("tagName", "SPAN")
    await page.keyboard.press("Escape")

    await chat_item(page, "Icons").click()
    await page.get_by_test_id("apps-button").click()
    menu = page.get_by_test_id("apps-sheet")
    await expect_loaded_icon(menu.locator("[data-testid=app-item][data-app-id=poll]"))
    assert errors == []
