"""The media test app: uploads a product photo (``ctx.upload_media``) and posts it in a card;
``/photo bad`` reports the codes of refused uploads and cards; ``/photo steal <id>`` tries a
card with a media id that is not its own; the card's "Next" button swaps the photo."""

import json
import struct
import zlib

from sdk import App, Button, Card, HostError

app = App("photographer")
UPLOAD_MAX = 512 * 1024
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def png(width, height, rgb):
    """A small RGB PNG, made with the standard library only."""

    def chunk(kind, body):
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def outcome(call):
    try:
        await call
        return "ok"
    except HostError as exc:
        return exc.code


def card(media_id, title="Blue mug"):
    return Card(
        title,
        text="12.50 USD",
        image=media_id,
        buttons=[Button("photo.next", "Next", value="red")],
    )


@app.command("photo")
async def photo(ctx):
    mode = ctx.args[0] if ctx.args else "post"
    if mode == "post":
        media_id = await ctx.upload_media(png(40, 30, (20, 60, 200)), "image/png", "mug.png")
        message_id = await ctx.send_card(card(media_id))
        await ctx.send_text(f"photographer: posted {media_id} {message_id}")
    elif mode == "bad":
        a_file = await ctx.upload_media(b"a price list", "text/plain", "prices.txt")
        results = {
            "not_an_image": await outcome(ctx.upload_media(b"plain words", "image/png")),
            "svg": await outcome(ctx.upload_media(SVG, "image/svg+xml", "logo.svg")),
            "damaged": await outcome(ctx.upload_media(png(40, 30, (1, 2, 3))[:40], "image/png")),
            "empty": await outcome(ctx.upload_media(b"", "image/png")),
            "too_large": await outcome(ctx.upload_media(b"x" * (UPLOAD_MAX + 1), "text/plain")),
            "bad_base64": await outcome(
                ctx.call("media.upload", data="@@ not base64 @@", content_type="image/png")
            ),
            "unknown_in_card": await outcome(
                ctx.send_card({"title": "x", "image": "0123456789abcdef01234567"})
            ),
            "file_in_card": await outcome(ctx.send_card({"title": "x", "image": a_file})),
        }
        await ctx.send_text("photographer: " + json.dumps(results, sort_keys=True))
    elif mode == "steal":
        result = await outcome(ctx.send_card({"title": "Stolen", "image": ctx.args[1]}))
        await ctx.send_text(f"photographer: steal {result}")


@app.action("photo.next")
async def next_photo(ctx):
    media_id = await ctx.upload_media(png(20, 10, (200, 20, 20)), "image/png", "red.png")
    await ctx.update_card(ctx.message_id, card(media_id, title="Red mug"))
