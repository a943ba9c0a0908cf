"""Mini-program media end to end: the ``photographer`` test app, a real sandboxed process, uploads
a product photo with ``ctx.upload_media`` and posts a card whose ``image`` is the media id;
members get a signed URL that serves the picture (live, in history, after the app swaps the
photo), strangers get nothing, and bad uploads or someone else's media id are refused with the
documented codes. The same app in the simulator: tests/miniapps/test_media_cards_simulator.py."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from PIL import Image

from gateway.keys import MESSAGING
from sdk.media import MEDIA_UPLOADS_PER_MINUTE
from sdk.simulator import Simulator
from tests.helpers import eventually
from tests.media.media_helpers import fetch, jpeg, upload
from tests.messaging.chat_helpers import close_all, person
from tests.miniapps.test_capabilities import command, events_of, setup, texts_from
from tests.sdk.capability_cases import PNG_UPLOAD

CONTRACT_APP = Path(__file__).resolve().parent / "apps" / "contract"

# What ``/photo bad`` reports, on the host and in the simulator alike.
EXPECTED_BAD = {
    "bad_base64": "invalid_params",
    "damaged": "invalid_image",
    "empty": "empty_file",
    "file_in_card": "invalid_params",
    "not_an_image": "not_an_image",
    "svg": "svg_not_allowed",
    "too_large": "media_too_large",
    "unknown_in_card": "invalid_params",
}


def cards_of(someone, cid: str, event: str = "message.new") -> list[dict]:
    return [
        d["message"]
        for d in events_of(someone, event)
        if d["message"]["conversation_id"] == cid and d["message"]["type"] == "card"
    ]


async def test_a_card_shows_the_apps_photo_to_members_only(gateway):
    _host, (ann, bea), cid = await setup(gateway, 2, ["photographer"])
    base = str(gateway.make_url("")).rstrip("/")
    stranger = await person(base)
    try:
        await command(ann, cid, "/photo post")
        (posted,) = await eventually(lambda: texts_from(bea, cid, "photographer: posted"), 15.0)
        _, _, media_id, message_id = posted.split()

        # Bea, a member, gets the card live with a signed URL in place of the id.
        (live,) = await eventually(lambda: cards_of(bea, cid))
        assert live["id"] == message_id and live["app_id"] == "photographer"
        card = live["card"]
        assert card["title"] == "Blue mug"
        assert card["image"].startswith(f"/media/{media_id}?exp=") and "&sig=" in card["image"]
        assert card["image_media"]["id"] == media_id
        assert (card["image_media"]["width"], card["image_media"]["height"]) == (40, 30)
        status, headers, data = await fetch(bea.api, card["image"])
        assert status == 200 and headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(data)).size == (40, 30)
        status, headers, data = await fetch(bea.api, card["image_media"]["thumbnail_url"])
        assert status == 200 and headers["Content-Type"] == "image/webp"

        # The stored card keeps the id; the media belongs to the app's bot.
        ctx = gateway.app[MESSAGING]
        stored = await ctx.messages.get_message(cid, message_id)
        assert stored["card"]["image"] == media_id and stored["media_ids"] == [media_id]
        doc = await ctx.media.get_media(media_id)
        assert doc["app_id"] == "photographer" and doc["owner_id"] == "app:photographer"

        # History signs it afresh; a member may ask for the media, a stranger may not.
        status, page = await bea.api.get(f"/api/v1/conversations/{cid}/messages")
        assert status == 200, page
        (in_history,) = [m for m in page["messages"] if m["id"] == message_id]
        assert in_history["card"]["image"].startswith(f"/media/{media_id}?exp=")
        status, body = await bea.api.get(f"/api/v1/media/{media_id}")
        assert status == 200 and body["media"]["kind"] == "image", body
        status, body = await stranger.api.get(f"/api/v1/media/{media_id}")
        assert status == 404 and body["error"]["code"] == "media_not_found"

        # "Next": the app uploads another photo and updates the card; members see the new one.
        press = {
            "conversation_id": cid,
            "message_id": message_id,
            "action_id": "photo.next",
            "value": "red",
        }
        ack = await bea.socket.call("miniapp.action", press)
        assert ack["ok"], ack
        (updated,) = await eventually(lambda: cards_of(ann, cid, "message.updated"), 15.0)
        new_card = updated["card"]
        new_id = new_card["image_media"]["id"]
        assert new_card["title"] == "Red mug" and new_id != media_id
        status, _, data = await fetch(ann.api, new_card["image"])
        assert status == 200 and Image.open(io.BytesIO(data)).size == (20, 10)
        status, body = await bea.api.get(f"/api/v1/media/{new_id}")
        assert status == 200, body
        status, body = await stranger.api.get(f"/api/v1/media/{new_id}")
        assert status == 404, body
    finally:
        await close_all([ann, bea, stranger])


async def test_bad_uploads_and_foreign_media_are_refused(gateway):
    _host, (ann, bea), cid = await setup(gateway, 2, ["photographer"])
    try:
        ctx = gateway.app[MESSAGING]
        before = await ctx.media.collection.count_documents({"app_id": "photographer"})
        await command(ann, cid, "/photo bad")
        (report,) = await eventually(lambda: texts_from(bea, cid, "photographer: {"), 15.0)
        assert json.loads(report.removeprefix("photographer: ")) == EXPECTED_BAD
        # Only the text file it meant to upload was stored; no refused upload left anything.
        after = await ctx.media.collection.count_documents({"app_id": "photographer"})
        assert after - before == 1
        assert not cards_of(bea, cid)

        # A user's own photo is not the app's to show, even in a chat the user is in.
        status, body = await upload(ann.api, jpeg(64, 48))
        assert status == 201, body
        await command(ann, cid, f"/photo steal {body['media']['id']}")
        (stolen,) = await eventually(lambda: texts_from(bea, cid, "photographer: steal"), 15.0)
        assert stolen == "photographer: steal invalid_params"
        assert not cards_of(bea, cid)
    finally:
        await close_all([ann, bea])


async def test_an_app_has_an_upload_budget_under_concurrency(host_capability):
    """70 uploads at once: exactly MEDIA_UPLOADS_PER_MINUTE are stored, the rest are
    rate_limited — and the simulator keeps the same budget."""
    answers = await asyncio.gather(
        *(host_capability("media.upload", PNG_UPLOAD) for _ in range(70))
    )
    stored = [result["media_id"] for outcome, result in answers if outcome == "ok"]
    assert len(stored) == MEDIA_UPLOADS_PER_MINUTE and len(set(stored)) == len(stored)
    assert [a for a in answers if a[0] == "error"] == [("error", "rate_limited")] * 10

    sim = Simulator(CONTRACT_APP)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    outcomes = [
        (await sim.call_capability(ann, chat, "media.upload", PNG_UPLOAD))[0] for _ in range(61)
    ]
    assert outcomes == ["ok"] * MEDIA_UPLOADS_PER_MINUTE + ["error"]
