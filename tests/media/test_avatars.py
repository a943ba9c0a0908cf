"""Profile and group pictures from uploaded images."""

from __future__ import annotations

import io

from PIL import Image

from tests.media.media_helpers import fetch, jpeg, upload, zip_bomb
from tests.messaging.chat_helpers import close_all, group, people


async def test_user_avatar_from_an_upload(gateway):
    base = str(gateway.make_url("")).rstrip("/")
    alice, bob = await people(base, 2)
    try:
        _, first = await upload(alice.api, jpeg(800, 600))
        status, body = await alice.api.patch(
            "/api/v1/me", json={"avatar_media_id": first["media"]["id"]}
        )
        assert status == 200, body
        url = body["user"]["avatar_url"]
        assert url.startswith(f"/media/{first['media']['id']}/avatar?")
        # Anyone who sees the profile can show the picture (a small WebP).
        cid = await group(alice, [bob])
        status, conv = await bob.api.get(f"/api/v1/conversations/{cid}")
        shown = {m["user"]["id"]: m["user"] for m in conv["conversation"]["members"]}
        assert shown[alice.user_id]["avatar_url"] == url
        status, headers, data = await fetch(bob.api, url)
        assert status == 200 and headers["Content-Type"] == "image/webp"
        assert max(Image.open(io.BytesIO(data)).size) == 320

        # A new picture replaces it: the old URL stops working.
        _, second = await upload(alice.api, jpeg(300, 300))
        status, body = await alice.api.patch(
            "/api/v1/me", json={"avatar_media_id": second["media"]["id"]}
        )
        assert status == 200
        status, _, _ = await fetch(bob.api, url)
        assert status == 404
        status, _, _ = await fetch(bob.api, body["user"]["avatar_url"])
        assert status == 200
        # Removing it.
        status, body = await alice.api.patch("/api/v1/me", json={"avatar_media_id": None})
        assert status == 200 and body["user"]["avatar_url"] is None

        # Someone else's media, a file, an unknown id: refused, nothing changes.
        _, not_image = await upload(
            alice.api, zip_bomb(), filename="z.zip", content_type="application/zip"
        )
        for media_id, code in [
            (second["media"]["id"], "media_not_found"),  # Bob does not own it
            ("0" * 24, "media_not_found"),
        ]:
            status, body = await bob.api.patch("/api/v1/me", json={"avatar_media_id": media_id})
            assert status == 404 and body["error"]["code"] == code, body
        status, body = await alice.api.patch(
            "/api/v1/me", json={"avatar_media_id": not_image["media"]["id"]}
        )
        assert status == 400 and body["error"]["code"] == "invalid_field"
        status, body = await bob.api.get("/api/v1/me")
        assert body["user"]["avatar_url"] is None
    finally:
        await close_all([alice, bob])


async def test_group_avatar(gateway):
    base = str(gateway.make_url("")).rstrip("/")
    alice, bob = await people(base, 2)
    try:
        cid = await group(alice, [bob])
        _, pic = await upload(alice.api, jpeg(500, 500))
        _, bobs = await upload(bob.api, jpeg(500, 500))
        status, body = await bob.api.patch(
            f"/api/v1/conversations/{cid}", json={"avatar_media_id": bobs["media"]["id"]}
        )
        assert status == 403 and body["error"]["code"] == "not_allowed"
        status, body = await alice.api.patch(
            f"/api/v1/conversations/{cid}", json={"avatar_media_id": pic["media"]["id"]}
        )
        assert status == 200, body
        url = body["conversation"]["avatar_url"]
        status, listing = await bob.api.get("/api/v1/conversations")
        mine = next(c for c in listing["conversations"] if c["id"] == cid)
        assert mine["avatar_url"] == url
        status, headers, _ = await fetch(bob.api, url)
        assert status == 200 and headers["Content-Type"] == "image/webp"
        status, body = await alice.api.patch(f"/api/v1/conversations/{cid}", json={})
        assert status == 400 and body["error"]["code"] == "empty_update"
        status, body = await alice.api.patch(
            f"/api/v1/conversations/{cid}", json={"avatar_media_id": None, "title": "New"}
        )
        assert status == 200 and "avatar_url" not in body["conversation"]
        assert body["conversation"]["title"] == "New"
        status, _, _ = await fetch(bob.api, url)
        assert status == 404
    finally:
        await close_all([alice, bob])
