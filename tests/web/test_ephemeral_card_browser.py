"""An ephemeral card with buttons in real Chromium against a real gateway: the ``whisper`` test
app (``tests/miniapps/apps/whisper``) answers ``/whisper`` with a card for the invoker alone;
the chat shows it in a sheet labelled "Only you can see this" (the other member sees nothing);
its Pay button reaches the app, which answers in the chat; "Settle" makes the app update the
private card, drawn again in a sheet; its web-view button opens the app's web view in the chat.
A card without buttons stays a toast. Every wait is on the page's state, never a sleep."""

from __future__ import annotations

import pytest

from tests.helpers import ApiClient
from tests.web.app_helpers import app_group, serve_test_app
from tests.web.test_chat_browser import befriend, chat_item, message, new_page, send, sign_in

pytestmark = pytest.mark.timeout(120)

APP_ID = "whisper"


@pytest.fixture
async def served(web_gateway):
    serve_test_app(web_gateway[1], APP_ID)
    return web_gateway


async def whisper_group(rest: ApiClient, owner: dict, member: dict, title: str) -> str:
    return await app_group(rest, owner, member, title, APP_ID)


async def test_an_ephemeral_card_shows_as_a_card_and_its_buttons_work(served, browser, rest):
    from playwright.async_api import expect

    base, _app = served
    ann, bea = await befriend(rest, "ann", "bea")
    await whisper_group(rest, ann, bea, "Whispers")
    ann_page, bea_page = await new_page(browser, base), await new_page(browser, base)
    await sign_in(ann_page, "ann")
    await sign_in(bea_page, "bea")
    for page in (ann_page, bea_page):
        await chat_item(page, "Whispers").click()
        await expect(page.get_by_test_id("chat-title")).to_have_text("Whispers")

    # Her private card, as a card in a sheet: title, text and every button.
    await send(ann_page, "/whisper")
    sheet = ann_page.get_by_test_id("ephemeral-sheet")
    await expect(sheet).to_be_visible()
    await expect(sheet.get_by_test_id("ephemeral-label")).to_have_text("Only you can see this")
    card = sheet.get_by_test_id("ephemeral-card")
    await expect(card.get_by_test_id("card-title")).to_have_text("Just for you")
    await expect(card).to_contain_text("You owe 12.50")
    buttons = card.get_by_test_id("card-button")
    await expect(buttons).to_have_text(["Pay 12.50", "Pay 5.00", "Settle", "Details"])
    await expect(card.locator("[data-testid=card-button][data-opens=webview]")).to_have_text(
        "Details"
    )
    await expect(ann_page.get_by_test_id("ephemeral-close")).to_be_focused()
    ephemeral_id = await sheet.get_attribute("data-ephemeral-id")
    assert ephemeral_id

    # Pay 5.00: the press reaches the app, which answers in the chat for both to read.
    await buttons.filter(has_text="Pay 5.00").click()
    await expect(sheet).to_have_count(0)
    answer = f"whisper: paid 500 on {ephemeral_id}"
    await expect(message(ann_page, answer)).to_be_visible()
    await expect(message(bea_page, answer)).to_be_visible()
    await expect(bea_page.get_by_test_id("ephemeral-sheet")).to_have_count(0)

    # Settle: the app updates the private card, which she sees again with its new buttons.
    await send(ann_page, "/whisper")
    await expect(sheet).to_be_visible()
    second_id = await sheet.get_attribute("data-ephemeral-id")
    assert second_id and second_id != ephemeral_id
    await sheet.get_by_test_id("card-button").filter(has_text="Settle").click()
    await expect(card.get_by_test_id("card-title")).to_have_text("All settled")
    await expect(sheet).to_have_attribute("data-ephemeral-id", second_id)
    await expect(card.get_by_test_id("card-button")).to_have_text(["Tip 1.00"])
    await card.get_by_test_id("card-button").click()
    await expect(message(ann_page, f"whisper: paid 100 on {second_id}")).to_be_visible()
    await expect(sheet).to_have_count(0)

    # Details: the app's web view opens in this chat, at the button's path.
    await send(ann_page, "/whisper")
    await sheet.locator("[data-testid=card-button][data-opens=webview]").click()
    await expect(sheet).to_have_count(0)
    await expect(ann_page.get_by_test_id("webview")).to_be_visible()
    frame_element = ann_page.get_by_test_id("webview-frame")
    src = await frame_element.get_attribute("src")
    assert src.startswith(f"{base}/miniapps/{APP_ID}/web/index.html?token="), src
    assert "who=me" in src.split("#", 1)[1], src
    frame = ann_page.frame_locator("[data-testid=webview-frame]")
    await expect(frame.locator("#title")).to_have_text("Whisper details")
    await ann_page.get_by_test_id("webview-close").click()
    await expect(ann_page.get_by_test_id("webview")).to_have_count(0)

    # A card without buttons is only shown: a toast, as a text is.
    await send(ann_page, "/whisper plain")
    await expect(ann_page.get_by_test_id("toast-ephemeral")).to_contain_text(
        "Just for you — No buttons here"
    )
    await expect(sheet).to_have_count(0)
    assert await bea_page.get_by_test_id("ephemeral-sheet").count() == 0
    assert ann_page.errors == [] and bea_page.errors == []
