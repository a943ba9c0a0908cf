"""Call signalling and the state machine over real Socket.IO clients: ringing, answering on one
device, declining, missing, busy, non-members, lost participants, records and recovery."""

from __future__ import annotations

from pymongo import AsyncMongoClient

from gateway import keys
from gateway.app import create_app
from tests.calls.call_helpers import accept, call_records, events_of, start_call
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, direct, group, people


def base_of(gateway) -> str:
    return str(gateway.make_url("")).rstrip("/")


async def test_ring_answer_on_one_device_and_hang_up_records_the_call(gateway):
    alice, bob = await people(base_of(gateway), 2)
    bob_phone = await bob.connect_device()
    try:
        cid = await direct(alice, bob)
        call_id = await start_call(alice, cid, "audio")
        ring = (await bob.socket.wait_for("call.ring"))[0]
        assert ring["call"]["id"] == call_id and ring["call"]["caller_id"] == alice.user_id
        await bob_phone.wait_for("call.ring")
        assert not events_of(alice, "call.ring")  # the caller's own devices do not ring
        # The call is a message in the chat from the start, redrawn as it goes on.
        (started,) = await eventually(lambda: call_records(bob, cid, final=False))
        assert started["text"] == "Voice call started" and started["call"]["outcome"] == "ringing"

        await accept(bob, call_id)
        stopped = (await bob_phone.wait_for("call.ring_stopped"))[0]
        assert stopped == {"call_id": call_id, "reason": "answered_elsewhere"}
        joined = (await alice.socket.wait_for("call.participant_joined"))[0]
        assert joined["user_id"] == bob.user_id
        await eventually(
            lambda: [m for m in call_records(alice, cid, final=False)
                     if m["call"]["outcome"] == "ongoing" and m["id"] == started["id"]],
            what="the record says the call is in progress",
        )  # fmt: skip

        ack = await bob.socket.call(
            "call.media_state", {"call_id": call_id, "audio": False, "video": False}
        )
        assert ack["ok"], ack
        state = (await alice.socket.wait_for("call.media_state"))[0]
        assert state == {"call_id": call_id, "user_id": bob.user_id, "audio": False, "video": False}

        assert (await alice.socket.call("call.end", {"call_id": call_id}))["ok"]
        ended = (await bob.socket.wait_for("call.ended"))[0]
        assert ended["call"]["outcome"] == "completed" and ended["reason"] == "hangup"
        records = await eventually(lambda: call_records(bob, cid), what="the call record")
        (record,) = records
        assert record["id"] == started["id"]  # one message per call, not one per step
        assert record["sender_id"] == alice.user_id
        assert record["call"]["call_id"] == call_id and record["call"]["media"] == "audio"
        assert record["call"]["outcome"] == "completed"
        assert isinstance(record["call"]["duration_seconds"], int)
        assert record["text"].startswith("Voice call, ")

        # The record is in the history too, like any message.
        status, body = await bob.api.get(f"/api/v1/conversations/{cid}/messages")
        assert status == 200
        assert [m["type"] for m in body["messages"]].count("call") == 1
        # And the conversation is free for the next call.
        await start_call(bob, cid, "video")
    finally:
        await bob_phone.close()
        await close_all([alice, bob])


async def test_decline_ends_a_direct_call_as_declined(gateway):
    alice, bob = await people(base_of(gateway), 2)
    try:
        cid = await direct(alice, bob)
        call_id = await start_call(alice, cid)
        await bob.socket.wait_for("call.ring")
        assert (await bob.socket.call("call.decline", {"call_id": call_id}))["ok"]
        ended = (await alice.socket.wait_for("call.ended"))[0]
        assert ended["call"]["outcome"] == "declined"
        (record,) = await eventually(lambda: call_records(alice, cid), what="record")
        assert record["call"]["outcome"] == "declined" and record["call"]["duration_seconds"] == 0
        assert record["text"] == "Declined video call"
        again = await bob.socket.call("call.accept", {"call_id": call_id})
        assert again["error"]["code"] == "call_ended"
    finally:
        await close_all([alice, bob])


async def test_unanswered_call_is_missed_after_the_ring_timeout(gateway):
    alice, bob = await people(base_of(gateway), 2)
    try:
        cid = await direct(alice, bob)
        call_id = await start_call(alice, cid, "audio")
        ended = (await bob.socket.wait_for("call.ended", timeout=15))[0]
        assert ended["call"]["id"] == call_id
        assert ended["call"]["outcome"] == "missed" and ended["reason"] == "timeout"
        (record,) = await eventually(lambda: call_records(bob, cid), what="record")
        assert record["text"] == "Missed voice call"
    finally:
        await close_all([alice, bob])


async def test_caller_hanging_up_before_an_answer_cancels(gateway):
    alice, bob = await people(base_of(gateway), 2)
    try:
        cid = await direct(alice, bob)
        call_id = await start_call(alice, cid)
        await bob.socket.wait_for("call.ring")
        assert (await alice.socket.call("call.leave", {"call_id": call_id}))["ok"]
        ended = (await bob.socket.wait_for("call.ended"))[0]
        assert ended["call"]["outcome"] == "cancelled"
    finally:
        await close_all([alice, bob])


async def test_second_call_in_a_conversation_is_busy(gateway):
    alice, bob, carol = await people(base_of(gateway), 3)
    try:
        gid = await group(alice, [bob, carol])
        call_id = await start_call(alice, gid)
        ack = await bob.socket.call("call.start", {"conversation_id": gid, "media": "audio"})
        assert ack["error"]["code"] == "call_busy"
        assert ack["error"]["details"] == {"call_id": call_id}
        # Another conversation is not busy.
        await start_call(bob, await direct(bob, carol))
    finally:
        await close_all([alice, bob, carol])


async def test_a_person_in_a_call_is_busy_for_other_calls(gateway):
    alice, bob, carol, dan = await people(base_of(gateway), 4)
    try:
        call_id = await start_call(alice, await direct(alice, bob))
        await accept(bob, call_id)
        # Carol calls Bob, who is in a call with Alice: busy, nothing rings, no call is made.
        ack = await carol.socket.call(
            "call.start", {"conversation_id": await direct(carol, bob), "media": "audio"}
        )
        assert not ack["ok"] and ack["error"]["code"] == "user_busy", ack
        # In a group, members in another call are not rung; the others are.
        gid = await group(carol, [bob, dan])
        group_call = await start_call(carol, gid)
        await dan.socket.wait_for("call.ring")
        assert [r["call"]["id"] for r in events_of(bob, "call.ring")] == [call_id]
        # Bob cannot join a second call while in the first, nor start one.
        ack = await bob.socket.call("call.accept", {"call_id": group_call})
        assert ack["error"]["code"] == "already_in_call"
        assert ack["error"]["details"] == {"call_id": call_id}
        ack = await bob.socket.call("call.start", {"conversation_id": gid, "media": "audio"})
        assert ack["error"]["code"] in ("already_in_call", "call_busy")
        # Once he leaves, he can.
        assert (await bob.socket.call("call.leave", {"call_id": call_id}))["ok"]
        await accept(bob, group_call)
    finally:
        await close_all([alice, bob, carol, dan])


async def test_non_members_can_neither_start_nor_join_nor_signal(gateway):
    alice, bob, mallory = await people(base_of(gateway), 3)
    try:
        cid = await direct(alice, bob)
        ack = await mallory.socket.call("call.start", {"conversation_id": cid, "media": "video"})
        assert ack["error"]["code"] == "not_a_member"
        call_id = await start_call(alice, cid)
        for name, payload in [
            ("call.accept", {"call_id": call_id}),
            ("call.decline", {"call_id": call_id}),
            ("call.offer", {"call_id": call_id, "sdp": "v=0\r\n"}),
            ("call.answer", {"call_id": call_id, "sdp": "v=0\r\n"}),
            ("call.ice", {"call_id": call_id, "candidate": {"candidate": "x"}}),
            ("call.end", {"call_id": call_id}),
            ("call.media_state", {"call_id": call_id, "audio": True, "video": True}),
        ]:
            ack = await mallory.socket.call(name, payload)
            assert ack["error"]["code"] == "not_a_member", (name, ack)
        # A member who has not answered cannot signal either.
        ack = await bob.socket.call("call.offer", {"call_id": call_id, "sdp": "v=0\r\n"})
        assert ack["error"]["code"] == "not_in_call"
        unknown = await bob.socket.call("call.accept", {"call_id": "0" * 24})
        assert unknown["error"]["code"] == "call_not_found"
        assert not events_of(mallory, "call.ring")
    finally:
        await close_all([alice, bob, mallory])


async def test_a_participant_whose_connection_vanishes_is_removed_after_the_grace(gateway):
    alice, bob, carol = await people(base_of(gateway), 3)
    try:
        gid = await group(alice, [bob, carol])
        call_id = await start_call(alice, gid, "audio")
        await accept(bob, call_id)
        await accept(carol, call_id)
        await carol.socket.close()  # no call.leave: the app was killed
        left = (await alice.socket.wait_for("call.participant_left", timeout=15))[0]
        assert left == {
            "call_id": call_id,
            "conversation_id": gid,
            "user_id": carol.user_id,
            "reason": "connection_lost",
        }
        assert not events_of(alice, "call.ended")  # two are still talking
        assert (await bob.socket.call("call.leave", {"call_id": call_id}))["ok"]
        # Alice is the last one in; she leaves and the call ends.
        assert (await alice.socket.call("call.leave", {"call_id": call_id}))["ok"]
        ended = (await bob.socket.wait_for("call.ended"))[0]
        assert ended["call"]["outcome"] == "completed" and ended["reason"] == "everyone_left"
    finally:
        await close_all([alice, bob, carol])


async def test_a_group_call_rings_until_timeout_for_who_did_not_answer(gateway):
    alice, bob, carol = await people(base_of(gateway), 3)
    try:
        gid = await group(alice, [bob, carol])
        call_id = await start_call(alice, gid, "audio")
        await accept(bob, call_id)
        stopped = (await carol.socket.wait_for("call.ring_stopped", timeout=15))[0]
        assert stopped == {"call_id": call_id, "reason": "timeout"}
        # She can still join the call in progress.
        assert (await carol.socket.call("call.accept", {"call_id": call_id}))["ok"]
    finally:
        await close_all([alice, bob, carol])


async def test_calls_left_live_by_a_crash_are_ended_and_recorded_at_start_up(
    gateway, aiohttp_server, config, mongo_url, mongo_db_name
):
    alice, bob = await people(base_of(gateway), 2)
    cid = await direct(alice, bob)
    call_id = await start_call(alice, cid)
    await accept(bob, call_id)
    await close_all([alice, bob])
    gateway.app[keys.CALLS].hosted.clear()  # as if the node died: nothing ended at shutdown
    await gateway.close()

    await aiohttp_server(create_app(config))
    client = AsyncMongoClient(mongo_url)
    try:
        db = client[mongo_db_name]
        call = await db.calls.find_one({"_id": call_id})
        assert call["state"] == "ended" and call["end_reason"] == "server_restart"
        assert call["outcome"] == "completed"
        assert await db.active_calls.count_documents({}) == 0
        records = await db.messages.find({"conversation_id": cid, "type": "call"}).to_list(None)
        assert [r["call"]["call_id"] for r in records] == [call_id]
    finally:
        await client.close()


async def test_ice_servers_are_handed_to_clients(gateway):
    (alice,) = await people(base_of(gateway), 1)
    try:
        status, body = await alice.api.get("/api/v1/calls/ice-servers")
        assert status == 200 and body == {"ice_servers": []}
        status, _ = await alice.api.get("/api/v1/calls/ice-servers", token="")
        assert status == 401
    finally:
        await close_all([alice])
