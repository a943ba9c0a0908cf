"""The timers test app: reminders posted into the chat, a daily chain that re-arms itself, a
timer whose first firing fails, and ``record``, which posts a line per firing (the two-node
exactly-once test counts them)."""

import time

from sdk import App, HostError, Reply

app = App("timekeeper")


@app.command("remind")
async def remind(ctx):
    key, seconds, *words = ctx.args
    try:
        timer = await ctx.schedule(
            "remind", delay=float(seconds), key=key, payload={"text": " ".join(words)}
        )
    except HostError as exc:
        return Reply(text=f"timekeeper: refused {exc.code}")
    return Reply(text=f"timekeeper: set {timer['key']} due {timer['due_at']}")


@app.command("unremind")
async def unremind(ctx):
    cancelled = await ctx.cancel_schedule(ctx.args[0])
    return Reply(text=f"timekeeper: cancelled {cancelled}")


@app.command("chain")
async def chain(ctx):
    await ctx.schedule("chain", delay=86400, key="chain", payload={"left": int(ctx.args[0])})
    return Reply(text="timekeeper: chain set")


@app.command("flaky")
async def flaky(ctx):
    await ctx.schedule("flaky", delay=float(ctx.args[0]), key="flaky")
    return Reply(text="timekeeper: flaky set")


@app.timer("remind")
async def on_remind(ctx):
    late = int(time.time() * 1000) - ctx.due_at
    await ctx.send_text(f"reminder: {ctx.payload['text']} (early: {late < 0})")


@app.timer("chain")
async def on_chain(ctx):
    left = ctx.payload["left"] - 1
    await ctx.send_text(f"chain: {left} left")
    if left > 0:
        await ctx.schedule("chain", delay=86400, key="chain", payload={"left": left})


@app.timer("flaky")
async def on_flaky(ctx):
    if ctx.attempt == 1:
        raise RuntimeError("the first firing fails")
    await ctx.send_text(f"flaky: fired on attempt {ctx.attempt}")


@app.timer("record")
async def on_record(ctx):
    # One message per firing (a duplicate firing posts a second one for its key). Not app
    # storage: its quota check reads every stored item, too slow for a thousand at once.
    at = int(time.time() * 1000)
    await ctx.send_text(f"fired {ctx.timer_key} {ctx.due_at} {at} {ctx.attempt}")
