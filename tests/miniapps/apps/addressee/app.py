"""A test app in privacy mode: it keeps what reaches it (storage ``heard``, by message id),
answers in the chat, and reads the chat's history when it was granted (``/recall``)."""

import json

from sdk import App, HostError

app = App("addressee")


@app.event("message.received")
async def received(ctx):
    payload = ctx.payload
    await ctx.storage_put(
        "heard",
        payload["message"]["id"],
        {**payload, "user_id": ctx.user_id, "conversation_id": ctx.conversation_id},
    )
    reply = payload["message"]["reply_to"]
    about = f" (re: {reply['text']})" if reply else ""
    await ctx.send_text(f"addressee heard {payload['reason']}: {payload['message']['text']}{about}")


@app.command("recall")
async def recall(ctx):
    limit = int(ctx.args[0]) if ctx.args else 50
    try:
        found = await ctx.history(limit=limit, since_read="missed" in ctx.args)
    except HostError as exc:
        await ctx.reply_ephemeral(json.dumps({"error": exc.code, "message": exc.message}))
        return None
    await ctx.reply_ephemeral(json.dumps(found))
    return None
