"""The media relay: one aiortc ``RTCPeerConnection`` per participant, encoded frames forwarded.

Each participant's connection *publishes* the tracks the client sends and *subscribes* to every
other participant's tracks. Nothing is decoded or re-encoded here:

- **In**: aiortc's ``RTCRtpReceiver`` reassembles each frame (jitter buffer, NACKs, PLI on loss)
  and hands it to a decoder thread through a queue. aiortc has no public hook for the encoded
  frame (aiortc#449: "no way to short-circuit"), so ``EncodedTap`` takes that queue's place:
  frames go to our subscribers instead, and the idle decoder thread still gets its stop signal.
- **Out**: ``RTCRtpSender`` accepts an ``av.Packet`` instead of a frame and only packetizes it
  (``Encoder.pack``, the "pre-encoded" path of aiortc#939), so a ``ForwardTrack`` yields the
  publisher's packets with their original timestamps.

That costs per forwarded packet only RTP packetizing, SRTP and a UDP send — decoding and
re-encoding every stream for every receiver would not carry 8 people on 2 cores.

Keyframes: a subscriber starts (and restarts after an overflow) on a keyframe. VP8 keyframes
are recognized in the payload; a new subscriber, a subscriber's PLI and an overflow ask the
publisher for one (RTCP PLI upstream, at most every ``KEYFRAME_MIN_INTERVAL``). Only codecs that
pass through unchanged are negotiated: Opus and VP8 (H264 when the publisher sends it).

Negotiation: the client offers (its own tracks), the server answers; the server then offers
back to add the other participants' tracks, one offer at a time per participant (no glare:
clients never offer again on the same connection). A track whose publisher left keeps its
transceiver (``replaceTrack(None)``), which is reused for the next publisher of the same kind.
Every server offer keeps the payload types and RTP header-extension ids already negotiated on
the connection (``keep_numbering``), so clients apply it unchanged. A client's offers (and its
removal) are applied one at a time per participant, each replacing and closing the connection
before it, so concurrent offers leave exactly one connection, with no relayed track or task of
the replaced ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import SessionDescription, candidate_from_sdp

from messaging.calls.numbering import keep_numbering

log = logging.getLogger(__name__)

KEYFRAME_MIN_INTERVAL = 0.5  # seconds between PLIs sent to one publisher
QUEUE_MAX = 60  # packets waiting for one subscriber's sender before it is reset
ANSWER_TIMEOUT = 10.0  # seconds a client has to answer a server offer
FORWARDED_CODECS = {"audio/opus", "video/vp8", "video/h264", "video/rtx"}

# (session_id, event type, payload) -> delivered to that device
Signal = Callable[[str, str, dict[str, Any]], Awaitable[None]]


class SignallingError(Exception):
    """A client's SDP or ICE candidate the relay could not use (``code``, human message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_keyframe(mime_type: str, data: bytes) -> bool:
    if mime_type.lower() == "video/vp8":
        # VP8 frame tag (RFC 6386 §9.1): bit 0 of the first byte is 0 for a key frame.
        return bool(data) and not data[0] & 0x01
    return True  # not inspected: forwarded from the first frame on


class ForwardTrack(MediaStreamTrack):
    """One publisher's track as one subscriber's sender reads it: queued encoded packets."""

    def __init__(self, publication: Publication) -> None:
        super().__init__()
        self.kind = publication.kind
        self.publication = publication
        self._queue: asyncio.Queue[av.Packet | None] = asyncio.Queue()
        self._need_keyframe = publication.kind == "video"
        self.forwarded = 0

    def push(self, packet: av.Packet, keyframe: bool) -> None:
        if self.readyState != "live":
            return
        if self._need_keyframe:
            if not keyframe:
                self.publication.request_keyframe()
                return
            self._need_keyframe = False
        if self._queue.qsize() >= QUEUE_MAX:
            # The sender fell behind: drop what waits and restart on a keyframe.
            while not self._queue.empty():
                self._queue.get_nowait()
            if self.kind == "video":
                self._need_keyframe = True
                self.publication.request_keyframe()
                return
        self._queue.put_nowait(packet)

    def request_keyframe(self) -> None:
        """The subscriber lost a picture (its PLI/FIR reached our sender)."""
        self.publication.request_keyframe()

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        self.forwarded += 1
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            self._queue.put_nowait(None)
        super().stop()


class EncodedTap:
    """Stands in for an ``RTCRtpReceiver``'s decoder queue: encoded frames go to the publication.

    ``get`` and the ``None`` stop signal still reach the real queue, so aiortc's decoder thread
    (started with whichever object the attribute holds) blocks idle and exits on stop.
    """

    def __init__(self, original: queue.Queue, publication: Publication) -> None:
        self.original = original
        self.publication = publication

    def put(self, item: Any) -> None:
        if item is None:
            self.original.put(None)
            return
        codec, encoded_frame = item
        self.publication.on_frame(codec, encoded_frame)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.original.get(*args, **kwargs)


_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"


def tap_receiver(receiver: RTCRtpReceiver, publication: Publication) -> bool:
    original = getattr(receiver, _DECODER_QUEUE, None)
    if not isinstance(original, queue.Queue):
        return False  # an aiortc without that queue: see media.py's docstring
    setattr(receiver, _DECODER_QUEUE, EncodedTap(original, publication))
    return True


class Publication:
    """A track one participant sends, and the subscribers it is forwarded to."""

    def __init__(self, owner: str, kind: str, receiver: RTCRtpReceiver) -> None:
        self.owner = owner
        self.kind = kind
        self.receiver = receiver
        self.subscribers: set[ForwardTrack] = set()
        self.mime_type: str | None = None
        self.frames = 0
        self._last_pli = 0.0
        self._pli_task: asyncio.Task | None = None

    def subscribe(self) -> ForwardTrack:
        track = ForwardTrack(self)
        self.subscribers.add(track)
        if self.kind == "video":
            self.request_keyframe()
        return track

    def unsubscribe(self, track: ForwardTrack) -> None:
        self.subscribers.discard(track)
        track.stop()

    def on_frame(self, codec: Any, encoded_frame: Any) -> None:
        self.frames += 1
        self.mime_type = codec.mimeType
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = Fraction(1, codec.clockRate)
        keyframe = is_keyframe(codec.mimeType, encoded_frame.data)
        for track in list(self.subscribers):
            track.push(packet, keyframe)

    def request_keyframe(self) -> None:
        if self.kind != "video":
            return
        now = time.monotonic()
        if now - self._last_pli < KEYFRAME_MIN_INTERVAL:
            return
        sources = self.receiver.getSynchronizationSources()
        if not sources:
            return  # nothing received yet: the first frame is a keyframe anyway
        self._last_pli = now
        send_pli = self.receiver._send_rtcp_pli
        self._pli_task = asyncio.ensure_future(send_pli(sources[0].source))

    def close(self) -> None:
        for track in list(self.subscribers):
            self.unsubscribe(track)


@dataclass
class Subscription:
    publication: Publication
    track: ForwardTrack
    sender: RTCRtpSender


@dataclass
class Peer:
    """One participant's connection to the relay."""

    call_id: str
    user_id: str
    session_id: str
    pc: RTCPeerConnection
    publications: dict[str, Publication] = field(default_factory=dict)  # kind -> publication
    subscriptions: list[Subscription] = field(default_factory=list)
    pending_answer: asyncio.Future | None = None
    dirty: asyncio.Event = field(default_factory=asyncio.Event)
    negotiator: asyncio.Task | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    def track_map(self) -> list[dict[str, Any]]:
        """Which user each of the server's outgoing tracks carries, by transceiver mid."""
        by_sender = {id(s.sender): s for s in self.subscriptions}
        found = []
        for transceiver in self.pc.getTransceivers():
            sub = by_sender.get(id(transceiver.sender))
            if sub is not None and transceiver.mid is not None:
                found.append(
                    {
                        "mid": transceiver.mid,
                        "user_id": sub.publication.owner,
                        "kind": sub.track.kind,
                    }
                )
        return found


@dataclass
class _ParticipantLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class MediaServer:
    """Every call's peer connections on this node, keyed by call and user."""

    def __init__(
        self,
        ice_servers: list[dict[str, Any]],
        signal: Signal,
        on_connection_lost: Callable[[str, str, str], Awaitable[None]] | None = None,
    ) -> None:
        self.ice_servers = ice_servers
        self.signal = signal
        self.on_connection_lost = on_connection_lost
        self.calls: dict[str, dict[str, Peer]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._locks: dict[tuple[str, str], _ParticipantLock] = {}

    def peers(self, call_id: str) -> dict[str, Peer]:
        return self.calls.get(call_id, {})

    def call_ids(self) -> list[str]:
        return list(self.calls)

    def _configuration(self) -> RTCConfiguration:
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in self.ice_servers
        ]
        return RTCConfiguration(iceServers=servers or None)

    @contextlib.asynccontextmanager
    async def _serialized(self, call_id: str, user_id: str) -> AsyncIterator[None]:
        """One offer or removal at a time per participant (the lock lives while it is used)."""
        key = (call_id, user_id)
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = _ParticipantLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[key]

    async def handle_offer(self, call_id: str, user_id: str, session_id: str, sdp: str) -> str:
        """Apply a participant's offer on a fresh connection; returns the answer's SDP.

        Offers of one participant are applied one at a time, and each replaces (and closes) the
        connection before it, so however many arrive together one connection is left: the last.
        """
        check_offer(sdp)
        async with self._serialized(call_id, user_id):
            return await self._apply_offer(call_id, user_id, session_id, sdp)

    async def _apply_offer(self, call_id: str, user_id: str, session_id: str, sdp: str) -> str:
        offer = RTCSessionDescription(sdp=sdp, type="offer")
        pc = RTCPeerConnection(self._configuration())
        peer = Peer(call_id, user_id, session_id, pc)
        new_publications: list[Publication] = []

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            receiver = next(
                (t.receiver for t in pc.getTransceivers() if t.receiver.track is track), None
            )
            if receiver is None or track.kind in peer.publications:
                return  # one audio and one video track per participant
            publication = Publication(user_id, track.kind, receiver)
            if not tap_receiver(receiver, publication):
                log.warning("aiortc has no decoder queue to tap; %s not forwarded", track.kind)
                return
            peer.publications[track.kind] = publication
            new_publications.append(publication)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected":
                peer.connected.set()
            lost = pc.connectionState in {"failed", "closed"} and not peer.closed
            if lost and self.on_connection_lost is not None:
                await self.on_connection_lost(call_id, user_id, session_id)

        try:
            await pc.setRemoteDescription(offer)
            await pc.setLocalDescription(await pc.createAnswer())
        except BaseException as exc:
            peer.closed = True  # refused, not lost: the participant's connection goes on
            with contextlib.suppress(Exception):
                await pc.close()
            if not isinstance(exc, Exception):
                raise
            raise SignallingError("invalid_sdp", f"the offer could not be applied: {exc}") from None
        # Replace in one step (no await between reading and writing), then close the old one.
        peers = self.calls.setdefault(call_id, {})
        previous = peers.get(user_id)
        peers[user_id] = peer
        peer.negotiator = self._spawn(self._negotiate_forever(peer))
        if previous is not None:
            await self._close_peer(previous)
        for other in self.peers(call_id).values():
            if other is not peer and (new_publications or previous is not None):
                other.dirty.set()  # subscribe to the new tracks, drop the replaced ones
        peer.dirty.set()
        return pc.localDescription.sdp

    async def handle_answer(self, call_id: str, user_id: str, sdp: str) -> None:
        peer = self.peers(call_id).get(user_id)
        if peer is None or peer.pending_answer is None or peer.pending_answer.done():
            raise SignallingError("no_pending_offer", "the server has no offer waiting for you")
        try:
            answer = RTCSessionDescription(sdp=sdp, type="answer")
            await peer.pc.setRemoteDescription(answer)
        except Exception as exc:
            # The offer stays pending: the client may answer again within the timeout.
            raise SignallingError(
                "invalid_sdp", f"the answer could not be applied: {exc}"
            ) from None
        peer.pending_answer.set_result(True)

    async def handle_ice(self, call_id: str, user_id: str, candidate: dict[str, Any]) -> None:
        peer = self.peers(call_id).get(user_id)
        if peer is None:
            raise SignallingError("no_connection", "send call.offer before ICE candidates")
        line = candidate.get("candidate") or ""
        if not line:
            return  # end of candidates
        try:
            parsed = candidate_from_sdp(line.removeprefix("candidate:"))
            parsed.sdpMid = candidate.get("sdpMid")
            parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
            await peer.pc.addIceCandidate(parsed)
        except Exception as exc:
            raise SignallingError(
                "invalid_ice", f"the ICE candidate is not usable: {exc}"
            ) from None

    async def remove(self, call_id: str, user_id: str) -> None:
        async with self._serialized(call_id, user_id):  # after an offer being applied
            peers = self.calls.get(call_id, {})
            peer = peers.pop(user_id, None)
            if not peers:
                self.calls.pop(call_id, None)
            if peer is None:
                return
            await self._close_peer(peer)
        for other in self.peers(call_id).values():
            other.dirty.set()

    async def close_call(self, call_id: str) -> None:
        peers = self.calls.pop(call_id, {})
        await asyncio.gather(*(self._close_peer(p) for p in peers.values()))

    async def close(self) -> None:
        for call_id in list(self.calls):
            await self.close_call(call_id)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def stats(self, call_id: str) -> dict[str, Any]:
        """Frames received per publisher and forwarded per subscriber (for tests and benches)."""
        return {
            user_id: {
                "received": {k: p.frames for k, p in peer.publications.items()},
                "forwarded": sum(s.track.forwarded for s in peer.subscriptions),
            }
            for user_id, peer in self.peers(call_id).items()
        }

    # -- internals ------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _close_peer(self, peer: Peer) -> None:
        peer.closed = True
        if peer.negotiator is not None and peer.negotiator is not asyncio.current_task():
            peer.negotiator.cancel()
        for publication in peer.publications.values():
            publication.close()
        for sub in peer.subscriptions:
            sub.publication.unsubscribe(sub.track)
        peer.subscriptions.clear()
        with contextlib.suppress(Exception):
            await peer.pc.close()

    async def _negotiate_forever(self, peer: Peer) -> None:
        """Bring this peer's subscriptions in line with the call, one offer at a time.

        The first server offer waits for the connection: by then the client has applied our
        answer, so the offer cannot cross its own.
        """
        await peer.connected.wait()
        while not peer.closed:
            await peer.dirty.wait()
            peer.dirty.clear()
            try:
                await self._sync_subscriptions(peer)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("renegotiation with %s failed", peer.user_id)

    async def _sync_subscriptions(self, peer: Peer) -> None:
        wanted = [
            pub
            for other in self.peers(peer.call_id).values()
            if other is not peer
            for pub in other.publications.values()
        ]
        current = {id(s.publication) for s in peer.subscriptions}
        keep = []
        for sub in peer.subscriptions:
            if sub.publication in wanted:
                keep.append(sub)
            else:
                sub.publication.unsubscribe(sub.track)
                sub.sender.replaceTrack(None)  # the transceiver stays, free for reuse
        peer.subscriptions = keep
        added = [pub for pub in wanted if id(pub) not in current]
        if not added and len(keep) == len(current):
            return
        offer_needed = False
        busy = {id(s.sender) for s in peer.subscriptions}
        for pub in added:
            track = pub.subscribe()
            free = next(
                (
                    t
                    for t in peer.pc.getTransceivers()
                    if t.kind == pub.kind
                    and t.direction == "sendonly"
                    and id(t.sender) not in busy
                    and not t.stopped
                ),
                None,
            )
            if free is not None:
                free.sender.replaceTrack(track)
                sender = free.sender
            else:
                transceiver = peer.pc.addTransceiver(track, direction="sendonly")
                _prefer_forwardable(transceiver, pub.mime_type)
                sender = transceiver.sender
                offer_needed = True
            sender._send_keyframe = track.request_keyframe  # PLI from the subscriber: upstream
            busy.add(id(sender))
            peer.subscriptions.append(Subscription(pub, track, sender))
        if offer_needed:
            offer = await peer.pc.createOffer()
            try:
                offer = keep_numbering(peer.pc, offer)
            except Exception:
                log.exception("could not keep the numbering of %s's connection", peer.user_id)
            await peer.pc.setLocalDescription(offer)
            peer.pending_answer = asyncio.get_running_loop().create_future()
            await self.signal(
                peer.session_id,
                "call.offer",
                {
                    "call_id": peer.call_id,
                    "type": "offer",
                    "sdp": peer.pc.localDescription.sdp,
                    "tracks": peer.track_map(),
                },
            )
            try:
                await asyncio.wait_for(peer.pending_answer, ANSWER_TIMEOUT)
            except TimeoutError:
                # Left in have-local-offer: the next change offers again (with this one's tracks).
                log.warning("%s did not answer the server's offer", peer.user_id)
                return
        else:
            await self.signal(
                peer.session_id,
                "call.tracks",
                {"call_id": peer.call_id, "tracks": peer.track_map()},
            )


def _prefer_forwardable(transceiver: Any, mime_type: str | None = None) -> None:
    """Negotiate only codecs the relay forwards unchanged (and the publisher's, when known)."""
    capabilities = RTCRtpSender.getCapabilities(transceiver.kind)
    if capabilities is None:
        return
    codecs = [c for c in capabilities.codecs if c.mimeType.lower() in FORWARDED_CODECS]
    if mime_type is not None:
        codecs = [
            c for c in codecs if c.mimeType.lower() in {mime_type.lower(), "video/rtx"}
        ] or codecs
    with contextlib.suppress(Exception):
        transceiver.setCodecPreferences(codecs)


def check_offer(text: str) -> None:
    """Refuse an offer aiortc would accept but no call could use (it parses almost anything)."""
    try:
        parsed = SessionDescription.parse(text)
    except Exception as exc:
        raise SignallingError("invalid_sdp", f"the offer is not SDP: {exc}") from None
    media = [m for m in parsed.media if m.kind in {"audio", "video"}]
    if not media:
        raise SignallingError("invalid_sdp", "the offer has no audio or video section")
    for m in media:
        if m.ice is None or not m.ice.usernameFragment or not m.ice.password:
            raise SignallingError("invalid_sdp", f"the {m.kind} section has no ICE credentials")
        if m.dtls is None or not m.dtls.fingerprints:
            raise SignallingError("invalid_sdp", f"the {m.kind} section has no DTLS fingerprint")


def restrict_host_candidates(addresses: list[str]) -> None:
    """Offer only these local addresses as ICE host candidates (``CALL_MEDIA_HOST``).

    aioice gathers on every interface but loopback and has no per-connection option, so this
    replaces its address lookup for the process (the relay is the only WebRTC user in it).
    """
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(addresses)
