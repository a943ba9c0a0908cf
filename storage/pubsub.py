"""Publish/subscribe between gateway nodes: in-process by default, Redis when configured.

Same shape as python-socketio's client managers: one small interface, a default that needs
nothing, and a Redis backend for several nodes. Messages are JSON-serialisable dicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class PubSub(ABC):
    """Interface: ``publish`` to a channel; ``subscribe`` a coroutine handler to it."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        """Raise when the backend is unreachable."""

    @abstractmethod
    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Deliver ``message`` to every subscriber of ``channel`` on every node."""

    async def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers[channel].append(handler)

    async def _dispatch(self, channel: str, message: dict[str, Any]) -> None:
        for handler in list(self._handlers.get(channel, ())):
            try:
                await handler(message)
            except Exception:
                log.exception("pub/sub handler for %s failed", channel)


class LocalPubSub(PubSub):
    """One process: delivery is a direct call to every subscribed handler."""

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        # Round-trip through JSON so local delivery behaves exactly like Redis delivery.
        await self._dispatch(channel, json.loads(json.dumps(message)))


class RedisPubSub(PubSub):
    """Several nodes: Redis PUBLISH/SUBSCRIBE on channels prefixed ``aetherial:``."""

    prefix = "aetherial:"

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._redis.ping()

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pubsub.aclose()
        await self._redis.aclose()

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self._redis.publish(self.prefix + channel, json.dumps(message))

    async def subscribe(self, channel: str, handler: Handler) -> None:
        first = channel not in self._handlers
        await super().subscribe(channel, handler)
        if first:
            await self._pubsub.subscribe(self.prefix + channel)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            try:
                async for item in self._pubsub.listen():
                    if item.get("type") != "message":
                        continue
                    channel = item["channel"].decode()[len(self.prefix) :]
                    await self._dispatch(channel, json.loads(item["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis dropped: keep trying; redis-py re-subscribes on reconnect.
                log.warning("redis pub/sub connection lost; retrying", exc_info=True)
                await asyncio.sleep(1)


def make_pubsub(redis_url: str | None) -> PubSub:
    return RedisPubSub(redis_url) if redis_url else LocalPubSub()
