"""The ``photographer`` test app in the SDK simulator: what a developer sees offline for
``ctx.upload_media`` and cards showing the upload — the same outcomes and error codes as the
host (tests/miniapps/test_media_cards.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdk.media import MEDIA_UPLOAD_MAX_BYTES, card_media_id, decode_upload, encode_upload
from sdk.simulator import Simulator
from tests.miniapps.test_media_cards import EXPECTED_BAD
from tests.sdk.capability_cases import PNG

PHOTOGRAPHER = Path(__file__).resolve().parent / "apps" / "photographer"
SERVICER = PHOTOGRAPHER.parent / "servicer"  # without media.upload


@pytest.fixture
def sim():
    return Simulator(PHOTOGRAPHER)


async def test_the_card_carries_the_uploaded_photo(sim):
    ann, bea = sim.user("ann"), sim.user("bea")
    chat = sim.conversation(members=[ann, bea])
    await sim.command(ann, chat, "/photo post")
    card_message, text = sim.messages(chat)
    _, _, media_id, message_id = text["text"].split()
    assert card_message["id"] == message_id and card_message["card"]["image"] == media_id
    assert card_media_id(card_message["card"]) == media_id
    upload = sim.media(media_id)
    assert upload["kind"] == "image" and upload["content_type"] == "image/png"
    assert (upload["width"], upload["height"]) == (40, 30) and upload["name"] == "mug.png"
    assert upload["data"].startswith(b"\x89PNG") and upload["size"] == len(upload["data"])

    await sim.press(bea, message_id, "photo.next")
    first, second = sim.card_history(message_id)
    assert first["image"] == media_id and second["image"] != media_id
    assert sim.media(second["image"])["width"] == 20
    assert sim.media_ids() == [media_id, second["image"]]


async def test_refusals_have_the_hosts_codes(sim):
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    await sim.command(ann, chat, "/photo bad")
    report = sim.messages(chat)[-1]["text"]
    assert json.loads(report.removeprefix("photographer: ")) == EXPECTED_BAD
    assert [m["type"] for m in sim.messages(chat)] == ["text"]  # no card was posted
    (stored,) = sim.media_ids()  # only the text file it meant to upload
    assert sim.media(stored)["kind"] == "file"

    await sim.command(ann, chat, "/photo steal 0123456789abcdef01234567")
    assert sim.messages(chat)[-1]["text"] == "photographer: steal invalid_params"


async def test_media_upload_needs_its_permission():
    sim = Simulator(SERVICER)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    params = {"data": encode_upload(PNG), "content_type": "image/png"}
    assert await sim.call_capability(ann, chat, "media.upload", params) == (
        "error",
        "permission_denied",
    )


def test_decode_upload_bounds():
    assert decode_upload(encode_upload(b"abc")) == b"abc"
    assert len(decode_upload(encode_upload(b"x" * MEDIA_UPLOAD_MAX_BYTES))) == (
        MEDIA_UPLOAD_MAX_BYTES
    )
    for data, code in (
        ("", "empty_file"),
        ("a b=", "invalid_params"),
        ("é", "invalid_params"),
        (encode_upload(b"x" * (MEDIA_UPLOAD_MAX_BYTES + 1)), "media_too_large"),
    ):
        with pytest.raises(Exception) as caught:
            decode_upload(data)
        assert caught.value.code == code, data[:10]
