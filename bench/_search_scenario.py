"""Search over 100,000 messages on the embedded store: p50/p99 latency and searches/s.

    .venv/bin/python bench/_search_scenario.py [--messages 100000] [--searches 400]
                                               [--concurrency 8] [--users 40] [--groups 400]

Starts ``run.py`` on a fresh data dir (the embedded nx-27017 store, like every bench: see
``_servers.py``), signs up ``--users`` people and creates ``--groups`` groups of 5 over REST,
then **seeds** the messages. Seeding shortcut: the messages are written with ``insert_many``
straight into the gateway's store, through ``messaging.store.messages.Messages.insert_in_order``
(the call the message writer makes, so the same document shape and the same search tokens), with
consecutive seqs per group, and each group's ``last_seq`` moved to match; sending 100,000
messages through the socket would take far longer and measure the writer, not search. Then it
runs ``--searches`` ``GET /api/v1/search`` calls over HTTP from ``--concurrency`` clients at
once (closed loop): words of the English vocabulary (common and rare), Chinese words, emoji,
two-word queries and some searches inside one conversation, each by a random member.

``main()`` returns the figures as a dict (``bench/media_load.py`` calls it) and prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from pymongo import AsyncMongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._servers import ServerProcess, start_aetherial
from messaging.store.messages import Messages
from storage.mongo import new_id

PASSWORD = "Bench-search-9"
DB_NAME = "aetherial"  # run.py's default MONGODB_DB
SEED_BATCH = 2000
WORDS = [f"word{i}" for i in range(3000)] + [
    "meeting", "dinner", "project", "invoice", "flight", "hotel", "coffee", "birthday",
    "deadline", "weekend", "photos", "lesson", "doctor", "payment", "order", "shipped",
]  # fmt: skip
WEIGHTS = [1 / (i + 1) for i in range(len(WORDS))]  # Zipf-like: a few words are everywhere
CHINESE = ["北京", "上海", "明天", "吃饭", "开会", "烤鸭", "周末", "生日", "快递", "谢谢"]
EMOJI = ["🎉", "👍", "😂", "🍜", "✈️"]


def _text(rnd: random.Random) -> str:
    words = rnd.choices(WORDS, weights=WEIGHTS, k=rnd.randint(4, 14))
    if rnd.random() < 0.3:
        words.insert(rnd.randrange(len(words) + 1), "".join(rnd.sample(CHINESE, 2)))
    if rnd.random() < 0.15:
        words.append(rnd.choice(EMOJI))
    return " ".join(words)


def _queries(rnd: random.Random, count: int) -> list[str]:
    pool = (
        [WORDS[i] for i in (0, 1, 2, 5, 10)]  # very common
        + [WORDS[i] for i in (100, 500, 1000, 2000, 2999)]  # rare
        + WORDS[3000:]
        + CHINESE
        + EMOJI
        + ["word1 word2", "coffee 北京", "meet"]  # two words; a prefix
    )
    return [rnd.choice(pool) for _ in range(count)]


def _mongo_port(server: ServerProcess) -> int:
    for line in server.children.values():
        if "storage.embedded_mongo" in line:
            parts = line.split()
            return int(parts[parts.index("--port") + 1])
    raise RuntimeError("the gateway's embedded store was not found among its child processes")


async def _set_up_people(
    session: aiohttp.ClientSession, url: str, users: int, groups: int, rnd: random.Random
) -> tuple[list[dict], list[tuple[str, list[int]]]]:
    people: list[dict] = []
    for i in range(users):
        name = f"searcher{i}"
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        async with session.post(f"{url}/api/v1/auth/register", json=body) as resp:
            assert resp.status == 201, await resp.text()
        async with session.post(
            f"{url}/api/v1/auth/login", json={"login": name, "password": PASSWORD}
        ) as resp:
            login = await resp.json()
        people.append({"id": login["user"]["id"], "token": login["access_token"]})
    chats: list[tuple[str, list[int]]] = []
    for g in range(groups):
        members = rnd.sample(range(users), 5)
        headers = {"Authorization": f"Bearer {people[members[0]]['token']}"}
        body = {
            "type": "group",
            "title": f"group {g}",
            "member_ids": [people[m]["id"] for m in members[1:]],
        }
        async with session.post(f"{url}/api/v1/conversations", json=body, headers=headers) as r:
            assert r.status == 201, await r.text()
            chats.append(((await r.json())["conversation"]["id"], members))
    return people, chats


async def _seed(
    mongo_url: str, people: list[dict], chats: list[tuple[str, list[int]]], count: int, rnd
) -> float:
    client: AsyncMongoClient = AsyncMongoClient(mongo_url, tz_aware=True)
    db = client[DB_NAME]
    messages = Messages(db)
    started = time.monotonic()
    try:
        next_seq = {}
        for conversation_id, _ in chats:
            conv = await db.conversations.find_one({"_id": conversation_id}, {"last_seq": 1})
            next_seq[conversation_id] = conv["last_seq"] + 1
        now = int(time.time() * 1000) - count
        batch: list[dict[str, Any]] = []
        for i in range(count):
            conversation_id, members = chats[i % len(chats)]
            seq = next_seq[conversation_id]
            next_seq[conversation_id] = seq + 1
            batch.append(
                {  # the writer's document (messaging.writer.MessageWriter._insert)
                    "_id": new_id(),
                    "conversation_id": conversation_id,
                    "sender_id": people[rnd.choice(members)]["id"],
                    "client_msg_id": f"seed-{i}",
                    "type": "text",
                    "text": _text(rnd),
                    "reply_to": None,
                    "mentions": [],
                    "mention_all": False,
                    "seq": seq,
                    "created_at": now + i,
                    "updated_at_seq": 0,
                    "version": 1,
                    "recalled": False,
                    "edited_at": None,
                }
            )
            if len(batch) == SEED_BATCH:
                await messages.insert_in_order(batch)
                batch = []
        if batch:
            await messages.insert_in_order(batch)
        for conversation_id, last in next_seq.items():
            await db.conversations.update_one(
                {"_id": conversation_id}, {"$set": {"last_seq": last - 1}}
            )
    finally:
        await client.close()
    return time.monotonic() - started


async def _search(
    url: str, people: list[dict], chats, queries: list[str], concurrency: int, rnd
) -> dict[str, Any]:
    latencies: list[float] = []
    results: list[int] = []
    errors: dict[str, int] = {}
    todo = list(enumerate(queries))

    async def client(session: aiohttp.ClientSession) -> None:
        while todo:
            i, q = todo.pop()
            conversation_id, members = chats[rnd.randrange(len(chats))]
            params = {"q": q, "limit": "20"}
            if i % 5 == 0:
                params["conversation_id"] = conversation_id
            who = people[rnd.choice(members)]
            headers = {"Authorization": f"Bearer {who['token']}"}
            started = time.perf_counter()
            async with session.get(f"{url}/api/v1/search", params=params, headers=headers) as r:
                body = await r.json()
                elapsed = time.perf_counter() - started
            if r.status != 200:
                code = (body.get("error") or {}).get("code", str(r.status))
                errors[code] = errors.get(code, 0) + 1
                continue
            latencies.append(elapsed * 1000)
            results.append(len(body["results"]))

    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*[client(session) for _ in range(concurrency)])
    wall = time.monotonic() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else None
    return {
        "searches": len(latencies),
        "errors": errors,
        "p50_ms": statistics.median(latencies) if latencies else None,
        "p99_ms": p99,
        "searches_per_s": len(latencies) / wall if wall else None,
        "mean_results": statistics.mean(results) if results else None,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rnd = random.Random(13)
    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        server = start_aetherial(Path(tmp))
        try:
            url = server.url  # type: ignore[attr-defined]
            mongo_url = f"mongodb://127.0.0.1:{_mongo_port(server)}/"
            async with aiohttp.ClientSession() as session:
                people, chats = await _set_up_people(session, url, args.users, args.groups, rnd)
            seconds = await _seed(mongo_url, people, chats, args.messages, rnd)
            print(f"seeded {args.messages} messages in {seconds:.1f} s", flush=True)
            figures = await _search(
                url, people, chats, _queries(rnd, args.searches), args.concurrency, rnd
            )
            figures["messages"] = args.messages
            figures["seed_s"] = seconds
            problems = server.problems()
            if problems:
                figures["server_problems"] = problems[:5]
            return figures
        finally:
            server.stop()


def _fmt(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--searches", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--groups", type=int, default=400)
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args))
    print(f"search over {figures['messages']} messages (embedded store, over HTTP)")
    for key in ("searches", "errors", "p50_ms", "p99_ms", "searches_per_s", "mean_results"):
        print(f"  {key:<16} {_fmt(figures[key])}")
    for line in figures.get("server_problems", []):
        print(f"  server: {line}")
    return figures


if __name__ == "__main__":
    main()
