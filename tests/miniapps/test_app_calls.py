"""Calls from apps (``calls.start``): a sandboxed app starts a call; the participants are rung
with the app named as its origin, nobody is in the call until they answer, and the app hears
``call.started`` / ``call.ended``. Through the simulator, then end-to-end through the platform
with real Socket.IO clients."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.keys import MESSAGING
from messaging.actions import service_chats
from sdk.signing import verify_event
from sdk.simulator import HostRefused, Simulator
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, direct, person
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


# --- simulator: own_chat, a call between people who share no chat ---------------------------


async def test_sim_own_chat_call_opens_one_chat_for_the_same_people(sim):
    ann, dan = sim.user("ann"), sim.user("dan")  # a patient and her doctor
    chat = sim.conversation([ann])  # her chat with the clinic: the doctor is not in it
    await sim.command(ann, chat, f"/consult video {dan.id}")
    (own,) = sim.own_chats()
    (call,) = sim.app_calls()
    assert last_text(sim, chat) == f"clinic: consult {call['call_id']}"
    assert own.members == [ann, dan] and own.title == "Dr. Lee, 10:30"
    assert call["conversation_id"] == own.id and call["rung"] == [ann.id, dan.id]
    assert call["origin"] == ORIGIN and call["joined"] == []

    await sim.answer_call(dan, call["call_id"])  # the app hears it in the own chat
    assert last_text(sim, own) == f"clinic: started {call['call_id']} by {dan.id}"
    await sim.end_call(call["call_id"], duration_seconds=600)
    assert last_text(sim, own) == f"clinic: ended {call['call_id']} completed 600"

    # The next visit: the same chat, even after the doctor was taken out of it.
    sim.remove_member(own, dan)
    await sim.command(ann, chat, f"/consult audio {dan.id}")
    assert sim.own_chats() == [own] and own.members == [ann, dan]
    second = sim.app_calls()[1]
    assert second["conversation_id"] == own.id and second["rung"] == [ann.id, dan.id]

    # Without a title the chat is named after the app; the answer names the chat.
    eve = sim.user("eve")
    params = {"media": "audio", "own_chat": True, "participant_ids": [eve.id, ann.id, eve.id]}
    outcome, result = await sim.call_capability(ann, chat, "calls.start", params)
    assert outcome == "ok", result
    titled = sim.own_chats()[1]
    assert result == {"call_id": result["call_id"], "conversation_id": titled.id}
    assert titled.title == "Clinic" and titled.members == [eve, ann]


@pytest.mark.parametrize(
    ("words", "prepare", "code"),
    [
        ("notme {dan} {eve}", None, "invoker_not_included"),
        ("u-nobody", None, "unknown_participant"),
        ("{dan} u-nobody", None, "unknown_participant"),
        ("{dan} @{chat}", None, "invalid_params"),  # own_chat with a conversation_id
        ("", None, "invalid_params"),  # only the invoker: nobody to call
        ("{dan}", "blocked", "blocked"),
        ("{dan}", "busy", "user_busy"),
        ("{dan}", "call", "call_in_progress"),
    ],
)
async def test_sim_own_chat_errors(sim, words, prepare, code):
    ann, dan, eve = sim.user("ann"), sim.user("dan"), sim.user("eve")
    chat = sim.conversation([ann])
    if prepare == "blocked":
        sim.set_blocked(dan, ann)
    if prepare == "busy":
        sim.set_in_call(ann)
        sim.set_in_call(dan)
    if prepare == "call":
        await sim.command(ann, chat, f"/consult audio {dan.id}")
    before = len(sim.app_calls())
    words = words.format(dan=dan.id, eve=eve.id, chat=chat.id)
    await sim.command(ann, chat, f"/consult video {words}".strip())
    assert last_text(sim, chat) == f"clinic: consult {code}"
    assert len(sim.app_calls()) == before
    if prepare is None or prepare == "blocked":  # refused before any chat is opened
        assert sim.own_chats() == []


async def test_sim_own_chat_needs_a_user_and_unblocking_lets_it_through(sim):
    ann, dan = sim.user("ann"), sim.user("dan")
    params = {"media": "video", "own_chat": True, "participant_ids": [ann.id, dan.id]}
    # An invocation without a user (an event nobody invoked): an app rings nobody's strangers.
    assert await sim.call_capability(None, None, "calls.start", params) == (
        "error",
        "invalid_params",
    )
    assert await sim.call_capability(ann, None, "calls.start", {**params, "own_chat": "yes"}) == (
        "error",
        "invalid_params",
    )
    sim.set_blocked(ann, dan)
    assert await sim.call_capability(ann, None, "calls.start", params) == ("error", "blocked")
    sim.set_blocked(ann, dan, False)
    outcome, result = await sim.call_capability(ann, None, "calls.start", params)
    assert outcome == "ok" and result["conversation_id"] == sim.own_chats()[0].id


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


# --- end to end: own_chat, from the patient's appointment card to the doctor -----------------


def rings_of(someone, call_id: str) -> list[dict]:
    return [r["call"] for r in events_of(someone, "call.ring") if r["call"]["id"] == call_id]


def new_chats(someone, conversation_id: str) -> list[dict]:
    return [
        d["conversation"]
        for d in events_of(someone, "conversation.new")
        if d["conversation"]["id"] == conversation_id
    ]


async def test_own_chat_call_from_the_appointment_card_rings_the_doctor(gateway):
    host, (ann,), cid = await setup(gateway, 1, ["clinic"])  # the patient, alone with the app
    dan = await person(str(gateway.make_url("")).rstrip("/"))  # her doctor: no chat with her
    try:
        # The doctor used the clinic before, so the app knows his per-app id.
        dan_app_id = await host.identity.app_user("clinic", dan.user_id)
        consent = {"app_id": "clinic", "scope": "notifications", "granted": True}
        assert (await ann.socket.call("miniapp.consent", consent))["ok"]
        await command(ann, cid, f"/appointment {dan_app_id}")
        await eventually(lambda: texts_from(ann, cid, "clinic: appointment ok"))
        service_cid = service_chats.service_chat_id(ann.user_id, "clinic")
        (card,) = await eventually(
            lambda: [
                d["message"]
                for d in ann.received()
                if d["message"]["conversation_id"] == service_cid and d["message"]["type"] == "card"
            ]
        )

        async def press() -> str:
            before = len(texts_from(ann, service_cid, "clinic: consult"))
            ack = await ann.socket.call(
                "miniapp.action",
                {
                    "conversation_id": service_cid,
                    "message_id": card["id"],
                    "action_id": "visit.join",
                    "value": dan_app_id,
                },
            )
            assert ack["ok"], ack
            texts = await eventually(
                lambda: texts_from(ann, service_cid, "clinic: consult")[before:]
            )
            return texts[0].split()[-1]

        # She taps "Start visit" in her service chat: both are rung, the clinic as the origin.
        call_id = await press()
        own_cid = service_chats.app_chat_id("clinic", [dan.user_id, ann.user_id])
        for someone in (ann, dan):
            (ring,) = await eventually(lambda s=someone: rings_of(s, call_id))
            assert ring["conversation_id"] == own_cid and ring["caller_id"] == "app:clinic"
            assert ring["origin"] == ORIGIN and ring["participants"] == []
            (chat,) = new_chats(someone, own_cid)  # announced before the ring
            assert chat["type"] == "group" and chat["title"] == "Dr. Lee, 10:30"
            assert chat["my_role"] == "member" and chat["member_count"] == 2
        stored = await host.messaging.conversations.get_conversation(own_cid)
        assert stored["created_by"] == "app:clinic"
        assert await host.installs.installs.is_installed(own_cid, "clinic")
        status, body = await dan.api.get(f"/api/v1/conversations/{own_cid}")
        assert status == 200, body
        roles = {m["user"]["id"]: m["role"] for m in body["conversation"]["members"]}
        assert roles == {ann.user_id: "member", dan.user_id: "member"}  # nobody owns it

        # The doctor answers: the app hears call.started, in the chat it opened.
        ack = await dan.socket.call("call.accept", {"call_id": call_id})
        assert ack["ok"], ack
        await eventually(lambda: texts_from(ann, own_cid, f"clinic: started {call_id} by "))
        assert texts_from(dan, own_cid, "clinic: started") == [
            f"clinic: started {call_id} by {dan_app_id}"
        ]
        assert (await dan.socket.call("call.leave", {"call_id": call_id}))["ok"]
        await eventually(lambda: texts_from(ann, own_cid, f"clinic: ended {call_id} completed"))

        # The next visit, the same way: the same chat, announced once, both rung again.
        second = await press()
        assert second != call_id
        (ring,) = await eventually(lambda: rings_of(dan, second))
        assert ring["conversation_id"] == own_cid
        await eventually(lambda: rings_of(ann, second))
        assert len(new_chats(dan, own_cid)) == 1 and len(new_chats(ann, own_cid)) == 1
        assert (await dan.socket.call("call.decline", {"call_id": second}))["ok"]
        assert (await ann.socket.call("call.decline", {"call_id": second}))["ok"]
        await eventually(lambda: texts_from(ann, own_cid, f"clinic: ended {second} declined"))
    finally:
        await close_all([ann, dan])


async def test_own_chat_refusals(gateway):
    host, (ann,), cid = await setup(gateway, 1, ["clinic"])
    base_url = str(gateway.make_url("")).rstrip("/")
    dan, eve = await person(base_url), await person(base_url)
    try:
        dan_app_id = await host.identity.app_user("clinic", dan.user_id)
        eve_app_id = await host.identity.app_user("clinic", eve.user_id)
        stranger = host.identity.app_user_id("clinic", "someone-the-app-never-saw")
        refusals = [
            (f"notme {dan_app_id} {eve_app_id}", "invoker_not_included"),
            (f"{dan_app_id} u-nobody", "unknown_participant"),
            (stranger, "unknown_participant"),
            (f"{dan_app_id} @{cid}", "invalid_params"),  # own_chat with a conversation_id
            ("", "invalid_params"),  # the invoker alone
        ]
        for index, (words, code) in enumerate(refusals):
            await command(ann, cid, f"/consult video {words}".strip())
            answers = await eventually(lambda n=index: texts_from(ann, cid, "clinic: consult")[n:])
            assert answers == [f"clinic: consult {code}"], words

        # The doctor blocked her: the app cannot put them in one chat.
        status, body = await dan.api.request("PUT", f"/api/v1/contacts/blocks/{ann.user_id}")
        assert status == 204, body
        await command(ann, cid, f"/consult video {dan_app_id}")
        await eventually(lambda: texts_from(ann, cid, "clinic: consult blocked"))
        # Nobody was rung and no chat was opened for any of them.
        assert not events_of(ann, "call.ring") and not events_of(dan, "call.ring")
        assert not events_of(eve, "call.ring")
        for pair in ([ann, dan], [dan, eve], [ann, dan, eve]):
            chat_id = service_chats.app_chat_id("clinic", [p.user_id for p in pair])
            assert await host.messaging.conversations.get_conversation(chat_id) is None

        # With Eve it works, and a second visit while the first rings is call_in_progress.
        answered = len(texts_from(ann, cid, "clinic: consult"))
        await command(ann, cid, f"/consult audio {eve_app_id}")
        (text,) = await eventually(lambda: texts_from(ann, cid, "clinic: consult")[answered:])
        call_id = text.split()[-1]
        await eventually(lambda: rings_of(eve, call_id))
        await command(ann, cid, f"/consult audio {eve_app_id}")
        await eventually(lambda: texts_from(ann, cid, "clinic: consult call_in_progress"))
    finally:
        await close_all([ann, dan, eve])


async def test_concurrent_opens_make_one_app_chat(gateway):
    ctx = gateway.app[MESSAGING]
    base_url = str(gateway.make_url("")).rstrip("/")
    ann, dan = await person(base_url), await person(base_url)
    pair = [ann.user_id, dan.user_id]
    try:
        opened = await asyncio.gather(
            *[
                service_chats.do_open_app_chat(
                    ctx, "clinic", "Clinic", None, pair if i % 2 else pair[::-1]
                )
                for i in range(10)
            ]
        )
        assert len({c["_id"] for c, _ in opened}) == 1
        assert sum(created for _, created in opened) == 1
        chat_id = opened[0][0]["_id"]
        members = await ctx.members.get_members(chat_id)
        assert sorted(m["user_id"] for m in members) == sorted([ann.user_id, dan.user_id])
        for someone in (ann, dan):  # each told once
            await eventually(lambda s=someone: new_chats(s, chat_id))
            assert len(new_chats(someone, chat_id)) == 1
            assert new_chats(someone, chat_id)[0]["title"] == "Clinic"

        # The doctor left: the next open (the app's next call) puts him back, and tells him.
        status, body = await dan.api.post(f"/api/v1/conversations/{chat_id}/leave")
        assert status == 204, body
        left = await ctx.conversations.get_conversation(chat_id)
        assert left["member_count"] == 1
        again, created = await service_chats.do_open_app_chat(
            ctx, "clinic", "Clinic", "ignored on reuse", [dan.user_id, ann.user_id]
        )
        assert not created and again["_id"] == chat_id and again["title"] == "Clinic"
        assert again["member_count"] == 2
        membership = await ctx.membership.get(chat_id)
        assert sorted(membership.member_ids) == sorted([ann.user_id, dan.user_id])
        await eventually(lambda: len(new_chats(dan, chat_id)) == 2)
        assert len(new_chats(ann, chat_id)) == 1
    finally:
        await close_all([ann, dan])
