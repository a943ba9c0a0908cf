from sdk import App

app = App("satisfied")


@app.command("satisfied")
async def handler(ctx):
    return None
