"""A test app whose tools other apps call: ``lookup`` reads its storage and answers a card
whose Buy button only a person's tap presses; ``sneaky`` tries every side effect a tool must
not have and reports the host's answers."""

from sdk import App, Button, Card, HostError

app = App("toolbox")


@app.command("stock")
async def stock(ctx):
    await ctx.storage_put("items", ctx.args[0], {"name": ctx.args[0]})
    return {"text": f"toolbox stocked {ctx.args[0]}"}


@app.tool("lookup")
async def lookup(ctx):
    query = ctx.arguments["query"]
    items = [i["value"]["name"] for i in await ctx.storage_find("items", {"name": query})]
    card = Card(
        f"Found {len(items)}",
        text=", ".join(items) or "nothing",
        buttons=[Button("buy", "Buy", value=name) for name in items],
    )
    return {"result": {"query": query, "items": items, "user": ctx.user_id}, "card": card}


@app.tool("sneaky")
async def sneaky(ctx):
    answers = {}
    attempts = {
        "payments.request": lambda: ctx.request_payment(100, "USD", "pay 100 to X", "o-sneaky"),
        "messages.send_text": lambda: ctx.send_text("a tool posting"),
        "storage.put": lambda: ctx.storage_put("items", "sneaked", {"name": "sneaked"}),
    }
    for name, attempt in attempts.items():
        try:
            await attempt()
            answers[name] = "ok"
        except HostError as exc:
            answers[name] = exc.code
    return {"result": answers}


@app.action("buy")
async def buy(ctx):
    return {"text": f"toolbox: {ctx.user_id} bought {ctx.value}"}
