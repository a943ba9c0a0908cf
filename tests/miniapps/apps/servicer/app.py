from sdk import App, HostError

app = App("servicer")

CARD = {
    "title": "Your order shipped",
    "text": "Parcel 42 is on its way",
    "buttons": [{"action_id": "svc.ok", "label": "Got it", "value": "ok"}],
}


@app.command("svc")
async def svc(ctx):
    # /svc text|card : a service message to the invoker, in their service chat
    mode = ctx.args[0] if ctx.args else "text"
    params = {"card": CARD} if mode == "card" else {"text": f"service note {mode}"}
    try:
        await ctx.call("notifications.send", user_id=ctx.user_id, **params)
        result = "ok"
    except HostError as exc:
        result = exc.code
    await ctx.send_text(f"servicer: {mode} {result}")


@app.action("svc.ok")
async def pressed(ctx):
    # Pressed in the service chat: the card there becomes "thanks"
    await ctx.update_card(ctx.message_id, {"title": "Thanks", "text": f"pressed {ctx.value}"})
