import contextlib

from sdk import App, HostError

app = App("clinic")


@app.command("visit")
async def visit(ctx):
    # /visit <media> [who]: who = all (default), me (ring only me), ghost (an unknown id),
    # or a conversation id (start it there)
    media = ctx.args[0] if ctx.args else "video"
    who = ctx.args[1] if len(ctx.args) > 1 else "all"
    options = {"title": "Dr. Lee, 10:30"}
    if who == "me":
        options["participant_ids"] = [ctx.user_id]
    elif who == "ghost":
        options["participant_ids"] = ["u-nobody"]
    elif who != "all":
        options["conversation_id"] = who
    try:
        result = await ctx.start_call(media, **options)
    except HostError as exc:
        result = exc.code
    await ctx.send_text(f"clinic: visit {result}")


@app.command("subscribe")
async def subscribe(ctx):
    await ctx.send_text(f"clinic: subscribe {await ctx.request_subscription()}")


@app.event("call.started")
async def started(ctx):
    p = ctx.payload
    await ctx.send_text(f"clinic: started {p['call_id']} by {p['user_id']}")


@app.event("call.ended")
async def ended(ctx):
    p = ctx.payload
    await ctx.send_text(f"clinic: ended {p['call_id']} {p['outcome']} {p['duration_seconds']}")


@app.event("subscription.granted")
async def granted(ctx):
    await ctx.send_service_message(ctx.payload["user_id"], text="Welcome to Clinic reminders")


@app.event("subscription.declined")
async def declined(ctx):
    # Refused: the user said no (the host lets the app try, and refuses).
    with contextlib.suppress(HostError):
        await ctx.send_service_message(ctx.payload["user_id"], text="sneaky")
