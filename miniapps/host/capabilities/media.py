"""``media.upload``: a mini-program's photo, file or voice note, verified and cleaned by the same
pipeline as a user's upload (``messaging.actions.media``), owned by the app's bot
(``app:<id>``) and marked with the app's id — so its cards may show it (``card.image`` = the
media id) and no other app's can.

``media.url``: a signed URL of such an upload — the chat's own signing (``MEDIA_URL_TTL``),
relative (``/media/<id>?exp=&sig=``), so the app's hosted web view, whose CSP allows images
from the platform's origin only, can show it; the signature is the permission, no bearer token
needed. Only the app's own uploads: a user's media or another app's is ``not_found``, as is
an id that does not exist — the app learns nothing about media that are not its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from messaging.actions import media as media_actions
from messaging.actions.cards import bot_id
from sdk.errors import NotFound, RateLimited
from sdk.media import MEDIA_UPLOADS_PER_MINUTE, decode_upload

if TYPE_CHECKING:
    from miniapps.host.calls import Call
    from miniapps.host.host import MiniappHost


async def upload(host: MiniappHost, call: Call, params: dict) -> dict:
    data = decode_upload(params["data"])
    verdict = await host.messaging.limiter.hit(
        f"app-media:{call.app_id}", MEDIA_UPLOADS_PER_MINUTE, 60
    )
    if not verdict.allowed:
        raise RateLimited(
            f"an app uploads at most {MEDIA_UPLOADS_PER_MINUTE} media a minute; try again in "
            f"{verdict.retry_after} s"
        )
    doc = await media_actions.do_upload_bytes(
        host.messaging,
        bot_id(call.app_id),
        data,
        content_type=params["content_type"],
        name=params.get("name"),
        kind=params.get("kind"),
        app_id=call.app_id,
    )
    return {"media_id": doc["_id"]}


async def url(host: MiniappHost, call: Call, params: dict) -> dict:
    ctx = host.messaging
    doc = await ctx.media.get_media(params["media_id"])
    if doc is None or doc.get("app_id") != call.app_id or doc["owner_id"] != bot_id(call.app_id):
        raise NotFound(f"no media {params['media_id']} uploaded by this app (media.upload)")
    variant = "thumbnail" if params.get("thumbnail") and doc.get("thumbnail_blob") else "original"
    exp = ctx.media_urls.expiry()
    return {"url": ctx.media_urls.url(doc["_id"], variant, exp), "expires_at": exp * 1000}


EFFECTS = {"media.url": url}
