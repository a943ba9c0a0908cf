"""What one idle Socket.IO connection holds in the gateway's Python heap, by file and by place.

    .venv/bin/python bench/conn_memory.py [--clients 200] [--top 12]

Runs the gateway in this process (the same ``create_app`` as ``run.py``, on an embedded
nx-27017 in a temporary folder) under ``tracemalloc``, signs up ``--clients`` people, then
connects one socket for each from a separate process (so the clients' own allocations are not
counted), and compares heap snapshots taken before and after. Prints KB per connection, the
files that allocated it and the costliest allocation places. ``bench/chat_load.py`` gives the
RSS figure of a real ``run.py``; this says what that memory is. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp.test_utils import TestServer

from gateway.app import create_app
from storage.config import Config
from storage.embedded_mongo import EmbeddedMongo

PASSWORD = "Correct-horse-9"
SETTLE = 3.0  # seconds for the connections' handshakes and first pings to finish

CLIENTS = """
import asyncio, json, sys
import socketio

async def main(base, tokens):
    clients = []
    for token in tokens:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(base, auth={"token": token}, transports=["websocket"])
        clients.append(client)
    print(len(clients), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], json.loads(sys.stdin.readline())))
"""


async def sign_up(base: str, count: int) -> list[str]:
    import aiohttp

    tokens = []
    async with aiohttp.ClientSession() as http:
        for i in range(count):
            body = {"username": f"mem{i:05d}", "email": f"mem{i}@example.com", "password": PASSWORD}
            async with http.post(base + "/api/v1/auth/register", json=body) as response:
                assert response.status == 201, await response.text()
            login = {"login": body["username"], "password": PASSWORD}
            async with http.post(base + "/api/v1/auth/login", json=login) as response:
                tokens.append((await response.json())["access_token"])
    return tokens


def short(filename: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


async def measure(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="aetherial-connmem-"))
    mongo = EmbeddedMongo(tmp / "mongo")
    await mongo.start()
    config = Config.from_env(
        {},
        mongodb_url=mongo.url,
        data_dir=tmp / "var",
        environment="development",
        password_hash_memory_kib=1024,
        password_hash_time_cost=1,
        register_max_per_address=1_000_000,
        login_max_attempts_per_address=1_000_000,
    )
    server = TestServer(create_app(config))
    await server.start_server()
    clients = None
    try:
        base = str(server.make_url("")).rstrip("/")
        tokens = await sign_up(base, args.clients)
        tracemalloc.start(args.frames)
        await asyncio.sleep(1)
        gc.collect()
        before = tracemalloc.take_snapshot()
        clients = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLIENTS,
            base,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        clients.stdin.write((json.dumps(tokens) + "\n").encode())
        await clients.stdin.drain()
        connected = int((await clients.stdout.readline()).decode() or 0)
        await asyncio.sleep(SETTLE)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        if clients is not None:
            clients.kill()
            await clients.wait()
        await server.close()
        await mongo.stop()
    n = max(connected, 1)
    places = after.compare_to(before, "traceback")
    total = sum(stat.size_diff for stat in places)
    print(f"{connected} idle connections: {total / n / 1024:.1f} KB each in the Python heap")
    print("by file (B per connection):")
    files = sorted(after.compare_to(before, "filename"), key=lambda s: -s.size_diff)
    for stat in files[: args.top]:
        print(f"  {stat.size_diff / n:8.0f}  {short(stat.traceback[0].filename)}")
    print("by place (B per connection, objects per connection, the innermost frames):")
    for stat in places[: args.top]:
        frames = [f"{short(f.filename)}:{f.lineno}" for f in stat.traceback][-3:]
        print(f"  {stat.size_diff / n:8.0f}  {stat.count_diff / n:5.1f}  {' <- '.join(frames)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--frames", type=int, default=8, help="traceback depth kept")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
