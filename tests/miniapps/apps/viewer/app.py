"""A test app with a hosted web view (web/index.html) that calls it through ``@app.view``,
and commands that update a card in another chat (``update_card(conversation_id=…)``)."""

from sdk import App, HostError, ViewError

app = App("viewer")


@app.view("items")
async def items(ctx):
    # The chat's list (in the app's storage, keyed by the chat the view was opened from).
    listed = await ctx.storage_get("lists", ctx.conversation_id) or []
    added = ctx.params.get("add")
    if added is not None:
        if not isinstance(added, str) or not added:
            raise ViewError("bad_item", "an item is a non-empty string")
        listed.append({"name": added, "by": ctx.user_id})
        await ctx.storage_put("lists", ctx.conversation_id, listed)
    return {"items": listed, "user_id": ctx.user_id, "conversation_id": ctx.conversation_id}


@app.view("fail")
async def fail(ctx):
    raise ViewError("out_of_stock", f"only {ctx.params.get('left', 0)} left")


@app.view("announce")
async def announce(ctx):
    # A capability call from a view: the card lands in the chat the view was opened from.
    message_id = await ctx.send_card({"title": ctx.params.get("title", "From the page")})
    return {"message_id": message_id}


@app.view("crash")
async def crash(ctx):
    raise RuntimeError("the view broke")


@app.command("order")
async def order(ctx):
    title = " ".join(ctx.args) or "order"
    message_id = await ctx.send_card({"title": title, "text": "paid"})
    await ctx.send_text(f"viewer: order {message_id}")


@app.command("ship")
async def ship(ctx):
    conversation_id, message_id = ctx.args[0], ctx.args[1]
    try:
        await ctx.update_card(
            message_id, {"title": "shipped", "text": "on its way"}, conversation_id=conversation_id
        )
        outcome = "ok"
    except HostError as exc:
        outcome = exc.code
    await ctx.send_text(f"viewer: ship {outcome}")
