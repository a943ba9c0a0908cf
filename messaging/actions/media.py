"""Media: upload (streamed to a temporary file, verified and cleaned in a worker thread, stored
content-addressed), signed URLs, who may see what, and serving.

Who may fetch: the uploader, and members of a conversation where it was sent (``media_refs``).
Signed URLs are issued only to them; the URL itself is then the permission, until it expires.
Avatars are the exception: a profile picture is shown to anyone who sees the profile, so its
URL (``variant = avatar``, the thumbnail) does not expire but works only while the media is
someone's avatar.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from messaging import media_pipeline
from messaging.context import Messaging
from storage.errors import AppError
from storage.mongo import iso, new_id, now_ms

MEDIA_TYPES = ("image", "file", "voice")
ALBUM_MAX = 9
VARIANTS = ("original", "thumbnail", "avatar")
AVATAR_EXP = 0  # avatar URLs carry exp=0: valid while the media is an avatar
# A media id as a mini-program names it in a card's ``image`` (sdk/schemas/card.schema.json).
MEDIA_ID = re.compile(r"^[0-9a-f]{24}$")


@dataclass
class Upload:
    """A received upload: the bytes in a private temporary folder (removed by ``discard``)."""

    folder: Path
    path: Path
    size: int
    name: str | None
    declared_type: str | None

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _too_large(ctx: Messaging) -> AppError:
    limit = ctx.config.media_max_bytes
    return AppError(
        "media_too_large",
        f"a file may be at most {limit // (1024 * 1024) or 1} MiB ({limit} bytes)",
        status=413,
        details={"limit": limit},
    )


def check_upload_length(ctx: Messaging, content_length: int | None) -> None:
    """Refuse before reading when the client announces more than the limit (with room for the
    multipart framing)."""
    if content_length is not None and content_length > ctx.config.media_max_bytes + 64 * 1024:
        raise _too_large(ctx)


async def receive_upload(
    ctx: Messaging,
    chunks: AsyncIterator[bytes],
    *,
    name: str | None,
    declared_type: str | None,
) -> Upload:
    """Stream an upload to a temporary file under DATA_DIR, counting bytes as they arrive; past
    MEDIA_MAX_BYTES it stops reading and nothing is kept (413 ``media_too_large``)."""
    root = ctx.config.data_dir / "media" / "incoming"
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=root))
    path = folder / "upload"
    size = 0
    limit = ctx.config.media_max_bytes
    try:
        with path.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise _too_large(ctx)
                out.write(chunk)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Upload(folder, path, size, media_pipeline.clean_name(name), declared_type)


def check_kind(kind: str | None) -> str | None:
    if kind is None or kind == "":
        return None
    if kind not in MEDIA_TYPES:
        raise AppError(
            "invalid_field",
            "kind must be image, file or voice",
            details={"field": "kind"},
        )
    return kind


async def do_upload(
    ctx: Messaging,
    user_id: str,
    upload: Upload,
    *,
    kind: str | None = None,
    app_id: str | None = None,
) -> dict[str, Any]:
    """Verify, clean and store an upload; returns the stored media document. The temporary
    file is removed whatever happens; a refused upload stores nothing."""
    try:
        kind = check_kind(kind)
        processed = await asyncio.to_thread(
            media_pipeline.process,
            upload.path,
            upload.folder,
            declared_type=upload.declared_type,
            name=upload.name,
            kind=kind,
        )
        blob = await ctx.blobs.put_file(processed.output)
        thumbnail_blob = None
        if processed.thumbnail is not None:
            thumbnail_blob = await ctx.blobs.put_bytes(processed.thumbnail)
    finally:
        await asyncio.to_thread(upload.discard)
    doc: dict[str, Any] = {
        "_id": new_id(),
        "owner_id": user_id,
        "kind": processed.kind,
        "content_type": processed.content_type,
        "size": processed.size,
        "blob": blob,
        "created_at": now_ms(),
    }
    optional = {
        "name": upload.name,
        "width": processed.width,
        "height": processed.height,
        "duration_ms": processed.duration_ms,
        "thumbnail_blob": thumbnail_blob,
        "thumbnail_size": len(processed.thumbnail) if processed.thumbnail else None,
        "app_id": app_id,
    }
    doc.update({k: v for k, v in optional.items() if v is not None})
    if processed.animated:
        doc["animated"] = True
    await ctx.media.add_media(doc)
    return doc


async def do_upload_bytes(
    ctx: Messaging,
    user_id: str,
    data: bytes,
    *,
    content_type: str | None,
    name: str | None = None,
    kind: str | None = None,
    app_id: str | None = None,
) -> dict[str, Any]:
    """``do_upload`` for bytes already in memory (a mini-program's ``upload_media``)."""

    async def one() -> AsyncIterator[bytes]:
        yield data

    upload = await receive_upload(ctx, one(), name=name, declared_type=content_type)
    return await do_upload(ctx, user_id, upload, kind=kind, app_id=app_id)


def media_view(ctx: Messaging, doc: dict[str, Any], exp: int | None = None) -> dict[str, Any]:
    """MEDIA as the API shows it, with freshly signed URLs."""
    exp = ctx.media_urls.expiry() if exp is None else exp
    view: dict[str, Any] = {
        "id": doc["_id"],
        "kind": doc["kind"],
        "content_type": doc["content_type"],
        "size": doc["size"],
    }
    for key in ("name", "width", "height", "duration_ms"):
        if doc.get(key) is not None:
            view[key] = doc[key]
    if doc["kind"] == "image":
        view["animated"] = bool(doc.get("animated"))
    view["url"] = ctx.media_urls.url(doc["_id"], "original", exp)
    if doc.get("thumbnail_blob"):
        view["thumbnail_url"] = ctx.media_urls.url(doc["_id"], "thumbnail", exp)
    view["expires_at"] = iso(exp * 1000)
    return view


async def media_views(ctx: Messaging, media_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Signed views of several media by id (those that exist), one expiry for all."""
    docs = await ctx.media.get_many(media_ids)
    exp = ctx.media_urls.expiry()
    return {media_id: media_view(ctx, doc, exp) for media_id, doc in docs.items()}


def avatar_url(ctx: Messaging, media_id: str) -> str:
    return ctx.media_urls.url(media_id, "avatar", AVATAR_EXP)


async def may_see(ctx: Messaging, user_id: str, doc: dict[str, Any]) -> bool:
    if doc["owner_id"] == user_id:
        return True
    for conversation_id in await ctx.media_refs.get_conversation_ids(doc["_id"]):
        if await ctx.members.get_member(conversation_id, user_id):
            return True
    return False


async def get_media(ctx: Messaging, user_id: str, media_id: str) -> dict[str, Any]:
    """A media freshly signed, for the uploader or a member of a conversation where it was
    sent; anyone else learns nothing (404, as for an id that does not exist)."""
    doc = await ctx.media.get_media(media_id)
    if doc is None or not await may_see(ctx, user_id, doc):
        raise AppError("media_not_found", "no such media", status=404)
    return media_view(ctx, doc)


async def check_media_for_message(
    ctx: Messaging, user_id: str, kind: str, media_ids: list[str]
) -> list[str]:
    """The media of a message: 1-9 of your own images (an album), or exactly one file or
    voice note, each of the message's kind. You can send only what you uploaded or can see
    (forwarding media from a conversation you are in)."""
    ids = list(dict.fromkeys(media_ids))
    if kind == "image":
        if not 1 <= len(ids) <= ALBUM_MAX:
            raise AppError(
                "invalid_field",
                f"an image message has 1-{ALBUM_MAX} images",
                details={"field": "media_ids"},
            )
    elif len(ids) != 1:
        raise AppError(
            "invalid_field",
            f"a {kind} message has exactly one media",
            details={"field": "media_ids"},
        )
    docs = await ctx.media.get_many(ids)
    for media_id in ids:
        doc = docs.get(media_id)
        if doc is None or not await may_see(ctx, user_id, doc):
            raise AppError(
                "media_not_found",
                "no such media; upload it first (POST /api/v1/media)",
                status=404,
                details={"field": "media_ids", "media_id": media_id},
            )
        if doc["kind"] != kind:
            raise AppError(
                "invalid_field",
                f"media {media_id} is a {doc['kind']}, not a {kind}",
                details={"field": "media_ids", "media_id": media_id},
            )
    return ids


def card_image_id(card: dict[str, Any] | None) -> str | None:
    """The media id a card's ``image`` names (a mini-program's upload), None for an https URL
    or no image."""
    image = card.get("image") if isinstance(card, dict) else None
    return image if isinstance(image, str) and MEDIA_ID.match(image) else None


async def check_card_image(ctx: Messaging, app_id: str, card: dict[str, Any]) -> list[str]:
    """A card's ``image`` may be a media id: an image this app uploaded (``media.upload``),
    never another app's or a user's. Returns the card's media ids (none or one); refuses with
    ``invalid_params`` — the code the app's capability call answers — otherwise."""
    media_id = card_image_id(card)
    if media_id is None:
        return []
    doc = await ctx.media.get_media(media_id)
    if doc is None or doc.get("app_id") != app_id or doc["kind"] != "image":
        raise AppError(
            "invalid_params",
            f"card.image: no image {media_id} uploaded by this app (upload it with media.upload "
            "first)",
            status=422,
            details={"field": "card.image", "media_id": media_id},
        )
    return [media_id]


async def do_note_shared(ctx: Messaging, conversation_id: str, media_ids: list[str]) -> None:
    """Members of the conversation may now fetch these media."""
    await ctx.media_refs.add_refs(media_ids, conversation_id, now_ms())


async def check_avatar(ctx: Messaging, user_id: str, media_id: str) -> dict[str, Any]:
    """An avatar is an image you uploaded."""
    doc = await ctx.media.get_media(media_id)
    if doc is None or doc["owner_id"] != user_id:
        raise AppError(
            "media_not_found",
            "no such media of yours; upload the picture first (POST /api/v1/media)",
            status=404,
            details={"field": "avatar_media_id"},
        )
    if doc["kind"] != "image" or not doc.get("thumbnail_blob"):
        raise AppError(
            "invalid_field", "an avatar must be an image", details={"field": "avatar_media_id"}
        )
    return doc


async def do_set_avatar_of(
    ctx: Messaging, owner: str, new_media_id: str | None, old_media_id: str | None
) -> None:
    """Mark which media is the avatar of ``owner`` ("user:<id>" or "conversation:<id>"); the
    one it replaces stops being served by its avatar URL."""
    if new_media_id:
        await ctx.media.set_avatar_of(new_media_id, owner)
    if old_media_id and old_media_id != new_media_id:
        await ctx.media.clear_avatar_of(old_media_id, owner)


@dataclass
class Served:
    content_type: str
    size: int
    blob: str
    name: str | None
    attachment: bool
    exp: int


async def check_serve(
    ctx: Messaging, media_id: str, variant: str, exp: str | None, sig: str | None
) -> Served:
    """What a signed URL serves; an expired or wrong signature is refused (403)."""
    verdict = ctx.media_urls.verify(media_id, variant, exp, sig)
    if not verdict and (exp == str(AVATAR_EXP)) != (variant == "avatar"):
        verdict = "invalid"  # only avatar URLs are issued without an expiry
    if verdict == "expired":
        raise AppError("url_expired", "this media link has expired; ask for a new one", status=403)
    if verdict:
        raise AppError("bad_signature", "this media link is not valid", status=403)
    doc = await ctx.media.get_media(media_id)
    if doc is None:
        raise AppError("media_not_found", "no such media", status=404)
    if variant == "original":
        return Served(
            content_type=doc["content_type"]
            if doc["kind"] != "file"
            else "application/octet-stream",
            size=doc["size"],
            blob=doc["blob"],
            name=doc.get("name"),
            attachment=doc["kind"] == "file",
            exp=int(exp or 0),
        )
    if variant == "avatar" and not doc.get("avatar_of"):
        raise AppError("media_not_found", "this picture is no longer an avatar", status=404)
    if not doc.get("thumbnail_blob"):
        raise AppError("media_not_found", "this media has no thumbnail", status=404)
    return Served(
        content_type="image/webp",
        size=doc["thumbnail_size"],
        blob=doc["thumbnail_blob"],
        name=None,
        attachment=False,
        exp=int(exp or 0),
    )
