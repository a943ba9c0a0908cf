import json

from sdk import App, HostError

app = App("keeper")


async def code_of(call):
    try:
        await call
        return "ok"
    except HostError as exc:
        return exc.code


@app.command("me")
async def me(ctx):
    await ctx.send_text(f"keeper: {ctx.user_id}")


@app.command("keep")
async def keep(ctx):
    out = {}
    for name, age in (("ann", 31), ("bob", 17), ("cy", 45)):
        await ctx.storage_put("people", name, {"name": name, "age": age})
    out["get"] = await ctx.storage_get("people", "ann")
    out["missing"] = await ctx.storage_get("people", "zed")
    found = await ctx.storage_find("people", {"age": {"$gte": 18}})
    out["adults"] = [item["key"] for item in found]
    found = await ctx.storage_find("people", {"$or": [{"name": "bob"}, {"age": {"$gt": 40}}]})
    out["or"] = [item["key"] for item in found]
    await ctx.storage_delete("people", "cy")
    out["after_delete"] = [item["key"] for item in await ctx.storage_find("people")]
    out["where"] = await code_of(ctx.storage_find("people", {"$where": "sleep(1000)"}))
    out["expr"] = await code_of(ctx.storage_find("people", {"$expr": {"$gt": ["$age", 1]}}))
    out["bad_op"] = await code_of(ctx.storage_find("people", {"age": {"$regex": "."}}))
    out["bad_collection"] = await code_of(ctx.storage_put("no/slash", "k", 1))
    out["too_big"] = await code_of(ctx.storage_put("blobs", "big", "x" * (64 * 1024 + 1)))
    # fill the 1 MiB quota with 60 KiB values until it refuses
    quota, index = "ok", 0
    while quota == "ok" and index < 40:
        quota = await code_of(ctx.storage_put("blobs", f"b{index}", "y" * 60000))
        index += 1
    out["quota"] = quota
    out["stored_blobs"] = index - 1
    # overwriting an existing key with a value of the same size still fits
    out["overwrite"] = await code_of(ctx.storage_put("blobs", "b0", "z" * 60000))
    await ctx.send_text("keeper: " + json.dumps(out, sort_keys=True))
