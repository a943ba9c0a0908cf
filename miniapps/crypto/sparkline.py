"""Sparklines: a small PNG of the last 24 hours per coin, drawn with Pillow, for price cards.

``render(series)`` draws a small multiple — one row of ``WIDTH`` by ``ROW_HEIGHT`` per coin: the
coin's symbol, the line (green when the 24 h change is up, red when down), a faint area under
it and a dot on the last point. ``image_id(ctx, series)`` uploads it (``ctx.upload_media``) and
returns the media id for the card's ``image``.

An upload is made only when the picture changed: ``sparklines/<coins>`` keeps the digest of the
data last drawn for those coins and its media id, so a hundred people asking for BTC within the
same five minutes share one image (and the app stays far below the host's 60 uploads a
minute). A failed upload (rate limited, …) gives a card without a chart, never an error.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass
from decimal import Decimal

from PIL import Image, ImageDraw, ImageFont

from sdk import HostError

log = logging.getLogger("app.crypto.sparkline")

WIDTH, ROW_HEIGHT = 240, 60
SCALE = 3  # drawn larger, then shrunk: smooth lines without an anti-aliasing library
MAX_POINTS = 300
UP, DOWN = (22, 163, 74), (220, 38, 38)
BACKGROUND = (255, 255, 255)
LABEL = (100, 116, 139)
SPARKLINES = "sparklines"


@dataclass(frozen=True)
class Series:
    label: str  # "BTC"
    points: list[Decimal]  # oldest first, at least two
    up: bool  # the 24 h change is up (or flat): green, else red


def _thin(points: list[Decimal], most: int = MAX_POINTS) -> list[Decimal]:
    """At most ``most`` points, evenly picked, the last one kept."""
    if len(points) <= most:
        return points
    step = (len(points) - 1) / (most - 1)
    return [points[round(i * step)] for i in range(most)]


def _row(series: Series) -> Image.Image:
    width, height = WIDTH * SCALE, ROW_HEIGHT * SCALE
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image, "RGBA")
    points = _thin(series.points)
    low, high = min(points), max(points)
    span = high - low or Decimal(1)
    left, right = 34 * SCALE, width - 6 * SCALE
    top, bottom = 6 * SCALE, height - 6 * SCALE
    # Pixels only: the prices stay Decimal, a float is fine for where a line is drawn.
    xy = [
        (
            left + (right - left) * i / (len(points) - 1),
            bottom - float((p - low) / span) * (bottom - top),
        )
        for i, p in enumerate(points)
    ]
    colour = UP if series.up else DOWN
    draw.polygon([(left, bottom), *xy, (right, bottom)], fill=(*colour, 28))
    draw.line(xy, fill=colour, width=2 * SCALE, joint="curve")
    x, y = xy[-1]
    radius = 3.5 * SCALE
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    font = ImageFont.load_default(size=11 * SCALE)
    draw.text((4 * SCALE, height // 2), series.label[:5], fill=LABEL, font=font, anchor="lm")
    return image.resize((WIDTH, ROW_HEIGHT), Image.Resampling.LANCZOS)


def render(series: list[Series]) -> bytes:
    """The PNG of ``series``, one row each (at least one series, each of two points or more)."""
    if not series or any(len(s.points) < 2 for s in series):
        raise ValueError("a sparkline needs at least one series of two points")
    sheet = Image.new("RGB", (WIDTH, ROW_HEIGHT * len(series)), BACKGROUND)
    for index, each in enumerate(series):
        sheet.paste(_row(each), (0, ROW_HEIGHT * index))
    out = io.BytesIO()
    sheet.save(out, "PNG", optimize=True)
    return out.getvalue()


def digest(series: list[Series]) -> str:
    data = [[s.label, s.up, [str(p) for p in s.points]] for s in series]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()


async def image_id(ctx, series: list[Series]) -> str | None:
    """The media id of ``series``' sparkline: the one uploaded before for the same data, or a
    new upload. None when it cannot be uploaded (the card then goes without)."""
    key = "-".join(s.label.lower() for s in series)
    wanted = digest(series)
    known = await ctx.storage_get(SPARKLINES, key)
    if isinstance(known, dict) and known.get("digest") == wanted and known.get("media_id"):
        return known["media_id"]
    try:
        media_id = await ctx.upload_media(render(series), "image/png", f"{key}.png", kind="image")
    except HostError as exc:
        log.warning("sparkline %s not uploaded: %s", key, exc.code)
        return None
    await ctx.storage_put(SPARKLINES, key, {"digest": wanted, "media_id": media_id})
    return media_id
