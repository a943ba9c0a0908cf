"""A streamed message in real Chromium against a real gateway: the ``streamer`` test app
(``tests/miniapps/apps/streamer``) starts a streaming text; the ``ai`` runner's interface
(``host.streams.append``) grows it; both members see it appear marked "writing…", its text grow
in place (the bubble is not redrawn), and end — the final text, the mark gone — when the app
stops it; after a reload, history shows the final text. Every wait is on the page's state,
never a sleep."""

from __future__ import annotations

import pytest

from gateway.keys import MINIAPPS
from tests.helpers import ApiClient
from tests.web.app_helpers import app_group, serve_test_app
from tests.web.test_chat_browser import befriend, chat_item, new_page, send, sign_in

pytestmark = pytest.mark.timeout(120)

APP_ID = "streamer"


@pytest.fixture
async def served(web_gateway):
    serve_test_app(web_gateway[1], APP_ID)
    return web_gateway


async def streamer_group(rest: ApiClient, owner: dict, member: dict, title: str) -> str:
    return await app_group(rest, owner, member, title, APP_ID)


async def test_a_streamed_message_grows_in_place_and_ends(served, browser, rest):
    from playwright.async_api import expect

    base, app = served
    streams = app[MINIAPPS].streams
    ann, bea = await befriend(rest, "ann", "bea")
    await streamer_group(rest, ann, bea, "Answers")
    ann_page, bea_page = await new_page(browser, base), await new_page(browser, base)
    await sign_in(ann_page, "ann")
    await sign_in(bea_page, "bea")
    for page in (ann_page, bea_page):
        await chat_item(page, "Answers").click()
        await expect(page.get_by_test_id("chat-title")).to_have_text("Answers")

    # The app starts it: a bubble marked "writing…" with the text so far, for both.
    await send(ann_page, "/stream start Hello")
    growing = {
        page: page.locator("[data-testid=message][data-streaming=true]")
        for page in (ann_page, bea_page)
    }
    for bubble in growing.values():
        await expect(bubble).to_have_count(1)
        await expect(bubble.get_by_test_id("message-text")).to_have_text("Hello")
        await expect(bubble.get_by_test_id("message-streaming")).to_have_text("· writing…")
    message_id = await growing[bea_page].get_attribute("data-id")
    assert message_id
    await expect(ann_page.get_by_test_id("toast-ephemeral")).to_contain_text(
        f"streamer: started {message_id}"
    )
    drawn = await growing[bea_page].element_handle()

    # The runner writes the answer into it, piece by piece: it grows, still marked.
    for piece in (", wor", "ld"):
        await streams.append(message_id, piece)
    for bubble in growing.values():
        await expect(bubble.get_by_test_id("message-text")).to_have_text("Hello, world")
    await streams.append(message_id, " — and the rest.")
    for bubble in growing.values():
        await expect(bubble.get_by_test_id("message-text")).to_have_text(
            "Hello, world — and the rest."
        )
        await expect(bubble.get_by_test_id("message-streaming")).to_be_visible()
    assert await drawn.evaluate("node => node.isConnected"), "the bubble was redrawn"

    # The app stops it: the final text, no mark, the same bubble.
    await send(ann_page, f"/stream stop {message_id}")
    for page in (ann_page, bea_page):
        bubble = page.locator(f"[data-testid=message][data-id='{message_id}']")
        await expect(bubble).not_to_have_attribute("data-streaming", "true")
        await expect(bubble.get_by_test_id("message-text")).to_have_text(
            "Hello, world — and the rest."
        )
        await expect(bubble.get_by_test_id("message-streaming")).to_have_count(0)
    # The chat list previews the final text, not the first one.
    await expect(chat_item(bea_page, "Answers")).to_contain_text("Hello, world — and the rest.")

    # History after a reload: the final text only.
    await bea_page.reload()
    await bea_page.locator("body[data-connected=true]").wait_for(state="attached")
    await chat_item(bea_page, "Answers").click()
    bubble = bea_page.locator(f"[data-testid=message][data-id='{message_id}']")
    await expect(bubble.get_by_test_id("message-text")).to_have_text("Hello, world — and the rest.")
    await expect(bubble).not_to_have_attribute("data-streaming", "true")
    assert ann_page.errors == [] and bea_page.errors == []
