"""Media a mini-program uploads (``media.upload``, ``Context.upload_media``) and shows in cards.

What the host and the simulator share: how an upload's ``data`` is decoded and bounded, what a
media id looks like, and which id a card's ``image`` names. The bytes themselves are verified
by the host's media pipeline (JPEG, PNG, GIF or WebP re-encoded without metadata; Opus/Ogg or
AAC/M4A voice notes; anything else a download) and, as closely as it can offline, by the
simulator (``sdk._sim_media``).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from sdk._capability_table import MEDIA_UPLOAD_MAX_BYTES, MEDIA_UPLOADS_PER_MINUTE
from sdk.errors import HostError, InvalidParams

__all__ = [
    "MEDIA_ID_PATTERN",
    "MEDIA_UPLOADS_PER_MINUTE",
    "MEDIA_UPLOAD_MAX_BYTES",
    "card_media_id",
    "decode_upload",
    "encode_upload",
    "is_media_id",
]

# A media id: 24 lower-case hex digits (what media.upload answers). A card's ``image`` is such
# an id or an https URL (sdk/schemas/card.schema.json).
MEDIA_ID_PATTERN = re.compile(r"^[0-9a-f]{24}$")
# The longest base64 text of MEDIA_UPLOAD_MAX_BYTES bytes (padding included).
_BASE64_MAX = 4 * ((MEDIA_UPLOAD_MAX_BYTES + 2) // 3)


def is_media_id(value: Any) -> bool:
    """Whether ``value`` is a media id (24 lower-case hex digits)."""
    return isinstance(value, str) and MEDIA_ID_PATTERN.match(value) is not None


def card_media_id(card: Any) -> str | None:
    """The media id a card's ``image`` names, None when it has none or an https URL."""
    image = card.get("image") if isinstance(card, dict) else None
    return image if is_media_id(image) else None


def encode_upload(data: bytes) -> str:
    """``data`` as ``media.upload``'s ``data`` param (standard base64)."""
    return base64.b64encode(data).decode("ascii")


def _too_large() -> HostError:
    return HostError(
        f"an upload is at most {MEDIA_UPLOAD_MAX_BYTES} bytes ({MEDIA_UPLOAD_MAX_BYTES // 1024} "
        "KiB) once decoded",
        code="media_too_large",
    )


def decode_upload(data: str) -> bytes:
    """The bytes of ``media.upload``'s ``data``: standard base64 (``+/``, padded), at most
    ``MEDIA_UPLOAD_MAX_BYTES`` once decoded. Raises ``HostError`` ``media_too_large`` past it
    (measured before decoding when the text alone says so), ``InvalidParams`` for text that is
    not base64, ``HostError`` ``empty_file`` for nothing at all."""
    if len(data) > _BASE64_MAX:
        raise _too_large()
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParams("data must be standard base64 (A-Z a-z 0-9 + /, padded)") from None
    if len(raw) > MEDIA_UPLOAD_MAX_BYTES:
        raise _too_large()
    if not raw:
        raise HostError("the file is empty", code="empty_file")
    return raw
