"""``media.url`` in the simulator: ``ctx.media_url`` of the app's own upload gives a fake signed
address ``/sim/media/<id>?exp=&sig=`` that ``sim.fetch_media_url`` answers with the uploaded
bytes until it expires on the simulator's clock; an id the app did not upload is ``not_found``;
without the permission, ``permission_denied``. The host's side: tests/miniapps/test_media_url.py.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from sdk import App, NotFound, PermissionDenied, ViewError
from sdk._sim_media import SIM_MEDIA_URL_TTL
from sdk.simulator import Simulator
from tests.sdk.capability_cases import PNG, UNKNOWN_MEDIA

MANIFEST = {
    "id": "gallery",
    "name": "Gallery",
    "version": "1.0.0",
    "permissions": ["media.upload", "media.url"],
    "commands": [{"name": "gallery", "description": "unused"}],
    "events": {"emits": [], "accepts": []},
}


def make(permissions: list[str] | None = None) -> tuple[Simulator, object, object]:
    app = App("gallery")
    app.command("gallery")(lambda ctx: None)

    @app.view("upload")
    async def upload(ctx):
        kind = ctx.params.get("kind")
        if kind == "file":
            return {"media_id": await ctx.upload_media(b"%PDF-1.4 notes", "application/pdf")}
        return {"media_id": await ctx.upload_media(PNG, "image/png", "dot.png")}

    @app.view("url")
    async def url(ctx):
        try:
            return {
                "url": await ctx.media_url(
                    ctx.params["media_id"], thumbnail=bool(ctx.params.get("thumbnail"))
                )
            }
        except NotFound as exc:
            raise ViewError("no_photo", str(exc)) from None
        except PermissionDenied as exc:
            raise ViewError("not_allowed", str(exc)) from None

    manifest = {**MANIFEST, "permissions": permissions or MANIFEST["permissions"]}
    sim = Simulator(app, manifest=manifest)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann, "bea"])
    return sim, ann, chat


async def test_own_upload_gets_an_address_that_serves_its_bytes():
    sim, ann, chat = make()
    media_id = (await sim.view(ann, chat, "upload"))["media_id"]
    url = (await sim.view(ann, chat, "url", {"media_id": media_id}))["url"]
    parts = urlsplit(url)
    assert parts.scheme == "" and parts.netloc == ""  # relative: the page's own origin
    assert parts.path == f"/sim/media/{media_id}"
    query = parse_qs(parts.query)
    assert set(query) == {"exp", "sig"}
    # The expiry: the host's default TTL from the simulator's clock, rounded up to the minute.
    exp = int(query["exp"][0])
    assert exp % 60 == 0 and 0 < exp - sim.now // 1000 - SIM_MEDIA_URL_TTL <= 60
    assert sim.fetch_media_url(url) == (200, PNG)
    assert sim.media(media_id)["data"] == PNG

    # The thumbnail address is another address of the same image.
    thumb = (await sim.view(ann, chat, "url", {"media_id": media_id, "thumbnail": True}))["url"]
    assert urlsplit(thumb).path == f"/sim/media/{media_id}/thumbnail"
    assert sim.fetch_media_url(thumb) == (200, PNG)


async def test_the_raw_answer_has_the_expiry():
    sim, ann, chat = make()
    media_id = (await sim.view(ann, chat, "upload"))["media_id"]
    outcome, answer = await sim.call_capability(ann, chat, "media.url", {"media_id": media_id})
    assert outcome == "ok" and set(answer) == {"url", "expires_at"}
    assert answer["expires_at"] == int(parse_qs(urlsplit(answer["url"]).query)["exp"][0]) * 1000
    # A file has no thumbnail: asking for one gives the original's address.
    file_id = (await sim.view(ann, chat, "upload", {"kind": "file"}))["media_id"]
    outcome, answer = await sim.call_capability(
        ann, chat, "media.url", {"media_id": file_id, "thumbnail": True}
    )
    assert outcome == "ok" and urlsplit(answer["url"]).path == f"/sim/media/{file_id}"
    assert sim.fetch_media_url(answer["url"]) == (200, b"%PDF-1.4 notes")


async def test_an_address_expires_with_the_simulators_clock():
    sim, ann, chat = make()
    media_id = (await sim.view(ann, chat, "upload"))["media_id"]
    url = (await sim.view(ann, chat, "url", {"media_id": media_id}))["url"]
    await sim.advance(seconds=SIM_MEDIA_URL_TTL - 1)
    assert sim.fetch_media_url(url) == (200, PNG)
    await sim.advance(minutes=2)
    assert sim.fetch_media_url(url) == (403, b"")
    # A new address works again.
    fresh = (await sim.view(ann, chat, "url", {"media_id": media_id}))["url"]
    assert fresh != url and sim.fetch_media_url(fresh) == (200, PNG)


async def test_a_forged_or_unknown_address_is_refused():
    sim, ann, chat = make()
    media_id = (await sim.view(ann, chat, "upload"))["media_id"]
    url = (await sim.view(ann, chat, "url", {"media_id": media_id}))["url"]
    path, query = url.split("?")
    exp = int(parse_qs(query)["exp"][0])
    sig = parse_qs(query)["sig"][0]
    assert sim.fetch_media_url(url.replace(f"exp={exp}", f"exp={exp + 3600}")) == (403, b"")
    assert sim.fetch_media_url(url.replace(sig, "0" * len(sig))) == (403, b"")
    assert sim.fetch_media_url(path) == (403, b"")  # no signature at all
    # The signature of one media does not open another, nor the original's the thumbnail.
    assert sim.fetch_media_url(url.replace(media_id, UNKNOWN_MEDIA)) == (403, b"")
    assert sim.fetch_media_url(f"{path}/thumbnail?{query}") == (403, b"")
    assert sim.fetch_media_url(f"/media/{media_id}?{query}") == (404, b"")
    # Another simulator (another host) does not accept this one's addresses.
    other, _, _ = make()
    assert other.fetch_media_url(url) == (403, b"")


@pytest.mark.parametrize("media_id", [UNKNOWN_MEDIA, "f" * 24])
async def test_an_id_the_app_did_not_upload_is_not_found(media_id):
    sim, ann, chat = make()
    await sim.view(ann, chat, "upload")
    with pytest.raises(ViewError) as excinfo:
        await sim.view(ann, chat, "url", {"media_id": media_id})
    assert excinfo.value.code == "no_photo"
    outcome, code = await sim.call_capability(ann, chat, "media.url", {"media_id": media_id})
    assert (outcome, code) == ("error", "not_found")


@pytest.mark.parametrize("media_id", ["../../etc/passwd", "0123456789ABCDEF01234567", ""])
async def test_a_malformed_id_is_invalid_params(media_id):
    sim, ann, chat = make()
    outcome, code = await sim.call_capability(ann, chat, "media.url", {"media_id": media_id})
    assert (outcome, code) == ("error", "invalid_params")


async def test_without_the_permission_it_is_refused():
    sim, ann, chat = make(permissions=["media.upload"])
    media_id = (await sim.view(ann, chat, "upload"))["media_id"]
    with pytest.raises(ViewError) as excinfo:
        await sim.view(ann, chat, "url", {"media_id": media_id})
    assert excinfo.value.code == "not_allowed"
    outcome, code = await sim.call_capability(ann, chat, "media.url", {"media_id": media_id})
    assert (outcome, code) == ("error", "permission_denied")
