"""Socket.IO: authenticated connections, rooms per user and session, and client events.

Clients connect with ``auth={"token": access_token}``. A refused connection carries
``{"code", "message"}`` as its ``connect_error`` data. Each socket joins ``user:<id>`` (all of a
person's devices) and ``session:<id>`` (one signed-in device).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio
from aiohttp import web

from gateway import keys
from gateway.event_sink import NAMESPACE
from gateway.socket_events import socket_api
from messaging.actions import presence
from messaging.actions.auth import authenticate
from messaging.context import Messaging
from storage.config import Config
from storage.errors import AppError

log = logging.getLogger(__name__)


def build_socketio(config: Config) -> socketio.AsyncServer:
    manager = socketio.AsyncRedisManager(config.redis_url) if config.redis_url else None
    return socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=config.cors_allowed or None,
        max_http_buffer_size=config.max_body_bytes,
        logger=False,
        engineio_logger=False,
    )


async def start_client_manager(sio: socketio.AsyncServer, timeout: float = 5.0) -> None:
    """Subscribe the Redis client manager at start-up rather than at the first connection.

    python-socketio subscribes lazily when its first client connects, so emits from other nodes in
    the first moments after that would be lost; a node should listen before it serves anyone.
    """
    if sio.manager_initialized:
        return
    sio.manager_initialized = True
    sio.manager.initialize()
    if not isinstance(sio.manager, socketio.AsyncRedisManager):
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        pubsub = getattr(sio.manager, "pubsub", None)
        if pubsub is not None and pubsub.subscribed:
            return
        await asyncio.sleep(0.01)
    log.warning("Socket.IO Redis manager did not subscribe within %.0fs", timeout)


def _error_ack(error: AppError) -> dict[str, Any]:
    return {"ok": False, "error": error.to_dict()}


class ChatNamespace(socketio.AsyncNamespace):
    """Every client event runs its declared handler (``gateway/socket_events.py``) with the
    domains it declared, read from the app like a REST route's ``request.app[KEY]``."""

    def __init__(self, app: web.Application) -> None:
        super().__init__(NAMESPACE)
        self.app = app
        # sid -> user id of this node's sockets, for disconnects after the transport is gone
        self.connected_users: dict[str, str] = {}
        self.connected_sessions: dict[str, str] = {}  # sid -> session (device) id

    @property
    def messaging(self) -> Messaging:
        return self.app[keys.MESSAGING]

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in {"connect", "disconnect"}:
            return await super().trigger_event(event, *args)
        sid, data = args[0], (args[1] if len(args) > 1 else None)
        spec = socket_api.events.get(event)
        if spec is None:
            return _error_ack(AppError("unknown_event", f"there is no event named {event!r}"))
        try:
            user_id = self.connected_users.get(sid)
            if user_id is None:
                raise AppError("not_connected", "this socket is not signed in", status=401)
            payload = spec.validator.validate(data)
            result = await spec.run(self.app, user_id, payload, self.connected_sessions.get(sid))
        except AppError as exc:
            return _error_ack(exc)
        except Exception:
            log.exception("socket event %s failed", event)
            return _error_ack(AppError("internal_error", "something went wrong on our side"))
        return {"ok": True, **result}

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            who = await authenticate(self.messaging, token)
        except AppError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.message, exc.to_dict()) from None
        await self.save_session(sid, {"user_id": who.user_id, "session_id": who.session_id})
        await self.enter_room(sid, f"user:{who.user_id}")
        await self.enter_room(sid, f"session:{who.session_id}")
        self.connected_users[sid] = who.user_id
        self.connected_sessions[sid] = who.session_id
        await presence.do_device_connected(self.messaging, who.user_id)
        calls = self.app.get(keys.CALLS)
        if calls is not None:
            await calls.device_connected(who.user_id, who.session_id)

    async def on_disconnect(self, sid: str, *reason: Any) -> None:
        user_id = self.connected_users.pop(sid, None)
        session_id = self.connected_sessions.pop(sid, None)
        if user_id is None:
            return
        calls = self.app.get(keys.CALLS)
        if calls is not None:
            try:  # a call participant on this device gets CALL_GRACE_PERIOD to come back
                await calls.device_disconnected(user_id, session_id)
            except Exception:
                log.exception("noting a call participant's disconnect failed")
        try:
            await presence.do_device_disconnected(self.messaging, user_id)
        except Exception:
            log.exception("presence update on disconnect failed")
