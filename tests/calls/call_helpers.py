"""Call participants as real WebRTC clients: an aiortc peer connection per person, synthetic
audio and video, and the signalling over the person's Socket.IO connection."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
from typing import Any

from aiortc import AudioStreamTrack, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from av import VideoFrame

from tests.helpers import eventually
from tests.messaging.chat_helpers import Person

FPS = 15


class SyntheticVideo(VideoStreamTrack):
    """320x240 frames at 15 fps whose brightness changes, so the encoder has work to do."""

    async def next_timestamp(self) -> tuple[int, fractions.Fraction]:
        if not hasattr(self, "_timestamp"):
            self._start = asyncio.get_running_loop().time()
            self._timestamp = 0
        else:
            self._timestamp += 90_000 // FPS
            wait = self._start + self._timestamp / 90_000 - asyncio.get_running_loop().time()
            await asyncio.sleep(max(0.0, wait))
        return self._timestamp, fractions.Fraction(1, 90_000)

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=320, height=240)
        shade = (pts // (90_000 // FPS)) % 200
        for plane in frame.planes:
            plane.update(bytes([shade]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


class CallPeer:
    """One person's media in a call: sends audio (+ video), records what it receives."""

    def __init__(self, person: Person, call_id: str, media: str = "video") -> None:
        self.person = person
        self.call_id = call_id
        self.media = media
        self.pc = RTCPeerConnection()
        self.track_owners: dict[str, dict[str, Any]] = {}  # mid -> {user_id, kind}
        self.pts: dict[str, list[int]] = {}  # mid -> timestamps of received frames
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.server_offers = 0

        @self.pc.on("track")
        def on_track(track) -> None:
            self._tasks.append(asyncio.ensure_future(self._consume(track)))

        sio = person.socket.sio

        @sio.on("call.offer")
        async def on_offer(data: dict) -> None:
            person.socket.events.append(("call.offer", data))
            person.socket._arrived.set()
            if data.get("call_id") == self.call_id:
                self._tasks.append(asyncio.ensure_future(self._answer(data)))

        @sio.on("call.tracks")
        async def on_tracks(data: dict) -> None:
            person.socket.events.append(("call.tracks", data))
            person.socket._arrived.set()
            if data.get("call_id") == self.call_id:
                self._note_tracks(data["tracks"])

    def _note_tracks(self, tracks: list[dict]) -> None:
        self.track_owners = {t["mid"]: t for t in tracks}

    def _mid_of(self, track) -> str | None:
        for transceiver in self.pc.getTransceivers():
            if transceiver.receiver.track is track:
                return transceiver.mid
        return None

    async def _consume(self, track) -> None:
        mid = self._mid_of(track)
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            self.pts.setdefault(mid or track.id, []).append(frame.pts)

    async def connect(self) -> None:
        self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        if self.media == "video":
            self.pc.addTransceiver(SyntheticVideo(), direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        ack = await self.person.socket.call(
            "call.offer",
            {"call_id": self.call_id, "sdp": self.pc.localDescription.sdp},
            timeout=15,
        )
        assert ack["ok"], ack
        await self.pc.setRemoteDescription(RTCSessionDescription(**ack["answer"]))
        self._ready.set()

    async def _answer(self, offer: dict) -> None:
        await self._ready.wait()
        self.server_offers += 1
        await self.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._note_tracks(offer["tracks"])
        ack = await self.person.socket.call(
            "call.answer",
            {"call_id": self.call_id, "sdp": self.pc.localDescription.sdp},
            timeout=15,
        )
        assert ack["ok"], ack

    def frames_from(self, user_id: str, kind: str) -> list[int]:
        for mid, owner in self.track_owners.items():
            if owner["user_id"] == user_id and owner["kind"] == kind:
                return self.pts.get(mid, [])
        return []

    async def wait_frames(self, user_id: str, kind: str, count: int, timeout: float = 20) -> None:
        """Until ``count`` more frames of that user's track arrived, with advancing timestamps."""
        start = len(self.frames_from(user_id, kind))

        def enough() -> bool:
            got = self.frames_from(user_id, kind)
            return len(got) - start >= count

        await eventually(enough, timeout, f"{count} {kind} frames from {user_id}")
        got = self.frames_from(user_id, kind)[start:]
        assert got[-1] > got[0], f"{kind} timestamps do not advance: {got[:5]}…"

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await self.pc.close()


def events_of(person: Person, name: str) -> list[dict]:
    return [data for event, data in person.socket.events if event == name]


async def start_call(caller: Person, conversation_id: str, media: str = "video") -> str:
    ack = await caller.socket.call(
        "call.start", {"conversation_id": conversation_id, "media": media}
    )
    assert ack["ok"], ack
    return ack["call"]["id"]


async def accept(person: Person, call_id: str) -> dict:
    await person.socket.wait_for("call.ring")
    ack = await person.socket.call("call.accept", {"call_id": call_id})
    assert ack["ok"], ack
    return ack["call"]


def call_records(person: Person, conversation_id: str, *, final: bool = True) -> list[dict]:
    """The call messages this person has, each as its latest version (a call's message is
    posted when it starts and redrawn when it is answered and when it ends); with ``final``,
    only those whose call has ended."""
    latest: dict[str, dict] = {}
    for name, data in person.socket.events:
        if name not in ("message.new", "message.updated"):
            continue
        message = data["message"]
        if message["conversation_id"] != conversation_id or message["type"] != "call":
            continue
        seen = latest.get(message["id"])
        if seen is None or message["version"] >= seen["version"]:
            latest[message["id"]] = message
    live = ("ringing", "ongoing")
    return [m for m in latest.values() if not final or m["call"]["outcome"] not in live]
