"""Service messages from apps: ``ctx.request_subscription()`` asks the invoking user with the
host's consent sheet, the app learns the answer as ``subscription.granted`` /
``subscription.declined``, and ``ctx.send_service_message`` reaches those who opted in.
Through the simulator, then end-to-end through the platform."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdk import App
from sdk.errors import ScopeDenied
from sdk.simulator import Simulator
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all
from tests.miniapps.test_capabilities import command, events_of, setup, texts_from

CLINIC_DIR = Path(__file__).resolve().parent / "apps" / "clinic"


# --- simulator ---------------------------------------------------------------------------


@pytest.fixture
def sim():
    return Simulator(CLINIC_DIR)


async def test_sim_subscription_asked_then_granted_and_the_app_greets(sim):
    ann = sim.user("ann", notifications=False)
    chat = sim.conversation([ann])
    await sim.command(ann, chat, "/subscribe")
    assert sim.messages(chat)[-1]["text"] == "clinic: subscribe asked"
    assert sim.subscription_asks == [ann]
    await sim.answer_subscription(ann, True)
    assert sim.notifications(ann) == ["Welcome to Clinic reminders"]
    await sim.command(ann, chat, "/subscribe")
    assert sim.messages(chat)[-1]["text"] == "clinic: subscribe granted"
    assert sim.subscription_asks == [ann]  # not asked again


async def test_sim_subscription_declined_is_not_asked_again(sim):
    bea = sim.user("bea", notifications=False)
    chat = sim.conversation([bea])
    await sim.command(bea, chat, "/subscribe")
    await sim.answer_subscription(bea, False)
    assert sim.notifications(bea) == []  # the declined handler's send was refused
    assert sim.calls[-1] == {
        "method": "notifications.send",
        "ok": False,
        "error": "scope_denied",
    }
    await sim.command(bea, chat, "/subscribe")
    assert sim.messages(chat)[-1]["text"] == "clinic: subscribe declined"
    assert sim.subscription_asks == [bea]


async def test_sim_request_subscription_needs_a_user_and_the_permission(sim):
    assert await sim.call_capability(None, None, "notifications.request_subscription", {}) == (
        "error",
        "invalid_params",
    )
    app = App("plain")
    manifest = {"id": "plain", "name": "Plain", "version": "1.0.0"}
    plain = Simulator(app, manifest=manifest)
    got = await plain.call_capability(
        plain.user("ann"), None, "notifications.request_subscription", {}
    )
    assert got == ("error", "permission_denied")


async def test_sim_send_service_message_text_or_card():
    app = App("notes")
    sent = []

    @app.command("note")
    async def note(ctx):
        await ctx.send_service_message(ctx.user_id, card={"title": "Visit at 10:30"})
        await ctx.send_service_message(ctx.user_id, text="See you soon")
        try:
            await ctx.send_service_message(ctx.user_id)
        except Exception as exc:  # neither text nor card
            sent.append(getattr(exc, "code", None))

    manifest = {
        "id": "notes",
        "name": "Notes",
        "version": "1.0.0",
        "permissions": ["notifications.send"],
        "commands": [{"name": "note", "description": "a note"}],
    }
    sim = Simulator(app, manifest=manifest)
    ann, bea = sim.user("ann"), sim.user("bea", notifications=False)
    chat = sim.conversation([ann, bea])
    await sim.command(ann, chat, "/note")
    assert sim.notifications(ann) == [{"title": "Visit at 10:30"}, "See you soon"]
    assert sent == ["invalid_params"]
    with pytest.raises(Exception) as refused:
        await sim.command(bea, chat, "/note")
    assert "scope_denied" in str(refused.value) or isinstance(refused.value, ScopeDenied)


# --- end to end ----------------------------------------------------------------------------


def service_texts(person) -> list[str]:
    return [
        d["notification"]["body"]
        for d in events_of(person, "notification.new")
        if d["notification"]["kind"] == "service"
    ]


async def test_subscription_through_the_platform(gateway):
    host, (ann, bea), cid = await setup(gateway, 2, ["clinic"])
    try:
        # Ann is asked with the consent sheet, grants, and the app greets her in her service chat.
        await command(ann, cid, "/subscribe")
        await eventually(lambda: texts_from(ann, cid, "clinic: subscribe asked"))
        (sheet,) = await eventually(lambda: events_of(ann, "miniapp.consent_required"))
        assert sheet == {"app_id": "clinic", "app_name": "Clinic", "scope": "notifications"}
        assert not events_of(bea, "miniapp.consent_required")  # only the invoker is asked
        answer = {"app_id": "clinic", "scope": "notifications", "granted": True}
        assert (await ann.socket.call("miniapp.consent", answer))["ok"]
        await eventually(lambda: "Welcome to Clinic reminders" in service_texts(ann))
        await command(ann, cid, "/subscribe")
        await eventually(lambda: texts_from(ann, cid, "clinic: subscribe granted"))
        assert len(events_of(ann, "miniapp.consent_required")) == 1

        # Bea says no: the app hears it, cannot message her, and does not ask again.
        await command(bea, cid, "/subscribe")
        await eventually(lambda: events_of(bea, "miniapp.consent_required"))
        refusal = {"app_id": "clinic", "scope": "notifications", "granted": False}
        assert (await bea.socket.call("miniapp.consent", refusal))["ok"]

        async def refused_send():
            cursor = host.audit.collection.find(
                {"app_id": "clinic", "method": "notifications.send", "ok": False}
            )
            return await cursor.to_list(None)

        await eventually(refused_send)
        await command(bea, cid, "/subscribe")
        await eventually(lambda: texts_from(bea, cid, "clinic: subscribe declined"))
        assert len(events_of(bea, "miniapp.consent_required")) == 1
        assert not service_texts(bea)
        _, body = await bea.api.get("/api/v1/conversations")
        assert not [c for c in body["conversations"] if c["type"] == "service"]
    finally:
        await close_all([ann, bea])
