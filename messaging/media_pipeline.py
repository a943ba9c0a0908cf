"""What an uploaded file really is, made safe to serve: pure functions, run in a worker thread.

Never trusts the declared type or the file name: the bytes decide.

- **Images** (JPEG, PNG, GIF, WebP) go through Pillow: the header is read first and an image
  above ``MAX_PIXELS`` (or an animation above ``MAX_FRAME_PIXELS`` over all its frames) is
  refused before a single pixel is decoded — a 50,000 x 50,000 PNG costs a header read. Then
  the EXIF orientation is applied and the image re-encoded without any metadata (EXIF with its
  GPS position, XMP, comments, ICC), larger ones scaled down to ``MAX_SIDE``. Animated GIF/WebP
  keep their animation. A 320 px WebP thumbnail is made from the (first) frame.
- **Voice notes**: Opus in Ogg, or AAC in MP4/M4A, parsed by mutagen for the duration.
- **Files**: anything else, kept byte for byte and only ever served as a download.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence

from storage.errors import AppError

MAX_PIXELS = 50_000_000  # per frame: a 12-megapixel photo is fine, a pixel bomb is not
MAX_FRAME_PIXELS = 200_000_000  # an animation's pixels over all its frames
MAX_FRAMES = 1000
MAX_SIDE = 4096  # larger images are scaled down to this longest side
THUMBNAIL_SIDE = 320
VOICE_MAX_MS = 60 * 60 * 1000
NAME_MAX = 200

IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
KINDS = ("image", "file", "voice")

# Pillow's own guard stays on as a second line (it raises past twice this many pixels).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


@dataclass
class Processed:
    kind: str
    content_type: str
    size: int
    output: Path  # the bytes to store: the re-encoded image, or the upload itself
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    animated: bool = False
    thumbnail: bytes | None = None
    extra: dict = field(default_factory=dict)


def clean_name(name: str | None) -> str | None:
    """A file name safe to show and to put in Content-Disposition: no folders, no controls."""
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        c for c in unicodedata.normalize("NFC", name) if unicodedata.category(c)[0] != "C"
    )
    name = name.strip().strip(".")
    return name[:NAME_MAX] or None


def _declared_family(content_type: str | None, name: str | None) -> str:
    """What the client claims: 'image', 'audio' or ''. Used only to refuse a mismatch."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared.startswith("image/"):
        return "image"
    if declared.startswith("audio/"):
        return "audio"
    ext = (name or "").rsplit(".", 1)[-1].lower() if "." in (name or "") else ""
    if ext in {"jpg", "jpeg", "png", "gif", "webp", "svg", "bmp", "heic", "tif", "tiff"}:
        return "image"
    if ext in {"ogg", "opus", "oga", "m4a", "aac"}:
        return "audio"
    return ""


def _looks_like_svg(path: Path) -> bool:
    with path.open("rb") as file:
        head = file.read(4096).lower()
    return b"<svg" in head or (b"<?xml" in head and b"svg" in head)


def _sniff_file_type(path: Path) -> str:
    """A few well-known signatures, for display; files are served as downloads whatever this is."""
    with path.open("rb") as file:
        head = file.read(8)
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    return "application/octet-stream"


def _has_image_signature(path: Path) -> bool:
    with path.open("rb") as file:
        head = file.read(12)
    return head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")) or (
        head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    )


def _open_image(path: Path) -> Image.Image | None:
    """The image if the bytes are one of ours (header only, nothing decoded), else None; bytes
    that start like one of ours but cannot be read are a broken image."""
    try:
        image = Image.open(path, formats=list(IMAGE_FORMATS))
    except Image.DecompressionBombError:
        raise _too_many_pixels(None) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        if _has_image_signature(path):
            raise _invalid_image("it is cut short or damaged") from None
        return None
    return image


def _too_many_pixels(size: tuple[int, int] | None) -> AppError:
    shown = f" ({size[0]} x {size[1]})" if size else ""
    return AppError(
        "image_too_large",
        f"this image has too many pixels{shown}; at most {MAX_PIXELS // 1_000_000} megapixels",
        status=413,
        details={"max_pixels": MAX_PIXELS},
    )


def _invalid_image(why: str) -> AppError:
    return AppError("invalid_image", f"the image cannot be read: {why}", status=422)


def _process_image(image: Image.Image, source: Path, work: Path) -> Processed:
    fmt = image.format
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _too_many_pixels((width, height))
    frames = getattr(image, "n_frames", 1)
    animated = bool(getattr(image, "is_animated", False)) and fmt in {"GIF", "WEBP"}
    if animated and (frames > MAX_FRAMES or frames * width * height > MAX_FRAME_PIXELS):
        raise AppError(
            "image_too_large",
            f"this animation is too large ({frames} frames of {width} x {height})",
            status=413,
        )
    output = work / "image.out"
    try:
        if animated:
            rendered = _reencode_animation(image, fmt, output)
        else:
            rendered = _reencode_still(image, fmt, output)
    except Image.DecompressionBombError:
        raise _too_many_pixels((width, height)) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        # Pillow's messages name the temporary file: say it plainly instead.
        raise _invalid_image("it is cut short or damaged") from None
    thumb = rendered.copy()
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    if thumb.mode not in ("RGB", "RGBA"):
        thumb = thumb.convert(
            "RGBA" if "A" in thumb.mode or "transparency" in thumb.info else "RGB"
        )
    buffer = io.BytesIO()
    thumb.save(buffer, "WEBP", quality=75, method=4)
    return Processed(
        kind="image",
        content_type=IMAGE_FORMATS[fmt],
        size=output.stat().st_size,
        output=output,
        width=rendered.width,
        height=rendered.height,
        animated=animated,
        thumbnail=buffer.getvalue(),
    )


def _reencode_still(image: Image.Image, fmt: str, output: Path) -> Image.Image:
    """Decode, turn upright, drop every metadata block, encode again; returns what was saved."""
    if fmt == "JPEG":
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode big JPEGs at a reduced scale: cheaper
    image.load()
    upright = ImageOps.exif_transpose(image) or image
    if max(upright.size) > MAX_SIDE:
        upright.thumbnail((MAX_SIDE, MAX_SIDE))
    # Only what drawing needs survives: no EXIF (GPS), XMP, comments or ICC profile.
    upright.info = {k: v for k, v in upright.info.items() if k == "transparency"}
    if fmt == "JPEG":
        if upright.mode not in ("RGB", "L"):
            upright = upright.convert("RGB")
        upright.save(output, "JPEG", quality=85)
    elif fmt == "PNG":
        upright.save(output, "PNG", compress_level=6)
    elif fmt == "GIF":
        upright.save(output, "GIF")
    else:  # WEBP
        upright.save(output, "WEBP", quality=85)
    return upright


def _reencode_animation(image: Image.Image, fmt: str, output: Path) -> Image.Image:
    """Keep the animation (frames and their timing), drop the metadata."""
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        durations.append(frame.info.get("duration", 100))
        frames.append(frame.convert("RGBA"))
    first = frames[0]
    loop = image.info.get("loop", 0)
    if fmt == "GIF":
        first.save(
            output,
            "GIF",
            save_all=True,
            append_images=frames[1:],
            duration=durations,
            loop=loop,
            disposal=2,
        )
    else:
        first.save(
            output,
            "WEBP",
            save_all=True,
            append_images=frames[1:],
            duration=durations,
            loop=loop,
            quality=80,
        )
    return first


def _probe_voice(path: Path) -> tuple[str, int] | None:
    """(content type, duration in ms) for Opus/Ogg or AAC/MP4 audio, else None."""
    from mutagen.mp4 import MP4
    from mutagen.oggopus import OggOpus

    try:
        opus = OggOpus(path)
        return "audio/ogg", int(opus.info.length * 1000)
    except Exception:  # mutagen raises its own error types, and struct/EOF errors on junk
        pass
    try:
        mp4 = MP4(path)
    except Exception:
        return None
    codec = getattr(mp4.info, "codec", "") or ""
    if not codec.startswith("mp4a"):
        return None
    return "audio/mp4", int(mp4.info.length * 1000)


def process(
    source: Path, work: Path, *, declared_type: str | None, name: str | None, kind: str | None
) -> Processed:
    """Verify and clean one upload (a file on disk); raises ``AppError`` for what is refused.

    ``work`` is a private folder for the outputs. ``kind`` is what the client asked for, or
    None to decide from the bytes.
    """
    size = source.stat().st_size
    if size == 0:
        raise AppError("empty_file", "the file is empty", status=422)
    declared = _declared_family(declared_type, name)
    if kind in (None, "image"):
        image = _open_image(source)
        if image is not None:
            with image:
                return _process_image(image, source, work)
        if kind == "image" or declared == "image":
            if _looks_like_svg(source):
                raise AppError(
                    "svg_not_allowed",
                    "SVG is not accepted as an image (it can carry scripts); "
                    "send it with kind=file to share it as a download",
                    status=415,
                )
            raise AppError(
                "not_an_image",
                "this file is not a JPEG, PNG, GIF or WebP image, whatever its name or declared "
                "type says",
                status=415,
            )
    if kind in (None, "voice"):
        voice = _probe_voice(source)
        if voice is not None:
            content_type, duration_ms = voice
            if duration_ms <= 0:
                raise AppError("invalid_audio", "this voice note has no duration", status=422)
            if duration_ms > VOICE_MAX_MS:
                raise AppError(
                    "voice_too_long",
                    f"a voice note lasts at most {VOICE_MAX_MS // 60000} minutes",
                    status=422,
                )
            return Processed(
                kind="voice",
                content_type=content_type,
                size=size,
                output=source,
                duration_ms=duration_ms,
            )
        if kind == "voice" or declared == "audio":
            raise AppError(
                "not_audio",
                "a voice note must be Opus in Ogg or AAC in M4A, whatever its declared type says",
                status=415,
            )
    return Processed(kind="file", content_type=_sniff_file_type(source), size=size, output=source)


_SAFE_HEADER = re.compile(r"[^A-Za-z0-9._ -]")


def ascii_name(name: str) -> str:
    """A plain-ASCII stand-in for Content-Disposition's ``filename=`` (``filename*`` has the
    real one)."""
    return _SAFE_HEADER.sub("_", name)[:NAME_MAX] or "file"
