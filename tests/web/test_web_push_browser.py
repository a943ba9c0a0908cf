"""Desktop notifications (Web Push) in the web client, in real headless Chromium.

What headless Chromium can do here, offline (probed): the service worker registers and receives
pushes delivered through the DevTools protocol (``ServiceWorker.deliverPushMessage``), and
``showNotification`` / ``getNotifications`` work. ``PushManager.subscribe`` does not: in a normal
Playwright context (incognito) it fails with "permission denied", and in a persistent profile it
never answers (Chromium's push service is Google's FCM, out of reach). So the browser's push
service is played by test doubles, like Stripe is elsewhere: ``PushManager.subscribe`` /
``getSubscription`` are replaced in the page by a stand-in whose subscription points at the local
push service stub of ``tests/messaging/test_web_push.py`` (which verifies VAPID and decrypts the
push like a browser), and what that stub decrypted is handed to our service worker through CDP,
as the browser would. Everything of ours runs for real: the control, sw.js, the gateway, the
server's push outbox and sender.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from gateway import keys
from tests.conftest import _free_port, make_config, require
from tests.helpers import ApiClient, eventually
from tests.messaging.test_web_push import PushServiceStub
from tests.web.conftest import WEB_BUILT, WEB_MISSING
from tests.web.test_chat_browser import sign_up

pytestmark = pytest.mark.timeout(90)

TIMEOUT = 15_000  # ms, for any one thing to appear

# The browser's push service, played in the page: a subscription to the local stub (endpoint and
# keys made by the test, like a browser makes them), kept in localStorage across reloads.
FAKE_PUSH_MANAGER = """
(() => {
  const config = %s;
  const STORE = "test.fake_push";
  const LOG = "test.fake_push_log";
  const log = () => JSON.parse(localStorage.getItem(LOG) || "[]");
  const note = (entry) => localStorage.setItem(LOG, JSON.stringify([...log(), entry]));
  const toBytes = (text) => Uint8Array.from(
    atob(text.replace(/-/g, "+").replace(/_/g, "/")), (char) => char.charCodeAt(0));
  function held() {
    const saved = localStorage.getItem(STORE);
    if (!saved) return null;
    const { key } = JSON.parse(saved);
    return {
      endpoint: config.endpoint,
      expirationTime: null,
      options: { userVisibleOnly: true, applicationServerKey: toBytes(key).buffer },
      toJSON() {
        return { endpoint: config.endpoint, expirationTime: null, keys: config.keys };
      },
      async unsubscribe() {
        localStorage.removeItem(STORE);
        note("unsubscribe");
        return true;
      },
    };
  }
  PushManager.prototype.getSubscription = async function () { return held(); };
  PushManager.prototype.subscribe = async function (options) {
    if (Notification.permission !== "granted") throw new DOMException("denied", "NotAllowedError");
    if (!options.userVisibleOnly) throw new DOMException("userVisibleOnly", "NotAllowedError");
    const bytes = new Uint8Array(options.applicationServerKey);
    const key = btoa(String.fromCharCode(...bytes))
      .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
    localStorage.setItem(STORE, JSON.stringify({ key }));
    note("subscribe " + key);
    return held();
  };
})();
"""
PUSH_LOG = "() => JSON.parse(localStorage.getItem('test.fake_push_log') || '[]')"


@asynccontextmanager
async def serve(config) -> AsyncIterator[tuple[str, web.Application]]:
    from gateway.app import create_app

    require(WEB_BUILT, WEB_MISSING)
    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        await runner.cleanup()


@pytest.fixture
async def stub(aiohttp_server) -> PushServiceStub:
    service = PushServiceStub()
    server = await aiohttp_server(service.app)
    service.base = str(server.make_url("")).rstrip("/")
    return service


async def new_page(browser, base: str, init_script: str | None = None):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    await context.grant_permissions(["notifications"], origin=base)
    if init_script:
        await context.add_init_script(init_script)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(base + "/")
    return page


async def open_bell(page) -> None:
    from playwright.async_api import expect

    if await page.get_by_test_id("notification-panel").is_hidden():
        await page.get_by_test_id("bell").click()
    await expect(page.get_by_test_id("notification-panel")).to_be_visible()


async def shown_notifications(page) -> list[dict]:
    return await page.evaluate(
        """async () => {
          const registration = await navigator.serviceWorker.ready;
          return (await registration.getNotifications()).map((n) => (
            { title: n.title, body: n.body, tag: n.tag, data: n.data }));
        }"""
    )


async def test_control_says_unavailable_when_the_server_has_push_off(
    browser, mongo_url, mongo_db_name, tmp_path, redis_url
):
    """Production without VAPID_PRIVATE_KEY: the key endpoint says 503 push_disabled, and the
    control says so instead of offering a button that cannot work."""
    from playwright.async_api import expect

    config = make_config(
        mongo_url,
        mongo_db_name,
        tmp_path / "var",
        environment="production",
        redis_url=redis_url,
        jwt_secret="w" * 40,
        miniapps_allow_unsandboxed=True,
        metrics_token="m" * 40,
    )
    async with serve(config) as (base, _app):
        page = await new_page(browser, base)
        try:
            await sign_up(page, "pushless")
            await open_bell(page)
            control = page.get_by_test_id("push-control")
            await expect(control).to_have_attribute("data-state", "unavailable")
            status = page.get_by_test_id("push-status")
            await expect(status).to_contain_text("not set up on this server")
            await expect(page.get_by_test_id("push-toggle")).to_be_hidden()
            no_worker = "async () => !(await navigator.serviceWorker.getRegistration())"
            assert await page.evaluate(no_worker)
            assert page.errors == []
        finally:
            await page.context.close()


async def test_enable_receive_with_the_tab_closed_disable_and_sign_out(
    browser, mongo_url, mongo_db_name, tmp_path, stub
):
    """Enable → the service worker at scope / and the subscription on the server; a friend
    request → the server's push (decrypted by the stub) shown by sw.js while no chat tab is
    open, not while one is in front; Disable and sign-out → the server forgets the browser."""
    from playwright.async_api import expect

    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", jobs_interval=0.2)
    async with serve(config) as (base, app):
        messaging = app[keys.MESSAGING]
        rest = ApiClient(base)
        try:
            status, body = await rest.get("/api/v1/push/vapid-public-key")
            assert status == 200, body
            server_key = stub.expected_key = body["public_key"]
            device = stub.browser()
            fake = {"endpoint": stub.endpoint(device), "keys": device.keys()}
            page = await new_page(browser, base, FAKE_PUSH_MANAGER % json.dumps(fake))
            try:
                await sign_up(page, "alice")
                await rest.login("alice")
                status, me = await rest.get("/api/v1/me")
                alice_id = me["user"]["id"]

                async def subscriptions() -> list[dict]:
                    return await messaging.push_subscriptions.get_user_subscriptions(alice_id, 10)

                # Off until asked; one click subscribes.
                await open_bell(page)
                control = page.get_by_test_id("push-control")
                await expect(control).to_have_attribute("data-state", "off")
                toggle = page.get_by_test_id("push-toggle")
                await expect(toggle).to_have_text("Enable desktop notifications")
                await toggle.click()
                await expect(control).to_have_attribute("data-state", "on")
                await expect(toggle).to_have_text("Disable")
                registration = await page.evaluate(
                    """async () => {
                      const registration = await navigator.serviceWorker.getRegistration();
                      const worker = registration.active || registration.waiting;
                      return { scope: registration.scope, script: worker.scriptURL };
                    }"""
                )
                assert registration == {"scope": base + "/", "script": base + "/sw.js"}
                log = await page.evaluate(PUSH_LOG)
                assert log == [f"subscribe {server_key}"]  # with the server's VAPID key
                saved = await subscriptions()
                assert [s["endpoint"] for s in saved] == [fake["endpoint"]]
                assert saved[0]["p256dh"] == fake["keys"]["p256dh"]

                # A friend request for alice: the server pushes to the browser's push service.
                await rest.signup("bob")
                status, _ = await rest.post("/api/v1/contacts/requests", json={"user_id": alice_id})
                assert status == 201
                payloads = await eventually(lambda: stub.payloads(device), what="a push")
                pushed = payloads[0]
                assert pushed["kind"] == "friend_request" and pushed["url"] == "/"

                cdp = await page.context.new_cdp_session(page)
                registrations: list[dict] = []
                cdp.on(
                    "ServiceWorker.workerRegistrationUpdated",
                    lambda event: registrations.extend(event["registrations"]),
                )
                await cdp.send("ServiceWorker.enable")
                found = await eventually(
                    lambda: [r for r in registrations if r["scopeURL"] == base + "/"],
                    what="the registration",
                )

                async def deliver(payload: dict) -> None:
                    await cdp.send(
                        "ServiceWorker.deliverPushMessage",
                        {
                            "origin": base,
                            "registrationId": found[0]["registrationId"],
                            "data": json.dumps(payload),
                        },
                    )

                # While the chat is in front: its bell has it, nothing pops up.
                assert await page.evaluate("() => document.hasFocus()")
                await deliver({**pushed, "notification_id": "in-front", "title": "not shown"})
                # The tab closed: the service worker shows what the server pushed.
                await page.goto("about:blank")
                await deliver(pushed)
                await page.goto(base + "/")
                await expect(page.get_by_test_id("me-name")).to_have_text("alice")
                shown = await eventually(lambda: shown_notifications(page), what="a notification")
                assert shown == [
                    {
                        "title": pushed["title"],
                        "body": pushed["body"],
                        "tag": pushed["notification_id"],
                        "data": {"url": base + "/", "notification_id": pushed["notification_id"]},
                    }
                ]
                assert "bob" in pushed["title"] + pushed["body"]

                # Disable: unsubscribed here and forgotten by the server.
                await open_bell(page)
                await expect(control).to_have_attribute("data-state", "on")
                await toggle.click()
                await expect(control).to_have_attribute("data-state", "off")
                assert await subscriptions() == []

                # On again, then sign out: the next account on this browser gets none of alice's.
                await toggle.click()
                await expect(control).to_have_attribute("data-state", "on")
                assert len(await subscriptions()) == 1
                await page.keyboard.press("Escape")  # the panel closes; it covers the button
                await expect(page.get_by_test_id("notification-panel")).to_be_hidden()
                await page.get_by_test_id("sign-out").click()
                await expect(page.get_by_test_id("auth-submit")).to_be_visible()
                assert await subscriptions() == []
                log = await page.evaluate(PUSH_LOG)
                assert log.count("unsubscribe") == 2
                assert page.errors == []
            finally:
                await page.context.close()
        finally:
            await rest.close()


async def test_service_worker_is_served_from_the_root(web_base):
    """Its scope can be the whole site only if it is served from / (no Service-Worker-Allowed)."""
    rest = ApiClient(web_base)
    try:
        async with rest.session.get(web_base + "/sw.js") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/javascript")
            assert response.headers["Cache-Control"] == "no-cache"
            assert "showNotification" in await response.text()
    finally:
        await rest.close()
