"""A test app using the chat's other apps as tools: ``/tools`` shows them, ``/use <app> <tool>
<json>`` calls one; each answers the invoker alone with the JSON it got (or the error code)."""

import json

from sdk import App, HostError

app = App("concierge")


@app.command("tools")
async def tools(ctx):
    return {"ephemeral": json.dumps(await ctx.app_tools())}


@app.command("use")
async def use(ctx):
    app_id, name, arguments = ctx.args[0], ctx.args[1], json.loads(ctx.args[2])
    try:
        answer = await ctx.call_tool(app_id, name, arguments)
    except HostError as exc:
        answer = {"error": exc.code, "message": exc.message}
    return {"ephemeral": json.dumps(answer)}
