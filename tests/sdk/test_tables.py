"""``sdk.tables.include``: one app wired from modules' handler tables, payment events routed by
their ``order_ref`` prefix after the signature check."""

from __future__ import annotations

import types

from sdk import App, Reply
from sdk.signing import sign_event
from sdk.simulator import Simulator
from sdk.tables import include

MANIFEST = {
    "id": "tabled",
    "name": "Tabled",
    "version": "1.0.0",
    "description": "an app of modules",
    "permissions": ["messages.reply_ephemeral", "payments.request"],
    "commands": [{"name": "t", "description": "t"}],
}


def build() -> tuple[App, list]:
    seen: list = []

    async def hello(ctx, args):
        return Reply(ephemeral=f"hello {' '.join(args)}")

    async def paid(ctx, name, payment):
        seen.append((name, payment["order_ref"]))

    module = types.ModuleType("orders")
    module.SUBCOMMANDS = {"hello": hello}
    module.PAYMENTS = {"or": paid}
    app = App("tabled")
    subcommands = include(app, [module])

    @app.command("t")
    async def t(ctx):
        return await subcommands[ctx.args[0]](ctx, ctx.args[1:])

    return app, seen


async def test_subcommands_and_payments_by_prefix():
    app, seen = build()
    sim = Simulator(app, manifest=MANIFEST)
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    await sim.command(ann, chat, "/t hello there")
    assert sim.ephemeral(ann)[-1]["text"] == "hello there"
    payload = {
        "payment_id": "pay-1",
        "order_ref": "or-1",
        "amount": 100,
        "currency": "USD",
        "user_id": ann.id,
        "status": "succeeded",
        "at": 0,
    }
    payload["signature"] = sign_event(sim.app_secret, payload)
    await sim.deliver_event("payment.succeeded", payload, user=ann, conversation=chat)
    assert seen == [("payment.succeeded", "or-1")]
    # another prefix, and a forged signature: dropped, nothing handled
    other = {**payload, "order_ref": "zz-1"}
    other["signature"] = sign_event(
        sim.app_secret, {k: v for k, v in other.items() if k != "signature"}
    )
    await sim.deliver_event("payment.succeeded", other, user=ann, conversation=chat)
    forged = {
        **payload,
        "signature": sign_event("guessed", {k: v for k, v in payload.items() if k != "signature"}),
    }
    await sim.deliver_event("payment.succeeded", forged, user=ann, conversation=chat)
    assert seen == [("payment.succeeded", "or-1")]
