"""A hosted web view in real Chromium against a real gateway: the ``viewer`` test app's own page
(``tests/miniapps/apps/viewer/web/``, served by the gateway with its strict CSP, the real
``/static/vendor/bridge.js``) opened from a chat's app menu in the sandboxed frame; the page
renders what its app answers to ``Aetherial.call`` (``@app.view`` in the sandboxed app process),
and shows the code of a ``ViewError``.

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

APP_ID = "viewer"


@pytest.fixture
async def served(web_gateway):
    base, app = web_gateway
    _world_readable(APPS_DIR)
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    app[MINIAPPS].apps[APP_ID] = apps[APP_ID]
    return base, app


async def list_group(rest: ApiClient, owner: dict, member: dict, title: str) -> str:
    status, body = await rest.post(
        "/api/v1/conversations",
        json={"type": "group", "title": title, "member_ids": [member["user"]["id"]]},
        token=owner["access_token"],
    )
    assert status == 201, body
    cid = body["conversation"]["id"]
    status, body = await rest.post(
        f"/api/v1/conversations/{cid}/apps", json={"app_id": APP_ID}, token=owner["access_token"]
    )
    assert status == 201, body
    return cid


async def test_a_hosted_page_renders_what_its_app_answers(served, browser, rest):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    base, app = served
    ann, bea = await befriend(rest, "ann", "bea")
    cid = await list_group(rest, ann, bea, "Shopping list")
    # Something already stored for this chat, so the first render shows data from the app.
    token = await app[MINIAPPS].remote.do_launch(bea["user"]["id"], cid, APP_ID)
    status, body = await rest.post(
        "/api/v1/webviews/call",
        json={"token": token["token"], "name": "items", "params": {"add": "tea"}},
        token=bea["access_token"],
    )
    assert status == 200, body

    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    await page.goto(base + "/")
    await sign_in(page, "ann")
    await chat_item(page, "Shopping list").click()
    await expect(page.get_by_test_id("chat-title")).to_have_text("Shopping list")
    await page.get_by_test_id("apps-button").click()
    item = page.locator(f"[data-testid=app-item][data-app-id={APP_ID}]")
    await item.get_by_test_id("launch-app").click()
    await expect(page.get_by_test_id("webview")).to_be_visible()
    frame_element = page.get_by_test_id("webview-frame")
    await expect(frame_element).to_have_attribute(
        "sandbox", "allow-scripts allow-forms allow-downloads"
    )
    src = await frame_element.get_attribute("src")
    assert src.startswith(f"{base}/miniapps/{APP_ID}/web/index.html?token="), src

    frame = page.frame_locator("[data-testid=webview-frame]")
    # On load the page asked its app for the chat's list (bea's item is there).
    await expect(frame.locator("#status")).to_have_text("1 items")
    await expect(frame.locator("#items li")).to_have_text(["tea"])
    # Adding goes through the app (storage) and renders its answer.
    await frame.locator("#name").fill("mug")
    await frame.locator("#add").click()
    await expect(frame.locator("#items li")).to_have_text(["tea", "mug"])
    await expect(frame.locator("#status")).to_have_text("2 items")
    found, stored = await app[MINIAPPS].storage.get_value(APP_ID, "lists", cid)
    assert found and [entry["name"] for entry in stored] == ["tea", "mug"]
    # A ViewError rejects the page's promise with the app's code.
    await frame.locator("#fail").click()
    await expect(frame.locator("#status")).to_have_text("error: out_of_stock")
    # The page runs in an opaque origin: the chat's storage is out of its reach.
    origin = await frame.locator("body").evaluate("() => window.origin")
    assert origin == "null"
    assert errors == [] and violations == []
    await context.close()
