"""Socket.IO's Redis client manager, made to survive a Redis outage.

python-socketio's ``AsyncRedisManager`` already emits to this node's sockets before it publishes
for the others; what it lacks for "Redis is a helper, not a single point of failure":

- a publish while Redis is down must cost (almost) nothing: redis-py's defaults retry ten times
  with back-off, and the stock manager reconnects and logs an error twice per emit. Here a
  publish has short timeouts (``storage.redis_client``), is skipped for ``RETRY_AFTER`` seconds
  after a failure, and the outage is logged once, then every ``LOG_EVERY`` seconds;
- the listener reconnects by itself with a short, capped back-off (the stock one grows to a
  minute), on its own connection, and says whether it is subscribed (``listening``), which
  ``/readyz`` reports: cross-node delivery works again once it is.

Events published by other nodes while Redis was down are lost to this node's sockets; clients
recover them with ``sync`` (nothing acked is lost: messages are in MongoDB first).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import socketio

from storage.redis_client import RedisHealth, close_redis, connect_redis, subscriber_events


class ResilientRedisManager(socketio.AsyncRedisManager):
    name = "aetherial-redis"

    def __init__(self, url: str, channel: str = "socketio", write_only: bool = False) -> None:
        super().__init__(url, channel=channel, write_only=write_only)
        self.publish_health = RedisHealth("Socket.IO fan-out (publish)")
        self.listen_health = RedisHealth("Socket.IO fan-out (subscriber)")
        self.subscribed = asyncio.Event()  # set while the listener is subscribed
        self._closed = False

    @property
    def listening(self) -> bool:
        return self.subscribed.is_set()

    async def _publish(self, data: Any) -> None:
        if self._closed:
            return
        if self.redis is None:
            self.redis = connect_redis(self.redis_url)  # its pool reconnects as needed
        payload = self.json.dumps(data)

        async def on_redis() -> None:
            await self.redis.publish(self.channel, payload)

        async def skipped() -> None:
            # This node's sockets had it already (``emit`` handles them first); other nodes'
            # sockets catch up through sync.
            return None

        await self.publish_health.run(on_redis, skipped)

    def _set_pubsub(self, pubsub: Any) -> None:
        self.pubsub = pubsub
        if pubsub is None:
            self.subscribed.clear()
        else:
            # Redis answers again: publish at once rather than at the end of the back-off.
            self.publish_health.succeeded()
            self.subscribed.set()

    async def _listen(self):
        events = subscriber_events(
            self.redis_url, lambda: [self.channel], self.listen_health, self._set_pubsub
        )
        async for kind, _, data in events:
            if kind == "message":
                yield data

    async def close(self) -> None:
        """Stop listening and close both connections (python-socketio never stops its manager's
        listener; the gateway's event sink calls this when it closes)."""
        self._closed = True
        listener = getattr(self, "thread", None)
        if isinstance(listener, asyncio.Future) and not listener.done():
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        if self.redis is not None:
            await close_redis(self.redis)
            self.redis = None
