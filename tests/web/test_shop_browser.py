"""Buying from a product card in real Chromium against a real gateway running the shop: the card
with its photo and price, Buy, the wallet's own payment sheet, and the order card that follows.
Every wait is on the page's state, never a sleep."""

from __future__ import annotations

import pytest

from gateway.keys import MESSAGING
from tests.helpers import ApiClient
from tests.web.test_chat_browser import befriend, chat_item, new_page, send, sign_in
from tests.web.test_wallet_browser import add_app, dev_topup, open_direct_chat

pytestmark = pytest.mark.timeout(120)


class _Seller:
    """The merchant over REST (``tests.miniapps.shop.e2e_helpers.view`` needs ``.api``)."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api


async def test_buy_a_product_from_its_card(web_gateway, browser):
    from playwright.async_api import expect

    from tests.miniapps.shop.e2e_helpers import add_product, open_store, view

    base, app = web_gateway
    rest = ApiClient(base)
    try:
        await befriend(rest, "mia", "sam")
        sam = await rest.login("sam")
        await app[MESSAGING].users.collection.update_one(
            {"_id": sam["user"]["id"]}, {"$set": {"role": "admin"}}
        )
        status, body = await rest.post(
            f"/api/v1/admin/miniapps/shop/roles/merchant/users/{sam['user']['id']}"
        )
        assert status in (200, 201), body

        mia = await new_page(browser, base)
        await sign_in(mia, "mia")
        await dev_topup(mia)
        await open_direct_chat(mia, "sam")
        await add_app(mia, "shop")
        status, chats = await rest.get("/api/v1/conversations")
        [cid] = [c["id"] for c in chats["conversations"] if c["type"] == "direct"]
        seller = _Seller(rest)
        await open_store(seller, cid, "Sam's Corner")
        photo = await view(seller, cid, "photo.upload", {"data": _photo_base64()})
        await add_product(
            seller,
            cid,
            title="Travel Mug",
            price=1250,
            stock=3,
            photos=[photo["media_id"]],
        )

        await send(mia, "/shop search travel mug")
        card = mia.get_by_test_id("card").filter(has_text="Travel Mug").last
        await expect(card).to_be_visible()
        await expect(card).to_contain_text("$12.50")
        await expect(card.locator("img")).to_have_count(1)
        await card.get_by_test_id("card-button").filter(has_text="Buy").click()

        # The shop also asks to send order updates as service messages: the host's consent
        # sheet comes over the payment sheet; she allows it, then pays.
        consent = mia.get_by_test_id("consent-sheet")
        await expect(consent).to_be_visible()
        await consent.get_by_test_id("consent-allow").click()
        await expect(consent).to_have_count(0)
        sheet = mia.get_by_test_id("payment-sheet")
        await expect(sheet).to_be_visible()
        await expect(sheet.get_by_role("heading")).to_have_text("Pay Shop")
        await expect(sheet.get_by_test_id("payment-amount")).to_have_text("12.50 USD")
        await sheet.get_by_test_id("payment-confirm").click()
        await expect(sheet).to_be_hidden()

        order = mia.get_by_test_id("card").filter(has_text="Paid · waiting for shipment")
        await expect(order).to_be_visible()
        await expect(
            order.get_by_test_id("card-button").filter(has_text="Cancel order")
        ).to_be_visible()
        await expect(mia.get_by_test_id("wallet-balance")).to_contain_text("87.50 USD")
        await expect(chat_item(mia, "sam")).to_be_visible()
        assert mia.errors == []
    finally:
        await rest.close()


def _photo_base64() -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 80, 40)).save(buffer, "JPEG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
