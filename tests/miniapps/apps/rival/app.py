"""Another app with ``credentials.revoke``: ``/steal <id>`` tries to revoke a credential it did
not issue (``refused: not_found``)."""

from sdk import App, HostError, Reply

app = App("rival")


@app.command("steal")
async def revoke(ctx):
    try:
        await ctx.revoke_credential(ctx.args[0], "not mine to revoke")
    except HostError as exc:
        return Reply(text=f"rival refused: {exc.code}")
    return Reply(text="rival revoked it")
