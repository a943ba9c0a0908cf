"""The locale test app: each invocation says the ``ctx.locale`` (and ``ctx.time_zone``) it was
given — a command's (the invoker's), a timer's (who scheduled it) and a web view's (who opened
it)."""

from sdk import App, Reply

app = App("localizer")


@app.command("where")
async def where(ctx):
    return Reply(text=f"locale: {ctx.locale}")


@app.command("zone")
async def zone(ctx):
    return Reply(text=f"time zone: {ctx.time_zone}")


@app.command("later")
async def later(ctx):
    await ctx.schedule("later", delay=float(ctx.args[0]), key=f"later-{ctx.user_id}")
    return Reply(text="localizer: set")


@app.timer("later")
async def on_later(ctx):
    await ctx.send_text(f"timer locale: {ctx.locale}")


@app.command("zone_later")
async def zone_later(ctx):
    await ctx.schedule("zone_later", delay=float(ctx.args[0]), key=f"zone-{ctx.user_id}")
    return Reply(text="localizer: set")


@app.timer("zone_later")
async def on_zone_later(ctx):
    await ctx.send_text(f"timer time zone: {ctx.time_zone}")


@app.view("locale")
async def view_locale(ctx):
    return {"locale": ctx.locale}


@app.view("time_zone")
async def view_time_zone(ctx):
    return {"time_zone": ctx.time_zone}
