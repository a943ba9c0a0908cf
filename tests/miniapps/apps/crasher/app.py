import os

from sdk import App

app = App("crasher")


@app.command("crash")
async def crash(ctx):
    os._exit(1)


@app.command("hello")
async def hello(ctx):
    await ctx.send_text("crasher: hello")
