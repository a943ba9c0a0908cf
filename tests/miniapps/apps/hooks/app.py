"""The webhooks test app: ``/hook`` answers the URL of its ``duffel`` webhook for this chat and
person; each delivery's body is posted into that chat, with the provider's signature header
and whether the host's signature verified — except a body of ``fail``, whose handler raises
(the sender gets 502 and retries)."""

from sdk import App, Reply
from sdk.signing import verify_event

app = App("hooks")


@app.command("hook")
async def hook(ctx):
    return Reply(text=f"hooks: {await ctx.webhook_url('duffel')}")


@app.event("webhook.received")
async def received(ctx):
    payload = ctx.payload
    if payload["body"] == "fail":
        raise RuntimeError("this delivery fails, as the test asked")
    # The app's secret: the one the host handed the runtime in ``initialize``.
    secret = getattr(ctx._host, "app_secret", None) or ""
    signed = bool(secret) and verify_event(secret, payload)
    provider = payload["headers"].get("x-duffel-signature", "-")
    await ctx.send_text(
        f"hooked {payload['name']}: {payload['body']} (by {ctx.user_id}, provider {provider}, "
        f"signed {signed})"
    )
