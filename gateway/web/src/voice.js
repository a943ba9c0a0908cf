// Voice notes: recorded in the browser, uploaded as `kind=voice` and sent as a `voice` message.
// The server takes Opus in Ogg or AAC in MP4/M4A. Browsers differ in what they can record, so the
// first way this one supports is used: MediaRecorder writing Ogg/Opus (Firefox); WebCodecs' Opus
// encoder with our own Ogg writer (ogg-opus.js: Chromium, whose MediaRecorder writes only WebM or
// Opus-in-MP4); MediaRecorder writing AAC in MP4 (Safari); else WebM/Opus, as a last resort.

import { $ } from "./dom.js";
import { uploadAndSend } from "./media.js";
import { OggOpusRecorder, oggOpusSupported } from "./ogg-opus.js";
import { showError, state, toast } from "./state.js";

const MIN_MS = 500; // shorter than this is a slip of the finger, not a message
const MAX_MS = 5 * 60 * 1000; // stop (and send) after five minutes

function recorderSupports(mime) {
  return typeof MediaRecorder !== "undefined" && MediaRecorder.isTypeSupported(mime);
}

/** How this browser records voice notes: {way, mime, type, ext}, or null when it cannot. */
export async function voiceFormat() {
  if (!navigator.mediaDevices?.getUserMedia) return null;
  if (recorderSupports("audio/ogg;codecs=opus")) return { way: "recorder", mime: "audio/ogg;codecs=opus", type: "audio/ogg", ext: "ogg" };
  if (await oggOpusSupported()) return { way: "webcodecs", type: "audio/ogg", ext: "ogg" };
  if (recorderSupports("audio/mp4;codecs=mp4a.40.2")) return { way: "recorder", mime: "audio/mp4;codecs=mp4a.40.2", type: "audio/mp4", ext: "m4a" };
  if (recorderSupports("audio/webm;codecs=opus")) return { way: "recorder", mime: "audio/webm;codecs=opus", type: "audio/webm", ext: "webm" };
  return null;
}

/** MediaRecorder behind the same start/stop/cancel as OggOpusRecorder. */
class ContainerRecorder {
  constructor(stream, format) {
    this.chunks = [];
    this.format = format;
    this.recorder = new MediaRecorder(stream, { mimeType: format.mime });
    this.recorder.addEventListener("dataavailable", (event) => event.data.size && this.chunks.push(event.data));
    this.stopped = new Promise((resolve) => this.recorder.addEventListener("stop", resolve));
  }

  start() {
    this.recorder.start(1000);
  }

  async stop() {
    if (this.recorder.state !== "inactive") this.recorder.stop();
    await this.stopped;
    return new Blob(this.chunks, { type: this.format.type });
  }

  cancel() {
    if (this.recorder.state !== "inactive") this.recorder.stop();
  }
}

function setRecordingUi(recording) {
  const button = $("#voice-button");
  button.setAttribute("aria-pressed", String(recording));
  button.setAttribute("aria-label", recording ? "Stop and send the voice message" : "Record a voice message");
  button.textContent = recording ? "■" : "🎤";
  $("#voice-status").hidden = !recording;
  $("#voice-cancel").hidden = !recording;
  $("#composer-input").hidden = recording;
  $("#attach-button").hidden = recording;
}

function tick() {
  const current = state.recorder;
  if (!current) return;
  const elapsed = Date.now() - current.startedAt;
  const seconds = Math.floor(elapsed / 1000);
  $("#voice-status").textContent = `● Recording ${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  $("#voice-status").dataset.seconds = String(seconds);
  if (elapsed >= MAX_MS) stopRecording(true);
}

async function startRecording() {
  const cid = state.currentId;
  const format = await voiceFormat();
  if (!format) {
    toast("This browser cannot record voice messages.", { kind: "error", testid: "toast-error" });
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
  } catch {
    toast("No microphone: allow this page to use it to record voice messages.", { kind: "error", testid: "toast-error" });
    return;
  }
  if (state.recorder || state.currentId !== cid) {
    for (const track of stream.getTracks()) track.stop();
    return;
  }
  const recorder = format.way === "webcodecs" ? new OggOpusRecorder(stream) : new ContainerRecorder(stream, format);
  state.recorder = { recorder, stream, cid, format, startedAt: Date.now(), timer: setInterval(tick, 250) };
  recorder.start();
  setRecordingUi(true);
  tick();
}

/** Stop recording; `send` false throws the recording away. */
export async function stopRecording(send) {
  const current = state.recorder;
  if (!current) return;
  state.recorder = null;
  clearInterval(current.timer);
  setRecordingUi(false);
  const length = Date.now() - current.startedAt;
  try {
    if (!send) {
      current.recorder.cancel();
      return;
    }
    const blob = await current.recorder.stop();
    for (const track of current.stream.getTracks()) track.stop();
    if (length < MIN_MS || !blob.size) {
      toast("Too short: record a little longer.");
      return;
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const file = new File([blob], `voice-${stamp}.${current.format.ext}`, { type: current.format.type });
    await uploadAndSend(current.cid, [file], { type: "voice", kind: "voice", label: "Voice message" });
  } catch (error) {
    showError(error);
  } finally {
    for (const track of current.stream.getTracks()) track.stop();
  }
}

/** The microphone button toggles recording; × throws a recording away (leaving the chat too). */
export function wireVoice() {
  $("#voice-button").addEventListener("click", () => (state.recorder ? stopRecording(true) : startRecording()));
  $("#voice-cancel").addEventListener("click", () => stopRecording(false));
  voiceFormat().then((format) => {
    $("#voice-button").hidden = !format;
  });
}
