import json

from sdk import App, HostError, InvalidSignature

app = App("shopper")


async def code_of(call):
    try:
        return await call
    except HostError as exc:
        return exc.code


@app.command("buy")
async def buy(ctx):
    order_ref, amount = ctx.args[0], int(ctx.args[1])
    result = await code_of(ctx.request_payment(amount, "USD", f"Order {order_ref}", order_ref))
    await ctx.send_text("shopper: requested " + json.dumps(result, sort_keys=True))


@app.command("refund")
async def refund(ctx):
    payment_id, amount = ctx.args[0], int(ctx.args[1])
    refund_ref = ctx.args[2] if len(ctx.args) > 2 else None
    result = await code_of(ctx.refund_payment(payment_id, amount, refund_ref))
    await ctx.send_text("shopper: refund " + json.dumps(result, sort_keys=True))


@app.command("forge")
async def forge(ctx):
    result = await code_of(ctx.emit("payment.succeeded", {"payment_id": "x", "amount": 1}))
    await ctx.send_text(f"shopper: forge {result}")


@app.command("peek")
async def peek(ctx):
    result = await code_of(ctx.call("wallet.balance"))
    await ctx.send_text(f"shopper: peek {result}")


@app.event("payment.succeeded")
async def paid(ctx):
    try:
        payload = ctx.verify_payment_event()
    except InvalidSignature:
        await ctx.send_text("shopper: forged event refused")
        return
    await ctx.send_text(
        f"shopper: paid {payload['order_ref']} {payload['amount']} {payload['payment_id']}"
    )


@app.event("payment.failed")
async def failed(ctx):
    payload = ctx.verify_payment_event()
    await ctx.send_text(f"shopper: failed {payload['order_ref']} {payload['reason']}")
