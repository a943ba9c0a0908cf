"""The crypto app's web view in the browser: a person opens it from ``/crypto`` in a group, sees
the (labelled simulated) prices and the paper-trading notice, places a limit buy far below the
market on the Trade tab — her USDT moves to "In orders" — finds it in My orders and cancels it,
and the money is free again. Every wait is on the page's state, never a fixed sleep."""

from __future__ import annotations

import pytest

from tests.helpers import ApiClient
from tests.web.test_chat_browser import TIMEOUT, befriend, chat_item, new_page, send, sign_in

pytestmark = pytest.mark.timeout(180)


async def test_a_person_places_and_cancels_a_paper_order(web_gateway, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    base, _app = web_gateway
    rest = ApiClient(base)
    try:
        ana, ben = await befriend(rest, "ana", "ben")
        status, body = await rest.post(
            "/api/v1/conversations",
            json={"type": "group", "title": "Traders", "member_ids": [ben["user"]["id"]]},
            token=ana["access_token"],
        )
        assert status == 201, body
        cid = body["conversation"]["id"]
        status, body = await rest.post(
            f"/api/v1/conversations/{cid}/apps",
            json={"app_id": "crypto"},
            token=ana["access_token"],
        )
        assert status in (200, 201), body

        page = await new_page(browser, base)
        await sign_in(page, "ana")
        await chat_item(page, "Traders").click()
        await send(page, "/crypto")
        welcome = page.get_by_test_id("card").filter(has_text="Paper trading").last
        opener = welcome.locator("[data-testid=card-button][data-opens=webview]")
        await expect(opener).to_have_text("Open Crypto")
        await opener.click()
        frame = page.frame_locator("[data-testid=webview-frame]")

        # Markets: the coins with their prices, labelled simulated; paper money only.
        await expect(frame.locator("#paper")).to_have_text("Paper trading — no real money.")
        await expect(frame.locator("#simulated")).to_be_visible()
        btc = frame.locator("#quotes tr").filter(has_text="BTC")
        await expect(btc).to_have_count(1)
        await expect(btc.get_by_role("button", name="Trade")).to_be_visible()

        # Trade: a limit buy of 0.01 BTC at 1 000 USDT (10 USDT: above the 5 USDT minimum), far
        # below the market: it rests.
        await btc.get_by_role("button", name="Trade").click()
        await expect(frame.locator("#pair")).to_have_value("BTC/USDT")
        usdt = frame.locator("#balances tr").filter(has_text="USDT")
        await expect(usdt.locator("td").nth(1)).to_have_text("10,000")
        form = frame.locator("#order-form")
        await form.locator("input[name=amount]").fill("0.01")
        await form.locator("input[name=price]").fill("1000")
        await form.get_by_role("button", name="Place order").click()
        await expect(frame.locator("#status")).to_contain_text("buy 0.01 BTC: open (filled 0)")
        await expect(usdt.locator("td").nth(2)).not_to_have_text("0")  # reserved for the order
        await expect(frame.locator("#bids")).to_contain_text("1,000")

        # My orders: it is open; Cancel gives the money back.
        await frame.locator("#tab-orders").click()
        order = frame.locator("#open-orders .order").filter(has_text="buy 0.01 BTC at 1,000")
        await expect(order).to_have_count(1)
        await order.get_by_role("button", name="Cancel").click()
        await expect(frame.locator("#status")).to_have_text("Cancelled.")
        await expect(frame.locator("#open-orders")).to_contain_text("No open orders.")
        await frame.locator("#tab-trade").click()
        await expect(usdt.locator("td").nth(1)).to_have_text("10,000")
        await expect(usdt.locator("td").nth(2)).to_have_text("0")
        await page.context.close()
    finally:
        await rest.close()
