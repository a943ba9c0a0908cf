// Opus in Ogg (RFC 7845) recorded in the page with WebCodecs, for browsers whose MediaRecorder
// cannot write Ogg (Chromium records only WebM or MP4, which the server does not take as a voice
// note): the microphone's AudioData → AudioEncoder("opus") → Ogg pages. No library, ~100 lines.

const OPUS_RATE = 48000; // Ogg Opus granule positions always count 48 kHz samples
const DEFAULT_PRE_SKIP = 312; // libopus' look-ahead at 48 kHz, when the encoder does not say
const PACKETS_PER_PAGE = 50; // ~1 s of 20 ms packets per page

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i += 1) {
    let r = i << 24;
    for (let j = 0; j < 8; j += 1) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ byte) & 0xff]) >>> 0;
  return crc;
}

function ascii(text) {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** One Ogg page holding whole `packets`; `granule` is the 48 kHz position at its last packet's end. */
function oggPage(packets, { granule, serial, sequence, flags }) {
  const lacing = [];
  for (const packet of packets) {
    let n = packet.length;
    for (; n >= 255; n -= 255) lacing.push(255);
    lacing.push(n);
  }
  const headerLength = 27 + lacing.length;
  const page = new Uint8Array(headerLength + packets.reduce((sum, p) => sum + p.length, 0));
  const view = new DataView(page.buffer);
  page.set(ascii("OggS"), 0);
  page[4] = 0; // version
  page[5] = flags; // 2: first page, 4: last page
  view.setBigUint64(6, BigInt(granule), true);
  view.setUint32(14, serial, true);
  view.setUint32(18, sequence, true);
  page[26] = lacing.length;
  page.set(lacing, 27);
  let at = headerLength;
  for (const packet of packets) {
    page.set(packet, at);
    at += packet.length;
  }
  view.setUint32(22, crc32(page), true);
  return page;
}

function opusHead({ channels, preSkip, inputRate }) {
  const head = new Uint8Array(19);
  const view = new DataView(head.buffer);
  head.set(ascii("OpusHead"), 0);
  head[8] = 1; // version
  head[9] = channels;
  view.setUint16(10, preSkip, true);
  view.setUint32(12, inputRate, true);
  view.setInt16(16, 0, true); // output gain
  head[18] = 0; // channel mapping family 0: mono or stereo
  return head;
}

function opusTags() {
  const vendor = ascii("Aetherial web");
  const tags = new Uint8Array(8 + 4 + vendor.length + 4);
  const view = new DataView(tags.buffer);
  tags.set(ascii("OpusTags"), 0);
  view.setUint32(8, vendor.length, true);
  tags.set(vendor, 12);
  view.setUint32(12 + vendor.length, 0, true); // no comments
  return tags;
}

/** Can this browser record Ogg Opus this way? */
export async function oggOpusSupported() {
  if (typeof MediaStreamTrackProcessor !== "function" || typeof AudioEncoder !== "function") return false;
  try {
    return (await AudioEncoder.isConfigSupported({ codec: "opus", sampleRate: OPUS_RATE, numberOfChannels: 1 })).supported;
  } catch {
    return false;
  }
}

/** Records a microphone stream's first audio track; `stop()` resolves with an `audio/ogg` Blob. */
export class OggOpusRecorder {
  constructor(stream) {
    this.track = stream.getAudioTracks()[0];
    this.packets = []; // {data: Uint8Array, samples: number at 48 kHz}
    this.preSkip = DEFAULT_PRE_SKIP;
    this.failure = null;
    this.stopping = false;
    this.encoder = new AudioEncoder({
      output: (chunk, metadata) => this.onChunk(chunk, metadata),
      error: (error) => {
        this.failure = error;
      },
    });
  }

  onChunk(chunk, metadata) {
    const description = metadata?.decoderConfig?.description;
    if (description) {
      const bytes = new Uint8Array(description.buffer || description);
      if (bytes.length >= 19 && String.fromCharCode(...bytes.subarray(0, 8)) === "OpusHead") {
        this.preSkip = bytes[10] | (bytes[11] << 8);
      }
    }
    const data = new Uint8Array(chunk.byteLength);
    chunk.copyTo(data);
    const samples = chunk.duration ? Math.round((chunk.duration * OPUS_RATE) / 1e6) : 960;
    this.packets.push({ data, samples });
  }

  start() {
    this.reader = new MediaStreamTrackProcessor({ track: this.track }).readable.getReader();
    this.pump = (async () => {
      for (;;) {
        const { value, done } = await this.reader.read();
        if (done) return;
        if (this.stopping) {
          value.close();
          return;
        }
        if (!this.inputRate) {
          this.inputRate = value.sampleRate;
          this.channels = Math.min(2, value.numberOfChannels);
          this.encoder.configure({ codec: "opus", sampleRate: value.sampleRate, numberOfChannels: this.channels, bitrate: 32000 });
        }
        this.encoder.encode(value);
        value.close();
      }
    })();
  }

  async stop() {
    this.stopping = true;
    await this.reader.cancel().catch(() => {});
    await this.pump.catch(() => {});
    if (this.encoder.state === "configured") await this.encoder.flush();
    if (this.encoder.state !== "closed") this.encoder.close();
    if (this.failure) throw this.failure;
    return this.toBlob();
  }

  cancel() {
    this.stopping = true;
    this.reader?.cancel().catch(() => {});
    if (this.encoder.state !== "closed") this.encoder.close();
  }

  get durationMs() {
    return (this.packets.reduce((sum, p) => sum + p.samples, 0) * 1000) / OPUS_RATE;
  }

  toBlob() {
    const serial = (Math.random() * 0xffffffff) >>> 0;
    let sequence = 0;
    const pages = [
      oggPage([opusHead({ channels: this.channels || 1, preSkip: this.preSkip, inputRate: this.inputRate || OPUS_RATE })], { granule: 0, serial, sequence: sequence++, flags: 2 }),
      oggPage([opusTags()], { granule: 0, serial, sequence: sequence++, flags: 0 }),
    ];
    // A page's granule position counts every sample decoded up to its end, the pre-skip included
    // (players subtract it).
    let granule = 0;
    let batch = [];
    let segments = 0;
    const flush = (last) => {
      pages.push(oggPage(batch.map((p) => p.data), { granule, serial, sequence: sequence++, flags: last ? 4 : 0 }));
      batch = [];
      segments = 0;
    };
    this.packets.forEach((packet, index) => {
      const needed = Math.floor(packet.data.length / 255) + 1;
      if (batch.length && (batch.length >= PACKETS_PER_PAGE || segments + needed > 255)) flush(false);
      batch.push(packet);
      segments += needed;
      granule += packet.samples;
      if (index === this.packets.length - 1) flush(true);
    });
    return new Blob(pages, { type: "audio/ogg" });
  }
}
