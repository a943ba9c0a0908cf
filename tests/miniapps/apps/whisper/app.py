"""A test app that answers privately (``messages.reply_ephemeral``) with a card whose buttons
work (tests/miniapps/test_ephemeral_cards_e2e.py, tests/sdk/test_sim_ephemeral_cards.py,
tests/web/test_ephemeral_card_browser.py): ``/whisper`` shows the invoker "Just for you" with
two Pay buttons, "Settle" and a web-view button; a Pay press posts a text into the chat naming
the value and the card it came from; "Settle" replaces the private card (``update_card`` of its
ephemeral id). ``/whisper plain``: a card without buttons; ``/whisper text``: a text."""

from sdk import App

app = App("whisper")

CARD = {
    "title": "Just for you",
    "text": "You owe 12.50",
    "buttons": [
        {"action_id": "pay", "label": "Pay 12.50", "value": "1250", "style": "primary"},
        {"action_id": "pay", "label": "Pay 5.00", "value": "500"},
        {"action_id": "settle", "label": "Settle"},
        {"label": "Details", "opens": "webview", "path": "#who=me"},
    ],
}
SETTLED = {
    "title": "All settled",
    "text": "Nothing to pay",
    "buttons": [{"action_id": "pay", "label": "Tip 1.00", "value": "100"}],
}


@app.command("whisper")
async def whisper(ctx):
    if ctx.args[:1] == ["plain"]:
        await ctx.reply_ephemeral({"title": "Just for you", "text": "No buttons here"})
    elif ctx.args[:1] == ["text"]:
        await ctx.reply_ephemeral("whisper: only you can read this")
    else:
        await ctx.reply_ephemeral(CARD)


@app.action("pay")
async def pay(ctx):
    await ctx.send_text(f"whisper: paid {ctx.value} on {ctx.message_id}")


@app.action("settle")
async def settle(ctx):
    await ctx.update_card(ctx.message_id, SETTLED)
