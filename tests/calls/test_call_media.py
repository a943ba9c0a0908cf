"""Media through the relay, with real aiortc peers as clients over loopback: frames arrive and
their timestamps advance; a group call carries everyone to everyone; bad SDP and ICE are
refused without harming the call."""

from __future__ import annotations

import asyncio

from tests.calls.call_helpers import CallPeer, accept, call_records, start_call
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, direct, group, people


def base_of(gateway) -> str:
    return str(gateway.make_url("")).rstrip("/")


async def test_one_to_one_video_call_carries_audio_and_video_both_ways(gateway):
    alice, bob = await people(base_of(gateway), 2)
    peers: list[CallPeer] = []
    try:
        cid = await direct(alice, bob)
        call_id = await start_call(alice, cid, "video")
        await accept(bob, call_id)
        peers = [CallPeer(alice, call_id), CallPeer(bob, call_id)]
        await asyncio.gather(*(p.connect() for p in peers))
        a, b = peers
        for kind in ("video", "audio"):
            await a.wait_frames(bob.user_id, kind, 10)
            await b.wait_frames(alice.user_id, kind, 10)

        assert (await bob.socket.call("call.end", {"call_id": call_id}))["ok"]
        ended = (await alice.socket.wait_for("call.ended"))[0]
        assert ended["call"]["outcome"] == "completed"
        record = await eventually(lambda: call_records(alice, cid), what="the call record")
        assert record[0]["call"]["media"] == "video"
        assert isinstance(record[0]["call"]["duration_seconds"], int)
        assert record[0]["text"].startswith("Video call, ")
    finally:
        await asyncio.gather(*(p.close() for p in peers))
        await close_all([alice, bob])


async def test_four_person_video_call_everyone_sees_everyone_and_survives_a_leave(gateway):
    everyone = await people(base_of(gateway), 4)
    owner, *others = everyone
    peers: list[CallPeer] = []
    try:
        gid = await group(owner, others)
        call_id = await start_call(owner, gid, "video")
        await asyncio.gather(*(accept(p, call_id) for p in others))
        peers = [CallPeer(p, call_id) for p in everyone]
        await asyncio.gather(*(p.connect() for p in peers))
        for peer in peers:
            for person in everyone:
                if person is not peer.person:
                    await peer.wait_frames(person.user_id, "video", 5, timeout=30)
            assert len([o for o in peer.track_owners.values() if o["kind"] == "video"]) == 3

        leaver = others[-1]
        assert (await leaver.socket.call("call.leave", {"call_id": call_id}))["ok"]
        stayers = [p for p in peers if p.person is not leaver]
        for peer in stayers:
            await peer.person.socket.wait_for("call.participant_left")
        for peer in stayers:
            for other in stayers:
                if other is not peer:
                    await peer.wait_frames(other.person.user_id, "video", 5, timeout=30)
    finally:
        await asyncio.gather(*(p.close() for p in peers))
        await close_all(everyone)


async def test_malformed_sdp_and_ice_are_refused_and_the_call_goes_on(gateway):
    alice, bob = await people(base_of(gateway), 2)
    peers: list[CallPeer] = []
    try:
        cid = await direct(alice, bob)
        call_id = await start_call(alice, cid, "audio")
        await accept(bob, call_id)
        peers = [CallPeer(alice, call_id, "audio"), CallPeer(bob, call_id, "audio")]

        bad = await alice.socket.call("call.offer", {"call_id": call_id, "sdp": "not an sdp"})
        assert bad["error"]["code"] == "invalid_sdp", bad
        no_conn = await alice.socket.call(
            "call.ice", {"call_id": call_id, "candidate": {"candidate": "candidate:1 1 udp"}}
        )
        assert no_conn["error"]["code"] == "no_connection"

        await asyncio.gather(*(p.connect() for p in peers))
        await peers[0].wait_frames(bob.user_id, "audio", 10)

        for candidate in ("candidate:garbage", "candidate:1 1 udp notanumber 1.2.3.4 9 typ host"):
            ack = await alice.socket.call(
                "call.ice",
                {"call_id": call_id, "candidate": {"candidate": candidate, "sdpMid": "0"}},
            )
            assert ack["error"]["code"] == "invalid_ice", ack
        stray = await alice.socket.call("call.answer", {"call_id": call_id, "sdp": "v=0"})
        assert stray["error"]["code"] == "no_pending_offer"
        bad_again = await bob.socket.call("call.offer", {"call_id": call_id, "sdp": "v=0\r\nx"})
        assert bad_again["error"]["code"] == "invalid_sdp"

        # Still a live call, media still flowing both ways.
        await peers[0].wait_frames(bob.user_id, "audio", 10)
        await peers[1].wait_frames(alice.user_id, "audio", 10)
        assert not [e for e, _ in alice.socket.events if e == "call.ended"]
    finally:
        await asyncio.gather(*(p.close() for p in peers))
        await close_all([alice, bob])
