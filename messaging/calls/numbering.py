"""Stable RTP numbering on renegotiation: the relay's re-offers keep the payload types and
header-extension ids already negotiated on a connection.

aiortc's ``createOffer`` numbers every offer with its own defaults; after a client-first
exchange (the browser's numbering) a server re-offer would renumber, which Chromium refuses and
which would strand the relay's receivers on the old numbers. ``keep_numbering`` rewrites the
offer before ``setLocalDescription`` (see docs/ARCHITECTURE.md, "Calls from a browser").
"""

from __future__ import annotations

from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import is_rtx
from aiortc.sdp import SessionDescription


def _codec_key(codec: Any, by_pt: dict[int, Any]) -> str | None:
    """A codec's identity whatever its payload type: ``video/vp8/90000/1``, ``rtx:…``."""
    mime = codec.mimeType.lower()
    if mime.endswith("/rtx"):
        base = by_pt.get(codec.parameters.get("apt"))
        return None if base is None or is_rtx(base) else f"rtx:{_codec_key(base, {})}"
    key = f"{mime}/{codec.clockRate}/{codec.channels or 1}"
    if mime == "video/h264":
        profile = str(codec.parameters.get("profile-level-id", "42e01f")).lower()
        key += f";{profile};{codec.parameters.get('packetization-mode', '0')}"
    return key


class Numbering:
    """The payload types and RTP header-extension ids negotiated on one connection.

    Learned from its descriptions (the client's latest first): payload types per
    m-section (mid) and per codec across the BUNDLE, extension ids per URI (one id space for
    the whole BUNDLE).
    """

    def __init__(self, descriptions: list[str]) -> None:
        self.pt_by_key: dict[str, int] = {}
        self.pt_by_mid: dict[str, dict[str, int]] = {}
        self.used_pts: set[int] = set()
        self.ext_by_uri: dict[str, int] = {}
        self.used_ext: set[int] = set()
        for text in descriptions:
            for media in SessionDescription.parse(text).media:
                if media.kind in {"audio", "video"}:
                    self._learn(media)

    def _learn(self, media: Any) -> None:
        by_pt = {c.payloadType: c for c in media.rtp.codecs}
        in_mid = self.pt_by_mid.setdefault(media.rtp.muxId, {})
        for codec in media.rtp.codecs:
            key = _codec_key(codec, by_pt)
            self.used_pts.add(codec.payloadType)
            if key is not None:
                self.pt_by_key.setdefault(key, codec.payloadType)
                in_mid.setdefault(key, codec.payloadType)
        for extension in media.rtp.headerExtensions:
            self.ext_by_uri.setdefault(extension.uri, extension.id)
            self.used_ext.add(extension.id)

    def _free_pt(self) -> int | None:
        for pt in [*range(96, 128), *range(35, 64)]:
            if pt not in self.used_pts:
                return pt
        return None

    def _free_ext(self) -> int | None:
        return next((i for i in range(1, 15) if i not in self.used_ext), None)

    def apply(self, media: Any) -> None:
        """Renumber one m-section of our offer in place (codecs with no number left out)."""
        by_pt = {c.payloadType: c for c in media.rtp.codecs}
        in_mid = self.pt_by_mid.get(media.rtp.muxId, {})
        remap: dict[int, int] = {}
        taken: set[int] = set()  # numbers given in this section
        for codec in sorted(media.rtp.codecs, key=is_rtx):  # base codecs before their RTX
            key = _codec_key(codec, by_pt)
            if key is None or (is_rtx(codec) and codec.parameters["apt"] not in remap):
                continue
            target = in_mid.get(key, self.pt_by_key.get(key))
            if target is None or target in taken:
                target = codec.payloadType if codec.payloadType not in self.used_pts else None
                target = target if target is not None else self._free_pt()
                if target is None:
                    continue
                self.pt_by_key.setdefault(key, target)
                self.used_pts.add(target)
            remap[codec.payloadType] = target
            taken.add(target)
        codecs = []
        for codec in media.rtp.codecs:
            if codec.payloadType not in remap:
                continue
            if is_rtx(codec):
                codec.parameters["apt"] = remap[codec.parameters["apt"]]
            codec.payloadType = remap[codec.payloadType]
            codecs.append(codec)
        media.rtp.codecs = codecs
        media.fmt = [c.payloadType for c in codecs]
        extensions = []
        for extension in media.rtp.headerExtensions:
            ext_id = self.ext_by_uri.get(extension.uri)
            if ext_id is None:
                ext_id = extension.id if extension.id not in self.used_ext else self._free_ext()
                if ext_id is None:
                    continue  # no id left: leave the extension out
                self.ext_by_uri[extension.uri] = ext_id
                self.used_ext.add(ext_id)
            extension.id = ext_id
            extensions.append(extension)
        media.rtp.headerExtensions = extensions


def keep_numbering(pc: RTCPeerConnection, offer: RTCSessionDescription) -> RTCSessionDescription:
    """Our re-offer with the payload types and extension ids already negotiated on ``pc``.

    aiortc's ``createOffer`` numbers codecs and header extensions afresh (its own defaults),
    not as the client numbered them in the first exchange. Browsers refuse a renumbered
    extension ("RTP extension ID reassignment not supported"), and a client that switched to
    new payload types would no longer be understood by our receivers, which keep the first
    ones. So every m-section keeps its numbers, a new m-section takes the numbers the
    connection already uses for the same codec, and anything new takes a free number. Then
    the transceivers are told, so what aiortc sends matches what we offered; the client's
    answer echoes these numbers, and aiortc's senders start from that answer.
    """
    known = [d.sdp for d in (pc.remoteDescription, pc.localDescription) if d is not None]
    numbering = Numbering(known)
    parsed = SessionDescription.parse(offer.sdp)
    by_mid = {t.mid: t for t in pc.getTransceivers() if t.mid is not None}
    by_index = {t._get_mline_index(): t for t in pc.getTransceivers() if t.mid is None}
    for index, media in enumerate(parsed.media):
        if media.kind not in {"audio", "video"}:
            continue
        numbering.apply(media)
        transceiver = by_mid.get(media.rtp.muxId) or by_index.get(index)
        if transceiver is not None:
            transceiver._codecs = media.rtp.codecs
            transceiver._headerExtensions = media.rtp.headerExtensions
    return RTCSessionDescription(sdp=str(parsed), type=offer.type)
