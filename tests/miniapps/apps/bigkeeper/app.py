"""The storage-quota test app: its manifest sets ``storage.quota_bytes`` to 128 KiB (131072).
``/fill`` stores 20 000-character values under keys b0, b1, … until the quota refuses one, then
checks that an overwrite of the same size and a put after a delete still fit, and reports it
all as JSON — the same report on the platform and in the simulator."""

import json

from sdk import App, HostError

app = App("bigkeeper")
VALUE_CHARS = 20000
MAX_PUTS = 100  # a bound of its own: 1 MiB would hold 52 of these values


async def outcome(call):
    try:
        await call
        return "ok"
    except HostError as exc:
        return exc.code


@app.command("fill")
async def fill(ctx):
    stored, refused = 0, None
    while refused is None and stored < MAX_PUTS:
        try:
            await ctx.storage_put("blobs", f"b{stored}", "y" * VALUE_CHARS)
            stored += 1
        except HostError as exc:
            refused = {"code": exc.code, "message": exc.message}
    report = {
        "stored": stored,
        "refused": refused,
        "refused_key": await ctx.storage_get("blobs", f"b{stored}"),
        "overwrite": await outcome(ctx.storage_put("blobs", "b0", "z" * VALUE_CHARS)),
    }
    await ctx.storage_delete("blobs", "b1")
    report["after_delete"] = await outcome(
        ctx.storage_put("blobs", f"b{stored}", "w" * VALUE_CHARS)
    )
    report["then"] = await outcome(ctx.storage_put("blobs", "one-more", "v" * VALUE_CHARS))
    await ctx.send_text("big: " + json.dumps(report, sort_keys=True))
