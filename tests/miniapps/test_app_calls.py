"""Calls from apps (``calls.start``): a sandboxed app starts a call; the participants are rung
with the app named as its origin, nobody is in the call until they answer, and the app hears
``call.started`` / ``call.ended``. Through the simulator, then end-to-end through the platform
with real Socket.IO clients."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sdk.signing import verify_event
from sdk.simulator import HostRefused, Simulator
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, direct
from tests.miniapps.test_capabilities import command, events_of, setup, texts_from

CLINIC_DIR = Path(__file__).resolve().parent / "apps" / "clinic"
ORIGIN = {"app_id": "clinic", "name": "Clinic", "title": "Dr. Lee, 10:30"}


# --- simulator ---------------------------------------------------------------------------


@pytest.fixture
def sim():
    return Simulator(CLINIC_DIR)


def last_text(sim, chat) -> str:
    return sim.messages(chat)[-1]["text"]


async def test_sim_call_rings_everyone_then_the_app_hears_start_and_end(sim):
    ann, bea = sim.user("ann"), sim.user("bea")
    chat = sim.conversation([ann, bea])
    await sim.command(ann, chat, "/visit video")
    (call,) = sim.app_calls()
    assert last_text(sim, chat) == f"clinic: visit {call['call_id']}"
    assert call["rung"] == [ann.id, bea.id] and call["joined"] == []
    assert call["state"] == "ringing" and call["media"] == "video"
    assert call["origin"] == ORIGIN

    await sim.answer_call(bea, call["call_id"])
    assert last_text(sim, chat) == f"clinic: started {call['call_id']} by {bea.id}"
    await sim.answer_call(ann, call["call_id"])  # a second join: no second call.started
    assert sum("started" in m["text"] for m in sim.messages(chat)) == 1
    with pytest.raises(HostRefused) as refused:
        await sim.answer_call(bea, call["call_id"])
    assert refused.value.code == "already_joined"

    await sim.end_call(call["call_id"], duration_seconds=95)
    assert last_text(sim, chat) == f"clinic: ended {call['call_id']} completed 95"
    assert sim.app_calls()[0]["state"] == "ended"
    with pytest.raises(HostRefused):
        await sim.end_call(call["call_id"])


async def test_sim_unanswered_call_ends_missed_and_events_are_signed(sim):
    ann, bea = sim.user("ann"), sim.user("bea")
    chat = sim.conversation([ann, bea])
    seen = []
    original = sim.app.events["call.ended"]

    async def spy(ctx):
        seen.append(ctx.payload)
        await original(ctx)

    sim.app.events["call.ended"] = spy
    await sim.command(ann, chat, "/visit audio me")
    (call,) = sim.app_calls()
    assert call["rung"] == [ann.id] and call["media"] == "audio"
    await sim.end_call(call["call_id"])
    assert last_text(sim, chat) == f"clinic: ended {call['call_id']} missed 0"
    assert verify_event(sim.secret, seen[0]) and seen[0]["reason"] == "timeout"


@pytest.mark.parametrize(
    ("command", "prepare", "code"),
    [
        ("/visit video ghost", None, "not_a_member"),
        ("/visit video", "busy", "user_busy"),
        ("/visit video", "call", "call_in_progress"),
        ("/visit hologram", None, "invalid_params"),
        ("/visit video conv-999", None, "permission_denied"),
    ],
)
async def test_sim_calls_start_errors(sim, command, prepare, code):
    ann, bea = sim.user("ann"), sim.user("bea")
    chat = sim.conversation([ann, bea])
    if prepare == "busy":
        sim.set_in_call(ann)
        sim.set_in_call(bea)
    if prepare == "call":
        await sim.command(ann, chat, "/visit audio")
    before = len(sim.app_calls())
    await sim.command(ann, chat, command)
    assert last_text(sim, chat) == f"clinic: visit {code}"
    assert len(sim.app_calls()) == before  # bad input changes nothing


async def test_sim_busy_people_are_not_rung_and_nobody_to_call(sim):
    ann, bea = sim.user("ann"), sim.user("bea")
    chat = sim.conversation([ann, bea])
    sim.set_in_call(bea)
    await sim.command(ann, chat, "/visit video")
    assert sim.app_calls()[0]["rung"] == [ann.id]
    empty = sim.conversation([])
    assert await sim.call_capability(ann, empty, "calls.start", {"media": "audio"}) == (
        "error",
        "nobody_to_call",
    )
    assert await sim.call_capability(ann, chat, "calls.start", {"media": "audio"}) == (
        "error",
        "call_in_progress",
    )
    bad = {"media": "audio", "participant_ids": "me"}
    assert await sim.call_capability(ann, chat, "calls.start", bad) == ("error", "invalid_params")


# --- end to end: a sandboxed app, a real gateway, real Socket.IO clients ---------------------


async def test_app_call_rings_with_origin_nobody_joined_until_they_tap(gateway):

    host, (ann, bea, cai), cid = await setup(gateway, 3, ["clinic"])
    try:
        await command(ann, cid, "/visit video")
        (text,) = await eventually(lambda: texts_from(bea, cid, "clinic: visit"))
        call_id = text.split()[-1]
        for person in (ann, bea, cai):  # everyone rung, the app named as the origin
            (ring,) = await eventually(lambda p=person: events_of(p, "call.ring"))
            call = ring["call"]
            assert call["id"] == call_id and call["media"] == "video"
            assert call["origin"] == {
                "app_id": "clinic",
                "name": "Clinic",
                "title": "Dr. Lee, 10:30",
            }
            assert call["caller_id"] == "app:clinic"
            assert call["participants"] == []  # nobody put in the call
        # The call's record in the chat, posted by the app's bot.
        record = await eventually(
            lambda: [
                d["message"]
                for d in bea.received()
                if d["message"]["type"] == "call" and d["message"]["conversation_id"] == cid
            ]
        )
        assert record[0]["sender_id"] == "app:clinic"

        # Still nobody in it, and a second visit in this chat is refused.
        await command(ann, cid, "/visit audio")
        await eventually(lambda: texts_from(bea, cid, "clinic: visit call_in_progress"))
        status, body = await ann.api.get(f"/api/v1/calls/{call_id}")
        if status == 200:  # when the REST view exists
            assert body["call"]["participants"] == []
        assert not texts_from(bea, cid, "clinic: started")

        # Bea taps: she is in, the call starts, the app hears it (her per-app id).
        ack = await bea.socket.call("call.accept", {"call_id": call_id})
        assert ack["ok"], ack
        assert [p["user_id"] for p in ack["call"]["participants"]] == [bea.user_id]
        bea_app_id = host.identity.app_user_id("clinic", bea.user_id)
        await eventually(lambda: texts_from(ann, cid, f"clinic: started {call_id} by {bea_app_id}"))
        ack = await cai.socket.call("call.accept", {"call_id": call_id})
        assert ack["ok"], ack

        for person in (bea, cai):
            assert (await person.socket.call("call.leave", {"call_id": call_id}))["ok"]
        (ended,) = await eventually(lambda: texts_from(ann, cid, f"clinic: ended {call_id}"))
        assert ended.split()[3] == "completed"
        assert len(texts_from(ann, cid, "clinic: started")) == 1  # once, not per join
    finally:
        await close_all([ann, bea, cai])


async def test_app_call_errors_and_declined_call(gateway):

    _, (ann, bea), cid = await setup(gateway, 2, ["clinic"])
    try:
        await command(ann, cid, "/visit video ghost")
        await eventually(lambda: texts_from(bea, cid, "clinic: visit not_a_member"))
        await command(ann, cid, "/visit hologram")
        await eventually(lambda: texts_from(bea, cid, "clinic: visit invalid_params"))
        await command(ann, cid, "/visit video someone-elses-chat")
        await eventually(lambda: texts_from(bea, cid, "clinic: visit permission_denied"))
        assert not events_of(bea, "call.ring") and not events_of(ann, "call.ring")

        # Both people busy in a call of their own: user_busy; the app's call rings nobody.
        other_cid = await direct(bea, ann)
        ack = await ann.socket.call("call.start", {"conversation_id": other_cid, "media": "audio"})
        assert ack["ok"], ack
        person_call = ack["call"]["id"]
        assert (await bea.socket.call("call.accept", {"call_id": person_call}))["ok"]
        await command(ann, cid, "/visit video")
        await eventually(lambda: texts_from(bea, cid, "clinic: visit user_busy"))
        assert not [r for r in events_of(bea, "call.ring") if r["call"].get("origin")]
        assert (await ann.socket.call("call.end", {"call_id": person_call}))["ok"]

        # Only Ann is rung; she declines: the call ends declined and the app hears it.
        await command(ann, cid, "/visit audio me")
        errors = {"not_a_member", "invalid_params", "permission_denied", "user_busy"}
        (text,) = await eventually(
            lambda: [t for t in texts_from(bea, cid, "clinic: visit ") if t[14:] not in errors]
        )
        call_id = text.split()[-1]
        rings = await eventually(
            lambda: [r for r in events_of(ann, "call.ring") if r["call"]["id"] == call_id]
        )
        assert rings[0]["call"]["origin"]["app_id"] == "clinic"
        assert not [r for r in events_of(bea, "call.ring") if r["call"]["id"] == call_id]
        assert (await ann.socket.call("call.decline", {"call_id": call_id}))["ok"]
        await eventually(lambda: texts_from(bea, cid, f"clinic: ended {call_id} declined 0"))
    finally:
        await close_all([ann, bea])


async def test_many_answer_at_once_the_app_hears_one_start_and_one_end(gateway):
    _, everyone, cid = await setup(gateway, 6, ["clinic"])
    ann, others = everyone[0], everyone[1:]
    try:
        await command(ann, cid, "/visit video")
        (text,) = await eventually(lambda: texts_from(ann, cid, "clinic: visit"))
        call_id = text.split()[-1]
        acks = await asyncio.gather(
            *(p.socket.call("call.accept", {"call_id": call_id}) for p in others)
        )
        assert all(ack["ok"] for ack in acks), acks
        await eventually(lambda: texts_from(ann, cid, f"clinic: started {call_id}"))
        # Everyone leaves at once: the call ends once, and the app hears it once.
        acks = await asyncio.gather(
            *(p.socket.call("call.leave", {"call_id": call_id}) for p in others)
        )
        assert all(ack["ok"] for ack in acks), acks
        await eventually(lambda: texts_from(ann, cid, f"clinic: ended {call_id} completed"))
        await command(ann, cid, "/visit audio me")  # a later message: the events came before
        await eventually(lambda: len(texts_from(ann, cid, "clinic: visit")) == 2)
        assert len(texts_from(ann, cid, f"clinic: started {call_id}")) == 1
        assert len(texts_from(ann, cid, f"clinic: ended {call_id}")) == 1
    finally:
        await close_all(everyone)
