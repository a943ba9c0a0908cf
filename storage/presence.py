"""Connection counting for presence: how many sockets each user has open, over all nodes.

In-process by default. With Redis each node keeps its own count per user in a hash
(``presence:<user>`` → {node id: sockets}) and refreshes a liveness key with a TTL; counts of a
node whose key expired (it crashed) are ignored, so a dead node cannot keep people "online".
A node writes its own count of a user (not an increment), so after a Redis outage or restart it
can put back exactly what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from abc import ABC, abstractmethod
from collections import Counter

from storage.redis_client import RedisHealth, close_redis, connect_redis

NODE_TTL = 30  # seconds a node counts as alive after its last heartbeat
HEARTBEAT = 10


class PresenceCounter(ABC):
    @abstractmethod
    async def connected(self, user_id: str) -> bool:
        """Count a new socket; True when the user was offline before it."""

    @abstractmethod
    async def disconnected(self, user_id: str) -> bool:
        """Count a closed socket; True when it was the user's last one."""

    @abstractmethod
    async def online(self, user_ids: list[str]) -> set[str]:
        """Which of these users have a socket open anywhere."""

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class MemoryPresence(PresenceCounter):
    def __init__(self) -> None:
        self._sockets: Counter[str] = Counter()

    async def connected(self, user_id: str) -> bool:
        self._sockets[user_id] += 1
        return self._sockets[user_id] == 1

    async def disconnected(self, user_id: str) -> bool:
        if self._sockets[user_id] <= 1:
            self._sockets.pop(user_id, None)
            return True
        self._sockets[user_id] -= 1
        return False

    async def online(self, user_ids: list[str]) -> set[str]:
        return {u for u in user_ids if self._sockets.get(u, 0) > 0}

    def count(self, user_id: str) -> int:
        return self._sockets.get(user_id, 0)

    def counts(self) -> dict[str, int]:
        return dict(self._sockets)


class RedisPresence(PresenceCounter):
    """Counts shared by every node, each node's own sockets also counted here.

    While Redis is unreachable presence is degraded, never an error: a node answers from its own
    sockets alone (someone connected only to another node looks offline). The node keeps
    counting its sockets meanwhile, and when Redis answers again — or its liveness key turns out
    to be missing (Redis restarted empty) — it writes its counts back (``_resync``).
    """

    prefix = "aetherial:presence:"
    node_prefix = "aetherial:node:"

    def __init__(self, url: str) -> None:
        self._redis = connect_redis(url, decode_responses=True)
        self.node_id = uuid.uuid4().hex
        self._heartbeat: asyncio.Task[None] | None = None
        self._local = MemoryPresence()  # this node's sockets: the truth for its share
        self._stale: set[str] = set()  # users whose count here may differ from Redis's
        self._resync_all = False  # Redis may have lost everything (it restarted)
        # One write at a time, so counts reach Redis in the order they changed here.
        self._writes = asyncio.Lock()
        self.health = RedisHealth("presence")

    @property
    def degraded(self) -> bool:
        return not self.health.up

    async def start(self) -> None:
        await self._redis.set(self.node_prefix + self.node_id, "1", ex=NODE_TTL)
        self._heartbeat = asyncio.create_task(self._beat())

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        with contextlib.suppress(Exception):
            await self._redis.delete(self.node_prefix + self.node_id)
        await close_redis(self._redis)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            with contextlib.suppress(Exception):
                await self.heartbeat()

    async def heartbeat(self) -> None:
        """Refresh this node's liveness key; write the counts back when Redis lost them."""

        async def beat() -> None:
            previous = await self._redis.set(
                self.node_prefix + self.node_id, "1", ex=NODE_TTL, get=True
            )
            if previous is None:  # expired or wiped: our counts there are gone too
                self._resync_all = True
            await self._resync()

        await self.health.run(beat, _nothing)

    async def _resync(self) -> None:
        """Write this node's count of every user whose Redis count may be wrong."""
        if not (self._stale or self._resync_all):
            return
        async with self._writes:
            users = set(self._stale)
            if self._resync_all:
                users |= set(self._local.counts())
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(self.node_prefix + self.node_id, "1", ex=NODE_TTL)
                for user_id in users:
                    count = self._local.count(user_id)
                    if count:
                        pipe.hset(self.prefix + user_id, self.node_id, count)
                    else:
                        pipe.hdel(self.prefix + user_id, self.node_id)
                await pipe.execute()
            self._stale -= users
            self._resync_all = False

    async def _write(self, user_id: str) -> None:
        """Put this node's current count of ``user_id`` in Redis."""
        async with self._writes:
            count = self._local.count(user_id)
            if count:
                await self._redis.hset(self.prefix + user_id, self.node_id, count)
            else:
                await self._redis.hdel(self.prefix + user_id, self.node_id)

    async def _total(self, user_id: str) -> int:
        counts = await self._redis.hgetall(self.prefix + user_id)
        if not counts:
            return 0
        nodes = list(counts)
        alive = await self._redis.mget([self.node_prefix + n for n in nodes])
        return sum(int(counts[n]) for n, up in zip(nodes, alive, strict=True) if up)

    async def _counted(self, user_id: str, local_answer: bool, online: bool) -> bool:
        """Write the change to Redis and answer from the totals there; when Redis cannot be
        reached, note the user for the resync and answer from this node's sockets."""

        async def on_redis() -> bool:
            if self._stale or self._resync_all:
                await self._resync()  # first call since an outage: catch up
            await self._write(user_id)
            total = await self._total(user_id)
            return total == 1 if online else total == 0

        async def alone() -> bool:
            self._stale.add(user_id)
            self._resync_all = True  # Redis may come back empty (restarted)
            return local_answer

        return await self.health.run(on_redis, alone)

    async def connected(self, user_id: str) -> bool:
        return await self._counted(user_id, await self._local.connected(user_id), online=True)

    async def disconnected(self, user_id: str) -> bool:
        return await self._counted(user_id, await self._local.disconnected(user_id), online=False)

    async def online(self, user_ids: list[str]) -> set[str]:
        async def on_redis() -> set[str]:
            totals = await asyncio.gather(*[self._total(u) for u in user_ids])
            return {u for u, total in zip(user_ids, totals, strict=True) if total > 0}

        async def alone() -> set[str]:
            return await self._local.online(user_ids)

        return await self.health.run(on_redis, alone)


async def _nothing() -> None:
    return None


def make_presence(redis_url: str | None) -> PresenceCounter:
    return RedisPresence(redis_url) if redis_url else MemoryPresence()
