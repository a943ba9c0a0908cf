from sdk import App

app = App("needy")


@app.command("needy")
async def handler(ctx):
    return None
