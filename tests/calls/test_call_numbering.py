"""The relay's re-offers keep the numbering of the first exchange: a client that numbers its
codecs and RTP header extensions like Chromium (not like aiortc) sees the same payload types
and extension ids in every later server offer, in the m-sections it negotiated and in the new
ones, and media keeps flowing both ways."""

from __future__ import annotations

import asyncio

from aiortc import AudioStreamTrack, RTCSessionDescription
from aiortc.sdp import SessionDescription

from tests.calls.call_helpers import (
    CallPeer,
    SyntheticVideo,
    accept,
    events_of,
    start_call,
)
from tests.messaging.chat_helpers import close_all, group, people

# aiortc's own numbers -> the numbers Chromium gives the same codecs and extensions.
CHROME_PT = {"audio": {96: 111}, "video": {97: 96, 98: 97, 99: 102, 100: 103, 101: 108, 102: 109}}
CHROME_EXT = {
    "urn:ietf:params:rtp-hdrext:sdes:mid": 4,
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level": 1,
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": 2,
}


def base_of(gateway) -> str:
    return str(gateway.make_url("")).rstrip("/")


def renumber_like_chrome(sdp: str) -> str:
    parsed = SessionDescription.parse(sdp)
    for media in parsed.media:
        remap = CHROME_PT.get(media.kind, {})
        for codec in media.rtp.codecs:
            if "apt" in codec.parameters:
                codec.parameters["apt"] = remap.get(codec.parameters["apt"])
            codec.payloadType = remap.get(codec.payloadType, codec.payloadType)
        media.fmt = [c.payloadType for c in media.rtp.codecs]
        for extension in media.rtp.headerExtensions:
            extension.id = CHROME_EXT[extension.uri]
    return str(parsed)


class ChromeNumberedPeer(CallPeer):
    """An aiortc client whose offer carries Chromium's numbers (its senders then use them)."""

    async def connect(self) -> None:
        self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        self.pc.addTransceiver(SyntheticVideo(), direction="sendonly")
        offer = await self.pc.createOffer()
        self.first_offer = renumber_like_chrome(offer.sdp)
        await self.pc.setLocalDescription(RTCSessionDescription(self.first_offer, "offer"))
        ack = await self.person.socket.call(
            "call.offer", {"call_id": self.call_id, "sdp": self.first_offer}, timeout=15
        )
        assert ack["ok"], ack
        self.first_answer = ack["answer"]["sdp"]
        await self.pc.setRemoteDescription(RTCSessionDescription(**ack["answer"]))
        self._ready.set()


def codec_key(codec, by_pt) -> tuple:
    if codec.name.lower() == "rtx":
        return ("rtx", *codec_key(by_pt[codec.parameters["apt"]], by_pt))
    profile = str(codec.parameters.get("profile-level-id", "")).lower()
    return (codec.mimeType.lower(), codec.clockRate, profile)


def numbering(sdp: str) -> tuple[dict, dict, dict]:
    """(codec key -> payload type, extension uri -> id, mid -> payload types) of one SDP."""
    pts: dict[tuple, int] = {}
    exts: dict[str, int] = {}
    by_mid: dict[str, list[int]] = {}
    for media in SessionDescription.parse(sdp).media:
        by_pt = {c.payloadType: c for c in media.rtp.codecs}
        for codec in media.rtp.codecs:
            key = codec_key(codec, by_pt)
            assert pts.setdefault(key, codec.payloadType) == codec.payloadType, (key, sdp)
        for extension in media.rtp.headerExtensions:
            assert exts.setdefault(extension.uri, extension.id) == extension.id, sdp
        by_mid[media.rtp.muxId] = list(media.fmt)
    return pts, exts, by_mid


async def test_server_reoffers_keep_the_first_exchanges_payload_types_and_extension_ids(
    gateway,
):
    everyone = await people(base_of(gateway), 3)
    alice, bob, carol = everyone
    peers: list[CallPeer] = []
    try:
        gid = await group(alice, [bob, carol])
        call_id = await start_call(alice, gid, "video")
        await asyncio.gather(accept(bob, call_id), accept(carol, call_id))
        a = ChromeNumberedPeer(alice, call_id)
        b, c = CallPeer(bob, call_id), CallPeer(carol, call_id)
        peers = [a, b, c]
        await asyncio.gather(a.connect(), b.connect())
        for kind in ("video", "audio"):
            await a.wait_frames(bob.user_id, kind, 5)
            await b.wait_frames(alice.user_id, kind, 5)
        await c.connect()  # a second server offer to alice, made after the first was answered
        for kind in ("video", "audio"):
            await a.wait_frames(carol.user_id, kind, 5, timeout=30)
            await c.wait_frames(alice.user_id, kind, 5, timeout=30)
            await a.wait_frames(bob.user_id, kind, 5)

        offered_pts, offered_exts, _ = numbering(a.first_offer)
        answered_pts, answered_exts, answered_mids = numbering(a.first_answer)
        assert answered_exts == {uri: offered_exts[uri] for uri in answered_exts}
        assert answered_pts["audio/opus", 48000, ""] == 111
        assert answered_pts["video/vp8", 90000, ""] == 96

        offers = [o["sdp"] for o in events_of(alice, "call.offer") if o["call_id"] == call_id]
        assert len(offers) >= 2, offers
        for sdp in offers:
            pts, exts, mids = numbering(sdp)
            # every extension and codec keeps the id / payload type negotiated first
            assert exts == {uri: answered_exts[uri] for uri in exts}, sdp
            assert set(exts) == set(answered_exts)
            assert pts == {key: offered_pts[key] for key in pts}, sdp
            # the m-sections of the first exchange offer exactly the numbers answered then
            for mid, fmt in answered_mids.items():
                assert mids[mid] == fmt, (mid, sdp)
            assert len(mids) > len(answered_mids)  # the other participants' tracks
    finally:
        await asyncio.gather(*(p.close() for p in peers))
        await close_all(everyone)
