"""Uploads and sample files for the media tests: real images made with Pillow, real Ogg Opus
and M4A voice notes assembled byte for byte, bombs."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import aiohttp
from PIL import Image

from tests.helpers import ApiClient


async def upload(
    api: ApiClient,
    data: bytes,
    *,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
    kind: str | None = None,
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename, content_type=content_type)
    if kind is not None:
        form.add_field("kind", kind)
    return await api.post("/api/v1/media", data=form)


async def fetch(api: ApiClient, url: str, headers: dict | None = None):
    """GET a signed media URL without any Authorization header: (status, headers, body)."""
    async with api.session.get(api.base_url + url, headers=headers or {}) as resp:
        return resp.status, resp.headers, await resp.read()


def jpeg(
    width: int = 640, height: int = 480, *, exif: Image.Exif | None = None, color=(200, 30, 30)
) -> bytes:
    image = Image.new("RGB", (width, height), color)
    # Something other than flat colour, so the encoder has work to do.
    for x in range(0, width, 16):
        for y in range(0, height, 16):
            image.putpixel((x, y), (x % 256, y % 256, 128))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=exif.tobytes() if exif else b"")
    return buffer.getvalue()


def png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 128, 255, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def animated_gif(frames: int = 3) -> bytes:
    images = [Image.new("RGB", (40, 30), (i * 60, 255 - i * 60, 0)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return buffer.getvalue()


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif[0x010F] = "SpyCam"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    return exif


def png_bomb(side: int = 50_000) -> bytes:
    """A valid PNG header for side x side pixels with a tiny compressed body (a bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    compressor = zlib.compressobj(9)
    body = compressor.compress((b"\x00" + b"\x00" * side) * 64) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def zip_bomb() -> bytes:
    """A zip whose one member inflates 10 MB of zeros (named .jpg in the tests)."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\x00" * 10_000_000)
    return buffer.getvalue()


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(1)</script></svg>"
)


# --- voice notes --------------------------------------------------------------------------------


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_page(payload: bytes, *, granule: int, serial: int, seq: int, flags: int) -> bytes:
    segments = []
    left = len(payload)
    while left >= 255:
        segments.append(255)
        left -= 255
    segments.append(left)
    header = struct.pack(
        "<4sBBqIIIB", b"OggS", 0, flags, granule, serial, seq, 0, len(segments)
    ) + bytes(segments)
    page = header + payload
    crc = _ogg_crc(page)
    return page[:22] + struct.pack("<I", crc) + page[26:]


def ogg_opus(seconds: float = 2.5) -> bytes:
    """An Ogg Opus stream: OpusHead, OpusTags and one audio page whose granule position gives
    the duration (48 kHz), as a real encoder writes them."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0)
    # One 20 ms Opus packet of silence (TOC byte for CELT FB 20 ms, mono) per page is enough.
    audio = b"\xf8\xff\xfe"
    granule = 312 + int(seconds * 48000)
    return (
        _ogg_page(head, granule=0, serial=7, seq=0, flags=0x02)
        + _ogg_page(tags, granule=0, serial=7, seq=1, flags=0)
        + _ogg_page(audio, granule=granule, serial=7, seq=2, flags=0x04)
    )


# --- M4A -----------------------------------------------------------------------------------


def _atom(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _atom(kind, struct.pack(">I", (version << 24) | flags) + payload)


def m4a(seconds: float = 2.0) -> bytes:
    """A minimal M4A (AAC LC) file: ftyp, moov with one sound track (mdhd gives the duration,
    stsd an mp4a entry with its esds), an mdat."""
    rate = 44100
    mvhd = _full(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, 1000, int(seconds * 1000))
        + b"\x00\x01\x00\x00"
        + b"\x01\x00"
        + b"\x00" * 10
        + b"\x00" * 36
        + b"\x00" * 24
        + struct.pack(">I", 2),
    )
    tkhd = _full(
        b"tkhd",
        0,
        7,
        struct.pack(">IIIII", 0, 0, 1, 0, int(seconds * 1000))
        + b"\x00" * 8
        + b"\x00" * 4
        + b"\x01\x00\x00\x00"
        + b"\x00" * 36
        + b"\x00" * 8,
    )
    mdhd = _full(
        b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, rate, int(seconds * rate)) + b"\x55\xc4\x00\x00"
    )
    hdlr = _full(b"hdlr", 0, 0, b"\x00" * 4 + b"soun" + b"\x00" * 12 + b"SoundHandler\x00")
    # esds: an ES descriptor, its decoder config (0x40: AAC) and AudioSpecificConfig (AAC LC)
    dsi = b"\x05\x02\x12\x08"
    dcd = (
        b"\x04"
        + bytes([13 + len(dsi)])
        + b"\x40\x15"
        + b"\x00\x00\x00"
        + struct.pack(">II", 128000, 128000)
        + dsi
    )
    sl = b"\x06\x01\x02"
    es = b"\x03" + bytes([3 + len(dcd) + len(sl)]) + b"\x00\x01\x00" + dcd + sl
    esds = _full(b"esds", 0, 0, es)
    mp4a = _atom(
        b"mp4a",
        b"\x00" * 6
        + struct.pack(">H", 1)
        + b"\x00" * 8
        + struct.pack(">HHHH", 1, 16, 0, 0)
        + struct.pack(">I", rate << 16)
        + esds,
    )
    stsd = _full(b"stsd", 0, 0, struct.pack(">I", 1) + mp4a)
    stbl = _atom(
        b"stbl",
        stsd
        + _full(b"stts", 0, 0, struct.pack(">I", 0))
        + _full(b"stsc", 0, 0, struct.pack(">I", 0))
        + _full(b"stsz", 0, 0, struct.pack(">II", 0, 0))
        + _full(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    minf = _atom(b"minf", _full(b"smhd", 0, 0, b"\x00" * 4) + stbl)
    mdia = _atom(b"mdia", mdhd + hdlr + minf)
    trak = _atom(b"trak", tkhd + mdia)
    moov = _atom(b"moov", mvhd + trak)
    ftyp = _atom(b"ftyp", b"M4A \x00\x00\x00\x00M4A mp42isom")
    return ftyp + moov + _atom(b"mdat", b"\x00" * 16)
