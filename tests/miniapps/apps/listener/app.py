from sdk import App

app = App("listener")


@app.event("notifier.pinged")
async def pinged(ctx):
    await ctx.send_text(f"listener: {ctx.user_id} heard {ctx.payload['by']}")
