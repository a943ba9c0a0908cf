"""Fixed-window rate limits: in-process by default, Redis (shared by all nodes) when configured."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass


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
    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    async def _incr(self, key: str, window: int, amount: int) -> tuple[int, int]:
        now = time.monotonic()
        started, count = self._windows.get(key, (now, 0))
        if now - started >= window:
            started, count = now, 0
        count += amount
        if count:
            self._windows[key] = (started, count)
        if len(self._windows) > 100_000:
            self._sweep(now, window)
        return count, max(1, int(started + window - now + 0.999))

    def _sweep(self, now: float, window: int) -> None:
        for key, (started, _) in list(self._windows.items()):
            if now - started >= window:
                del self._windows[key]

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)


class RedisRateLimiter(RateLimiter):
    prefix = "aetherial:rl:"

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url)

    async def _incr(self, key: str, window: int, amount: int) -> tuple[int, int]:
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
        await self._redis.delete(self.prefix + key)

    async def close(self) -> None:
        await self._redis.aclose()


def make_rate_limiter(redis_url: str | None) -> RateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else MemoryRateLimiter()
