// A call's media (docs/realtime.md#calls): one RTCPeerConnection to the server's relay. We offer
// our camera and microphone as send-only transceivers (`call.offer`, the ack carries the answer);
// the server then offers the other participants' tracks (`call.offer` events with a `tracks` map
// mid → user) and we answer (`call.answer`). Each remote person gets one <video> element.

import { el } from "./dom.js";

function gatheringDone(pc, timeoutMs = 2000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

export class CallSession {
  /**
   * @param {object} options - {call, socketCall(event, payload) → ack, api, container, media, names}
   */
  constructor({ call, socketCall, api, container, names }) {
    this.call = call;
    this.id = call.id;
    this.socketCall = socketCall;
    this.api = api;
    this.container = container;
    this.names = names || ((id) => id);
    this.pc = null;
    this.local = null;
    this.tracks = new Map(); // mid → {user_id, kind}
    this.streams = new Map(); // user_id → MediaStream
    this.videos = new Map(); // user_id → <video>
    this.queue = Promise.resolve();
    this.closed = false;
  }

  async start() {
    const video = this.call.media === "video";
    this.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: video ? { width: 640, height: 360 } : false });
    const self = el("video", { class: "call-video call-self", "data-testid": "local-video", muted: true, autoplay: true, playsinline: true, "aria-label": "Your camera" });
    self.muted = true;
    self.srcObject = this.local;
    this.container.append(self);
    let iceServers = [];
    try {
      iceServers = (await this.api.get("/api/v1/calls/ice-servers")).ice_servers || [];
    } catch {
      iceServers = [];
    }
    // One transport for every m-line, as the relay offers (and it never needs a second one).
    const pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
    this.pc = pc;
    for (const track of this.local.getTracks()) {
      pc.addTransceiver(track, { direction: "sendonly", streams: [this.local] });
    }
    pc.addEventListener("track", (event) => this.onTrack(event));
    pc.addEventListener("connectionstatechange", () => {
      this.container.dataset.state = pc.connectionState;
    });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await gatheringDone(pc);
    const ack = await this.socketCall("call.offer", { call_id: this.id, sdp: pc.localDescription.sdp });
    await pc.setRemoteDescription(ack.answer);
  }

  /** A `call.offer` from the server: apply it and answer (one at a time, in order). */
  onServerOffer(payload) {
    this.queue = this.queue.then(async () => {
      if (this.closed || !this.pc) return;
      this.setTracks(payload.tracks);
      // The relay keeps the payload types and extension ids negotiated on this connection.
      await this.pc.setRemoteDescription({ type: "offer", sdp: payload.sdp });
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription(answer);
      await this.socketCall("call.answer", { call_id: this.id, sdp: this.pc.localDescription.sdp });
      this.assignTracks();
    }).catch((error) => console.warn("call renegotiation failed", error));
    return this.queue;
  }

  setTracks(tracks) {
    if (!Array.isArray(tracks)) return;
    this.tracks = new Map(tracks.map((t) => [String(t.mid), t]));
    this.assignTracks();
  }

  onTrack(event) {
    this.assignTracks();
    event.track.addEventListener("unmute", () => this.assignTracks());
  }

  /** Put every received track into its owner's stream (owners come from the `tracks` map). */
  assignTracks() {
    if (!this.pc) return;
    const wanted = new Map();
    for (const transceiver of this.pc.getTransceivers()) {
      const owner = this.tracks.get(String(transceiver.mid));
      if (!owner || !transceiver.receiver?.track) continue;
      if (!wanted.has(owner.user_id)) wanted.set(owner.user_id, []);
      wanted.get(owner.user_id).push(transceiver.receiver.track);
    }
    for (const [userId, tracks] of wanted) {
      let stream = this.streams.get(userId);
      if (!stream) {
        stream = new MediaStream();
        this.streams.set(userId, stream);
        const video = el("video", { class: "call-video call-remote", "data-testid": "remote-video", "data-user-id": userId, autoplay: true, playsinline: true, "aria-label": `Video of ${this.names(userId)}` });
        video.srcObject = stream;
        this.videos.set(userId, video);
        this.container.append(el("figure", { class: "call-tile" }, video, el("figcaption", {}, this.names(userId))));
      }
      for (const track of stream.getTracks()) if (!tracks.includes(track)) stream.removeTrack(track);
      for (const track of tracks) if (!stream.getTracks().includes(track)) stream.addTrack(track);
      const video = this.videos.get(userId);
      if (video.paused) video.play().catch(() => {});
    }
  }

  removeParticipant(userId) {
    const video = this.videos.get(userId);
    if (video) video.closest("figure")?.remove();
    this.videos.delete(userId);
    this.streams.delete(userId);
  }

  setMuted({ audio, video }) {
    for (const track of this.local?.getAudioTracks() || []) track.enabled = audio;
    for (const track of this.local?.getVideoTracks() || []) track.enabled = video;
    return this.socketCall("call.media_state", { call_id: this.id, audio, video }).catch(() => {});
  }

  close() {
    this.closed = true;
    if (this.pc) this.pc.close();
    for (const track of this.local?.getTracks() || []) track.stop();
    this.pc = null;
  }
}
