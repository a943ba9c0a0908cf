"""The credentials test app: ``/earn <name>`` issues the invoker an Open Badges credential and
says ``badge: {credential_id, url, jwt}``; ``/revoke <id> <reason>`` revokes one
(``revoked: …`` or ``refused: <code>``)."""

import json

from sdk import App, HostError, Reply

app = App("badger")


@app.command("earn")
async def earn(ctx):
    name = " ".join(ctx.args) or "Badge"
    badge = await ctx.issue_credential(
        ctx.user_id,
        {"id": "finisher", "name": name, "description": f"Earned {name} in the badger app"},
        evidence=[{"name": "Command", "narrative": f"/earn {name}"}],
    )
    return Reply(text="badge: " + json.dumps(badge))


@app.command("revoke")
async def revoke(ctx):
    try:
        answer = await ctx.revoke_credential(ctx.args[0], " ".join(ctx.args[1:]) or "revoked")
    except HostError as exc:
        return Reply(text=f"refused: {exc.code}")
    return Reply(text=f"revoked: {json.dumps(answer)}")
