"""The web chat in real Chromium against a real gateway: two browser contexts are two people.

Every wait is on the page's state (``expect`` / ``wait_for_function``), never a sleep.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, ApiClient

pytestmark = pytest.mark.timeout(90)

TIMEOUT = 15_000  # ms, for any one thing to appear
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def rest(web_base):
    client = ApiClient(web_base)
    try:
        yield client
    finally:
        await client.close()


async def wait_until(page, script: str, arg=None, timeout: float = TIMEOUT / 1000):
    """Poll ``page.evaluate(script)`` until it is truthy. (The page's CSP forbids eval, which
    ``wait_for_function`` needs; ``evaluate`` goes through the debugger and is allowed.)"""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await page.evaluate(script, arg)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {script!r}")
        await asyncio.sleep(0.1)


async def new_page(browser, web_base):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    await context.grant_permissions(["camera", "microphone"], origin=web_base)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(web_base + "/")
    return page


async def sign_up(page, username: str) -> None:
    from playwright.async_api import expect

    await page.get_by_test_id("auth-mode-register").click()
    await page.get_by_test_id("auth-username").fill(username)
    await page.get_by_test_id("auth-email").fill(f"{username}@example.com")
    await page.get_by_test_id("auth-password").fill(PASSWORD)
    await page.get_by_test_id("auth-password").press("Enter")
    await expect(page.get_by_test_id("me-name")).to_have_text(username)
    await page.locator("body[data-connected=true]").wait_for(state="attached")


async def sign_in(page, username: str) -> None:
    from playwright.async_api import expect

    await page.get_by_test_id("auth-username").fill(username)
    await page.get_by_test_id("auth-password").fill(PASSWORD)
    await page.get_by_test_id("auth-submit").click()
    await expect(page.get_by_test_id("me-name")).to_have_text(username)
    await page.locator("body[data-connected=true]").wait_for(state="attached")


async def befriend(rest: ApiClient, a: str, b: str) -> tuple[dict, dict]:
    """Two accounts made friends over REST (the UI path is covered by the first test)."""
    await rest.register(a)
    await rest.register(b)
    login_b = await rest.login(b)
    login_a = await rest.login(a)
    status, _ = await rest.post(
        "/api/v1/contacts/requests", json={"user_id": login_b["user"]["id"]}
    )
    assert status == 201
    status, _ = await rest.post(
        f"/api/v1/contacts/requests/{login_a['user']['id']}/accept", token=login_b["access_token"]
    )
    assert status == 200
    return login_a, login_b


def chat_item(page, title: str):
    return page.get_by_test_id("conversation-item").filter(has_text=title)


def message(page, text: str):
    """The message bubble whose own text is exactly ``text`` (not a reply quoting it)."""
    own_text = page.get_by_test_id("message-text").get_by_text(text, exact=True)
    return page.get_by_test_id("message").filter(has=own_text)


async def send(page, text: str) -> None:
    composer = page.get_by_test_id("composer-input")
    await composer.fill(text)
    await composer.press("Enter")


async def test_two_people_chat_with_typing_read_marks_and_history(web_base, browser):
    from playwright.async_api import expect

    alice, bob = await new_page(browser, web_base), await new_page(browser, web_base)
    await sign_up(alice, "alice")
    await sign_up(bob, "bob")

    # Alice finds Bob and asks to be friends; Bob accepts from his requests.
    await alice.get_by_test_id("find-user").click()
    await alice.get_by_test_id("user-search-input").fill("bob")
    result = alice.get_by_test_id("user-result").filter(has_text="@bob")
    await result.get_by_test_id("add-friend").click()
    await expect(result.get_by_test_id("add-friend")).to_have_text("Request sent")
    await expect(bob.get_by_test_id("requests-count")).to_have_text("1")
    await bob.get_by_test_id("requests-button").click()
    await bob.get_by_test_id("accept-request").click()
    await expect(bob.get_by_test_id("request-item")).to_contain_text("are friends")
    await bob.keyboard.press("Escape")

    # Alice opens the direct chat and writes; Bob sees it with an unread badge and a preview.
    await result.get_by_test_id("open-chat").click()
    await expect(alice.get_by_test_id("chat-title")).to_have_text("bob")
    await send(alice, "Hello Bob!")
    await expect(message(alice, "Hello Bob!")).to_be_visible()
    bob_item = chat_item(bob, "alice")
    await expect(bob_item.get_by_test_id("unread-badge")).to_have_text("1")
    await expect(bob_item.get_by_test_id("conversation-preview")).to_have_text("Hello Bob!")
    await bob_item.click()
    await expect(message(bob, "Hello Bob!")).to_be_visible()

    # Bob opened it: Alice's message shows "Read".
    await expect(message(alice, "Hello Bob!").get_by_test_id("message-status")).to_have_text("Read")

    # Bob types: Alice sees it; Bob sends; Alice (chat open) reads it, Bob sees "Read".
    await bob.get_by_test_id("composer-input").press_sequentially("Hi Ali")
    await expect(alice.get_by_test_id("typing-indicator")).to_have_text("bob is typing…")
    await bob.get_by_test_id("composer-input").press_sequentially("ce")
    await bob.get_by_test_id("composer-input").press("Enter")
    await expect(message(alice, "Hi Alice")).to_be_visible()
    await expect(alice.get_by_test_id("typing-indicator")).to_have_text("")
    await expect(message(bob, "Hi Alice").get_by_test_id("message-status")).to_have_text("Read")

    # A reaction and a reply reach the other side.
    await message(alice, "Hi Alice").get_by_test_id("react-button").click()
    await expect(message(bob, "Hi Alice").get_by_test_id("reaction")).to_have_text("👍 1")
    await message(bob, "Hello Bob!").get_by_test_id("reply-button").click()
    await expect(bob.get_by_test_id("reply-preview")).to_be_visible()
    await send(bob, "Replying to you")
    await expect(message(alice, "Replying to you").get_by_test_id("reply-quote")).to_contain_text(
        "Hello Bob!"
    )

    # A reload signs in again with the stored refresh token; the history is there.
    await alice.reload()
    await expect(alice.get_by_test_id("me-name")).to_have_text("alice")
    await chat_item(alice, "bob").click()
    for text in ("Hello Bob!", "Hi Alice", "Replying to you"):
        await expect(message(alice, text)).to_be_visible()
    await expect(message(alice, "Hi Alice").get_by_test_id("reaction")).to_have_text("👍 1")
    assert alice.errors == [] and bob.errors == []


async def test_group_poll_both_vote_and_both_cards_update(web_base, browser, rest):
    from playwright.async_api import expect

    await befriend(rest, "carol", "dave")
    carol, dave = await new_page(browser, web_base), await new_page(browser, web_base)
    await sign_in(carol, "carol")
    await sign_in(dave, "dave")

    await carol.get_by_test_id("new-group").click()
    await carol.get_by_test_id("group-title").fill("Lunch club")
    await carol.locator("[data-testid=group-member][data-username=dave]").check()
    await carol.get_by_test_id("group-create").click()
    await expect(carol.get_by_test_id("chat-title")).to_have_text("Lunch club")

    await carol.get_by_test_id("apps-button").click()
    poll = carol.locator("[data-testid=app-item][data-app-id=poll]")
    await poll.get_by_test_id("add-app").click()
    await expect(poll.get_by_test_id("app-added")).to_be_visible()
    await carol.keyboard.press("Escape")

    await send(carol, '/poll "Lunch?" pizza sushi')
    card = carol.get_by_test_id("card").filter(has_text="Lunch?")
    await expect(card).to_be_visible()
    await chat_item(dave, "Lunch club").click()
    dave_card = dave.get_by_test_id("card").filter(has_text="Lunch?")
    await expect(dave_card).to_be_visible()

    await card.get_by_test_id("card-button").filter(has_text="pizza").click()
    await dave_card.get_by_test_id("card-button").filter(has_text="sushi").click()
    for page_card in (card, dave_card):
        fields = page_card.get_by_test_id("card-field")
        await expect(fields.filter(has_text="pizza")).to_contain_text("1 vote")
        await expect(fields.filter(has_text="sushi")).to_contain_text("1 vote")
    assert carol.errors == [] and dave.errors == []


async def test_red_packet_sent_by_one_and_grabbed_by_the_other(web_base, browser, rest):
    from playwright.async_api import expect

    await befriend(rest, "erin", "frank")
    erin, frank = await new_page(browser, web_base), await new_page(browser, web_base)
    await sign_in(erin, "erin")
    await sign_in(frank, "frank")

    await erin.get_by_test_id("wallet-button").click()
    await erin.get_by_test_id("dev-topup").click()
    await expect(erin.get_by_test_id("wallet-balance")).to_have_text("100.00 USD")

    await erin.get_by_test_id("find-user").click()
    await erin.get_by_test_id("user-search-input").fill("frank")
    await erin.get_by_test_id("user-result").get_by_test_id("open-chat").click()
    await erin.get_by_test_id("red-packet-button").click()
    await erin.get_by_test_id("red-packet-total").fill("8.00")
    await erin.get_by_test_id("red-packet-count").fill("1")
    await erin.get_by_test_id("red-packet-submit").click()
    await expect(erin.get_by_test_id("wallet-balance")).to_have_text("92.00 USD")

    await chat_item(frank, "erin").click()
    packet = frank.get_by_test_id("red-packet-card")
    await expect(packet).to_be_visible()
    await packet.get_by_test_id("card-button").click()
    await expect(frank.get_by_test_id("toast-claimed")).to_contain_text("8.00 USD")
    await expect(frank.get_by_test_id("wallet-balance")).to_have_text("8.00 USD")
    # The card is redrawn on both sides (message.updated): nothing left to grab.
    for page in (frank, erin):
        buttons = page.get_by_test_id("red-packet-card").get_by_test_id("card-button")
        await expect(buttons).to_have_count(0)
    assert erin.errors == [] and frank.errors == []


PLAYING = """async (selector) => {
  const video = document.querySelector(selector);
  if (!video || video.videoWidth === 0) return false;
  const start = video.currentTime;
  await new Promise((resolve) => setTimeout(resolve, 500));
  return video.videoWidth > 0 && video.currentTime > start;
}"""


async def test_video_call_between_two_browsers_plays_remote_video(web_base, browser, rest):
    from playwright.async_api import expect

    await befriend(rest, "gina", "hank")
    gina, hank = await new_page(browser, web_base), await new_page(browser, web_base)
    await sign_in(gina, "gina")
    await sign_in(hank, "hank")
    await gina.get_by_test_id("find-user").click()
    await gina.get_by_test_id("user-search-input").fill("hank")
    await gina.get_by_test_id("user-result").get_by_test_id("open-chat").click()

    await gina.get_by_test_id("call-button").click()
    await expect(gina.get_by_test_id("call-view")).to_be_visible()
    await hank.get_by_test_id("accept-call").click()
    await expect(hank.get_by_test_id("call-view")).to_be_visible()

    for page in (gina, hank):
        await page.wait_for_selector("[data-testid=remote-video]", timeout=30_000)
        await wait_until(page, PLAYING, "[data-testid=remote-video]", timeout=30)

    await gina.get_by_test_id("call-hangup").click()
    await expect(hank.get_by_test_id("call-view")).to_be_hidden()
    await chat_item(hank, "gina").click()
    await expect(hank.get_by_test_id("call-record")).to_contain_text("Video call")
    assert gina.errors == [] and hank.errors == []


BRIDGE_PAGE = """<!doctype html><html><body><p id="out">waiting</p>
<script>{bridge}</script>
<script>
(async () => {{
  const bridge = window.AetherialBridge;
  const out = document.getElementById("out");
  try {{
    const sent = await bridge.sendCard({{title: "Trip to Rome", text: "3 days"}});
    const paid = await bridge.requestPayment("pay-1");
    let refused = "no";
    try {{ await bridge.sendCard({{text: "no title"}}); }} catch (e) {{ refused = e.code; }}
    out.textContent = JSON.stringify({{token: bridge.launchToken, sent, paid, refused}});
    await bridge.close();
  }} catch (e) {{ out.textContent = "error " + e.message; }}
}})();
</script></body></html>"""


async def test_webview_bridge_in_a_sandboxed_iframe(web_base, browser):
    """The host side (webview.js) and the page side (sdk/js/bridge.js) in a real browser."""
    bridge = (ROOT / "sdk" / "js" / "bridge.js").read_text()
    page = await new_page(browser, web_base)

    async def serve(route):
        await route.fulfill(
            status=200, content_type="text/html", body=BRIDGE_PAGE.format(bridge=bridge)
        )

    await page.route("https://webview.test/**", serve)
    await page.evaluate(
        """async () => {
          const { openWebview } = await import("/static/webview.js");
          window.bridgeCalls = [];
          const calls = window.bridgeCalls;
          const url = "https://webview.test/app?token=t0k";
          const view = openWebview({ url, title: "Trip" }, {
            requestPayment: async (id) => { calls.push(["pay", id]); return { status: "paid" }; },
            sendCard: async (card) => { calls.push(["card", card]); return { message_id: "m1" }; },
            close: () => calls.push(["close"]),
          });
          // A message that does not come from the iframe is ignored.
          const forged = { aetherial: "bridge/1", id: "forged", method: "close", params: {} };
          window.postMessage(forged, "*");
          window.frameSandbox = view.frame.getAttribute("sandbox");
        }"""
    )
    await wait_until(page, "() => window.bridgeCalls.length === 3")
    calls = await page.evaluate("window.bridgeCalls")
    assert calls == [
        ["card", {"title": "Trip to Rome", "text": "3 days"}],
        ["pay", "pay-1"],
        ["close"],
    ]
    assert await page.evaluate("window.frameSandbox") == "allow-scripts allow-forms allow-downloads"
    assert await page.locator("[data-testid=webview]").count() == 0
    frames = [f for f in page.frames if f.url.startswith("https://webview.test/")]
    assert frames == []  # closed by the page's own request
    assert page.errors == []


async def test_pages_are_served_with_a_strict_policy(web_base, rest):
    for path in ("/", "/static/app.js", "/static/vendor/socket.io.esm.min.js"):
        async with rest.session.get(web_base + path) as response:
            assert response.status == 200, path
            policy = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
            assert "mediastream:" in policy
    async with rest.session.get(web_base + "/static/../pyproject.toml") as response:
        assert response.status == 404
    async with rest.session.get(web_base + "/static/%2e%2e/app.py") as response:
        assert response.status == 404
    status, spec = await rest.get("/openapi.json")
    assert status == 200 and "/" not in spec["paths"] and "/admin" not in spec["paths"]
    assert json.dumps(spec).count("/static/") == 0


# Wraps the page's WebSocket so a test can cut the connection and hold reconnection off.
CUT_SOCKETS = """
(() => {
  const Original = window.WebSocket;
  window.__sockets = [];
  window.__blockSockets = false;
  window.WebSocket = function (url, protocols) {
    const target = window.__blockSockets ? "ws://127.0.0.1:9/blocked" : url;
    const socket = new Original(target, protocols);
    window.__sockets.push(socket);
    return socket;
  };
  window.WebSocket.prototype = Original.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
})();
"""


async def test_reconnect_shows_a_banner_and_resyncs_what_was_missed(web_base, browser, rest):
    from playwright.async_api import expect

    await befriend(rest, "ivy", "jack")
    ivy, jack = await new_page(browser, web_base), await new_page(browser, web_base)
    await ivy.context.add_init_script(CUT_SOCKETS)
    await ivy.reload()
    await sign_in(ivy, "ivy")
    await sign_in(jack, "jack")
    await ivy.get_by_test_id("find-user").click()
    await ivy.get_by_test_id("user-search-input").fill("jack")
    await ivy.get_by_test_id("user-result").get_by_test_id("open-chat").click()
    await send(ivy, "Before the tunnel")
    await chat_item(jack, "ivy").click()
    await expect(message(jack, "Before the tunnel")).to_be_visible()

    # Ivy's connection drops and cannot come back for now: she sees it, Jack writes meanwhile.
    await ivy.evaluate(
        "() => { window.__blockSockets = true; window.__sockets.forEach((s) => s.close()); }"
    )
    await expect(ivy.get_by_test_id("banner")).to_have_text("Reconnecting…")
    await send(jack, "Sent while you were away")
    await expect(message(jack, "Sent while you were away")).to_be_visible()

    # Back online: the banner goes and sync brings the missed message.
    await ivy.evaluate("() => { window.__blockSockets = false; }")
    await expect(ivy.get_by_test_id("banner")).to_be_hidden()
    await expect(message(ivy, "Sent while you were away")).to_be_visible()
    await send(ivy, "Back!")
    await expect(message(jack, "Back!")).to_be_visible()
