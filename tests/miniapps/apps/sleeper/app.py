import asyncio

from sdk import App

app = App("sleeper")


@app.command("nap")
async def nap(ctx):
    await asyncio.sleep(10)


@app.command("awake")
async def awake(ctx):
    await ctx.send_text("sleeper: awake")
