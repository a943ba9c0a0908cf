"""A card button that opens the app's web view, in real Chromium against a real gateway running
the shop: in a chat with the Shop, ``/shop`` posts its card; "Open the shop" opens the Shop's
web view in the chat (the sandboxed frame, launched like the app menu does) with the storefront
rendered; a product card's "Details" opens it at that product (``#product=…`` in the fragment,
beside the host's ``aetherial_*`` parameters). Every wait is on the page's state, never a
sleep."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.keys import MESSAGING
from tests.helpers import ApiClient
from tests.web.test_chat_browser import TIMEOUT, befriend, chat_item, send, sign_in

pytestmark = pytest.mark.timeout(120)


class _Person:
    """Someone over REST (``tests.miniapps.shop.e2e_helpers.view`` needs ``.api``)."""

    def __init__(self, base: str, token: str) -> None:
        self.api = ApiClient(base)
        self.api.token = token


async def open_frame(page, base: str):
    """The web view that just opened: its launch fragment and its frame."""
    from playwright.async_api import expect

    await expect(page.get_by_test_id("webview")).to_be_visible()
    frame_element = page.get_by_test_id("webview-frame")
    src = await frame_element.get_attribute("src")
    assert src.startswith(f"{base}/miniapps/shop/web/index.html?token="), src
    fragment = parse_qs(urlsplit(src).fragment)
    assert fragment["aetherial_host"] == [base], src
    frame = await (await frame_element.element_handle()).content_frame()
    assert frame is not None
    return fragment, frame


async def test_open_the_shop_from_its_card(web_gateway, browser):
    from playwright.async_api import expect

    from tests.miniapps.shop.e2e_helpers import add_product, open_store

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
        seller = _Person(base, sam["access_token"])
        await open_store(seller, cid, "Sam's Corner")
        mug = await add_product(seller, cid, title="Travel Mug", price=1250, stock=3)
        await add_product(seller, cid, title="Desk Lamp", price=3490, stock=2)

        context = await browser.new_context(viewport={"width": 1200, "height": 800})
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(base + "/")
        await sign_in(page, "mia")
        await chat_item(page, "Market").click()
        await expect(page.get_by_test_id("chat-title")).to_have_text("Market")

        # /shop: the card with the newest products and "Open the shop".
        await send(page, "/shop")
        listing = page.get_by_test_id("card").filter(has_text="Newest products").last
        await expect(listing).to_be_visible()
        open_shop = listing.locator("[data-testid=card-button][data-opens=webview]")
        await expect(open_shop).to_have_text("Open the shop")
        await open_shop.click()
        fragment, frame = await open_frame(page, base)
        assert "product" not in fragment
        # The storefront, rendered by the Shop's page from its own views.
        await expect(frame.locator("#grid .tile").filter(has_text="Travel Mug")).to_be_visible()
        await expect(frame.locator("#grid .tile").filter(has_text="Desk Lamp")).to_be_visible()
        await expect(frame.locator("#product")).to_be_hidden()
        await page.get_by_test_id("webview-close").click()
        await expect(page.get_by_test_id("webview")).to_have_count(0)

        # A product's card (tap it on the listing): "Details" opens the web view at it.
        await listing.get_by_test_id("card-button").filter(has_text="Travel Mug").click()
        card = page.get_by_test_id("card").filter(has_text="Item").filter(has_text=mug["id"])
        await expect(card).to_be_visible()
        details = card.locator("[data-testid=card-button][data-opens=webview]")
        await expect(details).to_have_text("Details")
        await details.click()
        fragment, frame = await open_frame(page, base)
        assert fragment["product"] == [mug["id"]]
        await expect(frame.locator("#product")).to_be_visible()
        await expect(frame.locator("#product-body h2")).to_have_text("Travel Mug")
        assert errors == []
        await context.close()
    finally:
        if seller is not None:
            await seller.api.close()
        await rest.close()
