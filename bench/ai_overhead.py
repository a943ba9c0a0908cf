"""What the host adds to a model's own timing: the ``ai`` capability end to end, against the
OpenAI-compatible stub (tests/ai_stub.py) in this process, so every moment is read on one clock.

A gateway (``create_app``, the embedded MongoDB-compatible store, in-process pub/sub) runs on
loopback with the ``asker`` test app (tests/miniapps/apps/asker) in its sandbox; ann and bea are
in a group with it. Each run: ann sends ``/stream <question>`` over Socket.IO; the app starts a
streaming message and calls ``ai.chat`` with ``stream_to``; the host asks the stub, which streams
a scripted answer (``--chunks`` chunks, ``--first-delay`` before the first, ``--chunk-delay``
between the others); bea's socket sees the message grow (``message.stream``) and then the app's
"ai completed" text (the ``ai.completed`` event handled). Runs are sequential.

Figures (ms, p50 / p99 over the runs):

- dispatch: ann's send → the request reaching the stub (routing, the app's invocation, the
  ``ai.chat`` checks, the runner starting, the HTTP request);
- first visible token: ann's send → the first ``message.stream`` on bea's socket, and the same
  less the stub's own time to its first chunk = the host pipeline's share of the time to first
  token; chunk → visible: the stub writing its first chunk → bea seeing it;
- whole answer visible: ann's send → bea seeing the whole text, less the stub's own total =
  the host's share of the answer's time;
- event: the stub's last chunk → bea seeing the app's post from ``ai.completed``;
- host timing vs stub (no socket, no app): the ``ai.completed`` ``timing`` (from the call's
  acceptance) minus the stub's own first-chunk and total times.

Benchmarks are not tests: nothing is asserted about the figures. Usage::

    .venv/bin/python bench/ai_overhead.py [--runs 40] [--chunks 40] [--chunk-delay 0.005]
                                         [--first-delay 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.app import create_app  # noqa: E402
from gateway.keys import MINIAPPS  # noqa: E402
from miniapps.host.registry import discover  # noqa: E402
from storage.config import Config  # noqa: E402
from storage.embedded_mongo import EmbeddedMongo  # noqa: E402
from tests.ai_stub import AiStub  # noqa: E402
from tests.messaging.chat_helpers import close_all, group, people  # noqa: E402
from tests.miniapps.conftest import APPS_DIR  # noqa: E402
from tests.miniapps.test_capabilities import _world_readable  # noqa: E402

APP = "asker"


def percentiles(values: list[float]) -> str:
    if not values:
        return "—"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):8.1f} / {p99:8.1f}"


async def wait_until(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        await asyncio.sleep(0.001)
    raise TimeoutError("the bench waited too long: is the gateway running?")


async def bench(args: argparse.Namespace) -> None:
    answer = " ".join(f"word{i}" for i in range(args.chunks))
    with tempfile.TemporaryDirectory(prefix="ai-bench-") as folder:
        mongo = EmbeddedMongo(Path(folder) / "mongo")
        await mongo.start()
        stub = await AiStub().start()
        runner = None
        everyone = []
        try:
            config = Config.from_env(
                {},
                mongodb_url=mongo.url,
                data_dir=Path(folder) / "var",
                port=0,
                password_hash_memory_kib=1024,
                password_hash_time_cost=1,
                environment="development",
                **stub.settings(),
            )
            app = create_app(config)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            base = f"http://{host}:{port}"
            _world_readable(APPS_DIR)
            apps, refused = discover(APPS_DIR)
            assert not refused, refused
            app[MINIAPPS].apps[APP] = apps[APP]
            ann, bea = everyone = await people(base, 2)
            cid = await group(ann, [bea], "Bench")
            status, body = await ann.api.post(
                f"/api/v1/conversations/{cid}/apps", json={"app_id": APP}
            )
            assert status == 201, body
            figures: dict[str, list[float]] = {
                name: []
                for name in (
                    "dispatch",
                    "visible_ttft",
                    "ttft_overhead",
                    "chunk_to_visible",
                    "visible_total",
                    "total_overhead",
                    "event",
                    "host_ttft_overhead",
                    "host_total_overhead",
                    "stub_ttft",
                    "stub_total",
                )
            }
            ids = itertools.count(1)
            for run in range(args.warmup + args.runs):
                stub.reply(
                    answer,
                    chunk_size=len(answer) // args.chunks + 1,
                    delay=args.chunk_delay,
                    first_delay=args.first_delay,
                )
                seen_streams = {d["message_id"] for d in bea.received("message.stream")}
                done_before = len([t for t in bea.texts(cid) if t.startswith("ai ")])
                asked = len(stub.answers)
                sent = time.monotonic()
                ack = await ann.socket.call(
                    "message.send",
                    {"conversation_id": cid, "client_msg_id": f"b{next(ids)}", "text": "/stream q"},
                )
                assert ack.get("ok"), ack
                first = await wait_until(
                    lambda seen=seen_streams: [
                        d for d in bea.received("message.stream") if d["message_id"] not in seen
                    ]
                )
                first_seen = time.monotonic()
                message_id = first[0]["message_id"]

                def whole(message_id=message_id):
                    return [
                        d
                        for d in bea.received("message.stream")
                        if d["message_id"] == message_id and d["text"] == answer
                    ]

                await wait_until(whole)
                whole_seen = time.monotonic()
                await wait_until(
                    lambda n=done_before: (
                        len([t for t in bea.texts(cid) if t.startswith("ai ")]) > n
                    )
                )
                event_seen = time.monotonic()
                record = stub.answers[asked]
                request = await app[MINIAPPS].ai.requests.collection.find_one(
                    {"conversation_id": cid}, sort=[("created_at", -1)]
                )
                if run < args.warmup:
                    continue
                stub_ttft = (record["first_chunk_at"] - record["received_at"]) * 1000
                stub_total = (record["done_at"] - record["received_at"]) * 1000
                figures["dispatch"].append((record["received_at"] - sent) * 1000)
                figures["visible_ttft"].append((first_seen - sent) * 1000)
                figures["ttft_overhead"].append((first_seen - sent) * 1000 - stub_ttft)
                figures["chunk_to_visible"].append((first_seen - record["first_chunk_at"]) * 1000)
                figures["visible_total"].append((whole_seen - sent) * 1000)
                figures["total_overhead"].append((whole_seen - sent) * 1000 - stub_total)
                figures["event"].append((event_seen - record["done_at"]) * 1000)
                figures["host_ttft_overhead"].append(request["first_token_ms"] - stub_ttft)
                figures["host_total_overhead"].append(request["total_ms"] - stub_total)
                figures["stub_ttft"].append(stub_ttft)
                figures["stub_total"].append(stub_total)
        finally:
            await close_all(everyone)
            if runner is not None:
                await runner.cleanup()
            await stub.close()
            await mongo.stop()
    rows = [
        ("stub: its own time to first chunk", "stub_ttft"),
        ("stub: its own total", "stub_total"),
        ("dispatch: send → request at the stub", "dispatch"),
        ("first visible token: send → 1st message.stream", "visible_ttft"),
        ("  host share (less the stub's time to 1st chunk)", "ttft_overhead"),
        ("  stub's 1st chunk → visible on a member's socket", "chunk_to_visible"),
        ("whole answer visible: send → full text streamed", "visible_total"),
        ("  host share (less the stub's total)", "total_overhead"),
        ("event: stub's end → the app's post from ai.completed", "event"),
        ("host timing - stub: first token (no app, no socket)", "host_ttft_overhead"),
        ("host timing - stub: total (no app, no socket)", "host_total_overhead"),
    ]
    print(
        f"ai overhead: {args.runs} runs (+{args.warmup} warm-up), an answer of {args.chunks} "
        f"chunks, {args.first_delay * 1000:.0f} ms to the first, {args.chunk_delay * 1000:.0f} ms "
        "between"
    )
    print(f"{'figure (ms)':56} {'p50':>8}   {'p99':>8}")
    for label, key in rows:
        print(f"{label:56} {percentiles(figures[key])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--chunk-delay", type=float, default=0.005)
    parser.add_argument("--first-delay", type=float, default=0.05)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
