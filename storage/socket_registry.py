"""Which sockets each user has open, oldest first, for the per-user socket cap.

In-process by default (the cap holds per node). With Redis, one sorted set per user
(``aetherial:sockets:<user>``, member = socket id, score = Redis server time of the connect)
holds the sockets of every node, and adding a socket and trimming the oldest beyond the cap is
one Lua script, so concurrent connects on several nodes cannot leave more than the cap.

Redis is a helper, not a single point of failure: while it is unreachable the cap holds per
node. Entries of a node that crashed are never removed by it; they are the oldest, so the next
connect that goes past the cap trims them first (their "eviction" finds no socket), and the key
expires when nobody refreshes it.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod

from storage.redis_client import RedisHealth, close_redis, connect_redis

# KEYS[1] = the user's set; ARGV = socket id, cap, key lifetime in ms.
_ADD_AND_TRIM = """
local now = redis.call('TIME')
local score = tonumber(now[1]) * 1000000 + tonumber(now[2])
redis.call('ZADD', KEYS[1], score, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if over <= 0 then
  return {}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, over - 1)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
return oldest
"""


class SocketRegistry(ABC):
    @abstractmethod
    async def add(self, user_id: str, sid: str, cap: int) -> list[str]:
        """Record a new socket of ``user_id``; forget and return the oldest ones beyond ``cap``
        (never ``sid`` itself)."""

    @abstractmethod
    async def remove(self, user_id: str, sid: str) -> None:
        """Forget a closed socket (nothing happens if it is unknown)."""

    async def keep(self, user_id: str) -> None:
        """The user still has a socket open: keep their entries from expiring."""

    async def close(self) -> None:
        pass


class MemorySocketRegistry(SocketRegistry):
    def __init__(self) -> None:
        # user id -> socket ids in connect order (dicts keep insertion order)
        self._sockets: dict[str, dict[str, None]] = {}

    async def add(self, user_id: str, sid: str, cap: int) -> list[str]:
        sockets = self._sockets.setdefault(user_id, {})
        sockets[sid] = None
        over = len(sockets) - cap
        if over <= 0:
            return []
        oldest = list(sockets)[:over]
        for victim in oldest:
            del sockets[victim]
        return oldest

    async def remove(self, user_id: str, sid: str) -> None:
        sockets = self._sockets.get(user_id)
        if sockets is not None:
            sockets.pop(sid, None)
            if not sockets:
                del self._sockets[user_id]


class RedisSocketRegistry(SocketRegistry):
    """The sockets of every node. While Redis is unreachable (``RedisHealth``) the cap falls
    back to this node's own sockets, which it always keeps in ``_local``; sockets counted only
    there are unknown to Redis until they close (the cap may be exceeded by them meanwhile)."""

    prefix = "aetherial:sockets:"

    def __init__(self, url: str, key_ttl: int) -> None:
        self._redis = connect_redis(url, decode_responses=True)
        self._add_and_trim = self._redis.register_script(_ADD_AND_TRIM)
        self._key_ttl_ms = key_ttl * 1000
        self._local = MemorySocketRegistry()  # this node's sockets, in connect order
        self.health = RedisHealth("socket cap")

    async def add(self, user_id: str, sid: str, cap: int) -> list[str]:
        async def on_redis() -> list[str]:
            oldest = await self._add_and_trim(
                keys=[self.prefix + user_id], args=[sid, cap, self._key_ttl_ms]
            )
            await self._local.add(user_id, sid, sys.maxsize)
            for victim in oldest:  # ours among them: forget them here too
                await self._local.remove(user_id, victim)
            return list(oldest)

        async def this_node_only() -> list[str]:
            return await self._local.add(user_id, sid, cap)

        return await self.health.run(on_redis, this_node_only)

    async def remove(self, user_id: str, sid: str) -> None:
        await self._local.remove(user_id, sid)

        async def on_redis() -> None:
            await self._redis.zrem(self.prefix + user_id, sid)

        await self.health.run(on_redis, _nothing)

    async def keep(self, user_id: str) -> None:
        async def on_redis() -> None:
            await self._redis.pexpire(self.prefix + user_id, self._key_ttl_ms)

        await self.health.run(on_redis, _nothing)

    async def close(self) -> None:
        await close_redis(self._redis)


async def _nothing() -> None:
    return None


def make_socket_registry(redis_url: str | None, key_ttl: int) -> SocketRegistry:
    """``key_ttl``: seconds a user's entries live without a connect or a ``keep``."""
    return RedisSocketRegistry(redis_url, key_ttl) if redis_url else MemorySocketRegistry()
