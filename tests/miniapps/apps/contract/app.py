"""The contract test's app: its capability calls are made by the test, through the host."""

from sdk import App

app = App()


@app.command("contract")
async def contract(ctx):
    return {}


@app.timer("tick")
async def tick(ctx):
    return None
