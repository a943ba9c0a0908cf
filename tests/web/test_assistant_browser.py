"""The assistant in real Chromium against a real gateway whose model is the OpenAI-compatible stub
(``tests/ai_stub.py``, reached by the host's real ``openai`` client; the assistant runs as the
sandboxed built-in app).

- Discover offers "Chat" for an app that takes messages: it opens the person's service chat with
  the assistant, where the composer is enabled ("Message Assistant"); a question typed there is
  answered in one message that grows as the model writes (at least two texts before the last,
  each extending the one before) and ends with the final text.
- In a group, the "Read history" switch of the chat's app menu: the owner turns it on (a refusal
  — the app was removed meanwhile — is shown and the switch goes back), a member sees it flip
  live (``conversation.app_grant``) without being able to change it, and both read the system
  message that says who did it. The member, away from the group, asks ``/ai summary`` from her
  phone (a Socket.IO client of hers): her browser shows the private catch-up card ("Only you can
  see this · in Crew") with Share, built from only what she missed; Share posts it in the group.
- ``/ai summary`` typed in the group itself right after opening it: opening the chat marked it
  read, and the client sends where it had read up to before that (``catch_up_from``), so the
  catch-up covers what was unread when the chat opened.

Every wait is on the page's state, never a sleep; the timings are measured and printed, not
asserted.
"""

from __future__ import annotations

import itertools
import json
import time

import pytest

from tests.ai_stub import ai_stub_fixture  # noqa: F401  (the ai_stub fixture)
from tests.helpers import ApiClient, SocketClient
from tests.web.conftest import _serve
from tests.web.test_chat_browser import befriend, chat_item, message, new_page, send, sign_in

pytestmark = pytest.mark.timeout(120)

APP_ID = "assistant"
ANSWER = "Lisbon is the capital of Portugal, on the Tagus river, facing the Atlantic."
SUMMARY = "Decisions: meet Friday at 10. To do: bea books the room; ann brings the slides."
CHUNK_DELAY = 0.1  # s between the stub's chunks (its first, text-less one comes at once)
_ids = itertools.count(1)

# Records in ``window.__answer``, in the page, every text the last bubble not written by the
# page's user shows, whether it is still being written, and when (performance.now()), as the DOM
# changes; bubbles in ``window.__before`` (ids) are not the answer. Installed once per page.
WATCH_ANSWERS = """() => {
  window.__answer = [];
  window.__before = new Set();
  const list = document.querySelector("#message-list");
  const look = () => {
    const bubble = [...list.querySelectorAll("[data-testid=message][data-mine=false]")].pop();
    if (bubble && window.__before.has(bubble.dataset.id)) return;
    const text = bubble?.querySelector("[data-testid=message-text]")?.textContent;
    if (!bubble || text === undefined) return;
    const streaming = bubble.dataset.streaming === "true";
    const seen = window.__answer;
    const last = seen[seen.length - 1];
    if (!last || last.text !== text || last.streaming !== streaming) {
      seen.push({ text, streaming, at: performance.now() });
    }
  };
  new MutationObserver(look).observe(list, { childList: true, subtree: true, characterData: true });
}"""

# A new record: the answers shown so far are not the one coming.
NEXT_ANSWER = """() => {
  window.__answer = [];
  const shown = document.querySelectorAll("#message-list [data-testid=message][data-mine=false]");
  window.__before = new Set([...shown].map((node) => node.dataset.id));
  return performance.now();
}"""


async def ask(page, ai_stub, question: str, reply: str, bubbles: int) -> list[dict]:
    """Type ``question`` in the open chat (the model, slowly, answers ``reply``); wait until the
    ``bubbles``-th answer shows its final text; return what the page showed of it, and print
    the timings (the page's and the stub's; measured, not asserted)."""
    from playwright.async_api import expect

    ai_stub.reply(reply, chunk_size=4, delay=CHUNK_DELAY)
    sent_at = await page.evaluate(NEXT_ANSWER)
    sent = time.monotonic()
    await send(page, question)
    await expect(message(page, question)).to_be_visible()
    answers = page.locator("[data-testid=message][data-mine=false]")
    await expect(answers).to_have_count(bubbles)
    answer = answers.last
    await expect(answer.get_by_test_id("message-text")).to_have_text(reply)
    await expect(answer).not_to_have_attribute("data-streaming", "true")
    await expect(answer.get_by_test_id("message-streaming")).to_have_count(0)
    seen = await page.evaluate("window.__answer")
    stub = ai_stub.answers[-1]
    first = next(s["at"] for s in seen if s["text"])
    print(
        f"\n{question!r}: {len([s for s in seen if s['streaming'] and s['text']])} texts "
        f"while written; on screen: first text {first - sent_at:.0f} ms, final "
        f"{seen[-1]['at'] - sent_at:.0f} ms after the send. The model (stub) was asked "
        f"{(stub['received_at'] - sent) * 1000:.0f} ms after the send; its first text chunk "
        f"{stub['first_chunk_ms'] + CHUNK_DELAY * 1000:.0f} ms, its whole answer "
        f"{stub['total_ms']:.0f} ms after the request arrived"
    )
    return seen


@pytest.fixture
async def served(mongo_url, mongo_db_name, tmp_path, ai_stub):
    """A gateway serving the web client, its model the AI stub."""
    async with _serve(mongo_url, mongo_db_name, tmp_path, **ai_stub.settings()) as running:
        yield running


async def test_chat_with_the_assistant_from_discover_streams_the_answer(
    served, browser, rest, ai_stub
):
    from playwright.async_api import expect

    base, _app = served
    await rest.signup("ann")
    # The catalogue says which apps take messages and which read a chat's history once let.
    status, body = await rest.get("/api/v1/miniapps")
    assert status == 200, body
    flags = {a["id"]: (a["takes_messages"], a["wants_history"]) for a in body["miniapps"]}
    assert flags[APP_ID] == (True, True) and flags["shop"] == (False, False), flags
    page = await new_page(browser, base)
    await sign_in(page, "ann")

    # Discover: "Chat" for the assistant (it takes messages), none for the shop (commands only).
    await page.get_by_test_id("discover-button").click()
    sheet = page.get_by_test_id("discover-sheet")
    assistant = sheet.locator(f"[data-testid=discover-item][data-app-id={APP_ID}]")
    await expect(sheet.locator("[data-testid=discover-item][data-app-id=shop]")).to_be_visible()
    await expect(
        sheet.locator("[data-testid=discover-item][data-app-id=shop]").get_by_test_id(
            "discover-chat"
        )
    ).to_have_count(0)
    await assistant.get_by_test_id("discover-chat").click()

    # Her service chat with it, listed as such, the composer enabled.
    await expect(sheet).to_have_count(0)
    await expect(page.get_by_test_id("chat-title")).to_have_text("Assistant")
    service = page.locator("[data-testid=conversation-item][data-type=service]")
    await expect(service.get_by_test_id("conversation-title")).to_contain_text("Assistant")
    composer = page.get_by_test_id("composer-input")
    await expect(composer).to_be_enabled()
    await expect(composer).to_have_attribute("placeholder", "Message Assistant")
    await expect(composer).to_be_focused()

    # A question: the answer grows in one bubble and ends with the final text.
    await page.evaluate(WATCH_ANSWERS)
    seen = await ask(page, ai_stub, "What is the capital of Portugal?", ANSWER, 1)
    written = [s["text"] for s in seen if s["streaming"] and s["text"] != ANSWER]
    assert len(set(written)) >= 2, seen
    texts = [t for t in dict.fromkeys(s["text"] for s in seen) if t]
    assert texts[-1] == ANSWER and all(
        b.startswith(a) and b != a for a, b in itertools.pairwise(texts)
    ), texts
    assert seen[-1]["text"] == ANSWER and seen[-1]["streaming"] is False, seen
    assert "capital of Portugal" in str(ai_stub.requests[-1]["messages"])

    # Another (the app is running now): the same, in a new bubble.
    seen = await ask(page, ai_stub, "And of Spain?", "Madrid, on the Manzanares.", 2)
    assert seen[-1]["text"] == "Madrid, on the Manzanares." and len(ai_stub.requests) == 2
    assert page.errors == []


async def crew_group(rest: ApiClient, owner: dict, member: dict) -> str:
    status, body = await rest.post(
        "/api/v1/conversations",
        json={"type": "group", "title": "Crew", "member_ids": [member["user"]["id"]]},
        token=owner["access_token"],
    )
    assert status == 201, body
    cid = body["conversation"]["id"]
    await install(rest, owner, cid)
    return cid


async def install(rest: ApiClient, owner: dict, cid: str) -> None:
    status, body = await rest.post(
        f"/api/v1/conversations/{cid}/apps", json={"app_id": APP_ID}, token=owner["access_token"]
    )
    assert status == 201, body


def history_switch(page):
    return page.get_by_test_id("apps-sheet").locator(
        f"[data-testid=app-item][data-app-id={APP_ID}] [data-testid=app-history]"
    )


async def test_read_history_switch_then_a_private_catch_up_shared_in_the_group(
    served, browser, rest, ai_stub
):
    from playwright.async_api import expect

    base, _app = served
    ann, bea = await befriend(rest, "ann", "bea")
    cid = await crew_group(rest, ann, bea)
    ann_page, bea_page = await new_page(browser, base), await new_page(browser, base)
    await sign_in(ann_page, "ann")
    await sign_in(bea_page, "bea")
    for page in (ann_page, bea_page):
        await chat_item(page, "Crew").click()
        await expect(page.get_by_test_id("chat-title")).to_have_text("Crew")
    await send(ann_page, "Welcome to the crew, the door code is 4711")
    await expect(message(bea_page, "Welcome to the crew, the door code is 4711")).to_be_visible()

    # The app menu: everyone sees the switch, off; only the owner may turn it.
    for page in (ann_page, bea_page):
        await page.get_by_test_id("apps-button").click()
        await expect(history_switch(page)).not_to_be_checked()
    await expect(history_switch(bea_page)).to_be_disabled()
    await expect(history_switch(ann_page)).to_be_enabled()

    # A refusal is shown and the switch goes back: the app left the chat meanwhile.
    status, _ = await rest.delete(
        f"/api/v1/conversations/{cid}/apps/{APP_ID}", token=ann["access_token"]
    )
    assert status == 204
    await history_switch(ann_page).click()
    await expect(ann_page.get_by_test_id("toast-error")).to_contain_text(
        "this conversation does not have that app"
    )
    await expect(history_switch(ann_page)).not_to_be_checked()
    await expect(history_switch(ann_page)).to_be_enabled()

    # Back in the chat: the owner turns it on; the member's switch follows live, and both read
    # who did it.
    await install(rest, ann, cid)
    status, body = await rest.get(f"/api/v1/conversations/{cid}/apps", token=bea["access_token"])
    assert status == 200, body
    [listed] = body["miniapps"]
    assert listed["takes_messages"] is True and listed["wants_history"] is True, listed
    await history_switch(ann_page).click()
    await expect(history_switch(ann_page)).to_be_checked()
    await expect(history_switch(bea_page)).to_be_checked()
    await expect(history_switch(bea_page)).to_be_disabled()
    status, body = await rest.get(
        f"/api/v1/conversations/{cid}/apps/{APP_ID}/grants", token=bea["access_token"]
    )
    assert status == 200 and [g["grant"] for g in body["grants"]] == ["messages.read_history"]
    for page in (ann_page, bea_page):
        await page.keyboard.press("Escape")
        system = page.locator("[data-testid=message][data-type=system]")
        await expect(system.last).to_have_text("ann let Assistant read this chat's history")

    # Bea goes to her own chat with the assistant; ann writes what she will miss.
    await bea_page.get_by_test_id("discover-button").click()
    await bea_page.locator(
        f"[data-testid=discover-item][data-app-id={APP_ID}] [data-testid=discover-chat]"
    ).click()
    await expect(bea_page.get_by_test_id("chat-title")).to_have_text("Assistant")
    missed = ["Friday at 10 then", "bea, can you book the room?", "I'll bring the slides"]
    for text in missed:
        await send(ann_page, text)
        await expect(message(ann_page, text)).to_be_visible()
    await expect(chat_item(bea_page, "Crew").get_by_test_id("unread-badge")).to_have_text("3")

    # From her phone she asks for a catch-up; her browser shows it to her alone, with Share.
    ai_stub.reply(SUMMARY, chunk_size=8)
    phone = SocketClient()
    await phone.connect(base, bea["access_token"])
    try:
        ack = await phone.call(
            "message.send",
            {"conversation_id": cid, "client_msg_id": f"ph-{next(_ids)}", "text": "/ai summary"},
        )
        assert ack == {"ok": True, "routed_to": {"app_id": APP_ID}}, ack
    finally:
        await phone.close()
    sheet = bea_page.get_by_test_id("ephemeral-sheet")
    await expect(sheet).to_be_visible()
    await expect(sheet.get_by_test_id("ephemeral-label")).to_have_text(
        "Only you can see this · in Crew"
    )
    card = sheet.get_by_test_id("ephemeral-card")
    await expect(card.get_by_test_id("card-title")).to_have_text("Catch-up")
    await expect(card).to_contain_text(SUMMARY)
    await expect(card.get_by_test_id("card-button")).to_have_text(["Share in the chat"])
    await expect(ann_page.get_by_test_id("ephemeral-sheet")).to_have_count(0)
    # The model read only what she missed, not what she had read.
    asked = str(ai_stub.requests[-1]["messages"])
    assert all(text in asked for text in ("Friday at 10", "book the room", "bring the slides"))
    assert "4711" not in asked, asked

    # Share: the card is posted in the group, for everyone.
    await card.get_by_test_id("card-button").click()
    await expect(sheet).to_have_count(0)
    shared = ann_page.locator("[data-testid=message][data-type=card]").filter(
        has=ann_page.get_by_test_id("card-title").get_by_text("Catch-up", exact=True)
    )
    await expect(shared).to_have_count(1)
    await expect(shared).to_contain_text(SUMMARY)
    await chat_item(bea_page, "Crew").click()
    await expect(
        bea_page.locator("[data-testid=message][data-type=card]").filter(has_text=SUMMARY)
    ).to_have_count(1)

    # The owner takes it back; both are told.
    await ann_page.get_by_test_id("apps-button").click()
    await history_switch(ann_page).click()
    await expect(history_switch(ann_page)).not_to_be_checked()
    await ann_page.keyboard.press("Escape")
    for page in (ann_page, bea_page):
        await expect(page.locator("[data-testid=message][data-type=system]").last).to_have_text(
            "ann stopped Assistant from reading this chat's history"
        )
    assert ann_page.errors == [] and bea_page.errors == []


async def test_summary_typed_in_the_chat_catches_up_on_what_was_unread_when_it_opened(
    served, browser, rest, ai_stub
):
    from playwright.async_api import expect

    base, _app = served
    ann, bea = await befriend(rest, "ann", "bea")
    cid = await crew_group(rest, ann, bea)
    status, body = await rest.request(
        "PUT",
        f"/api/v1/conversations/{cid}/apps/{APP_ID}/grants/messages.read_history",
        token=ann["access_token"],
    )
    assert status == 200, body
    for text in ("Friday at 10 then", "bea, can you book the room?"):
        status, body = await rest.post(
            f"/api/v1/conversations/{cid}/messages",
            json={"client_msg_id": f"m-{next(_ids)}", "text": text},
            token=ann["access_token"],
        )
        assert status == 200, body
    ai_stub.reply(SUMMARY)
    page = await new_page(browser, base)
    await sign_in(page, "bea")
    await expect(chat_item(page, "Crew").get_by_test_id("unread-badge")).to_be_visible()
    await chat_item(page, "Crew").click()
    await send(page, "/ai summary")
    answered = page.get_by_test_id("ephemeral-sheet").or_(page.get_by_test_id("toast-ephemeral"))
    await expect(answered.first).to_be_visible()
    said = await answered.first.text_content()
    assert SUMMARY in said, said
    # The model read what was unread when she opened the chat, though opening marked it read.
    asked = json.dumps(ai_stub.requests[-1]["messages"])
    assert "Friday at 10" in asked and "book the room" in asked, asked
