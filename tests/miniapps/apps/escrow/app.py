"""The service-money test app: it holds, captures, voids, refunds and pays out, and says every
answer and every (verified) payment event in the chat as ``escrow: <what> <json>``."""

import json

from sdk import App, HostError

app = App("escrow")


async def say(ctx, what, call):
    try:
        result = await call
    except HostError as exc:
        result = exc.code
    await ctx.send_text(f"escrow: {what} " + json.dumps(result, sort_keys=True))


@app.command("hold")
async def hold(ctx):
    ref, amount = ctx.args[0], int(ctx.args[1])
    await say(ctx, "hold", ctx.authorize_payment(amount, "USD", f"Hold {ref}", ref))


@app.command("buy")
async def buy(ctx):
    ref, amount = ctx.args[0], int(ctx.args[1])
    await say(ctx, "buy", ctx.request_payment(amount, "USD", f"Order {ref}", ref))


@app.command("capture")
async def capture(ctx):
    amount = int(ctx.args[1]) if len(ctx.args) > 1 else None
    await say(ctx, "capture", ctx.capture_payment(ctx.args[0], amount))


@app.command("void")
async def void(ctx):
    await say(ctx, "void", ctx.void_payment(ctx.args[0]))


@app.command("refund")
async def refund(ctx):
    await say(ctx, "refund", ctx.refund_payment(ctx.args[0], int(ctx.args[1]), ctx.args[2]))


@app.command("payout")
async def payout(ctx):
    user_id = ctx.user_id if ctx.args[0] == "me" else ctx.args[0]
    await say(ctx, "payout", ctx.payout(user_id, int(ctx.args[1]), "USD", ctx.args[2]))


@app.command("split")
async def split(ctx):
    payer, amount, ref = ctx.args[0], int(ctx.args[1]), ctx.args[2]
    note = " ".join(ctx.args[3:]) or None
    await say(ctx, "split", ctx.request_transfer(payer, ctx.user_id, amount, "USD", ref, note))


@app.command("me")
async def me(ctx):
    await ctx.send_text(f"escrow: me {json.dumps(ctx.user_id)}")


async def tell(ctx):
    payload = ctx.verify_payment_event()  # raises on a forged event: nothing is said
    fields = (
        "payment_id",
        "order_ref",
        "amount",
        "captured",
        "fee",
        "reason",
        "status",
        "to_user_id",
        "transfer_ref",
    )
    shown = {k: payload[k] for k in fields if k in payload}
    await ctx.send_text(f"escrow: {ctx.event_name} " + json.dumps(shown, sort_keys=True))


for name in (
    "payment.succeeded",
    "payment.failed",
    "payment.authorized",
    "payment.captured",
    "payment.voided",
    "transfer_request.paid",
    "transfer_request.declined",
    "transfer_request.expired",
):
    app.event(name)(tell)
