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

from storage.redis_client import (
    OUTAGE_ERRORS,
    RedisHealth,
    close_redis,
    connect_redis,
    subscriber_events,
)

log = logging.getLogger(__name__)

SUBSCRIBE_WAIT = 5.0  # seconds the first subscribe waits for Redis to confirm it

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class PubSub(ABC):
    """Interface: ``publish`` to a channel; ``subscribe`` a coroutine handler to it.

    Delivery between nodes is best effort. ``connected`` says whether messages from other nodes
    are arriving now; hooks given to ``on_reconnect`` run after the backend came back from an
    outage, when whatever other nodes published meanwhile was lost (caches re-validate there).
    """

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._reconnect_hooks: list[Callable[[], Awaitable[None]]] = []

    @property
    def connected(self) -> bool:
        return True

    def on_reconnect(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._reconnect_hooks.append(hook)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        """Raise when the backend is unreachable."""

    @abstractmethod
    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Deliver ``message`` to every subscriber of ``channel`` on every node (best effort:
        never raises because another node cannot be reached)."""

    async def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers[channel].append(handler)

    async def _dispatch(self, channel: str, message: dict[str, Any]) -> None:
        for handler in list(self._handlers.get(channel, ())):
            try:
                await handler(message)
            except Exception:
                log.exception("pub/sub handler for %s failed", channel)

    async def _reconnected(self) -> None:
        for hook in list(self._reconnect_hooks):
            try:
                await hook()
            except Exception:
                log.exception("pub/sub reconnect hook failed")


class LocalPubSub(PubSub):
    """One process: delivery is a direct call to every subscribed handler."""

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        # Round-trip through JSON so local delivery behaves exactly like Redis delivery.
        await self._dispatch(channel, json.loads(json.dumps(message)))


class RedisPubSub(PubSub):
    """Several nodes: Redis PUBLISH/SUBSCRIBE on channels prefixed ``aetherial:``.

    Redis is a helper here, not a single point of failure: a failed publish is logged (rate
    limited) and skipped — the publishing node's own subscribers still get the message — and the
    subscriber reconnects by itself with back-off, then runs the ``on_reconnect`` hooks.
    """

    prefix = "aetherial:"

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._redis = connect_redis(url)
        self._pubsub: Any = None  # the subscriber's live connection, while it is subscribed
        self._reader: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.health = RedisHealth("pub/sub publish")
        self.listener_health = RedisHealth("pub/sub subscriber")

    @property
    def connected(self) -> bool:
        return self._pubsub is not None

    async def start(self) -> None:
        await self._redis.ping()

    async def ping(self) -> None:
        await self._redis.ping()
        if self._reader is not None and not self.connected:
            raise ConnectionError("the pub/sub subscriber is reconnecting")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await close_redis(self._redis)

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        data = json.dumps(message)

        async def on_redis() -> bool:
            await self._redis.publish(self.prefix + channel, data)
            return True

        async def skipped() -> bool:
            return False

        published = await self.health.run(on_redis, skipped)
        if not published or not self.connected:
            # It will not come back to us through Redis: this node's subscribers act on it now.
            await self._dispatch(channel, json.loads(data))

    async def subscribe(self, channel: str, handler: Handler) -> None:
        first = channel not in self._handlers
        await super().subscribe(channel, handler)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())
            # Listen before going on (as before), unless Redis does not answer at all.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), SUBSCRIBE_WAIT)
        elif first and self._pubsub is not None:
            with contextlib.suppress(*OUTAGE_ERRORS):  # the reader re-subscribes all
                await self._pubsub.subscribe(self.prefix + channel)

    def _set_pubsub(self, pubsub: Any) -> None:
        self._pubsub = pubsub
        if pubsub is not None:
            # Redis answers again: publish at once rather than at the end of the back-off.
            self.health.succeeded()

    async def _read(self) -> None:
        events = subscriber_events(
            self._url,
            lambda: [self.prefix + c for c in self._handlers],
            self.listener_health,
            self._set_pubsub,
        )
        async for kind, channel, data in events:
            if kind == "ready":
                self._subscribed.set()
                if data:
                    await self._reconnected()
                continue
            try:
                message = json.loads(data)
            except ValueError:
                log.warning("dropped a pub/sub message that is not JSON on %s", channel)
                continue
            await self._dispatch(channel[len(self.prefix) :], message)


def make_pubsub(redis_url: str | None) -> PubSub:
    return RedisPubSub(redis_url) if redis_url else LocalPubSub()
