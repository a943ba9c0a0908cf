"""A test app: replies with what ``ctx.config`` and ``ctx.roles`` hold, and whether its API
key leaked into its process environment."""

import os

from sdk import App, Reply

app = App("fxdesk")


@app.command("fx")
async def fx(ctx):
    key = ctx.config.get("api_key")
    leaked = bool(key) and any(key in value for value in os.environ.values())
    return Reply(
        text=f"key={key} url={ctx.config.get('feed_url')} roles={','.join(ctx.roles) or '-'} "
        f"merchant={ctx.has_role('merchant')} env_leak={leaked}"
    )
