"""The simulator's ``media.upload``: the host's checks on an app's upload, offline, and the
uploads recorded for assertions (``sim.media(media_id)``); and ``media.url``: a fake signed
address ``/sim/media/<id>?exp=<unix s>&sig=<hex>`` of the app's own upload, valid for
``SIM_MEDIA_URL_TTL`` seconds of the simulator's clock (``sim.now``, moved by ``sim.advance``),
that ``sim.fetch_media_url(url)`` answers as the host's ``/media/…`` route would.

The host's media pipeline decides what the bytes are; this mirrors its decisions and error
codes. With Pillow installed (the server has it) an image is opened and decoded as the host
does, so a damaged image is ``invalid_image`` here too; without Pillow only the file signature
is looked at. Likewise voice notes are probed with mutagen when it is installed, else by their
container's signature. Mixed into ``sdk.simulator.Simulator`` (through
``sdk._sim_effects.EffectsMixin``).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import secrets
import struct
import time
from typing import Any

from sdk._sim_world import SimCall
from sdk.errors import HostError, InvalidParams, NotFound, RateLimited
from sdk.media import MEDIA_UPLOADS_PER_MINUTE, card_media_id, decode_upload

# The host's limits (messaging/media_pipeline.py), repeated: the SDK imports nothing of it.
IMAGE_MAX_PIXELS = 50_000_000
IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
VOICE_MAX_MS = 60 * 60 * 1000
_IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "gif", "webp", "svg", "bmp", "heic", "tif", "tiff"}
_AUDIO_EXTENSIONS = {"ogg", "opus", "oga", "m4a", "aac"}
SIM_MEDIA_URL_TTL = 3600  # seconds: the host's default MEDIA_URL_TTL
SIM_MEDIA_URL_PREFIX = "/sim/media/"


def _refused(code: str, message: str) -> HostError:
    return HostError(message, code=code)


def _declared_family(content_type: str | None, name: str | None) -> str:
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared.startswith("image/"):
        return "image"
    if declared.startswith("audio/"):
        return "audio"
    ext = name.rsplit(".", 1)[-1].lower() if name and "." in name else ""
    if ext in _IMAGE_EXTENSIONS:
        return "image"
    if ext in _AUDIO_EXTENSIONS:
        return "audio"
    return ""


def _signature_format(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _header_size(fmt: str, data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG or GIF header (without Pillow); None for the others."""
    if fmt == "PNG" and len(data) >= 24 and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    if fmt == "GIF" and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    return None


def _too_many_pixels() -> HostError:
    return _refused(
        "image_too_large",
        f"this image has too many pixels; at most {IMAGE_MAX_PIXELS // 1_000_000} megapixels",
    )


def _invalid_image() -> HostError:
    return _refused("invalid_image", "the image cannot be read: it is cut short or damaged")


def _probe_image(data: bytes) -> dict[str, Any] | None:
    """``{content_type, width?, height?, animated}`` when the bytes are a JPEG, PNG, GIF or
    WebP image; None when they are not one; raises for a damaged or too large one."""
    fmt = _signature_format(data)
    try:
        from PIL import Image
    except ImportError:  # the SDK does not need Pillow: trust the signature
        if fmt is None:
            return None
        size = _header_size(fmt, data)
        if size and size[0] * size[1] > IMAGE_MAX_PIXELS:
            raise _too_many_pixels() from None
        width, height = size or (None, None)
        return {"content_type": IMAGE_FORMATS[fmt], "width": width, "height": height}
    try:
        image = Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS))
    except Image.DecompressionBombError:
        raise _too_many_pixels() from None
    except (OSError, SyntaxError, ValueError, EOFError):
        if fmt is not None:
            raise _invalid_image() from None
        return None
    with image:
        width, height = image.size
        if width * height > IMAGE_MAX_PIXELS:
            raise _too_many_pixels()
        try:
            image.load()
        except Image.DecompressionBombError:
            raise _too_many_pixels() from None
        except (OSError, SyntaxError, ValueError, EOFError):
            raise _invalid_image() from None
        animated = bool(getattr(image, "is_animated", False)) and image.format in {"GIF", "WEBP"}
        return {
            "content_type": IMAGE_FORMATS[image.format],
            "width": width,
            "height": height,
            "animated": animated,
        }


def _probe_voice(data: bytes) -> tuple[str, int | None] | None:
    """(content type, duration in ms or None when unknown) for Opus/Ogg or AAC/MP4 audio."""
    try:
        from mutagen.mp4 import MP4
        from mutagen.oggopus import OggOpus
    except ImportError:  # no mutagen: the container's signature only
        if data.startswith(b"OggS") and b"OpusHead" in data[:64]:
            return "audio/ogg", None
        if data[4:8] == b"ftyp" and data[8:11] in (b"M4A", b"mp4", b"iso"):
            return "audio/mp4", None
        return None
    try:
        return "audio/ogg", int(OggOpus(io.BytesIO(data)).info.length * 1000)
    except Exception:  # mutagen raises its own error types, and struct/EOF errors on junk
        pass
    try:
        mp4 = MP4(io.BytesIO(data))
    except Exception:
        return None
    if not (getattr(mp4.info, "codec", "") or "").startswith("mp4a"):
        return None
    return "audio/mp4", int(mp4.info.length * 1000)


def _looks_like_svg(data: bytes) -> bool:
    head = data[:4096].lower()
    return b"<svg" in head or (b"<?xml" in head and b"svg" in head)


def _sniff_file_type(data: bytes) -> str:
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"PK\x03\x04"):
        return "application/zip"
    return "application/octet-stream"


def verify_upload(
    data: bytes, content_type: str | None, name: str | None, kind: str | None
) -> dict[str, Any]:
    """What the host would store for these bytes — ``{kind, content_type, width?, height?,
    duration_ms?, animated?}`` — or the ``HostError`` it would answer, in the host's order:
    an image if the bytes are one (``kind`` image or unset), refused when ``kind`` is image or
    the declared type or name says image; then a voice note (``kind`` voice or unset), refused
    when asked for or declared audio; else a file, kept as it is."""
    declared = _declared_family(content_type, name)
    if kind in (None, "image"):
        image = _probe_image(data)
        if image is not None:
            return {"kind": "image", **image}
        if kind == "image" or declared == "image":
            if _looks_like_svg(data):
                raise _refused(
                    "svg_not_allowed",
                    "SVG is not accepted as an image (it can carry scripts); upload it with "
                    "kind='file' to share it as a download",
                )
            raise _refused(
                "not_an_image",
                "this file is not a JPEG, PNG, GIF or WebP image, whatever its name or declared "
                "type says",
            )
    if kind in (None, "voice"):
        voice = _probe_voice(data)
        if voice is not None:
            voice_type, duration_ms = voice
            if duration_ms is not None and duration_ms <= 0:
                raise _refused("invalid_audio", "this voice note has no duration")
            if duration_ms is not None and duration_ms > VOICE_MAX_MS:
                raise _refused(
                    "voice_too_long", f"a voice note lasts at most {VOICE_MAX_MS // 60000} minutes"
                )
            return {"kind": "voice", "content_type": voice_type, "duration_ms": duration_ms}
        if kind == "voice" or declared == "audio":
            raise _refused(
                "not_audio",
                "a voice note must be Opus in Ogg or AAC in M4A, whatever its declared type says",
            )
    return {"kind": "file", "content_type": _sniff_file_type(data)}


class MediaMixin:
    """``media.upload`` in memory, and the check the host makes on a card's media ``image``."""

    @property
    def _uploads(self) -> dict[str, dict[str, Any]]:
        # Created on first use, so the Simulator needs no set-up for it.
        uploads = self.__dict__.get("_media_uploads")
        if uploads is None:
            uploads = self.__dict__["_media_uploads"] = {}
        return uploads

    def _upload_media(self, call: SimCall, params: dict) -> dict:
        data = decode_upload(params["data"])
        # The host's budget: MEDIA_UPLOADS_PER_MINUTE per app (here: in the last 60 s).
        now = time.monotonic()
        recent = [t for t in self.__dict__.get("_media_times", []) if now - t < 60]
        if len(recent) >= MEDIA_UPLOADS_PER_MINUTE:
            raise RateLimited(f"an app uploads at most {MEDIA_UPLOADS_PER_MINUTE} media a minute")
        self.__dict__["_media_times"] = [*recent, now]
        found = verify_upload(data, params["content_type"], params.get("name"), params.get("kind"))
        media_id = secrets.token_hex(12)  # 24 hex digits, like the host's ids
        record = {k: v for k, v in found.items() if v is not None}
        record.update(id=media_id, size=len(data), data=data)
        if params.get("name"):
            record["name"] = params["name"]
        self._uploads[media_id] = record
        return {"media_id": media_id}

    def _check_card_media(self, card: dict[str, Any]) -> None:
        """A card's ``image`` that is a media id must be an image this app uploaded."""
        media_id = card_media_id(card)
        if media_id is None:
            return
        upload = self._uploads.get(media_id)
        if upload is None or upload["kind"] != "image":
            raise InvalidParams(
                f"card.image: no image {media_id} uploaded by this app (upload it with "
                "media.upload first)"
            )

    def media(self, media_id: str) -> dict[str, Any]:
        """What the app uploaded as ``media_id``: ``{"id", "kind", "content_type", "size",
        "data"}`` (the bytes as received) and, as the host would say, ``width``/``height``
        (images), ``duration_ms`` (voice, when known), ``name``. ``KeyError`` when the app
        uploaded no such media."""
        return copy.deepcopy(self._uploads[media_id])

    def media_ids(self) -> list[str]:
        """The ids of everything the app uploaded, oldest first."""
        return list(self._uploads)

    # --- media.url ------------------------------------------------------------------------

    def _media_url_sig(self, media_id: str, variant: str, exp: int) -> str:
        key = self.__dict__.get("_media_url_key")
        if key is None:
            key = self.__dict__["_media_url_key"] = secrets.token_bytes(32)
        message = f"{media_id}|{variant}|{exp}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]

    def _media_now_s(self) -> int:
        now_ms = getattr(self, "now", None)  # the simulator's clock (sdk._sim_timers)
        return int(now_ms / 1000) if now_ms is not None else int(time.time())

    def _media_url(self, call: SimCall, params: dict) -> dict:
        media_id = params["media_id"]
        upload = self._uploads.get(media_id)
        if upload is None:
            raise NotFound(f"no media {media_id} uploaded by this app (media.upload)")
        # The host has a thumbnail of every image; here it stands for the image itself.
        variant = "thumbnail" if params.get("thumbnail") and upload["kind"] == "image" else ""
        # Rounded up to the minute, like the host's expiry.
        exp = (self._media_now_s() + SIM_MEDIA_URL_TTL) // 60 * 60 + 60
        suffix = f"/{variant}" if variant else ""
        sig = self._media_url_sig(media_id, variant or "original", exp)
        url = f"{SIM_MEDIA_URL_PREFIX}{media_id}{suffix}?exp={exp}&sig={sig}"
        return {"url": url, "expires_at": exp * 1000}

    def fetch_media_url(self, url: str) -> tuple[int, bytes]:
        """What the host's media route answers for ``url`` (a ``media.url`` address), as
        ``(status, body)``: ``(200, the bytes uploaded)`` — for a thumbnail too, the simulator
        makes none — ``(403, b"")`` for an expired address (by ``sim.now``) or a forged one,
        ``(404, b"")`` for anything else."""
        path, _, query = url.partition("?")
        if not path.startswith(SIM_MEDIA_URL_PREFIX):
            return 404, b""
        media_id, _, variant = path.removeprefix(SIM_MEDIA_URL_PREFIX).partition("/")
        fields = dict(part.partition("=")[::2] for part in query.split("&") if part)
        exp, sig = fields.get("exp", ""), fields.get("sig", "")
        if variant not in ("", "thumbnail"):
            return 404, b""
        if not exp.isdigit() or len(exp) > 12:
            return 403, b""
        expected = self._media_url_sig(media_id, variant or "original", int(exp))
        if not hmac.compare_digest(expected, sig):
            return 403, b""
        if int(exp) < self._media_now_s():
            return 403, b""
        upload = self._uploads.get(media_id)
        return (200, upload["data"]) if upload is not None else (404, b"")

    EFFECTS: dict[str, Any] = {"media.url": _media_url}
