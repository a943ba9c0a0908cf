"""Uploading and serving media: verification, metadata stripping, signed URLs, bad input."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import time

from PIL import Image
from pymongo import AsyncMongoClient

from tests.media.media_helpers import (
    SVG,
    animated_gif,
    fetch,
    gps_exif,
    jpeg,
    m4a,
    ogg_opus,
    png,
    png_bomb,
    upload,
    zip_bomb,
)


def stored_files(config) -> list:
    root = config.data_dir / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_photo_is_reencoded_upright_without_exif_gps(api, config):
    await api.signup()
    original = jpeg(400, 300, exif=gps_exif())
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # it has GPS going in
    status, body = await upload(api, original)
    assert status == 201, body
    media = body["media"]
    assert media["kind"] == "image" and media["content_type"] == "image/jpeg"
    # The EXIF orientation (6) was applied: 400 x 300 became 300 x 400.
    assert (media["width"], media["height"]) == (300, 400)
    assert media["url"].startswith(f"/media/{media['id']}?exp=")
    assert media["thumbnail_url"].startswith(f"/media/{media['id']}/thumbnail?")

    status, headers, data = await fetch(api, media["url"])
    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age" in headers["Cache-Control"] and headers["ETag"]
    served = Image.open(io.BytesIO(data))
    assert served.size == (300, 400)
    exif = served.getexif()
    assert not exif.get_ifd(0x8825), "GPS position must be gone"
    assert len(exif) == 0 and "exif" not in served.info

    status, headers, data = await fetch(api, media["thumbnail_url"])
    assert status == 200 and headers["Content-Type"] == "image/webp"
    thumb = Image.open(io.BytesIO(data))
    assert thumb.format == "WEBP" and max(thumb.size) == 320


async def test_declared_type_is_not_trusted(api):
    await api.signup()
    # A PNG declared as JPEG and named .gif is a PNG.
    status, body = await upload(api, png(), filename="x.gif", content_type="image/jpeg")
    assert status == 201 and body["media"]["content_type"] == "image/png", body
    # A real image sent as "application/octet-stream" is still recognised.
    status, body = await upload(
        api, png(), filename="data.bin", content_type="application/octet-stream"
    )
    assert status == 201 and body["media"]["kind"] == "image"
    # Asked to be kept as a file: served as a download.
    status, body = await upload(api, png(), filename="keep.png", kind="file")
    assert status == 201 and body["media"]["kind"] == "file"
    status, headers, _ = await fetch(api, body["media"]["url"])
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert "keep.png" in headers["Content-Disposition"]


async def test_animated_gif_keeps_its_animation(api):
    await api.signup()
    status, body = await upload(api, animated_gif(4), filename="a.gif", content_type="image/gif")
    assert status == 201, body
    assert body["media"]["animated"] is True
    _, headers, data = await fetch(api, body["media"]["url"])
    served = Image.open(io.BytesIO(data))
    assert headers["Content-Type"] == "image/gif" and served.n_frames == 4
    _, headers, data = await fetch(api, body["media"]["thumbnail_url"])
    assert Image.open(io.BytesIO(data)).format == "WEBP"


async def test_voice_note_has_a_duration_and_serves_ranges(api):
    await api.signup()
    status, body = await upload(api, ogg_opus(2.5), filename="v.ogg", content_type="audio/ogg")
    assert status == 201, body
    media = body["media"]
    assert media["kind"] == "voice" and media["content_type"] == "audio/ogg"
    assert media["duration_ms"] == 2500 and "thumbnail_url" not in media
    status, headers, data = await fetch(api, media["url"], {"Range": "bytes=4-9"})
    assert status == 206, status
    assert headers["Content-Range"] == f"bytes 4-9/{media['size']}"
    assert len(data) == 6
    status, _, full = await fetch(api, media["url"])
    assert status == 200 and full[4:10] == data
    status, _, _ = await fetch(api, media["url"], {"Range": f"bytes={media['size'] + 5}-"})
    assert status == 416
    # AAC in M4A is a voice note too.
    status, body = await upload(api, m4a(3.5), filename="v.m4a", content_type="audio/mp4")
    assert status == 201 and body["media"]["kind"] == "voice", body
    assert body["media"]["content_type"] == "audio/mp4" and body["media"]["duration_ms"] == 3500
    # The ETag answers a revalidation with 304.
    _, headers, _ = await fetch(api, media["url"])
    status, _, body304 = await fetch(api, media["url"], {"If-None-Match": headers["ETag"]})
    assert status == 304 and body304 == b""


async def test_bad_input_each_a_clear_error_and_nothing_stored(api, config):
    await api.signup()
    before = stored_files(config)
    cases = [
        # (bytes, filename, declared type, kind, status, code)
        (b"", "empty.jpg", "image/jpeg", None, 422, "empty_file"),
        (jpeg()[:600], "cut.jpg", "image/jpeg", None, 422, "invalid_image"),
        (zip_bomb(), "bomb.jpg", "image/jpeg", None, 415, "not_an_image"),
        (SVG, "evil.svg", "image/svg+xml", None, 415, "svg_not_allowed"),
        (
            b"hello, not a picture",
            "x.png",
            "application/octet-stream",
            "image",
            415,
            "not_an_image",
        ),
        (png(), "x.ogg", "audio/ogg", "voice", 415, "not_audio"),
        (b"just some text", "x.ogg", "audio/ogg", None, 415, "not_audio"),
        (b"GIF89a garbage", "x.gif", "image/gif", None, 422, "invalid_image"),
        (png(), "x.png", "image/png", "sticker", 400, "invalid_field"),
    ]
    for data, name, declared, kind, want_status, want_code in cases:
        status, body = await upload(api, data, filename=name, content_type=declared, kind=kind)
        assert (status, body["error"]["code"]) == (want_status, want_code), (name, body)
        assert body["error"]["message"]
    assert stored_files(config) == before
    # Without a file part, or not multipart at all.
    status, body = await api.post("/api/v1/media", json={"file": "x"})
    assert status == 415 and body["error"]["code"] == "not_multipart"
    # A broken multipart body (a header that is not valid) is a clear 400.
    status, body = await api.post(
        "/api/v1/media",
        data=b'--b\r\nContent-Disposition: form-data; name="\xf1\x02"\r\n\r\nx\r\n--b--\r\n',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert status == 400 and body["error"]["code"] == "invalid_field", body
    # SVG is accepted only as a download.
    status, body = await upload(
        api, SVG, filename="evil.svg", content_type="image/svg+xml", kind="file"
    )
    assert status == 201 and body["media"]["kind"] == "file"
    status, headers, _ = await fetch(api, body["media"]["url"])
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment;")


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def test_pixel_bomb_refused_fast_with_bounded_memory(api, config):
    await api.signup()
    bomb = png_bomb(50_000)
    before = stored_files(config)
    rss_before = _rss_kib()
    started = time.perf_counter()
    status, body = await upload(api, bomb, filename="bomb.png", content_type="image/png")
    elapsed = time.perf_counter() - started
    rss_after = _rss_kib()
    print(
        f"\n50,000 x 50,000 PNG bomb ({len(bomb)} bytes): refused in {elapsed * 1000:.1f} ms, "
        f"RSS {rss_before // 1024} -> {rss_after // 1024} MiB"
    )
    assert status == 413 and body["error"]["code"] == "image_too_large", body
    # Decoding it would need 2.5 GB; a header read needs nothing.
    assert rss_after - rss_before < 100 * 1024
    assert stored_files(config) == before


async def test_signed_urls_refuse_tampering_expiry_and_strangers(api, config, gateway):
    await api.signup()
    _, body = await upload(api, png())
    media = body["media"]
    # Tampered signature, missing signature, another media's signature.
    url = media["url"]
    status, _, _ = await fetch(api, url[:-2] + ("AA" if not url.endswith("AA") else "BB"))
    assert status == 403
    status, _, _ = await fetch(api, f"/media/{media['id']}")
    assert status == 403
    status, _, _ = await fetch(api, media["thumbnail_url"].replace("/thumbnail", ""))
    assert status == 403  # a thumbnail's signature does not open the original
    # An expired signature, made with the real shared key.
    client = AsyncMongoClient(config.mongodb_url)
    try:
        key = bytes.fromhex(
            (await client[config.mongodb_db].platform_keys.find_one({"_id": "media_urls"}))["key"]
        )
    finally:
        await client.close()
    exp = int(time.time()) - 5
    sig = (
        base64.urlsafe_b64encode(
            hmac.new(key, f"{media['id']}|original|{exp}".encode(), hashlib.sha256).digest()
        )
        .rstrip(b"=")
        .decode()
    )
    status, _, data = await fetch(api, f"/media/{media['id']}?exp={exp}&sig={sig}")
    assert status == 403 and b"url_expired" in data
    # Someone else cannot get a signed URL for it.
    from tests.helpers import ApiClient

    stranger = ApiClient(api.base_url)
    try:
        await stranger.signup()
        status, body = await stranger.get(f"/api/v1/media/{media['id']}")
        assert status == 404 and body["error"]["code"] == "media_not_found"
    finally:
        await stranger.close()
    status, body = await api.get(f"/api/v1/media/{media['id']}")
    assert status == 200 and body["media"]["id"] == media["id"]


async def test_oversize_upload_cut_off_mid_stream(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    """A body past MEDIA_MAX_BYTES, sent chunked (no Content-Length to refuse it by), is cut
    off as it streams: 413, nothing stored, memory bounded; an announced one is refused before
    a byte is read."""
    import aiohttp

    from gateway.app import create_app
    from tests.conftest import make_config
    from tests.helpers import ApiClient

    limit = 256 * 1024
    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", media_max_bytes=limit)
    server = await aiohttp_server(create_app(config))
    api = ApiClient(str(server.make_url("")).rstrip("/"))
    try:
        await api.signup()
        sent = 0

        async def body():
            nonlocal sent
            yield (
                b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
                b"Content-Type: application/octet-stream\r\n\r\n"
            )
            for _ in range(64 * 4):  # 64 MiB if it were all read
                sent += 256 * 1024
                yield b"\x01" * (256 * 1024)
            yield b"\r\n--b--\r\n"

        rss_before = _rss_kib()
        try:
            async with api.session.post(
                api.base_url + "/api/v1/media",
                data=body(),
                headers={
                    "Authorization": f"Bearer {api.token}",
                    "Content-Type": "multipart/form-data; boundary=b",
                },
            ) as resp:
                status, answer = resp.status, await resp.json()
            assert status == 413 and answer["error"]["code"] == "media_too_large", answer
        except aiohttp.ClientError:
            pass  # the server may close the connection under a client still sending: also a cut
        print(
            f"\nsent {sent // 1024} KiB of 64 MiB before the cut; RSS grew "
            f"{(_rss_kib() - rss_before) // 1024} MiB"
        )
        assert sent < 16 * 1024 * 1024
        assert stored_files(config) == []

        # Announced too large: refused at once.
        status, answer = await upload(
            api,
            b"\x00" * (limit + 100 * 1024),
            filename="big.bin",
            content_type="application/octet-stream",
        )
        assert status == 413 and answer["error"]["code"] == "media_too_large"
        # Exactly at the limit is fine.
        status, answer = await upload(
            api, b"\x02" * (limit - 300), filename="ok.bin", content_type="application/octet-stream"
        )
        assert status == 201 and answer["media"]["kind"] == "file", answer
    finally:
        await api.close()
