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


async def consult(ctx, media, others, *, with_me=True, conversation_id=None):
    """A call in the clinic's own chat with ``others`` (and the invoker, unless not
    ``with_me``); answers ``clinic: consult <call id or error code>`` where it was invoked."""
    participants = ([ctx.user_id] if with_me else []) + others
    options = {"participant_ids": participants, "own_chat": True, "title": "Dr. Lee, 10:30"}
    if conversation_id is not None:
        options["conversation_id"] = conversation_id
    try:
        result = await ctx.start_call(media, **options)
    except HostError as exc:
        result = exc.code
    await ctx.send_text(f"clinic: consult {result}")


@app.command("consult")
async def consult_command(ctx):
    # /consult <media> <per-app id>... : a call with them in the clinic's own chat; "notme"
    # leaves the invoker out, "@<conversation id>" adds a conversation_id (both refused)
    media = ctx.args[0] if ctx.args else "video"
    words = ctx.args[1:]
    others = [w for w in words if w != "notme" and not w.startswith("@")]
    where = next((w[1:] for w in words if w.startswith("@")), None)
    await consult(ctx, media, others, with_me="notme" not in words, conversation_id=where)


@app.command("appointment")
async def appointment(ctx):
    # /appointment <doctor's per-app id> : the appointment card, in the invoker's service chat
    card = {
        "title": "Dr. Lee, 10:30",
        "text": "Your video visit",
        "buttons": [{"action_id": "visit.join", "label": "Start visit", "value": ctx.args[0]}],
    }
    try:
        await ctx.send_service_message(ctx.user_id, card=card)
        result = "ok"
    except HostError as exc:
        result = exc.code
    await ctx.send_text(f"clinic: appointment {result}")


@app.action("visit.join")
async def join_visit(ctx):
    # Pressed on the appointment card (the patient's service chat): call the doctor
    await consult(ctx, "video", [ctx.value])


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
