from sdk import App, Card, HostError

app = App("nosy")


@app.command("nosy")
async def nosy(ctx):
    codes = []
    try:
        await ctx.get_profile()
        codes.append("ok")
    except HostError as exc:
        codes.append(exc.code)
    try:
        await ctx.send_card(Card(title="sneaky"))
        codes.append("ok")
    except HostError as exc:
        codes.append(exc.code)
    await ctx.send_text("nosy: " + " ".join(codes))
