"""How many people one call's media relay carries: N participants, each sending 320x240 video at
15 fps and Opus audio, each receiving the N-1 others, for growing N until fewer than 90% of the
video frames sent arrive. Prints frame delivery and the server's CPU per participant.

```sh
.venv/bin/python bench/calls_load.py [--sizes 2,4,6,8,10,12] [--duration 10] [--warmup 6]
                                     [--workers 2]
```

The server is ``run.py`` (embedded store) in its own process; its CPU is read from /proc. The
clients run in ``--workers`` processes and are kept light so the measure is the relay's: they
send pre-encoded VP8 and Opus packets (encoded once at start-up, replayed with advancing
timestamps; a keyframe every 2 s) and count the encoded frames their receivers reassemble
instead of decoding them. "Delivered" = video frames reassembled by receivers / (video frames
sent x (N-1)) over the measuring window.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import multiprocessing as mp
import os
import queue
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._servers import cpu_seconds, start_aetherial

FPS = 15
VIDEO_CLOCK = 90_000
LOOP_SECONDS = 2  # a keyframe starts every loop


# --- pre-encoded media ------------------------------------------------------------------------


def encode_video() -> list[bytes]:
    import av

    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = 320, 240, "yuv420p"
    codec.bit_rate = 300_000
    codec.time_base = fractions.Fraction(1, FPS)
    codec.gop_size = FPS * LOOP_SECONDS
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    packets = []
    for i in range(FPS * LOOP_SECONDS):
        frame = av.VideoFrame(width=320, height=240, format="yuv420p")
        for n, plane in enumerate(frame.planes):
            row = bytes((x * (n + 1) + i * 4) % 256 for x in range(plane.line_size))
            plane.update(row * (plane.buffer_size // plane.line_size))
        frame.pts = i
        frame.pict_type = (
            av.video.frame.PictureType.I if i == 0 else av.video.frame.PictureType.NONE
        )
        packets += [bytes(p) for p in codec.encode(frame)]
    packets += [bytes(p) for p in codec.encode(None)]
    return packets[: FPS * LOOP_SECONDS]


def encode_audio() -> list[bytes]:
    import math

    import av

    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format = 48_000, "stereo", "s16"
    codec.bit_rate = 32_000
    packets = []
    for i in range(50):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        samples = b"".join(
            int(3000 * math.sin((i * 960 + s) * 440 * 2 * math.pi / 48_000)).to_bytes(
                2, "little", signed=True
            )
            * 2
            for s in range(960)
        )
        frame.planes[0].update(samples)
        frame.sample_rate, frame.pts = 48_000, i * 960
        packets += [bytes(p) for p in codec.encode(frame)]
    return packets


# --- a light client ---------------------------------------------------------------------------


def client_main(jobs: mp.Queue, results: mp.Queue, base_url: str) -> None:
    asyncio.run(_client_loop(jobs, results, base_url))


async def _client_loop(jobs: mp.Queue, results: mp.Queue, base_url: str) -> None:
    import av
    import socketio
    from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

    video, audio = encode_video(), encode_audio()
    counts = {"video_sent": 0, "video_received": 0, "audio_sent": 0, "audio_received": 0}

    class PacketTrack(MediaStreamTrack):
        def __init__(self, kind: str, packets: list[bytes], rate: int, clock: int) -> None:
            super().__init__()
            self.kind, self.packets, self.rate, self.clock = kind, packets, rate, clock
            self.index, self.start = 0, None

        async def recv(self):
            loop = asyncio.get_running_loop()
            if self.start is None:
                self.start = loop.time()
            due = self.start + self.index / self.rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            packet = av.Packet(self.packets[self.index % len(self.packets)])
            packet.pts = self.index * self.clock // self.rate
            packet.time_base = fractions.Fraction(1, self.clock)
            self.index += 1
            counts[f"{self.kind}_sent"] += 1
            return packet

    class CountingTap:
        def __init__(self, original, kind: str) -> None:
            self.original, self.kind = original, kind

        def put(self, item) -> None:
            if item is None:
                self.original.put(None)
            else:
                counts[f"{self.kind}_received"] += 1

        def get(self, *a, **kw):
            return self.original.get(*a, **kw)

    peers = []

    async def join(token: str, call_id: str, accept: bool) -> None:
        sio = socketio.AsyncClient(reconnection=False)
        pc = RTCPeerConnection()
        ready = asyncio.Event()

        @pc.on("track")
        def on_track(track) -> None:
            for t in pc.getTransceivers():
                if t.receiver.track is track:
                    name = "_RTCRtpReceiver__decoder_queue"
                    setattr(t.receiver, name, CountingTap(getattr(t.receiver, name), track.kind))

        @sio.on("call.offer")
        async def on_offer(data) -> None:
            await ready.wait()
            await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await sio.call(
                "call.answer", {"call_id": call_id, "sdp": pc.localDescription.sdp}, timeout=30
            )

        await sio.connect(base_url, auth={"token": token}, transports=["websocket"])
        if accept:
            ack = await sio.call("call.accept", {"call_id": call_id}, timeout=30)
            assert ack["ok"], ack
        pc.addTransceiver(PacketTrack("audio", audio, 50, 48_000), direction="sendonly")
        pc.addTransceiver(PacketTrack("video", video, FPS, VIDEO_CLOCK), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        ack = await sio.call(
            "call.offer", {"call_id": call_id, "sdp": pc.localDescription.sdp}, timeout=30
        )
        assert ack["ok"], ack
        await pc.setRemoteDescription(RTCSessionDescription(**ack["answer"]))
        ready.set()
        peers.append((sio, pc))

    loop = asyncio.get_running_loop()
    while True:
        job = await loop.run_in_executor(None, jobs.get)
        if job[0] == "join":
            _, participants, call_id = job
            try:
                await asyncio.gather(*(join(t, call_id, a) for t, a in participants))
                results.put(("ready", None))
            except Exception as exc:
                results.put(("failed", repr(exc)))
        elif job[0] == "mark":
            results.put(("mark", dict(counts)))
        elif job[0] == "stop":
            for sio, pc in peers:
                await pc.close()
                await sio.disconnect()
            peers.clear()
            results.put(("stopped", None))
        elif job[0] == "exit":
            return


# --- the scenario ----------------------------------------------------------------------------


async def setup_call(base_url: str, size: int) -> tuple[list[str], str]:
    """Register ``size`` people, put them in a group, start a video call: tokens, call id."""
    import aiohttp
    import socketio

    async with aiohttp.ClientSession() as http:
        tokens, ids = [], []
        stamp = f"{int(time.time() * 1000) % 10**8}"
        for i in range(size):
            name = f"c{stamp}n{size}x{i}"
            body = {"username": name, "email": f"{name}@example.com", "password": "Bench-pass-9"}
            async with http.post(f"{base_url}/api/v1/auth/register", json=body) as r:
                assert r.status == 201, await r.text()
            login = {"login": name, "password": "Bench-pass-9"}
            async with http.post(f"{base_url}/api/v1/auth/login", json=login) as r:
                data = await r.json()
            tokens.append(data["access_token"])
            ids.append(data["user"]["id"])
        headers = {"Authorization": f"Bearer {tokens[0]}"}
        group = {"type": "group", "title": "bench", "member_ids": ids[1:]}
        async with http.post(f"{base_url}/api/v1/conversations", json=group, headers=headers) as r:
            conversation_id = (await r.json())["conversation"]["id"]
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(base_url, auth={"token": tokens[0]}, transports=["websocket"])
    ack = await sio.call("call.start", {"conversation_id": conversation_id, "media": "video"})
    assert ack["ok"], ack
    await sio.disconnect()  # the caller's worker connects with the same session
    return tokens, ack["call"]["id"]


def run_size(server, workers, base_url: str, size: int, warmup: float, duration: float) -> dict:
    tokens, call_id = asyncio.run(setup_call(base_url, size))
    shares = [[] for _ in workers]
    for i, token in enumerate(tokens):
        shares[i % len(workers)].append((token, i != 0))
    for (jobs, _), share in zip(workers, shares, strict=True):
        if share:
            jobs.put(("join", share, call_id))
    for (_, results), share in zip(workers, shares, strict=True):
        if share:
            kind, detail = results.get(timeout=120)
            if kind != "ready":
                raise RuntimeError(f"a worker could not join: {detail}")
    time.sleep(warmup)

    def mark() -> dict:
        total: dict[str, int] = {}
        for jobs, results in workers:
            jobs.put(("mark",))
            _, counts = results.get(timeout=60)
            for key, value in counts.items():
                total[key] = total.get(key, 0) + value
        return total

    cpu_before = cpu_seconds(server.pid) or 0.0  # the gateway alone, not its store
    before, started = mark(), time.monotonic()
    time.sleep(duration)
    after, elapsed = mark(), time.monotonic() - started
    cpu = ((cpu_seconds(server.pid) or 0.0) - cpu_before) / elapsed
    for jobs, results in workers:
        jobs.put(("stop",))
        results.get(timeout=60)
    delta = {k: after[k] - before.get(k, 0) for k in after}
    expected_video = delta["video_sent"] * (size - 1)
    expected_audio = delta["audio_sent"] * (size - 1)
    return {
        "size": size,
        "video_delivered": delta["video_received"] / expected_video if expected_video else 0.0,
        "audio_delivered": delta["audio_received"] / expected_audio if expected_audio else 0.0,
        "sent_fps": delta["video_sent"] / elapsed / size,
        "server_cpu": cpu,
        "cpu_per_participant": cpu / size,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2,4,6,8,10,12,14,16")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    os.environ.update(
        {"CALL_MAX_PARTICIPANTS": "64", "CALL_RING_TIMEOUT": "600", "CALL_GRACE_PERIOD": "600"}
    )
    workdir = Path(tempfile.mkdtemp(prefix="calls_load_"))
    server = start_aetherial(workdir)
    ctx = mp.get_context("spawn")
    workers, processes = [], []
    best = 0
    try:
        for _ in range(args.workers):
            jobs, results = ctx.Queue(), ctx.Queue()
            process = ctx.Process(target=client_main, args=(jobs, results, server.url), daemon=True)
            process.start()
            workers.append((jobs, results))
            processes.append(process)
        print(
            f"{os.cpu_count()} cores; relay = run.py pid {server.pid}; "
            f"{args.workers} client workers"
        )
        print(
            f"{'N':>3} {'video delivered':>16} {'audio delivered':>16} {'sent fps':>9} "
            f"{'server CPU':>11} {'CPU/participant':>16}"
        )
        for size in sizes:
            try:
                row = run_size(server, workers, server.url, size, args.warmup, args.duration)
            except (RuntimeError, queue.Empty, AssertionError) as exc:
                print(f"{size:>3} could not run: {exc}")
                break
            print(
                f"{row['size']:>3} {row['video_delivered']:>15.1%} {row['audio_delivered']:>15.1%}"
                f" {row['sent_fps']:>9.1f} {row['server_cpu']:>10.0%} "
                f"{row['cpu_per_participant']:>15.1%}"
            )
            if row["video_delivered"] < 0.9:
                break
            best = size
    finally:
        for jobs, _ in workers:
            jobs.put(("exit",))
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        server.stop()
    print(f"largest call with >= 90% of video frames delivered: {best} participants")
    return 0 if best else 1


if __name__ == "__main__":
    sys.exit(main())
