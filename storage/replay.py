"""Replay guards for signed requests: a nonce is accepted once within its window, on any node.

In-process by default; with Redis, one ``SET key NX EX window`` per request, shared by every node
(a per-node cache would let a replay through by sending it to another node).

While Redis is unreachable the guard falls back to this node's own cache rather than refusing
every signed request: a replay sent to *another* node during the outage can get through (the
documented cost of the degraded mode), one sent to the same node cannot (each node also keeps the
keys it accepted), and keys a node accepted during the outage stay refused there afterwards.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

from storage.redis_client import RedisHealth, close_redis, connect_redis


class ReplayGuard(ABC):
    @abstractmethod
    async def first_use(self, key: str, window: int) -> bool:
        """Record ``key``; False when it was already recorded within ``window`` seconds."""

    async def close(self) -> None:
        pass


class MemoryReplayGuard(ReplayGuard):
    def __init__(self, max_entries: int = 200_000) -> None:
        self._expiries: dict[str, float] = {}
        self._max_entries = max_entries

    def seen(self, key: str) -> bool:
        """Whether ``key`` was recorded and its window has not passed (records nothing)."""
        expiry = self._expiries.get(key)
        return expiry is not None and expiry > time.monotonic()

    async def first_use(self, key: str, window: int) -> bool:
        now = time.monotonic()
        expiry = self._expiries.get(key)
        if expiry is not None and expiry > now:
            return False
        if len(self._expiries) >= self._max_entries:
            self._expiries = {k: e for k, e in self._expiries.items() if e > now}
        self._expiries[key] = now + window
        return True


class RedisReplayGuard(ReplayGuard):
    prefix = "aetherial:nonce:"

    def __init__(self, url: str) -> None:
        self._redis = connect_redis(url)
        self._fallback = MemoryReplayGuard()
        self.health = RedisHealth("replay guard")

    async def first_use(self, key: str, window: int) -> bool:
        if self._fallback.seen(key):  # recorded here while Redis was down
            return False
        return await self.health.run(
            lambda: self._redis_first_use(key, window),
            lambda: self._fallback.first_use(key, window),
        )

    async def _redis_first_use(self, key: str, window: int) -> bool:
        if not await self._redis.set(self.prefix + key, b"1", nx=True, ex=window):
            return False
        # Remembered here too, so a replay to this node is refused even if Redis goes away.
        await self._fallback.first_use(key, window)
        return True

    async def close(self) -> None:
        await close_redis(self._redis)


def make_replay_guard(redis_url: str | None) -> ReplayGuard:
    return RedisReplayGuard(redis_url) if redis_url else MemoryReplayGuard()
