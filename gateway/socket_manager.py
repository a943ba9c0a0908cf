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
import logging
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet

from storage.redis_client import RedisHealth, close_redis, connect_redis, subscriber_events

log = logging.getLogger(__name__)


class DirectFanoutManager(socketio.AsyncManager):
    """This node's part of an emit without a task per recipient.

    python-socketio encodes a room emit once, then starts one task per recipient socket just to
    put the packet on that socket's unbounded queue, and waits for them all: a message.new to a
    group of 10 cost 10 tasks, most of the fan-out's time under load (issue 22's profiles). The
    put never waits, so putting directly is the same delivery, in the same order, for a fraction
    of the cost. Emits with a callback (a distinct ack id per recipient) stay upstream's.
    """

    async def emit(
        self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None, **kwargs
    ):
        if callback is not None:
            return await super().emit(
                event,
                data,
                namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
        room = to or room
        if namespace not in self.rooms:
            return None
        if isinstance(data, tuple):
            data = list(data)  # a tuple is several arguments
        elif data is not None:
            data = [data]
        else:
            data = []
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        encoded = self.server.packet_class(
            packet.EVENT, namespace=namespace, data=[event, *data]
        ).encode()
        if not isinstance(encoded, list):
            encoded = [encoded]  # binary data: a header and attachments
        eio_packets = [eio_packet.Packet(eio_packet.MESSAGE, p) for p in encoded]
        eio = self.server.eio
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            try:
                for eio_pkt in eio_packets:
                    await eio.send_packet(eio_sid, eio_pkt)
            except Exception:
                # A socket closing under us (upstream's per-recipient task dropped this too);
                # the others still get theirs.
                log.debug("emit to %s skipped: socket closing", sid, exc_info=True)
        return None


class ResilientRedisManager(socketio.AsyncRedisManager, DirectFanoutManager):
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
