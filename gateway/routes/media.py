"""REST routes: Media: photos, files and voice notes (upload, signed URLs).

The upload is multipart and streamed to a temporary file as it arrives (never held in memory);
the bytes are served by short-lived signed URLs, outside /api/v1 because the signature is the
permission (an <img src> sends no Authorization header).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.api import AUTH, QUERY, Api
from gateway.keys import MESSAGING
from gateway.schemas import obj, string
from messaging.actions import media
from messaging.actions.limits import check_limit
from messaging.media_pipeline import ascii_name
from storage.errors import AppError

api = Api("media", "Media: photos, files and voice notes (upload, signed URLs)")

UPLOAD_RATE_MAX = 60  # uploads per person...
UPLOAD_RATE_WINDOW = 60  # ...per this many seconds
CHUNK = 64 * 1024
KIND_MAX = 16

MEDIA = obj(
    {
        "id": {"type": "string"},
        "kind": {"enum": list(media.MEDIA_TYPES)},
        "content_type": {"type": "string"},
        "size": {"type": "integer"},
        "name": {"type": "string"},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        "duration_ms": {"type": "integer"},
        "animated": {"type": "boolean"},
        "url": {"type": "string", "description": "signed, expires at expires_at"},
        "thumbnail_url": {"type": "string"},
        "expires_at": {"type": "string", "format": "date-time"},
    },
    ["id", "kind", "content_type", "size", "url", "expires_at"],
)
UPLOAD_ERRORS = (
    "not_multipart",
    "missing_field",
    "invalid_field",
    "media_too_large",
    "empty_file",
    "image_too_large",
    "invalid_image",
    "not_an_image",
    "svg_not_allowed",
    "not_audio",
    "invalid_audio",
    "voice_too_long",
    "rate_limited",
)
BINARY = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
SIGNED = {"exp": string(20, 1), "sig": string(128, 1)}
SERVE_ERRORS = ("bad_signature", "url_expired", "media_not_found", "range_not_satisfiable")


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


@api.post(
    "/api/v1/media",
    status=201,
    summary="Upload a photo, file or voice note",
    request_content={
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "kind": {"enum": list(media.MEDIA_TYPES)},
                },
                "required": ["file"],
            }
        }
    },
    response=obj({"media": MEDIA}, ["media"]),
    errors=UPLOAD_ERRORS,
)
async def upload_media(request: web.Request) -> dict:
    """Multipart: part ``file`` (with a file name and Content-Type) and optionally ``kind``
    (image, file or voice; default: decided from the bytes). The real type is verified, images
    are re-encoded without metadata (EXIF/GPS) and get a thumbnail. At most MEDIA_MAX_BYTES."""
    ctx = request.app[MESSAGING]
    user_id = request[AUTH].user_id
    await check_limit(ctx, f"upload:{user_id}", UPLOAD_RATE_MAX, UPLOAD_RATE_WINDOW, "uploads")
    media.check_upload_length(ctx, request.content_length)
    if request.content_type != "multipart/form-data":
        raise AppError(
            "not_multipart", "send the file as multipart/form-data (part 'file')", status=415
        )
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:  # no or a broken boundary
        raise AppError("not_multipart", f"the multipart body cannot be read: {exc}") from None
    upload, kind = None, None
    try:
        while True:
            try:
                part = await reader.next()
            except (ValueError, AssertionError, RuntimeError, HttpProcessingError):
                raise AppError(
                    "invalid_field", "the multipart body is broken (a part's headers)"
                ) from None
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise AppError("invalid_field", "nested multipart bodies are not accepted")
            if part.name == "file":
                if upload is not None:
                    raise AppError(
                        "invalid_field", "send one file per upload", details={"field": "file"}
                    )
                upload = await media.receive_upload(
                    ctx,
                    _chunks(part),
                    name=part.filename,
                    declared_type=part.headers.get("Content-Type"),
                )
            elif part.name == "kind":
                raw = b""
                async for chunk in _chunks(part):
                    raw += chunk
                    if len(raw) > KIND_MAX:
                        break
                if len(raw) > KIND_MAX:
                    raise AppError(
                        "invalid_field",
                        "kind must be image, file or voice",
                        details={"field": "kind"},
                    )
                kind = media.check_kind(raw.decode("utf-8", "replace").strip())
            else:
                raise AppError(
                    "unknown_field" if part.name else "invalid_field",
                    f"unexpected part {part.name!r}: send 'file' and optionally 'kind'",
                    details={"field": part.name or ""},
                )
        if upload is None:
            raise AppError("missing_field", "the part 'file' is missing", details={"field": "file"})
    except BaseException:
        if upload is not None:
            upload.discard()
        raise
    doc = await media.do_upload(ctx, user_id, upload, kind=kind)
    return {"media": media.media_view(ctx, doc)}


@api.get(
    "/api/v1/media/{media_id}",
    summary="A media, with freshly signed URLs",
    response=obj({"media": MEDIA}, ["media"]),
    errors=("media_not_found",),
)
async def get_media(request: web.Request) -> dict:
    """For the uploader, or a member of a conversation where it was sent."""
    ctx = request.app[MESSAGING]
    view = await media.get_media(ctx, request[AUTH].user_id, request.match_info["media_id"])
    return {"media": view}


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, length) of a single ``bytes=`` range; None to serve everything."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, sep, last = spec.strip().partition("-")
    if not sep:
        return None
    try:
        if not first:  # the last N bytes
            suffix = int(last)
            if suffix <= 0:
                raise ValueError
            start = max(0, size - suffix)
            return start, size - start
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        raise AppError(
            "range_not_satisfiable",
            f"the range starts past the end ({size} bytes)",
            status=416,
            headers={"Content-Range": f"bytes */{size}"},
        )
    if end < start:
        return None
    end = min(end, size - 1)
    return start, end - start + 1


async def _serve(request: web.Request, variant: str) -> web.StreamResponse:
    ctx = request.app[MESSAGING]
    query = request[QUERY]
    served = await media.check_serve(
        ctx, request.match_info["media_id"], variant, query.get("exp"), query.get("sig")
    )
    etag = f'"{served.blob}"'
    headers = {
        "Content-Type": served.content_type,
        "X-Content-Type-Options": "nosniff",
        # Even if a browser were tricked into rendering it, it could run nothing.
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Accept-Ranges": "bytes",
        "ETag": etag,
    }
    if variant == "avatar":
        headers["Cache-Control"] = "public, max-age=86400"
    else:
        # The bytes behind an id never change; the URL is valid until exp.
        remaining = max(0, served.exp - int(time.time()))
        headers["Cache-Control"] = f"private, max-age={remaining}, immutable"
    if served.attachment:
        name = served.name or "file"
        headers["Content-Disposition"] = (
            f"attachment; filename=\"{ascii_name(name)}\"; filename*=UTF-8''{quote(name, safe='')}"
        )
    else:
        headers["Content-Disposition"] = "inline"
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers={k: headers[k] for k in ("ETag", "Cache-Control")})
    size = served.size
    start, length, status = 0, size, 200
    if "Range" in request.headers and size > 0:
        wanted = _parse_range(request.headers["Range"], size)
        if wanted is not None:
            start, length = wanted
            status = 206
            headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = length
    await response.prepare(request)
    async for chunk in ctx.blobs.read(served.blob, start, length):
        await response.write(chunk)
    await response.write_eof()
    return response


@api.get(
    "/media/{media_id}",
    auth=False,
    summary="The media's bytes (signed URL)",
    query=SIGNED,
    response_content=BINARY,
    errors=SERVE_ERRORS,
)
async def serve_media(request: web.Request) -> web.StreamResponse:
    """Only with the ``exp`` and ``sig`` of a URL the API gave out. Content-Type is the verified
    one; files come as downloads (Content-Disposition: attachment); byte ranges are honoured."""
    return await _serve(request, "original")


@api.get(
    "/media/{media_id}/thumbnail",
    auth=False,
    summary="An image's 320 px WebP thumbnail (signed URL)",
    query=SIGNED,
    response_content=BINARY,
    errors=SERVE_ERRORS,
)
async def serve_thumbnail(request: web.Request) -> web.StreamResponse:
    return await _serve(request, "thumbnail")


@api.get(
    "/media/{media_id}/avatar",
    auth=False,
    summary="A profile or group picture (signed URL, valid while it is the avatar)",
    query=SIGNED,
    response_content=BINARY,
    errors=SERVE_ERRORS,
)
async def serve_avatar(request: web.Request) -> web.StreamResponse:
    return await _serve(request, "avatar")
