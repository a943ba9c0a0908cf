from sdk import App, HostError

app = App("notifier")


@app.command("ping")
async def ping(ctx):
    # /ping <per-app id> : notify that user, and tell listeners
    target = ctx.args[0] if ctx.args else ctx.user_id
    try:
        await ctx.notify(target, "ping from notifier")
        result = "ok"
    except HostError as exc:
        result = exc.code
    codes = [result]
    try:
        await ctx.emit("notifier.undeclared", {})
        codes.append("ok")
    except HostError as exc:
        codes.append(exc.code)
    await ctx.emit("notifier.pinged", {"by": ctx.user_id})
    await ctx.send_text(f"notifier: {ctx.user_id} " + " ".join(codes))
