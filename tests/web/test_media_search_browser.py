"""Photos, search and the notification bell in real Chromium against a real gateway.

Two browser contexts are two people. Every wait is on the page's state (``expect`` /
``wait_until``), never a sleep.
"""

from __future__ import annotations

import io
import re
import uuid

import pytest

from gateway.keys import MINIAPPS
from miniapps.host.registry import discover
from tests.helpers import ApiClient
from tests.miniapps.test_capabilities import APPS_DIR, _world_readable
from tests.web.test_chat_browser import befriend, message, new_page, send, sign_in, wait_until

pytestmark = pytest.mark.timeout(120)

TARGET = "Meet me at the zanzibar cafe at noon"
FILLERS_EACH = 28  # per person: 56 newer messages push TARGET out of the newest page of 50


IMAGE_LOADED = """(selector) => [...document.querySelectorAll(selector)]
    .some((img) => img.complete && img.naturalWidth > 0)"""
# Records the upload tray's rows and the highest value its progress bars reach.
WATCH_UPLOADS = """() => {
    window.uploadSeen = { rows: 0, max: 0 };
    new MutationObserver((records) => {
        for (const r of records) {
            for (const n of r.addedNodes) {
                if (n.dataset?.testid === "upload-item") window.uploadSeen.rows += 1;
            }
            if (r.type === "attributes" && r.target.tagName === "PROGRESS") {
                const value = Number(r.target.getAttribute("value"));
                window.uploadSeen.max = Math.max(window.uploadSeen.max, value);
            }
        }
    }).observe(document.querySelector("#upload-tray"),
        { childList: true, subtree: true, attributes: true });
}"""


THUMBNAIL = "[data-type=image] [data-testid=media-thumbnail]"
BREAK_THUMBNAIL = f"""() => {{
    const img = document.querySelector("{THUMBNAIL}");
    img.src = img.src.replace(/sig=[^&]+/, "sig=expired");
}}"""
THUMBNAIL_RESIGNED = f"""() => {{
    const img = document.querySelector("{THUMBNAIL}");
    return img.complete && img.naturalWidth > 0 && !img.src.includes("sig=expired");
}}"""


def chat(page, conversation_id: str):
    return page.locator(
        f"[data-testid=conversation-item][data-conversation-id='{conversation_id}']"
    )


def small_jpeg() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (96, 64), (200, 80, 40))
    for x in range(0, 96, 8):
        for y in range(64):
            image.putpixel((x, y), (20, 120, 220))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


async def say(rest: ApiClient, token: str, conversation_id: str, text: str, **extra) -> dict:
    status, body = await rest.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"client_msg_id": str(uuid.uuid4()), "text": text, **extra},
        token=token,
    )
    assert status == 200, body
    return body["message"]


async def image_loaded(page, selector: str) -> None:
    await wait_until(page, IMAGE_LOADED, selector)


async def test_photo_thumbnail_search_jump_and_mention_bell(web_base, browser, tmp_path):
    from playwright.async_api import expect

    rest = ApiClient(web_base)
    try:
        login_a, login_b = await befriend(rest, "alice", "bob")
        token_a, token_b = login_a["access_token"], login_b["access_token"]
        bob_id = login_b["user"]["id"]
        status, body = await rest.post(
            "/api/v1/conversations", json={"type": "direct", "user_id": bob_id}, token=token_a
        )
        assert status in (200, 201), body
        direct_id = body["conversation"]["id"]
        target = await say(rest, token_a, direct_id, TARGET)
        for i in range(FILLERS_EACH):
            await say(rest, token_a, direct_id, f"filler from alice {i}")
            await say(rest, token_b, direct_id, f"filler from bob {i}")
        status, body = await rest.post(
            "/api/v1/conversations",
            json={"type": "group", "title": "Trip", "member_ids": [bob_id]},
            token=token_a,
        )
        assert status in (200, 201), body
        group_id = body["conversation"]["id"]
    finally:
        await rest.close()

    alice, bob = await new_page(browser, web_base), await new_page(browser, web_base)
    await sign_in(alice, "alice")
    await sign_in(bob, "bob")
    alice_chat, bob_chat = chat(alice, direct_id), chat(bob, direct_id)

    # Alice sends a photo with a caption; the upload tray shows a progress bar that reaches 100.
    await alice_chat.click()
    await expect(alice.get_by_test_id("chat-title")).to_have_text("bob")
    await alice.evaluate(WATCH_UPLOADS)
    photo = tmp_path / "sunset.jpg"
    photo.write_bytes(small_jpeg())
    await alice.get_by_test_id("attach-input").set_input_files(str(photo))
    await expect(alice.get_by_test_id("attach-sheet")).to_be_visible()
    await alice.get_by_test_id("attach-caption").fill("sunset over the bay")
    await alice.get_by_test_id("attach-send").click()
    sent = alice.locator("[data-testid=message][data-type=image]")
    await expect(sent.get_by_test_id("message-text")).to_have_text("sunset over the bay")
    await image_loaded(alice, "[data-type=image] [data-testid=media-thumbnail]")
    await expect(alice.get_by_test_id("upload-item")).to_have_count(0)
    seen = await alice.evaluate("() => window.uploadSeen")
    assert seen["rows"] == 1 and seen["max"] == 100, seen

    # Bob sees the thumbnail (loaded from its signed URL) and opens the full photo in the viewer.
    await expect(bob_chat.get_by_test_id("conversation-preview")).to_contain_text("Photo")
    await bob_chat.click()
    received = bob.locator("[data-testid=message][data-type=image]")
    await expect(received.get_by_test_id("media-thumbnail")).to_have_count(1)
    await image_loaded(bob, "[data-type=image] [data-testid=media-thumbnail]")
    await received.get_by_test_id("media-image").click()
    await expect(bob.get_by_test_id("viewer")).to_be_visible()
    await image_loaded(bob, "[data-testid=viewer-image]")
    await bob.keyboard.press("Escape")
    await expect(bob.get_by_test_id("viewer")).to_have_count(0)

    # A signed URL that no longer works (expired: here, a broken signature) is signed afresh.
    await bob.evaluate(BREAK_THUMBNAIL)
    await wait_until(bob, THUMBNAIL_RESIGNED)

    # Bob searches a word of Alice's older message: the highlighted result opens the chat at it,
    # paging history back (it is older than the newest page the chat loaded).
    assert await message(bob, TARGET).count() == 0
    await bob.get_by_test_id("search-input").fill("zanzibar")
    result = bob.locator(
        f"[data-testid=search-result][data-type=message][data-seq='{target['seq']}']"
    )
    await expect(result.get_by_test_id("search-highlight")).to_have_text(["zanzibar"])
    await result.click()
    landed = message(bob, TARGET)
    await expect(landed).to_have_attribute("data-jumped", "true")
    await expect(landed).to_be_in_viewport()
    # The People tab searches people with the same box.
    await bob.get_by_test_id("search-tab-people").click()
    await bob.get_by_test_id("search-input").fill("alice")
    person = bob.locator("[data-testid=search-result][data-type=person]")
    await expect(person.filter(has_text="@alice")).to_have_count(1)
    await bob.get_by_test_id("search-input").press("Escape")
    await expect(bob.get_by_test_id("conversation-list")).to_be_visible()

    # The bell: Bob clears what is there (the friend request), Alice mentions him in the group,
    # the badge counts it, and opening it lands on the message and marks it read.
    await bob.get_by_test_id("bell").click()
    await expect(bob.get_by_test_id("notification-panel")).to_be_visible()
    await bob.get_by_test_id("notifications-read-all").click()
    await expect(bob.get_by_test_id("bell-badge")).to_be_hidden()
    await bob.keyboard.press("Escape")
    await expect(bob.get_by_test_id("notification-panel")).to_be_hidden()
    await chat(alice, group_id).click()
    await expect(alice.get_by_test_id("chat-title")).to_have_text("Trip")
    await send(alice, "@bob did you pack the tent?")
    await expect(message(alice, "@bob did you pack the tent?")).to_be_visible()
    await expect(bob.get_by_test_id("bell-badge")).to_have_text("1")
    await bob.get_by_test_id("bell").click()
    item = bob.locator("[data-testid=notification-item][data-kind=mention]")
    await expect(item).to_have_attribute("data-read", "false")
    await expect(item.get_by_test_id("notification-body")).to_have_text(
        "@bob did you pack the tent?"
    )
    await item.click()
    await expect(bob.get_by_test_id("chat-title")).to_have_text("Trip")
    await expect(message(bob, "@bob did you pack the tent?")).to_have_attribute(
        "data-jumped", "true"
    )
    await expect(bob.get_by_test_id("bell-badge")).to_be_hidden()

    assert alice.errors == [] and bob.errors == [], (alice.errors, bob.errors)


AUDIO_READY = """() => [...document.querySelectorAll("[data-testid=media-voice]")]
    .some((audio) => audio.readyState >= 1 && audio.duration > 0.5)"""


async def test_voice_note_recorded_in_the_browser_plays_on_the_other_side(web_base, browser):
    """Chromium's fake microphone; the note reaches the server as Ogg/Opus (the server's voice
    format), so it has a duration, and plays for the other person."""
    from playwright.async_api import expect

    rest = ApiClient(web_base)
    try:
        login_a, login_b = await befriend(rest, "carol", "dave")
        status, body = await rest.post(
            "/api/v1/conversations",
            json={"type": "direct", "user_id": login_b["user"]["id"]},
            token=login_a["access_token"],
        )
        assert status in (200, 201), body
        direct_id = body["conversation"]["id"]
    finally:
        await rest.close()

    carol, dave = await new_page(browser, web_base), await new_page(browser, web_base)
    await sign_in(carol, "carol")
    await sign_in(dave, "dave")
    await chat(carol, direct_id).click()
    record = carol.get_by_test_id("voice-button")
    await expect(record).to_be_visible()
    await record.click()
    await expect(carol.get_by_test_id("voice-status")).to_be_visible()
    # Recording until the page's own clock shows two seconds (a wait on its state, not a sleep).
    status = carol.get_by_test_id("voice-status")
    await expect(status).to_have_attribute("data-seconds", re.compile(r"^([2-9]|\d\d+)$"))
    await record.click()
    note = carol.locator("[data-testid=message][data-type=voice]")
    await expect(note.get_by_test_id("media-voice-duration")).to_have_text(
        re.compile(r"^0:(0[1-9]|[1-5]\d)$")
    )

    await chat(dave, direct_id).click()
    heard = dave.locator("[data-testid=message][data-type=voice]")
    await expect(heard.get_by_test_id("media-voice")).to_have_count(1)
    await wait_until(dave, AUDIO_READY)
    assert carol.errors == [] and dave.errors == [], (carol.errors, dave.errors)


async def test_service_chat_is_listed_read_only_with_working_buttons_and_a_bell_notice(
    web_gateway, browser
):
    """Opting in to an app's notices from the chat's app menu; the app's notice opens a service
    chat: listed with the app's name, no composer, its card's button works, it can be muted."""
    from playwright.async_api import expect

    base, app = web_gateway
    _world_readable(APPS_DIR)
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    app[MINIAPPS].apps["servicer"] = apps["servicer"]
    rest = ApiClient(base)
    try:
        login_a, login_b = await befriend(rest, "erin", "finn")
        status, body = await rest.post(
            "/api/v1/conversations",
            json={"type": "group", "title": "Shop", "member_ids": [login_b["user"]["id"]]},
            token=login_a["access_token"],
        )
        assert status == 201, body
        group_id = body["conversation"]["id"]
        status, body = await rest.post(
            f"/api/v1/conversations/{group_id}/apps",
            json={"app_id": "servicer"},
            token=login_a["access_token"],
        )
        assert status == 201, body
    finally:
        await rest.close()

    erin = await new_page(browser, base)
    await sign_in(erin, "erin")
    await chat(erin, group_id).click()
    await erin.get_by_test_id("apps-button").click()
    notices = erin.locator("[data-testid=app-item][data-app-id=servicer]").get_by_test_id(
        "app-notices"
    )
    await notices.click()
    await expect(notices).to_have_attribute("aria-pressed", "true")
    await erin.keyboard.press("Escape")
    await send(erin, "/svc card")
    await expect(
        erin.get_by_test_id("message-text").get_by_text("servicer: card ok", exact=True)
    ).to_be_visible()

    service = erin.locator("[data-testid=conversation-item][data-type=service]")
    await expect(service.get_by_test_id("conversation-title")).to_contain_text("Servicer")
    await expect(service.get_by_test_id("service-label")).to_be_visible()
    await expect(erin.get_by_test_id("bell-badge")).to_have_text("1")
    await erin.get_by_test_id("bell").click()
    await expect(erin.locator("[data-testid=notification-item][data-kind=service]")).to_have_count(
        1
    )
    await erin.keyboard.press("Escape")

    await service.click()
    await expect(erin.get_by_test_id("chat-title")).to_have_text("Servicer")
    await expect(erin.get_by_test_id("composer-input")).to_be_disabled()
    await expect(erin.get_by_test_id("send-button")).to_be_hidden()
    await expect(erin.get_by_test_id("money-button")).to_be_hidden()
    card = erin.get_by_test_id("card").filter(has_text="Your order shipped")
    await card.get_by_test_id("card-button").click()
    await expect(erin.get_by_test_id("card-title")).to_have_text("Thanks")
    await erin.get_by_test_id("mute-button").click()
    await expect(erin.get_by_test_id("mute-button")).to_have_text("Unmute")
    await expect(service).to_contain_text("🔕")
    assert erin.errors == [], erin.errors
