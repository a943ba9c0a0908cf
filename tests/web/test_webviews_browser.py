"""Web views that feel native, in real Chromium against a real gateway: the test app
``tests/miniapps/apps/webviewer`` (its page served by the test at ``https://webview.test/trip``,
with the real ``sdk/js/bridge.js``) opened from a chat's app menu, every bridge call answered by
the chat client and the host routes; the Discover page; the host routes' refusals over REST.

Every wait is on the page's state, never a sleep.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.keys import MINIAPPS
from miniapps.host.registry import discover
from tests.helpers import ApiClient
from tests.miniapps.test_capabilities import APPS_DIR, _world_readable
from tests.web.test_chat_browser import TIMEOUT, befriend, chat_item, message, sign_in

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
APP_ID = "webviewer"

# The app's page: one button per bridge call, each writing its outcome into #out.
TRIP_PAGE = """<!doctype html><html><body>
<p id="theme"></p><p id="locale"></p><p id="mode"></p><pre id="out">ready</pre>
<button id="share">share</button><button id="pick">pick</button><button id="pay">pay</button>
<button id="hold">hold</button><button id="resize">resize</button><button id="open">open</button>
<script>{bridge}</script>
<script>
const bridge = window.Aetherial;
const out = document.getElementById("out");
const show = () => {{
  document.getElementById("theme").textContent = bridge.theme();
  document.getElementById("locale").textContent = bridge.locale();
  document.getElementById("mode").textContent = "";
}};
show();
bridge.onContextChange((context) => {{
  show();
  document.getElementById("mode").textContent = context.mode;
}});
const run = (id, call) => document.getElementById(id).addEventListener("click", async () => {{
  out.textContent = "waiting";
  try {{ out.textContent = JSON.stringify({{ok: await call()}}); }}
  catch (e) {{ out.textContent = JSON.stringify({{error: e.code}}); }}
}});
const payment = {{amount: 1250, currency: "USD", description: "Rome, 3 days", order_ref: "trip-1"}};
run("share", () => bridge.shareCard({{title: "Trip to Rome", text: "3 days, 2 people"}}));
run("pick", () => bridge.pickContact());
run("pay", () => bridge.requestPayment(payment));
run("hold", () => bridge.requestHold({{...payment, order_ref: "hold-1"}}));
run("resize", () => bridge.resize(300));
run("open", () => bridge.openChat(window.name));
</script></body></html>"""


@pytest.fixture
async def served(web_gateway):
    """(base URL, gateway app) with the web-view test app in the catalogue."""
    base, app = web_gateway
    _world_readable(APPS_DIR)
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    app[MINIAPPS].apps[APP_ID] = apps[APP_ID]
    return base, app


@pytest.fixture
async def rest(served):
    client = ApiClient(served[0])
    try:
        yield client
    finally:
        await client.close()


async def open_page(browser, base: str, *, width: int = 1200, height: int = 800):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    bridge = (ROOT / "sdk" / "js" / "bridge.js").read_text()

    async def serve(route):
        await route.fulfill(
            status=200, content_type="text/html", body=TRIP_PAGE.format(bridge=bridge)
        )

    await context.route("https://webview.test/**", serve)
    await page.goto(base + "/")
    return page


async def trip_group(rest: ApiClient, owner: dict, member: dict, title: str, *, app: bool) -> str:
    status, body = await rest.post(
        "/api/v1/conversations",
        json={"type": "group", "title": title, "member_ids": [member["user"]["id"]]},
        token=owner["access_token"],
    )
    assert status == 201, body
    cid = body["conversation"]["id"]
    if app:
        status, body = await rest.post(
            f"/api/v1/conversations/{cid}/apps",
            json={"app_id": APP_ID},
            token=owner["access_token"],
        )
        assert status == 201, body
    return cid


async def open_trip(page, title: str):
    """Open the chat ``title``, then the app's web view from its app menu → the frame."""
    from playwright.async_api import expect

    await chat_item(page, title).click()
    await expect(page.get_by_test_id("chat-title")).to_have_text(title)
    await page.get_by_test_id("apps-button").click()
    item = page.locator(f"[data-testid=app-item][data-app-id={APP_ID}]")
    await expect(item.get_by_test_id("app-commands")).to_have_text("/trip")
    await item.get_by_test_id("launch-app").click()
    await expect(page.get_by_test_id("apps-sheet")).to_be_hidden()
    await expect(page.get_by_test_id("webview")).to_be_visible()
    frame = page.frame_locator("[data-testid=webview-frame]")
    await expect(frame.locator("#out")).to_have_text("ready")
    return frame


async def outcome(frame, button: str) -> str:
    from playwright.async_api import expect

    await frame.locator(f"#{button}").click()
    await expect(frame.locator("#out")).not_to_have_text("waiting")
    return await frame.locator("#out").text_content()


async def test_a_web_view_uses_every_bridge_call_in_a_sheet(served, browser, rest):
    from playwright.async_api import expect

    base, app = served
    host = app[MINIAPPS]
    ann, bea = await befriend(rest, "ann", "bea")
    trip = await trip_group(rest, ann, bea, "Rome trip", app=True)
    await trip_group(rest, ann, bea, "No apps here", app=False)
    status, _ = await rest.post(
        "/api/v1/wallet/dev-topup",
        json={"amount": 10000, "currency": "USD"},
        token=ann["access_token"],
    )
    assert status in (200, 201)

    page = await open_page(browser, base)
    await sign_in(page, "ann")
    frame = await open_trip(page, "Rome trip")
    view = page.get_by_test_id("webview")
    await expect(view).to_have_attribute("data-mode", "sheet")

    # theme and locale: given at launch, and again when the chat's theme changes
    await expect(frame.locator("#theme")).to_have_text("light")
    assert await frame.locator("#locale").text_content()
    await page.emulate_media(color_scheme="dark")
    await expect(frame.locator("#theme")).to_have_text("dark")
    await page.emulate_media(color_scheme="light")
    await expect(frame.locator("#theme")).to_have_text("light")

    # resize: the sheet takes the height the page asks for
    before = await view.bounding_box()
    assert await outcome(frame, "resize") == '{"ok":{"height":300,"mode":"sheet"}}'
    after = await view.bounding_box()
    assert after["height"] == 300 != before["height"]

    # shareCard: the user picks a chat that has the app and confirms; the app's card lands there
    out = frame.locator("#out")
    await frame.locator("#share").click()
    sheet = page.get_by_test_id("share-sheet")
    await expect(sheet.get_by_test_id("share-preview")).to_contain_text("Trip to Rome")
    choices = sheet.get_by_test_id("share-chat")
    await expect(choices).to_have_count(1)  # "No apps here" does not have the app
    await expect(choices.first).to_have_attribute("data-conversation-id", trip)
    await sheet.get_by_test_id("share-confirm").click()
    await expect(out).to_contain_text('"conversation_id":"' + trip + '"')
    status, body = await rest.get(
        f"/api/v1/conversations/{trip}/messages", token=ann["access_token"]
    )
    assert status == 200, body
    cards = [m for m in body["messages"] if m["type"] == "card"]
    assert len(cards) == 1 and cards[0]["sender_id"] == f"app:{APP_ID}"
    assert cards[0]["card"]["title"] == "Trip to Rome"
    await expect(page.get_by_test_id("card").filter(has_text="Trip to Rome")).to_be_visible()

    # ... and a cancelled share posts nothing and tells the page so
    await frame.locator("#share").click()
    await page.get_by_test_id("share-cancel").click()
    await expect(out).to_have_text('{"error":"cancelled"}')

    # pickContact: the host's picker; the page gets the contact's per-app id only
    await frame.locator("#pick").click()
    await page.locator("[data-testid=pick-contact][data-username=bea]").click()
    await expect(out).to_contain_text("user_id")
    picked = host.identity.app_user_id(APP_ID, bea["user"]["id"])
    assert await out.text_content() == '{"ok":{"user_id":"' + picked + '"}}'

    # requestPayment: the host's own payment sheet; the app hears of it as a signed event
    await frame.locator("#pay").click()
    await expect(page.get_by_test_id("payment-amount")).to_have_text("12.50 USD")
    await page.get_by_test_id("payment-confirm").click()
    await expect(out).to_contain_text('"status":"paid"')
    await expect(message(page, "webviewer: paid trip-1 1250")).to_be_visible(timeout=30_000)

    # requestHold: the same sheet, for a hold the app's server captures or voids later
    await frame.locator("#hold").click()
    await expect(page.get_by_test_id("payment-note")).to_contain_text("Held")
    await page.get_by_test_id("payment-confirm").click()
    await expect(out).to_contain_text('"status":"authorized"')

    # openChat: the view closes and the chat client opens that chat
    other = await page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=conversation-item]')]"
        ".map((b) => b.dataset.conversationId)"
    )
    target = next(cid for cid in other if cid != trip)
    await frame.locator("body").evaluate("(body, cid) => { window.name = cid; }", target)
    await frame.locator("#open").click()
    await expect(page.get_by_test_id("webview")).to_have_count(0)
    await expect(page.locator("#chat")).to_have_attribute("data-conversation-id", target)
    assert page.errors == []


async def test_a_narrow_window_shows_the_web_view_full_screen(served, browser, rest):
    from playwright.async_api import expect

    base, _app = served
    ann, bea = await befriend(rest, "cat", "dan")
    await trip_group(rest, ann, bea, "Narrow trip", app=True)
    page = await open_page(browser, base, width=600, height=800)
    await sign_in(page, "cat")
    frame = await open_trip(page, "Narrow trip")
    view = page.get_by_test_id("webview")
    await expect(view).to_have_attribute("data-mode", "full")
    box = await view.bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 600, 800)
    # resize does not shrink a full-screen view
    assert await outcome(frame, "resize") == '{"ok":{"height":800,"mode":"full"}}'
    assert (await view.bounding_box())["height"] == 800
    # widening the window turns it into a sheet, and the page is told
    await page.set_viewport_size({"width": 1000, "height": 800})
    await expect(view).to_have_attribute("data-mode", "sheet")
    await expect(frame.locator("#mode")).to_have_text("sheet")
    assert (await view.bounding_box())["height"] == 300
    assert page.errors == []


async def test_discover_lists_the_catalogue_and_adds_an_app_to_this_chat(served, browser, rest):
    from playwright.async_api import expect

    base, _app = served
    eve, fay = await befriend(rest, "eve", "fay")
    cid = await trip_group(rest, eve, fay, "Weekend", app=False)

    page = await open_page(browser, base)
    await sign_in(page, "eve")
    # from the sidebar, without a chat: the catalogue, nothing to add to
    await page.get_by_test_id("discover-button").click()
    sheet = page.get_by_test_id("discover-sheet")
    item = sheet.locator(f"[data-testid=discover-item][data-app-id={APP_ID}]")
    await expect(item.get_by_test_id("discover-description")).to_contain_text("web view")
    await expect(item.get_by_test_id("app-icon")).to_have_text("T")
    await expect(item.get_by_test_id("discover-add")).to_have_count(0)
    await page.keyboard.press("Escape")

    # from a chat's app menu: "Add to this chat" for the group's owner
    await chat_item(page, "Weekend").click()
    await page.get_by_test_id("apps-button").click()
    await expect(page.get_by_test_id("no-apps")).to_be_visible()
    await page.get_by_test_id("open-discover").click()
    item = page.get_by_test_id("discover-sheet").locator(
        f"[data-testid=discover-item][data-app-id={APP_ID}]"
    )
    await item.get_by_test_id("discover-add").click()
    await expect(item.get_by_test_id("app-added")).to_have_text("Added")
    status, body = await rest.get(f"/api/v1/conversations/{cid}/apps", token=eve["access_token"])
    assert status == 200 and [a["id"] for a in body["miniapps"]] == [APP_ID], body
    await page.keyboard.press("Escape")

    # a plain member sees the catalogue but is not offered to add
    other = await open_page(browser, base)
    await sign_in(other, "fay")
    await chat_item(other, "Weekend").click()
    await other.get_by_test_id("discover-button").click()
    sheet = other.get_by_test_id("discover-sheet")
    await expect(sheet).to_contain_text("Only the group's owner and admins can add apps.")
    await expect(sheet.get_by_test_id("discover-add")).to_have_count(0)
    assert page.errors == [] and other.errors == []


async def test_the_bridge_routes_refuse_what_the_user_did_not_launch(served, rest):
    _base, app = served
    ann, bea = await befriend(rest, "gil", "hal")
    trip = await trip_group(rest, ann, bea, "Checks", app=True)
    bare = await trip_group(rest, ann, bea, "Bare", app=False)
    status, launch = await rest.post(
        f"/api/v1/conversations/{trip}/apps/{APP_ID}/launch", token=ann["access_token"]
    )
    assert status == 200, launch
    token = launch["token"]
    card = {"title": "Trip"}

    async def share(body, who=ann):
        return await rest.post("/api/v1/webviews/cards", json=body, token=who["access_token"])

    # another user cannot use ann's launch token
    status, body = await share({"token": token, "conversation_id": trip, "card": card}, bea)
    assert status == 401 and body["error"]["code"] == "bad_launch_token", body
    # a forged token
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    status, body = await share({"token": forged, "conversation_id": trip, "card": card})
    assert status == 401 and body["error"]["code"] == "bad_launch_token", body
    # a chat without the app
    status, body = await share({"token": token, "conversation_id": bare, "card": card})
    assert status == 404 and body["error"]["code"] == "app_not_installed", body
    # a bad card
    status, body = await share({"token": token, "conversation_id": trip, "card": {"text": "x"}})
    assert status == 400 and body["error"]["code"] == "invalid_params", body
    # a contact that is not one
    status, body = await rest.post(
        "/api/v1/webviews/contacts",
        json={"token": token, "user_id": ann["user"]["id"]},
        token=ann["access_token"],
    )
    assert status == 404 and body["error"]["code"] == "not_a_contact", body
    # a payment with bad params
    status, body = await rest.post(
        "/api/v1/webviews/payments",
        json={"token": token, "params": {"amount": -1, "currency": "USD"}},
        token=ann["access_token"],
    )
    assert status == 400 and body["error"]["code"] == "invalid_params", body
    # nothing was posted by any of these
    status, body = await rest.get(
        f"/api/v1/conversations/{trip}/messages", token=ann["access_token"]
    )
    assert [m for m in body["messages"] if m["type"] == "card"] == []
    # an app without payments.request in its manifest cannot ask from its page either
    host = app[MINIAPPS]
    entry = host.apps[APP_ID]
    manifest = {**entry.manifest, "permissions": ["messages.send_card"]}
    host.apps[APP_ID] = type(entry)(APP_ID, entry.folder, manifest)
    try:
        status, body = await rest.post(
            "/api/v1/webviews/payments",
            json={
                "token": token,
                "params": {
                    "amount": 100,
                    "currency": "USD",
                    "description": "x",
                    "order_ref": "r-1",
                },
            },
            token=ann["access_token"],
        )
        assert status == 403 and body["error"]["code"] == "permission_denied", body
    finally:
        host.apps[APP_ID] = entry
