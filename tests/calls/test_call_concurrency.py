"""Calls under concurrency, over real Socket.IO clients and real aiortc peers: simultaneous
accepts never overfill a call (CALL_MAX_PARTICIPANTS), a person is in at most one call however
their accepts and starts interleave, seats are released exactly on leave, grace and end, and
concurrent offers from one participant leave exactly one server peer connection."""

from __future__ import annotations

import asyncio
import gc

import pytest
from aiortc import AudioStreamTrack, RTCPeerConnection, RTCSessionDescription
from pymongo import AsyncMongoClient

from gateway import keys
from tests.calls.call_helpers import CallPeer, accept, events_of, start_call
from tests.conftest import make_config
from tests.helpers import ApiClient, SocketClient, eventually
from tests.messaging.chat_helpers import close_all, direct, group, people, person

LIMIT = 3


@pytest.fixture
def config(mongo_url, mongo_db_name, tmp_path):
    # A long ring so that no call times out under a loaded machine while the test races it.
    return make_config(
        mongo_url,
        mongo_db_name,
        tmp_path / "var",
        call_ring_timeout=60,
        call_grace_period=0.5,
        call_max_participants=LIMIT,
    )


def base_of(gateway) -> str:
    return str(gateway.make_url("")).rstrip("/")


async def joined_in_db(mongo_url: str, db_name: str, call_id: str) -> list[str]:
    client = AsyncMongoClient(mongo_url)
    try:
        db = client[db_name]
        found = await db.call_participants.find({"call_id": call_id, "state": "joined"}).to_list(
            None
        )
        return sorted(p["user_id"] for p in found)
    finally:
        await client.close()


async def calls_of_user(mongo_url: str, db_name: str, user_id: str) -> list[str]:
    client = AsyncMongoClient(mongo_url)
    try:
        db = client[db_name]
        found = await db.call_participants.find({"user_id": user_id, "state": "joined"}).to_list(
            None
        )
        return [p["call_id"] for p in found]
    finally:
        await client.close()


async def seats_in_db(mongo_url: str, db_name: str, call_id: str) -> list[str]:
    client = AsyncMongoClient(mongo_url)
    try:
        found = await client[db_name].call_seats.find({"call_id": call_id}).to_list(None)
        return sorted(s["_id"] for s in found)
    finally:
        await client.close()


async def test_seven_simultaneous_accepts_fill_a_call_of_three_exactly(
    gateway, mongo_url, mongo_db_name
):
    everyone = await people(base_of(gateway), 8)
    owner, *invited = everyone
    try:
        gid = await group(owner, invited)
        call_id = await start_call(owner, gid, "audio")
        await asyncio.gather(*(p.socket.wait_for("call.ring") for p in invited))
        acks = await asyncio.gather(
            *(p.socket.call("call.accept", {"call_id": call_id}, timeout=15) for p in invited)
        )
        accepted = [p for p, ack in zip(invited, acks, strict=True) if ack["ok"]]
        refused = [(p, ack) for p, ack in zip(invited, acks, strict=True) if not ack["ok"]]
        assert len(accepted) == LIMIT - 1, acks
        for _, ack in refused:
            assert ack["error"]["code"] == "call_full", ack
            assert ack["error"]["details"] == {"limit": LIMIT}
            assert ack["error"]["message"]
        in_call = sorted([owner.user_id, *(p.user_id for p in accepted)])
        assert await joined_in_db(mongo_url, mongo_db_name, call_id) == in_call
        assert await seats_in_db(mongo_url, mongo_db_name, call_id) == in_call

        # Leaving frees exactly one seat; leaving again is refused and frees nothing.
        leaver = accepted[0]
        assert (await leaver.socket.call("call.leave", {"call_id": call_id}))["ok"]
        again = await leaver.socket.call("call.leave", {"call_id": call_id})
        assert again["error"]["code"] == "not_in_call"
        waiting = [p for p, _ in refused]
        acks = await asyncio.gather(
            *(p.socket.call("call.accept", {"call_id": call_id}, timeout=15) for p in waiting)
        )
        assert [a["ok"] for a in acks].count(True) == 1, acks
        assert {a["error"]["code"] for a in acks if not a["ok"]} == {"call_full"}
        newcomer = waiting[[a["ok"] for a in acks].index(True)]
        # The one who left cannot come back while the call is full again.
        back = await leaver.socket.call("call.accept", {"call_id": call_id})
        assert back["error"]["code"] == "call_full"
        assert len(await joined_in_db(mongo_url, mongo_db_name, call_id)) == LIMIT

        # A participant whose connection is lost is removed after the grace period: one seat.
        await newcomer.socket.close()
        await owner.socket.wait_for("call.participant_left", count=2, timeout=15)
        assert len(await seats_in_db(mongo_url, mongo_db_name, call_id)) == LIMIT - 1
        assert (await leaver.socket.call("call.accept", {"call_id": call_id}))["ok"]

        # Ending the call releases every seat: everyone is free for another call.
        assert (await owner.socket.call("call.end", {"call_id": call_id}))["ok"]
        await leaver.socket.wait_for("call.ended")
        assert await seats_in_db(mongo_url, mongo_db_name, call_id) == []
        assert await joined_in_db(mongo_url, mongo_db_name, call_id) == []
        again_call = await start_call(accepted[1], await direct(accepted[1], leaver))
        await accept(leaver, again_call)
    finally:
        await close_all([p for p in everyone if p is not None])


async def test_accepting_two_ringing_calls_at_once_lands_in_one(gateway, mongo_url, mongo_db_name):
    bob, alice, carol = await people(base_of(gateway), 3)
    try:
        with_alice = await direct(alice, bob)
        with_carol = await direct(carol, bob)
        for round_ in range(4):
            first = await start_call(alice, with_alice, "audio")
            second = await start_call(carol, with_carol, "audio")
            acks = await asyncio.gather(
                bob.socket.call("call.accept", {"call_id": first}, timeout=15),
                bob.socket.call("call.accept", {"call_id": second}, timeout=15),
            )
            assert [a["ok"] for a in acks].count(True) == 1, acks
            won, lost = (first, acks[1]) if acks[0]["ok"] else (second, acks[0])
            assert lost["error"]["code"] == "already_in_call", lost
            assert lost["error"]["details"] == {"call_id": won}
            assert await calls_of_user(mongo_url, mongo_db_name, bob.user_id) == [won]
            # Hang both up (the other one is still ringing) for the next round.
            for caller, call_id in ((alice, first), (carol, second)):
                assert (await caller.socket.call("call.leave", {"call_id": call_id}))["ok"]
            await eventually(
                lambda n=2 * (round_ + 1): len(events_of(bob, "call.ended")) >= n,
                what="both ended",
            )
            assert await calls_of_user(mongo_url, mongo_db_name, bob.user_id) == []
    finally:
        await close_all([bob, alice, carol])


async def test_starting_a_call_while_accepting_another_puts_one_in_one_call(
    gateway, mongo_url, mongo_db_name
):
    bob, alice, carol = await people(base_of(gateway), 3)
    try:
        with_alice = await direct(alice, bob)
        with_carol = await direct(carol, bob)
        for round_ in range(4):
            incoming = await start_call(alice, with_alice, "audio")
            accepted, started = await asyncio.gather(
                bob.socket.call("call.accept", {"call_id": incoming}, timeout=15),
                bob.socket.call(
                    "call.start", {"conversation_id": with_carol, "media": "audio"}, timeout=15
                ),
            )
            assert [accepted["ok"], started["ok"]].count(True) == 1, (accepted, started)
            loser = started if accepted["ok"] else accepted
            assert loser["error"]["code"] == "already_in_call", loser
            mine = await calls_of_user(mongo_url, mongo_db_name, bob.user_id)
            assert mine == [incoming if accepted["ok"] else started["call"]["id"]]
            # Hang up everything for the next round.
            if started["ok"]:
                assert (await bob.socket.call("call.leave", {"call_id": mine[0]}))["ok"]
            assert (await alice.socket.call("call.leave", {"call_id": incoming}))["ok"]
            await eventually(
                lambda n=round_ + 1: len(events_of(alice, "call.ended")) >= n, what="ended"
            )
            assert await calls_of_user(mongo_url, mongo_db_name, bob.user_id) == []
            client = AsyncMongoClient(mongo_url)
            try:
                assert await client[mongo_db_name].call_seats.count_documents({}) == 0
            finally:
                await client.close()
    finally:
        await close_all([bob, alice, carol])


async def test_the_cap_and_one_call_per_person_hold_across_two_nodes(two_nodes):
    """Two gateways (default CALL_MAX_PARTICIPANTS of 8): nine members on both nodes accept
    at once and seven get in; one person accepts two calls at once from devices on both."""
    everyone = list(await asyncio.gather(*(person(two_nodes[i % 2]) for i in range(10))))
    owner, *invited = everyone
    bob, alice, carol = everyone[1], everyone[2], everyone[3]
    bob_on_a = None
    try:
        gid = await group(owner, invited)
        call_id = await start_call(owner, gid, "audio")
        await asyncio.gather(*(p.socket.wait_for("call.ring") for p in invited))
        acks = await asyncio.gather(
            *(p.socket.call("call.accept", {"call_id": call_id}, timeout=15) for p in invited)
        )
        assert [a["ok"] for a in acks].count(True) == 7, acks
        assert {a["error"]["code"] for a in acks if not a["ok"]} == {"call_full"}
        assert (await owner.socket.call("call.end", {"call_id": call_id}))["ok"]
        await eventually(lambda: all(events_of(p, "call.ended") for p in invited), what="ended")

        # Bob's socket is on node b; his second device logs in and connects on node a.
        device_api = ApiClient(two_nodes[0])
        tokens = await device_api.login(bob.username)
        await device_api.close()
        bob_on_a = SocketClient()
        await bob_on_a.connect(two_nodes[0], tokens["access_token"])
        first = await start_call(alice, await direct(alice, bob), "audio")
        second = await start_call(carol, await direct(carol, bob), "audio")
        acks = await asyncio.gather(
            bob.socket.call("call.accept", {"call_id": first}, timeout=15),
            bob_on_a.call("call.accept", {"call_id": second}, timeout=15),
        )
        assert [a["ok"] for a in acks].count(True) == 1, acks
        assert [a["error"]["code"] for a in acks if not a["ok"]] == ["already_in_call"]
    finally:
        if bob_on_a is not None:
            await bob_on_a.close()
        await close_all(everyone)


async def test_a_seat_left_behind_by_a_crash_does_not_block_its_holder(
    gateway, mongo_url, mongo_db_name
):
    alice, bob, carol = await people(base_of(gateway), 3)
    client = AsyncMongoClient(mongo_url)
    seats = client[mongo_db_name].call_seats
    try:
        cid = await direct(alice, bob)
        old = await start_call(alice, cid, "audio")
        await accept(bob, old)
        assert (await alice.socket.call("call.end", {"call_id": old}))["ok"]
        await bob.socket.wait_for("call.ended")
        # As if the node died between ending the call and releasing its seats…
        await seats.insert_one({"_id": bob.user_id, "call_id": old, "seat": 1, "taken_at": 0})
        call_id = await start_call(carol, await direct(carol, bob), "audio")
        await accept(bob, call_id)
        assert (await bob.socket.call("call.leave", {"call_id": call_id}))["ok"]
        # …or between taking a seat for a new call and writing the call (long ago).
        await seats.insert_one({"_id": bob.user_id, "call_id": "0" * 24, "seat": 0, "taken_at": 0})
        started = await start_call(bob, cid, "audio")
        assert (await seats.find_one({"_id": bob.user_id}))["call_id"] == started
    finally:
        await client.close()
        await close_all([alice, bob, carol])


async def test_seats_are_decided_by_the_database_under_forty_concurrent_takers(mongo_db):
    """The store's conditional insert on nx-27017 (or MongoDB): 40 people race for 5 seats of
    one call, and each of them also for a seat in a second call at the same time."""
    from pymongo import IndexModel

    from messaging.store import call_seats
    from messaging.store.call_seats import CallSeats

    indexes: list[IndexModel] = call_seats.INDEXES
    await mongo_db[call_seats.COLLECTION].create_indexes(indexes)
    seats = CallSeats(mongo_db)
    users = [f"user{i}" for i in range(40)]

    async def take_any(call_id: str, user_id: str) -> int | None:
        for seat in range(5):
            if await seats.take(call_id, seat, user_id, 0):
                return seat
        return None

    got = await asyncio.gather(
        *(take_any(call, user) for user in users for call in ("call-a", "call-b"))
    )
    taken = [(user, call, seat) for (user, call), seat in zip(
        [(u, c) for u in users for c in ("call-a", "call-b")], got, strict=True
    ) if seat is not None]  # fmt: skip
    # Every person in at most one call, every call at most five, no seat twice.
    assert len({user for user, _, _ in taken}) == len(taken)
    for call in ("call-a", "call-b"):
        in_call = [seat for _, c, seat in taken if c == call]
        assert sorted(in_call) == list(range(5))
    # Releasing is exact and repeatable.
    user, call, _ = taken[0]
    assert await seats.release(call, user)
    assert not await seats.release(call, user)
    assert sorted(await seats.taken(call)) == sorted(s for _, c, s in taken[1:] if c == call)
    await seats.release_call(call)
    assert await seats.taken(call) == set()


# --- offers ------------------------------------------------------------------------------------


def open_server_connections(clients: set[int], before: set[int]) -> list[RTCPeerConnection]:
    """RTCPeerConnections alive in this process that are neither a test client's nor older
    than the test, and not closed: the relay's."""
    gc.collect()
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, RTCPeerConnection)
        and id(o) not in clients
        and id(o) not in before
        and o.connectionState != "closed"
    ]


async def test_concurrent_offers_from_one_participant_leave_one_peer_connection(gateway):
    alice, bob = await people(base_of(gateway), 2)
    media = gateway.app[keys.CALLS].media
    before = {id(o) for o in gc.get_objects() if isinstance(o, RTCPeerConnection)}
    extra: list[RTCPeerConnection] = []
    peers: list[CallPeer] = []
    try:
        cid = await direct(alice, bob)
        call_id = await start_call(alice, cid, "audio")
        await accept(bob, call_id)
        peers = [CallPeer(alice, call_id, "audio"), CallPeer(bob, call_id, "audio")]
        await asyncio.gather(*(p.connect() for p in peers))
        await peers[0].wait_frames(bob.user_id, "audio", 5)

        # Alice renegotiates from several connections at once (say a flaky app that retries):
        # four offers in flight together, each from its own client connection.
        for _ in range(4):
            pc = RTCPeerConnection()
            pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            extra.append(pc)
        acks = await asyncio.gather(
            *(
                alice.socket.call(
                    "call.offer", {"call_id": call_id, "sdp": pc.localDescription.sdp}, timeout=20
                )
                for pc in extra
            )
        )
        assert all(a["ok"] for a in acks), acks
        clients = {id(p.pc) for p in peers} | {id(pc) for pc in extra}
        server = open_server_connections(clients, before)
        held = media.peers(call_id)
        assert set(held) == {alice.user_id, bob.user_id}
        # One connection per participant: the latest offer's; every superseded one is closed.
        assert sorted(id(o) for o in server) == sorted(id(p.pc) for p in held.values())
        # The relay still works for the kept connection: apply its answer and receive Bob.
        kept = held[alice.user_id].pc
        ufrag = kept.remoteDescription.sdp.split("a=ice-ufrag:")[1].split()[0]
        (client_pc,) = [pc for pc in extra if f"a=ice-ufrag:{ufrag}" in pc.localDescription.sdp]
        index = extra.index(client_pc)
        await client_pc.setRemoteDescription(RTCSessionDescription(**acks[index]["answer"]))
        await eventually(
            lambda: client_pc.connectionState == "connected", 20, "the kept connection connects"
        )

        assert (await bob.socket.call("call.end", {"call_id": call_id}))["ok"]
        await alice.socket.wait_for("call.ended")
        await eventually(
            lambda: not open_server_connections(clients, before), 10, "no server connection open"
        )
        assert media.peers(call_id) == {}
        assert call_id not in media.call_ids()
        await eventually(lambda: not media._tasks, 10, "no relay task left")
    finally:
        await asyncio.gather(*(p.close() for p in peers), *(pc.close() for pc in extra))
        await close_all([alice, bob])


@pytest.mark.parametrize("how", ["leave", "end"])
async def test_offers_racing_a_leave_or_the_end_leave_no_connection(gateway, how):
    """Offers that arrive while their sender leaves, or while the call ends, do not survive it."""
    alice, bob, carol = await people(base_of(gateway), 3)
    media = gateway.app[keys.CALLS].media
    before = {id(o) for o in gc.get_objects() if isinstance(o, RTCPeerConnection)}
    clients: list[RTCPeerConnection] = []
    try:
        gid = await group(alice, [bob, carol])
        call_id = await start_call(alice, gid, "audio")
        await accept(bob, call_id)
        await accept(carol, call_id)
        for _ in range(6):
            pc = RTCPeerConnection()
            pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            clients.append(pc)
        offers = [
            carol.socket.call(
                "call.offer", {"call_id": call_id, "sdp": pc.localDescription.sdp}, timeout=20
            )
            for pc in clients
        ]
        if how == "leave":
            ending = carol.socket.call("call.leave", {"call_id": call_id}, timeout=20)
        else:
            ending = alice.socket.call("call.end", {"call_id": call_id}, timeout=20)
        *acks, ended = await asyncio.gather(*offers, ending)
        assert ended["ok"], ended
        for ack in acks:
            assert ack["ok"] or ack["error"]["code"] in {"not_in_call", "call_ended"}, ack
        await eventually(
            lambda: carol.user_id not in media.peers(call_id), 10, "carol's connection gone"
        )
        assert not open_server_connections({id(pc) for pc in clients}, before)
        if how == "end":
            assert call_id not in media.call_ids()
    finally:
        await asyncio.gather(*(pc.close() for pc in clients))
        await close_all([alice, bob, carol])
