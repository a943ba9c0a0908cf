"""Messages with media: albums, a file, a voice note, captions; the same signed MEDIA in the
ack, the live event, sync and history; only members get them."""

from __future__ import annotations

import io

from PIL import Image

from tests.helpers import eventually
from tests.media.media_helpers import fetch, jpeg, ogg_opus, png, upload
from tests.messaging.chat_helpers import close_all, group, people


async def test_album_with_caption_reaches_members_everywhere(gateway):
    base = str(gateway.make_url("")).rstrip("/")
    alice, bob, carol = await people(base, 3)
    try:
        cid = await group(alice, [bob])
        ids = []
        for i in range(3):
            status, body = await upload(alice.api, jpeg(300 + i * 10, 200))
            assert status == 201, body
            ids.append(body["media"]["id"])
        ack = await alice.socket.call(
            "message.send",
            {
                "conversation_id": cid,
                "client_msg_id": "album1",
                "type": "image",
                "media_ids": ids,
                "text": "our trip",
            },
        )
        assert ack["ok"], ack
        message = ack["message"]
        assert message["type"] == "image" and message["text"] == "our trip"
        assert [m["id"] for m in message["media"]] == ids
        assert all(m["url"] and m["thumbnail_url"] for m in message["media"])

        # Bob gets it live, with URLs he can open without any token.
        await eventually(
            lambda: any(e["message"]["type"] == "image" for e in bob.received()),
            what="bob's live album",
        )
        live = next(e["message"] for e in bob.received() if e["message"]["type"] == "image")
        assert [m["id"] for m in live["media"]] == ids
        status, _, data = await fetch(bob.api, live["media"][1]["url"])
        assert status == 200 and Image.open(io.BytesIO(data)).size == (310, 200)

        # History and sync produce the same media, freshly signed.
        status, page = await bob.api.get(f"/api/v1/conversations/{cid}/messages")
        assert status == 200, page
        stored = next(m for m in page["messages"] if m["type"] == "image")
        assert [m["id"] for m in stored["media"]] == ids and stored["media"][0]["url"]
        synced = await bob.socket.call("sync", {"cursors": {cid: 0}})
        assert synced["ok"], synced
        got = next(m for m in synced["conversations"][cid]["messages"] if m["type"] == "image")
        assert [m["id"] for m in got["media"]] == ids

        # Bob, a member now, may ask for a fresh URL; Carol, a stranger, may not.
        status, body = await bob.api.get(f"/api/v1/media/{ids[0]}")
        assert status == 200 and body["media"]["url"]
        status, body = await carol.api.get(f"/api/v1/media/{ids[0]}")
        assert status == 404 and body["error"]["code"] == "media_not_found"
        # Nor can Carol post Alice's media in a chat of her own.
        cid2 = await group(carol, [bob], "Other")
        ack = await carol.socket.call(
            "message.send",
            {
                "conversation_id": cid2,
                "client_msg_id": "steal",
                "type": "image",
                "media_ids": ids[:1],
            },
        )
        assert not ack["ok"] and ack["error"]["code"] == "media_not_found"
    finally:
        await close_all([alice, bob, carol])


async def test_file_and_voice_messages_and_bad_media_sends(gateway):
    base = str(gateway.make_url("")).rstrip("/")
    alice, bob = await people(base, 2)
    try:
        cid = await group(alice, [bob])
        _, voice = await upload(
            alice.api, ogg_opus(1.2), filename="v.ogg", content_type="audio/ogg"
        )
        _, doc = await upload(
            alice.api, b"%PDF-1.4 hello", filename="report.pdf", content_type="application/pdf"
        )
        _, pic = await upload(alice.api, png())
        assert doc["media"]["kind"] == "file" and doc["media"]["content_type"] == "application/pdf"
        voice_id, file_id, pic_id = voice["media"]["id"], doc["media"]["id"], pic["media"]["id"]

        ack = await alice.socket.call(
            "message.send",
            {
                "conversation_id": cid,
                "client_msg_id": "v1",
                "type": "voice",
                "media_ids": [voice_id],
            },
        )
        assert ack["ok"] and ack["message"]["media"][0]["duration_ms"] == 1200, ack
        ack = await alice.socket.call(
            "message.send",
            {"conversation_id": cid, "client_msg_id": "f1", "type": "file", "media_ids": [file_id]},
        )
        assert ack["ok"] and ack["message"]["media"][0]["name"] == "report.pdf", ack
        status, headers, _ = await fetch(bob.api, ack["message"]["media"][0]["url"])
        assert status == 200 and headers["Content-Disposition"].startswith("attachment;")

        bad = [
            ({"type": "file", "media_ids": [file_id, voice_id]}, "invalid_field"),
            ({"type": "voice", "media_ids": [pic_id]}, "invalid_field"),
            ({"type": "image", "media_ids": [pic_id] * 1 + ["0" * 24]}, "media_not_found"),
            ({"type": "image", "media_ids": [pic_id] * 10}, "invalid_field"),
            ({"type": "image"}, "invalid_field"),
            ({"type": "sticker", "media_ids": [pic_id]}, "invalid_field"),
            ({"type": "text", "text": "hi", "media_ids": [pic_id]}, "invalid_field"),
            ({"type": "image", "media_ids": [pic_id], "text": "x" * 5000}, "message_too_long"),
        ]
        for i, (extra, code) in enumerate(bad):
            ack = await alice.socket.call(
                "message.send", {"conversation_id": cid, "client_msg_id": f"bad{i}", **extra}
            )
            assert not ack["ok"] and ack["error"]["code"] == code, (extra, ack)
            assert ack["error"]["details"]["field"] in ("media_ids", "type", "text"), ack

        # A caption can be edited; the media stay.
        ack = await alice.socket.call(
            "message.send",
            {
                "conversation_id": cid,
                "client_msg_id": "c1",
                "type": "image",
                "media_ids": [pic_id],
                "text": "before",
            },
        )
        edited = await alice.socket.call(
            "message.edit",
            {"conversation_id": cid, "message_id": ack["message"]["id"], "text": "after"},
        )
        assert edited["ok"] and edited["message"]["text"] == "after", edited
        assert [m["id"] for m in edited["message"]["media"]] == [pic_id]
        assert edited["message"]["media"][0]["url"]
        # A recalled media message loses its media.
        ack = await alice.socket.call(
            "message.send",
            {"conversation_id": cid, "client_msg_id": "p1", "type": "image", "media_ids": [pic_id]},
        )
        recalled = await alice.socket.call(
            "message.recall", {"conversation_id": cid, "message_id": ack["message"]["id"]}
        )
        assert recalled["ok"] and recalled["message"]["media"] == [], recalled
    finally:
        await close_all([alice, bob])


async def test_many_members_send_albums_at_once(gateway):
    """Ten people post albums in one group at the same moment: every message keeps its own
    media, every member can open every one."""
    import asyncio

    base = str(gateway.make_url("")).rstrip("/")
    everyone = await people(base, 10)
    try:
        cid = await group(everyone[0], everyone[1:])

        async def post(p, n):
            ids = []
            for i in range(2):
                status, body = await upload(p.api, jpeg(64 + n, 64 + i))
                assert status == 201, body
                ids.append(body["media"]["id"])
            ack = await p.socket.call(
                "message.send",
                {
                    "conversation_id": cid,
                    "client_msg_id": f"a{n}",
                    "type": "image",
                    "media_ids": ids,
                    "text": f"album {n}",
                },
            )
            assert ack["ok"], ack
            return ack["message"]

        sent = await asyncio.gather(*[post(p, n) for n, p in enumerate(everyone)])
        viewer = everyone[-1]
        status, page = await viewer.api.get(f"/api/v1/conversations/{cid}/messages?limit=50")
        albums = {m["text"]: m for m in page["messages"] if m["type"] == "image"}
        assert len(albums) == 10
        for message in sent:
            assert [m["id"] for m in albums[message["text"]]["media"]] == [
                m["id"] for m in message["media"]
            ]
            status, _, _ = await fetch(viewer.api, albums[message["text"]]["media"][1]["url"])
            assert status == 200
    finally:
        await close_all(everyone)
