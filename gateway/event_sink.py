"""Domain events out to Socket.IO rooms, on every node (``SocketEvents``).

Kept apart from the Socket.IO namespace (``gateway/realtime.py``) because a process that holds
no sockets — the Celery worker — emits events too, and needs none of the client-facing events.
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from gateway.socket_manager import ResilientRedisManager
from messaging.events import Event
from storage.pubsub import PubSub

NAMESPACE = "/"
SOCKETS_CHANNEL = "sockets"


def rooms_of(audience: dict[str, Any]) -> str | list[str]:
    """Socket.IO room(s) for an event's audience: one user, one session, or a list of users."""
    ((kind, ident),) = audience.items()
    if kind == "users":
        return [f"user:{user_id}" for user_id in ident]
    if kind not in {"user", "session"}:
        raise ValueError(f"unknown audience {kind!r}")
    return f"{kind}:{ident}"


DISCONNECT_GRACE = 0.3  # seconds between a session's revocation event and cutting its sockets


class SocketEvents:
    """Delivers domain events to Socket.IO rooms on every node.

    ``sio`` is the gateway's server, or — in a process that holds no sockets (the Celery
    worker) — a write-only ``AsyncRedisManager``: both ``emit(event, data, room=, namespace=)``,
    and the manager publishes once on the channel every gateway's Socket.IO manager listens to.
    """

    def __init__(self, sio: socketio.AsyncServer | socketio.AsyncRedisManager, pubsub: PubSub):
        self.sio = sio
        self.pubsub = pubsub
        self._pending: set[asyncio.Task] = set()

    async def start(self) -> None:
        await self.pubsub.subscribe(SOCKETS_CHANNEL, self._on_sockets_message)

    async def emit(self, event: Event) -> None:
        room = rooms_of(event["audience"])
        if not room:
            return
        await self.sio.emit(event["type"], event["payload"], room=room, namespace=NAMESPACE)
        if event["type"] == "session.revoked":
            # Rooms are per node: ask every node to drop its own sockets of that session.
            await self.pubsub.publish(SOCKETS_CHANNEL, {"disconnect_room": room})

    async def close(self) -> None:
        """Close the Redis client manager's connections: a write-only one's (the worker's), or
        the gateway server's ``ResilientRedisManager`` (python-socketio never stops its
        listener)."""
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        manager = getattr(self.sio, "manager", self.sio)
        if isinstance(manager, ResilientRedisManager):
            await manager.close()
            return
        redis = getattr(self.sio, "redis", None)
        if isinstance(self.sio, socketio.AsyncRedisManager) and redis is not None:
            await redis.aclose()

    async def _on_sockets_message(self, message: dict[str, Any]) -> None:
        room = message.get("disconnect_room")
        if room:
            # The event that says why (``session.revoked``) travels on Socket.IO's own Redis
            # channel, which is not ordered with ours: give it a moment to reach the sockets
            # before they are cut, in the background (other messages keep flowing).
            task = asyncio.create_task(self._disconnect_room_soon(room))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _disconnect_room_soon(self, room: str) -> None:
        await asyncio.sleep(DISCONNECT_GRACE)
        for sid, _ in list(self.sio.manager.get_participants(NAMESPACE, room)):
            await self.sio.disconnect(sid, namespace=NAMESPACE)
