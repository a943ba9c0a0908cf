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

const EXTMAP = /^a=extmap:(\d+)(\/\w+)?\s+(\S+)(.*)$/;

/**
 * The relay (aiortc) numbers RTP header extensions afresh in every offer it makes, but a browser
 * refuses to renumber an extension within a session ("RTP extension ID reassignment not
 * supported"). So before applying a server offer, give each extension the id this session
 * already uses for it, and extensions new to the session ids that are still free.
 */
export function alignExtensionIds(sdp, ...negotiated) {
  const idOf = new Map();
  const taken = new Set();
  for (const description of negotiated) {
    for (const line of (description || "").split(/\r?\n/)) {
      const match = EXTMAP.exec(line);
      if (match && !idOf.has(match[3])) {
        idOf.set(match[3], Number(match[1]));
        taken.add(Number(match[1]));
      }
    }
  }
  const free = () => {
    for (let id = 1; id <= 14; id += 1) if (!taken.has(id)) return id;
    return null;
  };
  const lines = sdp.split(/\r\n/);
  const out = [];
  for (const line of lines) {
    const match = EXTMAP.exec(line);
    if (!match) {
      out.push(line);
      continue;
    }
    const uri = match[3];
    if (!idOf.has(uri)) {
      const id = free();
      if (id === null) continue; // no room: leave the extension out
      idOf.set(uri, id);
      taken.add(id);
    }
    out.push(`a=extmap:${idOf.get(uri)}${match[2] || ""} ${uri}${match[4]}`);
  }
  return out.join("\r\n");
}

/** Split an SDP into its session part and its m-sections (arrays of lines). */
function sections(sdp) {
  const lines = (sdp || "").split(/\r?\n/).filter((line) => line !== "");
  const out = [[]];
  for (const line of lines) {
    if (line.startsWith("m=")) out.push([]);
    out[out.length - 1].push(line);
  }
  return out;
}

/** A codec's identity, independent of its payload type: "vp8/90000", "opus/48000/2", … */
function codecKeys(section) {
  const names = new Map();
  const fmtp = new Map();
  for (const line of section) {
    let match = /^a=rtpmap:(\d+) (.+)$/.exec(line);
    if (match) names.set(Number(match[1]), match[2].toLowerCase());
    match = /^a=fmtp:(\d+) (.+)$/.exec(line);
    if (match) fmtp.set(Number(match[1]), match[2]);
  }
  const keys = new Map(); // pt → key
  for (const [pt, name] of names) {
    if (name.startsWith("rtx/")) continue;
    const params = fmtp.get(pt) || "";
    const h264 = name.startsWith("h264/") ? `;${/profile-level-id=(\w+)/.exec(params)?.[1] || ""};${/packetization-mode=(\d)/.exec(params)?.[1] || "0"}` : "";
    keys.set(pt, name + h264);
  }
  for (const [pt, name] of names) {
    if (!name.startsWith("rtx/")) continue;
    const apt = Number(/apt=(\d+)/.exec(fmtp.get(pt) || "")?.[1]);
    if (keys.has(apt)) keys.set(pt, `rtx:${keys.get(apt)}`);
  }
  return keys;
}

/**
 * The relay also numbers payload types afresh in every offer, while its receivers keep the
 * numbers first negotiated (and a browser refuses one number for two codecs in a BUNDLE). So
 * give every codec of a server offer the payload type this session already uses for it.
 */
export function alignPayloadTypes(sdp, ...negotiated) {
  const ptOf = new Map(); // codec key → pt
  const used = new Set();
  for (const description of negotiated) {
    for (const section of sections(description).slice(1)) {
      for (const [pt, key] of codecKeys(section)) {
        if (!ptOf.has(key)) ptOf.set(key, pt);
        used.add(pt);
      }
    }
  }
  const freePt = () => {
    for (let pt = 96; pt <= 127; pt += 1) if (!used.has(pt)) return pt;
    for (let pt = 35; pt <= 63; pt += 1) if (!used.has(pt)) return pt;
    return null;
  };
  const [session, ...media] = sections(sdp);
  const rewritten = media.map((section) => {
    const keys = codecKeys(section);
    const remap = new Map();
    // Base codecs first, so an RTX's key (from its apt) is known before it is renumbered.
    const order = [...keys.entries()].sort(([, a], [, b]) => Number(a.startsWith("rtx:")) - Number(b.startsWith("rtx:")));
    for (const [pt, key] of order) {
      let target = ptOf.get(key);
      if (target === undefined) {
        target = used.has(pt) ? freePt() : pt;
        if (target === null) continue;
        ptOf.set(key, target);
        used.add(target);
      }
      remap.set(pt, target);
    }
    const map = (pt) => (remap.has(Number(pt)) ? remap.get(Number(pt)) : Number(pt));
    return section.map((line) => {
      if (line.startsWith("m=")) {
        const parts = line.split(" ");
        return [...parts.slice(0, 3), ...parts.slice(3).map((pt) => (/^\d+$/.test(pt) ? String(map(pt)) : pt))].join(" ");
      }
      let match = /^a=(rtpmap|rtcp-fb|fmtp):(\d+)( .*)$/.exec(line);
      if (match) {
        let rest = match[3];
        if (match[1] === "fmtp") rest = rest.replace(/apt=(\d+)/, (_, apt) => `apt=${map(apt)}`);
        return `a=${match[1]}:${map(match[2])}${rest}`;
      }
      return line;
    });
  });
  return [...session, ...rewritten.flat()].join("\r\n") + "\r\n";
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
      const negotiated = [this.pc.currentLocalDescription?.sdp, this.pc.currentRemoteDescription?.sdp];
      const sdp = alignPayloadTypes(alignExtensionIds(payload.sdp, ...negotiated), ...negotiated);
      await this.pc.setRemoteDescription({ type: "offer", sdp });
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
