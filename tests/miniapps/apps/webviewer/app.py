"""The web-view test app (tests/web/test_webviews_browser.py): its page is served by the test at
``https://webview.test/trip``; its server side only hears how a payment asked from the page
ended, as the host's signed event, and says so in the chat."""

from sdk import App, InvalidSignature

app = App("webviewer")


@app.command("trip")
async def trip(ctx):
    await ctx.send_text("webviewer: open me from the Apps menu")


@app.event("payment.succeeded")
async def paid(ctx):
    try:
        payload = ctx.verify_payment_event()
    except InvalidSignature:
        await ctx.send_text("webviewer: forged event refused")
        return
    await ctx.send_text(f"webviewer: paid {payload['order_ref']} {payload['amount']}")
