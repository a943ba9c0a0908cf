"""The locale test app: each invocation says the ``ctx.locale`` it was given — a command's (the
invoker's), a timer's (who scheduled it) and a web view's (who opened it)."""

from sdk import App, Reply

app = App("localizer")


@app.command("where")
async def where(ctx):
    return Reply(text=f"locale: {ctx.locale}")


@app.command("later")
async def later(ctx):
    await ctx.schedule("later", delay=float(ctx.args[0]), key=f"later-{ctx.user_id}")
    return Reply(text="localizer: set")


@app.timer("later")
async def on_later(ctx):
    await ctx.send_text(f"timer locale: {ctx.locale}")


@app.view("locale")
async def view_locale(ctx):
    return {"locale": ctx.locale}
