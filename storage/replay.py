"""Replay guards for signed requests: a nonce is accepted once within its window, on any node.

In-process by default; with Redis, one ``SET key NX EX window`` per request, shared by every node
(a per-node cache would let a replay through by sending it to another node).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod


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
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url)

    async def first_use(self, key: str, window: int) -> bool:
        return bool(await self._redis.set(self.prefix + key, b"1", nx=True, ex=window))

    async def close(self) -> None:
        await self._redis.aclose()


def make_replay_guard(redis_url: str | None) -> ReplayGuard:
    return RedisReplayGuard(redis_url) if redis_url else MemoryReplayGuard()
