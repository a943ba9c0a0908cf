"""The Redis backends (pub/sub, rate limits) against a real redis-server, and the same contract
for the in-process defaults."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from storage.pubsub import LocalPubSub, RedisPubSub
from storage.ratelimit import MemoryRateLimiter, RedisRateLimiter


@pytest.fixture(params=["memory", "redis"])
async def limiter(request):
    if request.param == "memory":
        instance = MemoryRateLimiter()
    else:
        instance = RedisRateLimiter(request.getfixturevalue("redis_url"))
    yield instance
    await instance.close()


async def test_rate_limiter_counts_within_window(limiter):
    key = uuid.uuid4().hex
    verdicts = [await limiter.hit(key, 3, 60) for _ in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    assert all(1 <= v.retry_after <= 60 for v in verdicts)
    assert not (await limiter.peek(key, 3, 60)).allowed
    await limiter.reset(key)
    assert (await limiter.peek(key, 3, 60)).allowed
    assert (await limiter.hit(key, 3, 60)).count == 1


async def test_rate_limiter_window_expires(limiter):
    key = uuid.uuid4().hex
    assert (await limiter.hit(key, 1, 1)).allowed
    assert not (await limiter.hit(key, 1, 1)).allowed
    await asyncio.sleep(2.1)
    assert (await limiter.hit(key, 1, 1)).allowed


async def test_rate_limiter_is_exact_under_concurrency(limiter):
    key = uuid.uuid4().hex
    verdicts = await asyncio.gather(*[limiter.hit(key, 10, 60) for _ in range(40)])
    assert sum(v.allowed for v in verdicts) == 10


async def test_redis_pubsub_between_two_nodes(redis_url):
    node_a, node_b = RedisPubSub(redis_url), RedisPubSub(redis_url)
    await node_a.start()
    await node_b.start()
    got_a, got_b = [], []
    arrived = asyncio.Event()

    async def on_a(message):
        got_a.append(message)

    async def on_b(message):
        got_b.append(message)
        arrived.set()

    try:
        await node_a.subscribe("chan", on_a)
        await node_b.subscribe("chan", on_b)
        await asyncio.sleep(0.2)  # let both subscriptions register at the server
        await node_a.publish("chan", {"hello": [1, 2]})
        await asyncio.wait_for(arrived.wait(), 5)
        await asyncio.sleep(0.1)
        assert got_b == [{"hello": [1, 2]}]
        assert got_a == [{"hello": [1, 2]}]
    finally:
        await node_a.close()
        await node_b.close()


async def test_local_pubsub_delivers_json_copies():
    pubsub = LocalPubSub()
    got = []

    async def handler(message):
        got.append(message)

    await pubsub.subscribe("c", handler)
    message = {"a": (1, 2)}
    await pubsub.publish("c", message)
    assert got == [{"a": [1, 2]}]
    await pubsub.publish("other", {"x": 1})
    assert len(got) == 1


@pytest.fixture(params=["memory", "redis"])
async def presence(request):
    from storage.presence import MemoryPresence, RedisPresence

    if request.param == "memory":
        instance = MemoryPresence()
    else:
        instance = RedisPresence(request.getfixturevalue("redis_url"))
    await instance.start()
    yield instance
    await instance.close()


async def test_presence_counts_devices(presence):
    user = uuid.uuid4().hex
    assert await presence.connected(user) is True
    assert await presence.connected(user) is False
    assert await presence.online([user, "nobody"]) == {user}
    assert await presence.disconnected(user) is False
    assert await presence.disconnected(user) is True
    assert await presence.online([user]) == set()


async def test_redis_presence_ignores_a_dead_node(redis_url):
    from storage.presence import RedisPresence

    alive, dead = RedisPresence(redis_url), RedisPresence(redis_url)
    await alive.start()
    await dead.start()
    user = uuid.uuid4().hex
    try:
        await dead.connected(user)
        assert await alive.online([user]) == {user}
        await dead.close()  # its liveness key goes (as it would expire after a crash)
        assert await alive.online([user]) == set()
        assert await alive.connected(user) is True  # back online from a live node
    finally:
        await alive.close()


@pytest.fixture(params=["memory", "redis"])
async def replay_guard(request):
    from storage.replay import MemoryReplayGuard, RedisReplayGuard

    if request.param == "memory":
        guard = MemoryReplayGuard()
    else:
        guard = RedisReplayGuard(request.getfixturevalue("redis_url"))
    yield guard
    await guard.close()


async def test_replay_guard_accepts_a_key_once_per_window(replay_guard):
    key = uuid.uuid4().hex
    assert await replay_guard.first_use(key, 1) is True
    assert await replay_guard.first_use(key, 1) is False
    assert await replay_guard.first_use(uuid.uuid4().hex, 1) is True
    await asyncio.sleep(1.2)
    assert await replay_guard.first_use(key, 1) is True  # the window passed


async def test_redis_replay_guard_is_shared_by_nodes(redis_url):
    from storage.replay import RedisReplayGuard

    node_a, node_b = RedisReplayGuard(redis_url), RedisReplayGuard(redis_url)
    key = uuid.uuid4().hex
    try:
        assert await node_a.first_use(key, 60) is True
        assert await node_b.first_use(key, 60) is False  # the replay went to the other node
        results = await asyncio.gather(*[node_b.first_use(f"{key}-c", 60) for _ in range(20)])
        assert sum(results) == 1  # concurrent first uses: exactly one wins
    finally:
        await node_a.close()
        await node_b.close()
