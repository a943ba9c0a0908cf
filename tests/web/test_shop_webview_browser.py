"""The shop's web view shows product photos, in real Chromium against a real gateway running the
shop: a buyer opens the Shop from the chat's app menu (the sandboxed frame, the page's strict
CSP), and the storefront's tile and the product page load the photo through the addresses the
app signed (``photo_urls``, ``media.url``) — the images decode (``naturalWidth > 0``), with no
Content-Security-Policy violation. Every wait is on the page's state, never a sleep."""

from __future__ import annotations

import base64
import io

import pytest

from gateway.keys import MESSAGING
from tests.helpers import ApiClient
from tests.web.test_chat_browser import TIMEOUT, befriend, chat_item, sign_in

pytestmark = pytest.mark.timeout(120)

# A photo's image has decoded: the page's state, polled by the browser.
LOADED = """(selector) => {
  const image = document.querySelector(selector);
  return Boolean(image && image.complete && image.naturalWidth > 0) && image.naturalWidth;
}"""


class _Person:
    """Someone over REST (``tests.miniapps.shop.e2e_helpers.view`` needs ``.api``)."""

    def __init__(self, base: str, token: str) -> None:
        self.api = ApiClient(base)
        self.api.token = token


def _photo_base64(width: int, height: int) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 200)).save(buffer, "JPEG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


async def test_a_buyer_sees_product_photos_in_the_shop_web_view(web_gateway, browser):
    from playwright.async_api import expect

    from tests.miniapps.shop.e2e_helpers import add_product, open_store, view

    expect.set_options(timeout=TIMEOUT)
    base, app = web_gateway
    rest = ApiClient(base)
    seller = None
    try:
        mia, sam = await befriend(rest, "mia", "sam")
        await app[MESSAGING].users.collection.update_one(
            {"_id": sam["user"]["id"]}, {"$set": {"role": "admin"}}
        )
        status, body = await rest.post(
            f"/api/v1/admin/miniapps/shop/roles/merchant/users/{sam['user']['id']}",
            token=sam["access_token"],
        )
        assert status in (200, 201), body
        status, body = await rest.post(
            "/api/v1/conversations",
            json={"type": "group", "title": "Market", "member_ids": [mia["user"]["id"]]},
            token=sam["access_token"],
        )
        assert status == 201, body
        cid = body["conversation"]["id"]
        status, body = await rest.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "shop"}, token=sam["access_token"]
        )
        assert status in (200, 201), body

        # Sam lists a product with a 240x180 photo, through the shop's own views.
        seller = _Person(base, sam["access_token"])
        await open_store(seller, cid, "Sam's Corner")
        photo = await view(seller, cid, "photo.upload", {"data": _photo_base64(240, 180)})
        await add_product(
            seller, cid, title="Travel Mug", price=1250, stock=3, photos=[photo["media_id"]]
        )

        context = await browser.new_context(viewport={"width": 1200, "height": 800})
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        violations: list[str] = []
        page.on(
            "console",
            lambda msg: (
                violations.append(msg.text) if "Content Security Policy" in msg.text else None
            ),
        )
        await page.goto(base + "/")
        await sign_in(page, "mia")
        await chat_item(page, "Market").click()
        await expect(page.get_by_test_id("chat-title")).to_have_text("Market")
        await page.get_by_test_id("apps-button").click()
        item = page.locator("[data-testid=app-item][data-app-id=shop]")
        await item.get_by_test_id("launch-app").click()
        await expect(page.get_by_test_id("webview")).to_be_visible()
        frame_element = page.get_by_test_id("webview-frame")
        src = await frame_element.get_attribute("src")
        assert src.startswith(f"{base}/miniapps/shop/web/index.html?token="), src
        frame = await (await frame_element.element_handle()).content_frame()
        assert frame is not None

        # The storefront's tile: the photo's thumbnail, loaded from the platform.
        tile = frame.locator("#grid .tile").filter(has_text="Travel Mug")
        await expect(tile).to_be_visible()
        photo_img = tile.locator("img[data-testid=product-photo]")
        await expect(photo_img).to_have_count(1)
        await expect(photo_img).to_have_attribute("alt", "Travel Mug")
        src = await photo_img.get_attribute("src")
        assert src.startswith(f"/media/{photo['media_id']}/thumbnail?exp="), src
        loaded = await frame.wait_for_function(LOADED, arg="#grid .tile img.photo")
        assert await loaded.json_value() > 0

        # The product page: the photo itself, at its size.
        await tile.click()
        await expect(frame.locator("#product")).to_be_visible()
        big = frame.locator("#product-body img[data-testid=product-photo]")
        await expect(big).to_have_count(1)
        assert (await big.get_attribute("src")).startswith(f"/media/{photo['media_id']}?exp=")
        loaded = await frame.wait_for_function(LOADED, arg="#product-body img.photo")
        assert await loaded.json_value() == 240
        # The page is still sandboxed in an opaque origin: the images came by signature alone.
        assert await frame.evaluate("() => window.origin") == "null"
        assert errors == [] and violations == []
        await context.close()
    finally:
        if seller is not None:
            await seller.api.close()
        await rest.close()


async def test_a_merchant_opens_a_store_with_the_web_views_form(web_gateway, browser):
    """The merchant's forms in the sandboxed page: their submit event fires (the frame allows
    forms; the page's CSP lets them post nowhere) and the page saves through the app."""
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    base, app = web_gateway
    rest = ApiClient(base)
    try:
        sam = await rest.signup("sam")
        await app[MESSAGING].users.collection.update_one(
            {"_id": sam["user"]["id"]}, {"$set": {"role": "admin"}}
        )
        status, body = await rest.post(
            f"/api/v1/admin/miniapps/shop/roles/merchant/users/{sam['user']['id']}",
            token=sam["access_token"],
        )
        assert status in (200, 201), body
        status, body = await rest.post(
            "/api/v1/conversations",
            json={"type": "group", "title": "Stall", "member_ids": []},
            token=sam["access_token"],
        )
        assert status == 201, body
        cid = body["conversation"]["id"]
        status, body = await rest.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "shop"}, token=sam["access_token"]
        )
        assert status in (200, 201), body

        context = await browser.new_context(viewport={"width": 1200, "height": 800})
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(base + "/")
        await sign_in(page, "sam")
        await chat_item(page, "Stall").click()
        await page.get_by_test_id("apps-button").click()
        item = page.locator("[data-testid=app-item][data-app-id=shop]")
        await item.get_by_test_id("launch-app").click()
        frame = page.frame_locator("[data-testid=webview-frame]")
        await frame.locator("#tab-mine").click()
        form = frame.locator("#store-form")
        await form.locator("input[name=name]").fill("Sam's Stall")
        await form.locator("textarea[name=description]").fill("Fresh every morning")
        await form.get_by_role("button", name="Save store").click()

        async def saved():
            status, launch = await rest.post(
                f"/api/v1/conversations/{cid}/apps/shop/launch", token=sam["access_token"]
            )
            assert status in (200, 201), launch
            status, body = await rest.post(
                "/api/v1/webviews/call",
                json={"token": launch["token"], "name": "store.mine", "params": {}},
                token=sam["access_token"],
            )
            assert status == 200, body
            return (body["result"]["store"] or {}).get("name") == "Sam's Stall"

        # The page shows "New product" once it has a store; then the app has it too.
        await expect(frame.locator("#new-product")).to_be_visible()
        assert await saved()
        assert errors == []
        await context.close()
    finally:
        await rest.close()
