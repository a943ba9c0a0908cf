"""The Redis backends (pub/sub, rate limits) against a real redis-server, and the same contract
for the in-process defaults."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from storage.pubsub import LocalPubSub, RedisPubSub
from storage.ratelimit import MemoryRateLimiter, RedisRateLimiter
from storage.redis_client import OUTAGE_ERRORS
from tests.helpers import eventually


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


# --- the in-memory limiter's sweep ------------------------------------------------------------


async def test_memory_rate_limiter_sweep_keeps_each_keys_own_window():
    """A sweep triggered by short-window keys must not drop a long-window key whose window is
    still running (it used to apply the caller's window to every key)."""
    limiter = MemoryRateLimiter(max_keys=10)
    assert (await limiter.hit("long", 1, 3600)).allowed
    await asyncio.sleep(1.1)  # older than the short window below, well inside its own
    for i in range(20):  # past max_keys: every hit from here on may sweep
        await limiter.hit(f"short-{i}", 5, 1)
    verdict = await limiter.hit("long", 1, 3600)
    assert not verdict.allowed and verdict.count == 2
    assert verdict.retry_after > 3500


async def test_memory_rate_limiter_sweep_drops_expired_windows():
    limiter = MemoryRateLimiter(max_keys=10)
    for i in range(11):
        await limiter.hit(f"old-{i}", 5, 1)
    await asyncio.sleep(1.1)
    await limiter.hit("new", 5, 60)  # over the cap: sweeps the expired windows
    assert (await limiter.hit("old-0", 1, 1)).count == 1  # a fresh window
    assert len(limiter._windows) <= 3


# --- Redis outages: every backend keeps answering, per node, and recovers by itself -----------


async def test_redis_pubsub_survives_a_redis_restart(tmp_path):
    from tests.conftest import RedisServer

    redis = RedisServer(tmp_path)
    node_a, node_b = RedisPubSub(redis.url), RedisPubSub(redis.url)
    got_a: list[dict] = []
    got_b: list[dict] = []
    reconnects = {"a": 0, "b": 0}

    def hook(name):
        async def reconnected() -> None:
            reconnects[name] += 1

        return reconnected

    async def on_a(message):
        got_a.append(message)

    async def on_b(message):
        got_b.append(message)

    try:
        await node_a.start()
        await node_b.start()
        node_a.on_reconnect(hook("a"))
        node_b.on_reconnect(hook("b"))
        await node_a.subscribe("chan", on_a)
        await node_b.subscribe("chan", on_b)
        assert node_a.connected and node_b.connected
        await node_a.publish("chan", {"n": 1})
        await eventually(lambda: got_b == [{"n": 1}], 5, "delivery")

        redis.kill()
        await eventually(lambda: not node_a.connected and not node_b.connected, 5, "noticed")
        await node_a.publish("chan", {"n": 2})  # does not raise; this node still acts on it
        assert {"n": 2} in got_a and {"n": 2} not in got_b
        with pytest.raises(OUTAGE_ERRORS):  # what /readyz reports as "unreachable"
            await node_a.ping()
        assert reconnects == {"a": 0, "b": 0}

        redis.start()
        await eventually(lambda: node_a.connected and node_b.connected, 15, "resubscribed")
        assert reconnects == {"a": 1, "b": 1}  # each assumes it missed messages
        await node_a.ping()
        await node_b.publish("chan", {"n": 3})
        await eventually(lambda: {"n": 3} in got_a and {"n": 3} in got_b, 5, "delivery again")
    finally:
        await node_a.close()
        await node_b.close()
        redis.kill()


async def test_redis_backends_fall_back_per_node_while_redis_is_down(tmp_path):
    from storage.presence import RedisPresence
    from storage.replay import RedisReplayGuard
    from tests.conftest import RedisServer

    redis = RedisServer(tmp_path)
    limiter = RedisRateLimiter(redis.url)
    guard = RedisReplayGuard(redis.url)
    presence, other_node = RedisPresence(redis.url), RedisPresence(redis.url)
    await presence.start()
    await other_node.start()
    before, during = uuid.uuid4().hex, uuid.uuid4().hex
    try:
        assert await guard.first_use("seen-before", 60) is True
        assert await presence.connected(before) is True
        assert await other_node.online([before]) == {before}

        redis.kill()
        # Rate limits hold per node instead of failing every request.
        verdicts = [await limiter.hit("k", 3, 60) for _ in range(5)]
        assert [v.allowed for v in verdicts] == [True, True, True, False, False]
        # Replays are refused per node, including of keys accepted before the outage.
        assert await guard.first_use("seen-before", 60) is False
        assert await guard.first_use("new", 60) is True
        assert await guard.first_use("new", 60) is False
        # Presence is degraded, not an error: this node answers from its own sockets.
        assert await presence.connected(during) is True
        assert await presence.connected(during) is False
        assert await presence.online([before, during, "nobody"]) == {before, during}
        assert await presence.disconnected(before) is True

        redis.start()  # empty: it lost every key
        assert await guard.first_use("new", 60) is False  # recorded here during the outage
        # The next heartbeat (or presence change) puts this node's counts back.
        await eventually(_heartbeat_ok(presence), 10, "presence resync")
        assert await other_node.online([before, during]) == {during}
        assert await limiter.hit("k", 3, 60) is not None
    finally:
        await limiter.close()
        await guard.close()
        await presence.close()
        await other_node.close()
        redis.kill()


def _heartbeat_ok(presence):
    async def beat() -> bool:
        await presence.heartbeat()
        return presence.health.up

    return beat
