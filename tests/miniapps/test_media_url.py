"""``media.url`` on a running gateway: the host signs an address of the app's own upload that a
plain HTTP client — no bearer token, as a hosted page's ``<img>`` — loads from the platform's
origin until it expires; a user's media, another app's and an unknown id are ``not_found``.
Then the shop, a real sandboxed process, answers its web view's ``storefront`` and
``product.get`` with such addresses (``photo_urls``). The simulator's side:
tests/sdk/test_sim_media_url.py."""

from __future__ import annotations

import io
import time
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from gateway.keys import MESSAGING
from messaging.actions import media as media_actions
from messaging.actions.cards import bot_id
from sdk.media import encode_upload as encode
from tests.helpers import ApiClient
from tests.media.media_helpers import fetch, jpeg, upload
from tests.messaging.chat_helpers import close_all, group, person
from tests.miniapps.shop.e2e_helpers import add_product, grant_merchant, open_store, view
from tests.sdk.capability_cases import PNG_UPLOAD, UNKNOWN_MEDIA, png


def base_of(gateway) -> str:
    return str(gateway.make_url("")).rstrip("/")


async def test_own_media_gets_an_address_served_without_a_token(gateway, host_capability):
    outcome, uploaded = await host_capability("media.upload", PNG_UPLOAD)
    assert outcome == "ok", uploaded
    media_id = uploaded["media_id"]
    outcome, answer = await host_capability("media.url", {"media_id": media_id})
    assert outcome == "ok", answer
    url = answer["url"]
    parts = urlsplit(url)
    # Relative to the platform: a hosted page loads it under img-src 'self'.
    assert (parts.scheme, parts.netloc, parts.path) == ("", "", f"/media/{media_id}")
    query = parse_qs(parts.query)
    assert set(query) == {"exp", "sig"}
    assert answer["expires_at"] == int(query["exp"][0]) * 1000
    ttl = gateway.app[MESSAGING].config.media_url_ttl
    assert time.time() + ttl <= int(query["exp"][0]) <= time.time() + ttl + 61

    anonymous = ApiClient(base_of(gateway))  # no bearer token at all
    try:
        status, headers, data = await fetch(anonymous, url)
        assert status == 200 and headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(data)).size == (4, 3)
        # The thumbnail: the host's WebP of the image.
        outcome, thumb = await host_capability(
            "media.url", {"media_id": media_id, "thumbnail": True}
        )
        assert outcome == "ok" and urlsplit(thumb["url"]).path == f"/media/{media_id}/thumbnail"
        status, headers, data = await fetch(anonymous, thumb["url"])
        assert status == 200 and headers["Content-Type"] == "image/webp"
        assert Image.open(io.BytesIO(data)).format == "WEBP"

        # A file has no thumbnail: asking for one gives the original's address.
        outcome, uploaded = await host_capability(
            "media.upload",
            {"data": encode(b"just words"), "content_type": "text/plain", "kind": "file"},
        )
        assert outcome == "ok", uploaded
        outcome, answer = await host_capability(
            "media.url", {"media_id": uploaded["media_id"], "thumbnail": True}
        )
        assert outcome == "ok" and urlsplit(answer["url"]).path == (
            f"/media/{uploaded['media_id']}"
        )
        status, _, data = await fetch(anonymous, answer["url"])
        assert status == 200 and data == b"just words"
    finally:
        await anonymous.close()


async def test_only_the_apps_own_media(gateway, host_capability):
    ctx = gateway.app[MESSAGING]
    # Another app's upload, made as the host makes it for that app.
    theirs = await media_actions.do_upload_bytes(
        ctx, bot_id("photographer"), png(8, 6), content_type="image/png", app_id="photographer"
    )
    # A user's own photo.
    someone = await person(base_of(gateway))
    try:
        status, body = await upload(someone.api, jpeg(64, 48))
        assert status == 201, body
        users = body["media"]["id"]
        for media_id in (theirs["_id"], users, UNKNOWN_MEDIA):
            for thumbnail in (False, True):
                answer = await host_capability(
                    "media.url", {"media_id": media_id, "thumbnail": thumbnail}
                )
                assert answer == ("error", "not_found"), (media_id, answer)
        # A malformed id never reaches the store.
        for media_id in ("../../etc/passwd", "0123456789ABCDEF01234567", ""):
            answer = await host_capability("media.url", {"media_id": media_id})
            assert answer == ("error", "invalid_params"), (media_id, answer)
    finally:
        await close_all([someone])


async def test_an_expired_or_altered_address_is_refused(gateway, host_capability):
    ctx = gateway.app[MESSAGING]
    outcome, uploaded = await host_capability("media.upload", PNG_UPLOAD)
    assert outcome == "ok", uploaded
    media_id = uploaded["media_id"]
    outcome, answer = await host_capability("media.url", {"media_id": media_id})
    assert outcome == "ok", answer
    url = answer["url"]
    exp = parse_qs(urlsplit(url).query)["exp"][0]
    anonymous = ApiClient(base_of(gateway))
    try:
        status, _, _ = await fetch(anonymous, url)
        assert status == 200
        # The same address once its time has passed: the host's signature over a past expiry.
        expired = ctx.media_urls.url(media_id, "original", int(time.time()) - 60)
        status, _, body = await fetch(anonymous, expired)
        assert status == 403 and b"url_expired" in body
        # Moving the expiry, or opening another variant, breaks the signature.
        for altered in (
            url.replace(f"exp={exp}", f"exp={int(exp) + 3600}"),
            url.replace(f"/media/{media_id}", f"/media/{media_id}/thumbnail"),
            url.replace(f"/media/{media_id}", f"/media/{UNKNOWN_MEDIA}"),
            url.split("?")[0],
        ):
            status, _, body = await fetch(anonymous, altered)
            assert status == 403 and b"bad_signature" in body, (altered, body)
    finally:
        await anonymous.close()


async def test_the_shops_views_carry_photo_addresses(gateway):
    """The shop as a real sandboxed process: a merchant's photo, uploaded through the web view,
    comes back to a buyer's storefront and product page as addresses that serve it."""
    base = base_of(gateway)
    merchant, buyer, admin = await person(base), await person(base), await person(base)
    anonymous = ApiClient(base)
    try:
        db = gateway.app[MESSAGING].db
        await db.users.update_one({"_id": admin.user_id}, {"$set": {"role": "admin"}})
        await grant_merchant(admin, merchant)
        cid = await group(merchant, [buyer], "Market")
        status, body = await merchant.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "shop"}
        )
        assert status in (200, 201), body
        await open_store(merchant, cid, "Corner Shop")
        photo = encode(jpeg(120, 90))
        media_id = (await view(merchant, cid, "photo.upload", {"data": photo}))["media_id"]
        product = await add_product(
            merchant, cid, title="Travel Mug", price=1250, stock=3, photos=[media_id]
        )

        [item] = (await view(buyer, cid, "storefront"))["items"]
        assert item["id"] == product["id"] and item["photos"] == [media_id]
        [tile] = item["photo_urls"]
        assert urlsplit(tile).path == f"/media/{media_id}/thumbnail"
        status, headers, data = await fetch(anonymous, tile)
        assert status == 200 and headers["Content-Type"] == "image/webp"

        page = await view(buyer, cid, "product.get", {"product_id": product["id"]})
        [full] = page["product"]["photo_urls"]
        assert urlsplit(full).path == f"/media/{media_id}"
        status, headers, data = await fetch(anonymous, full)
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
        assert Image.open(io.BytesIO(data)).size == (120, 90)

        [row] = (await view(merchant, cid, "store.mine"))["products"]
        assert [urlsplit(u).path for u in row["photo_urls"]] == [f"/media/{media_id}/thumbnail"]
    finally:
        await anonymous.close()
        await close_all([merchant, buyer, admin])
