import json

from sdk import App, HostError

app = App("fetcher")


async def outcome(call):
    try:
        response = await call
        return {"status": response["status"], "body": response["body"]}
    except HostError as exc:
        return exc.code


@app.command("fetch")
async def fetch(ctx):
    port = ctx.args[0]
    out = {
        "allowed": await outcome(ctx.fetch(f"http://127.0.0.1:{port}/hello?x=1")),
        "post": await outcome(
            ctx.fetch(f"http://127.0.0.1:{port}/echo", method="POST", body="ping")
        ),
        "other_host": await outcome(ctx.fetch(f"http://localhost:{port}/hello")),
        "not_http": await outcome(ctx.fetch("file:///etc/passwd")),
    }
    await ctx.send_text("fetcher: " + json.dumps(out, sort_keys=True))
