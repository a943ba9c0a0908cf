"""Fixed-window rate limits: in-process by default, Redis (shared by all nodes) when configured.

With Redis, an outage does not fail the requests being limited: each node falls back to counting
on its own until Redis answers again (``storage.redis_client.RedisHealth``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from storage.redis_client import RedisHealth, close_redis, connect_redis


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    retry_after: int  # seconds until the window resets


class RateLimiter(ABC):
    """Counts hits per key in windows of ``window`` seconds."""

    async def hit(self, key: str, limit: int, window: int) -> Verdict:
        """Count one hit and say whether it is within ``limit``."""
        count, retry_after = await self._incr(key, window, 1)
        return Verdict(count <= limit, count, retry_after)

    async def peek(self, key: str, limit: int, window: int) -> Verdict:
        """Say whether one more hit would be within ``limit``, without counting it."""
        count, retry_after = await self._incr(key, window, 0)
        return Verdict(count < limit, count, retry_after)

    @abstractmethod
    async def reset(self, key: str) -> None:
        """Forget the hits counted for ``key``."""

    async def close(self) -> None:
        pass

    @abstractmethod
    async def _incr(self, key: str, window: int, amount: int) -> tuple[int, int]:
        """Add ``amount`` to the key's window; return (count, seconds left)."""


class MemoryRateLimiter(RateLimiter):
    """One node's counts. Each key keeps the end of its own window, so a sweep triggered by a
    short-window key never drops a long-window key early."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window ends at, count)
        self._max_keys = max_keys
        self._next_sweep = 0.0

    async def _incr(self, key: str, window: int, amount: int) -> tuple[int, int]:
        now = time.monotonic()
        ends, count = self._windows.get(key, (now + window, 0))
        if now >= ends:
            ends, count = now + window, 0
        count += amount
        if count:
            self._windows[key] = (ends, count)
        if len(self._windows) > self._max_keys and now >= self._next_sweep:
            self._sweep(now)
        return count, max(1, int(ends - now + 0.999))

    def _sweep(self, now: float) -> None:
        for key, (ends, _) in list(self._windows.items()):
            if now >= ends:
                del self._windows[key]
        # Still over the cap (every window is live): do not rescan on every hit.
        self._next_sweep = now + 1.0

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)


class RedisRateLimiter(RateLimiter):
    """Counts shared by every node. While Redis is unreachable each node counts on its own
    (``MemoryRateLimiter``): limits still hold per node instead of every write failing."""

    prefix = "aetherial:rl:"

    def __init__(self, url: str) -> None:
        self._redis = connect_redis(url)
        self._fallback = MemoryRateLimiter()
        self.health = RedisHealth("rate limits")

    async def _incr(self, key: str, window: int, amount: int) -> tuple[int, int]:
        return await self.health.run(
            lambda: self._redis_incr(key, window, amount),
            lambda: self._fallback._incr(key, window, amount),
        )

    async def _redis_incr(self, key: str, window: int, amount: int) -> tuple[int, int]:
        name = self.prefix + key
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(name, amount)
            pipe.expire(name, window, nx=True)
            pipe.ttl(name)
            count, _, ttl = await pipe.execute()
        if count == 0:
            await self._redis.delete(name)
        return int(count), max(1, int(ttl))

    async def reset(self, key: str) -> None:
        await self._fallback.reset(key)

        async def nothing() -> None:
            return None

        await self.health.run(lambda: self._redis.delete(self.prefix + key), nothing)

    async def close(self) -> None:
        await close_redis(self._redis)


def make_rate_limiter(redis_url: str | None) -> RateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else MemoryRateLimiter()
