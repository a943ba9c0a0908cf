"""The service-storage test app: ``/stock init <n>`` stores a stock of n mugs, ``/stock buy``
takes one with a bounded ``storage_incr`` (never below zero, however many buy at once),
``/stock report`` reports versioned updates, unique fields and sorted pages as JSON."""

import json

from sdk import App, HostError

app = App("stockkeeper")


async def outcome(call):
    try:
        await call
        return "ok"
    except HostError as exc:
        return exc.code


@app.command("stock")
async def stock(ctx):
    mode = ctx.args[0] if ctx.args else "report"
    if mode == "init":
        await ctx.storage_put("stock", "mug", {"left": int(ctx.args[1]), "name": "Blue mug"})
        await ctx.send_text(f"stock: init {ctx.args[1]}")
    elif mode == "buy":
        try:
            left = await ctx.storage_incr("stock", "mug", "left", -1)
            await ctx.send_text(f"stock: bought, {left} left")
        except HostError as exc:
            await ctx.send_text(f"stock: not bought {exc.code}")
    elif mode == "report":
        for sku, price in (("A", 30), ("B", 10), ("C", 20), ("D", 10)):
            await ctx.storage_put("products", sku.lower(), {"sku": sku, "price": price})
        _, version = await ctx.storage_get_versioned("products", "a")
        new_version = await ctx.storage_update(
            "products", "a", {"price": 40}, expected_version=version
        )
        pages, after = [], None
        while True:
            page = await ctx.storage_page("products", sort="price", after=after, limit=3)
            pages.append([item["key"] for item in page["items"]])
            after = page["next"]
            if after is None:
                break
        report = {
            "versions": [version, new_version],
            "stale": await outcome(
                ctx.storage_update("products", "a", {"price": 1}, expected_version=version)
            ),
            "missing": await outcome(ctx.storage_update("products", "zz", {"price": 1})),
            "duplicate": await outcome(ctx.storage_update("products", "b", {"sku": "A"})),
            "undeclared": await outcome(ctx.storage_page("products", sort="sku_name")),
            "limit": await outcome(ctx.storage_incr("products", "b", "price", -11)),
            "pages": pages,
            "desc": [
                item["key"]
                for item in (await ctx.storage_page("products", sort="price", order="desc"))[
                    "items"
                ]
            ],
        }
        await ctx.send_text("stock: " + json.dumps(report, sort_keys=True))
