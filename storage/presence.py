"""Connection counting for presence: how many sockets each user has open, over all nodes.

In-process by default. With Redis each node keeps its own count per user in a hash
(``presence:<user>`` → {node id: sockets}) and refreshes a liveness key with a TTL; counts of a
node whose key expired (it crashed) are ignored, so a dead node cannot keep people "online".
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from abc import ABC, abstractmethod
from collections import Counter

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


class RedisPresence(PresenceCounter):
    prefix = "aetherial:presence:"
    node_prefix = "aetherial:node:"

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self.node_id = uuid.uuid4().hex
        self._heartbeat: asyncio.Task[None] | None = None

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
        await self._redis.aclose()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            with contextlib.suppress(Exception):
                await self._redis.set(self.node_prefix + self.node_id, "1", ex=NODE_TTL)

    async def _total(self, user_id: str) -> int:
        counts = await self._redis.hgetall(self.prefix + user_id)
        if not counts:
            return 0
        nodes = list(counts)
        alive = await self._redis.mget([self.node_prefix + n for n in nodes])
        return sum(int(counts[n]) for n, up in zip(nodes, alive, strict=True) if up)

    async def connected(self, user_id: str) -> bool:
        await self._redis.hincrby(self.prefix + user_id, self.node_id, 1)
        return await self._total(user_id) == 1

    async def disconnected(self, user_id: str) -> bool:
        left = await self._redis.hincrby(self.prefix + user_id, self.node_id, -1)
        if left <= 0:
            await self._redis.hdel(self.prefix + user_id, self.node_id)
        return await self._total(user_id) == 0

    async def online(self, user_ids: list[str]) -> set[str]:
        totals = await asyncio.gather(*[self._total(u) for u in user_ids])
        return {u for u, total in zip(user_ids, totals, strict=True) if total > 0}


def make_presence(redis_url: str | None) -> PresenceCounter:
    return RedisPresence(redis_url) if redis_url else MemoryPresence()
