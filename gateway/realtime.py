"""Socket.IO: authenticated connections, rooms per user and session, and client events.

Clients connect with ``auth={"token": access_token}``. A refused connection carries
``{"code", "message"}`` as its ``connect_error`` data. Each socket joins ``user:<id>`` (all of a
person's devices) and ``session:<id>`` (one signed-in device). Open sockets have their session
re-checked as their access token expires, and at most ``SOCKETS_PER_USER`` per person stay open
(``ChatNamespace``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import socketio
from aiohttp import web
from engineio import json as engineio_json

from gateway import keys
from gateway.event_sink import NAMESPACE
from gateway.socket_events import socket_api
from gateway.socket_manager import DirectFanoutManager, ResilientRedisManager
from messaging.actions import presence
from messaging.actions.socket_sessions import authenticate_socket, check_session_alive
from messaging.context import Messaging
from storage.config import Config
from storage.errors import AppError
from storage.logs import bind_socket
from storage.socket_registry import make_socket_registry

log = logging.getLogger(__name__)

# Pub/sub channel on which a node names the sockets beyond a user's cap: {"sids": [...]}.
SOCKET_CAP_CHANNEL = "sockets.replaced"
RECHECK_RETRY = 10.0  # seconds before re-checking a session the database could not answer for
RECHECK_BATCH = 100  # sessions checked at once
EVICT_WAIT_STEP = 0.02  # seconds; EVICT_WAIT_STEPS of them at most for a socket still connecting
EVICT_WAIT_STEPS = 250


class OrjsonCodec:
    """Socket.IO's JSON codec (``AsyncServer(json=...)``): orjson, several times faster than the
    standard library on every packet in and out. It returns bytes, python-socketio concatenates
    str. Payloads are what the stdlib module took (str keys, ISO time strings); whatever orjson
    refuses either way (an int beyond 64 bits, NaN) still goes through the stdlib module, so the
    server accepts and sends exactly what it did before."""

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        try:
            return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            return json.dumps(obj, separators=(",", ":"))

    @staticmethod
    def loads(text: str | bytes) -> Any:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            # What orjson rejects and the stdlib accepted (NaN, huge ints) is still accepted.
            return engineio_json.loads(text)


def build_socketio(config: Config) -> socketio.AsyncServer:
    # With Redis, emits fan out to every node; without it (or while it is down) they reach this
    # node's sockets (``gateway/socket_manager.py``).
    manager = ResilientRedisManager(config.redis_url) if config.redis_url else DirectFanoutManager()
    return socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        json=OrjsonCodec,
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
    if not isinstance(sio.manager, ResilientRedisManager):
        return
    try:
        await asyncio.wait_for(sio.manager.subscribed.wait(), timeout)
    except TimeoutError:
        # Serve anyway: the listener keeps reconnecting, and /readyz says Redis is not there.
        log.warning("Socket.IO Redis manager did not subscribe within %.0fs", timeout)


def _error_ack(error: AppError) -> dict[str, Any]:
    return {"ok": False, "error": error.to_dict()}


class RecheckSchedule:
    """When each socket of this node is due for a session re-check, soonest first.

    One heap and one task for the whole node. Entries are ``(due, sid)``; a socket that
    disconnected, or was rescheduled, leaves a stale entry that ``due_sockets`` skips, and the
    heap is rebuilt whenever stale entries outnumber live ones.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due: float, sid: str) -> None:
        heapq.heappush(self._heap, (due, sid))
        if self._heap[0] == (due, sid):
            self._wake.set()  # sooner than what the loop sleeps for

    def compact(self, is_current: Callable[[float, str], bool]) -> None:
        self._heap = [entry for entry in self._heap if is_current(*entry)]
        heapq.heapify(self._heap)

    async def due_sockets(self, is_current: Callable[[float, str], bool]) -> list[str]:
        """Wait until at least one socket is due; return every socket that is."""
        while True:
            now = time.time()
            due: list[str] = []
            while self._heap and self._heap[0][0] <= now:
                when, sid = heapq.heappop(self._heap)
                if is_current(when, sid):
                    due.append(sid)
            if due:
                return due
            self._wake.clear()
            timeout = self._heap[0][0] - now if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)


@dataclass(slots=True)  # one per open socket: no per-instance __dict__
class LiveSocket:
    """One of this node's sockets."""

    user_id: str
    session_id: str
    recheck_at: float  # epoch seconds: the session is checked again then
    rechecks: int = 0  # how many re-checks found the session alive


class ChatNamespace(socketio.AsyncNamespace):
    """Every client event runs its declared handler (``gateway/socket_events.py``) with the
    domains it declared, read from the app like a REST route's ``request.app[KEY]``.

    It also keeps two promises about open sockets (docs/realtime.md, "Connecting"):

    - each socket's session is checked again when the access token it connected with expires,
      and every ``ACCESS_TOKEN_TTL`` after that; a session that is no longer alive gets
      ``session.expired`` and is disconnected (``RecheckSchedule``: one task per node);
    - a person has at most ``SOCKETS_PER_USER`` sockets open: a new one closes the oldest with
      ``socket.replaced`` — over all nodes with ``REDIS_URL`` (``storage/socket_registry.py``),
      the node that holds the oldest socket closing it when told on ``SOCKET_CAP_CHANNEL``.

    Its background work runs in ``running`` (a ``cleanup_ctx``).
    """

    def __init__(self, app: web.Application) -> None:
        super().__init__(NAMESPACE)
        self.app = app
        config: Config = app[keys.CONFIG]
        # sid -> this node's sockets, for events and for disconnects after the transport is gone
        self.sockets: dict[str, LiveSocket] = {}
        self.schedule = RecheckSchedule()
        self.registry = make_socket_registry(
            config.redis_url, key_ttl=2 * config.access_token_ttl + 3600
        )
        self._rechecks: asyncio.Task[None] | None = None
        self._evictions: set[asyncio.Task[None]] = set()

    @property
    def messaging(self) -> Messaging:
        return self.app[keys.MESSAGING]

    @property
    def config(self) -> Config:
        return self.app[keys.CONFIG]

    # --- lifecycle ---------------------------------------------------------------------------

    async def running(self, app: web.Application) -> AsyncIterator[None]:
        """The namespace's ``cleanup_ctx``, just before ``socketio_ctx``: it starts once pub/sub
        is up, and stops after the sockets were closed (their disconnects use the registry)."""
        await app[keys.PUBSUB].subscribe(SOCKET_CAP_CHANNEL, self._on_replaced)
        self.messaging.metrics.track_sockets(lambda: len(self.sockets))
        self._rechecks = asyncio.create_task(self._recheck_loop())
        try:
            yield
        finally:
            tasks = [*self._evictions, self._rechecks]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._rechecks = None
            await self.registry.close()

    # --- events ------------------------------------------------------------------------------

    async def trigger_event(self, event: str, *args: Any) -> Any:
        received = time.perf_counter()  # message.send's send->ack latency starts here
        live_socket = self.sockets.get(args[0]) if args else None
        bind_socket(args[0] if args else None, live_socket.user_id if live_socket else None)
        if event in {"connect", "disconnect"}:
            return await super().trigger_event(event, *args)
        sid, data = args[0], (args[1] if len(args) > 1 else None)
        spec = socket_api.events.get(event)
        if spec is None:
            return _error_ack(AppError("unknown_event", f"there is no event named {event!r}"))
        try:
            live = self.sockets.get(sid)
            if live is None:
                raise AppError("not_connected", "this socket is not signed in", status=401)
            payload = spec.validator.validate(data)
            result = await spec.run(self.app, live.user_id, payload, live.session_id)
            if event == "message.send":
                self.messaging.metrics.message_acked(time.perf_counter() - received)
        except AppError as exc:
            return _error_ack(exc)
        except Exception:
            log.exception("socket event %s failed", event)
            return _error_ack(AppError("internal_error", "something went wrong on our side"))
        return {"ok": True, **result}

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            signed_in = await authenticate_socket(self.messaging, token)
        except AppError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.message, exc.to_dict()) from None
        who = signed_in.auth
        bind_socket(sid, who.user_id)
        log.debug("socket connected (session %s)", who.session_id)
        # Who the socket is lives in ``self.sockets`` alone (no python-socketio session copy).
        await self.enter_room(sid, f"user:{who.user_id}")
        await self.enter_room(sid, f"session:{who.session_id}")
        due = float(signed_in.token_expires_at)
        self.sockets[sid] = LiveSocket(who.user_id, who.session_id, recheck_at=due)
        self.schedule.push(due, sid)
        await presence.do_device_connected(self.messaging, who.user_id)
        calls = self.app.get(keys.CALLS)
        if calls is not None:
            await calls.device_connected(who.user_id, who.session_id)
        await self._count_socket(sid, who.user_id)

    async def on_disconnect(self, sid: str, *reason: Any) -> None:
        live = self.sockets.pop(sid, None)
        if live is None:
            return
        if len(self.schedule) > 2 * len(self.sockets) + 64:
            self.schedule.compact(self._is_due_entry)
        try:
            await self.registry.remove(live.user_id, sid)
        except Exception:
            log.warning("forgetting a closed socket in the socket registry failed", exc_info=True)
        calls = self.app.get(keys.CALLS)
        if calls is not None:
            try:  # a call participant on this device gets CALL_GRACE_PERIOD to come back
                await calls.device_disconnected(live.user_id, live.session_id)
            except Exception:
                log.exception("noting a call participant's disconnect failed")
        try:
            await presence.do_device_disconnected(self.messaging, live.user_id)
        except Exception:
            log.exception("presence update on disconnect failed")

    # --- the per-user socket cap ---------------------------------------------------------------

    async def _count_socket(self, sid: str, user_id: str) -> None:
        """Count the new socket; the oldest beyond the cap are closed by the node holding each."""
        try:
            oldest = await self.registry.add(user_id, sid, self.config.sockets_per_user)
        except Exception:  # not an outage (the registry falls back to this node then): a bug
            log.exception("counting a socket failed; the socket cap is not applied to it")
            return
        if oldest:
            await self.app[keys.PUBSUB].publish(SOCKET_CAP_CHANNEL, {"sids": oldest})

    async def _on_replaced(self, message: dict[str, Any]) -> None:
        for sid in message.get("sids") or ():
            if isinstance(sid, str) and sid in self.sockets:
                # In the background: the socket may still be finishing its own connect.
                task = asyncio.create_task(self._replace(sid))
                self._evictions.add(task)
                task.add_done_callback(self._evictions.discard)

    async def _replace(self, sid: str) -> None:
        # A socket counted by the registry has returned from on_connect, but python-socketio
        # sends its CONNECT packet just after: until then it can be neither told nor closed.
        for _ in range(EVICT_WAIT_STEPS):
            if sid not in self.sockets:
                return  # gone by itself
            if self.server.manager.is_connected(sid, NAMESPACE):
                break
            await asyncio.sleep(EVICT_WAIT_STEP)
        limit = self.config.sockets_per_user
        error = AppError(
            "too_many_sockets",
            f"this account has {limit} newer connections open; this one, the oldest, was closed",
            details={"limit": limit},
        )
        await self._close_socket(sid, "socket.replaced", error.to_dict())

    # --- the session re-check ------------------------------------------------------------------

    def _is_due_entry(self, due: float, sid: str) -> bool:
        live = self.sockets.get(sid)
        return live is not None and live.recheck_at == due

    async def _recheck_loop(self) -> None:
        while True:
            sids = await self.schedule.due_sockets(self._is_due_entry)
            try:
                await self._recheck(sids)
            except Exception:
                log.exception("re-checking the sessions of %d sockets failed", len(sids))
                self._reschedule(sids, RECHECK_RETRY)

    def _reschedule(self, sids: list[str], after: float) -> None:
        due = time.time() + after
        for sid in sids:
            live = self.sockets.get(sid)
            if live is not None:
                live.recheck_at = due
                self.schedule.push(due, sid)

    async def _recheck(self, sids: list[str]) -> None:
        """Check each session once however many of its sockets are due, a batch at a time."""
        by_session: dict[tuple[str, str], list[str]] = {}
        for sid in sids:
            live = self.sockets.get(sid)
            if live is not None:
                by_session.setdefault((live.user_id, live.session_id), []).append(sid)
        sessions = list(by_session)
        for start in range(0, len(sessions), RECHECK_BATCH):
            batch = sessions[start : start + RECHECK_BATCH]
            outcomes = await asyncio.gather(
                *(check_session_alive(self.messaging, user, session) for user, session in batch),
                return_exceptions=True,
            )
            for key, outcome in zip(batch, outcomes, strict=True):
                await self._after_recheck(key[0], by_session[key], outcome)

    async def _after_recheck(self, user_id: str, sids: list[str], outcome: Any) -> None:
        if outcome is None:  # alive: again one access-token lifetime from now
            self._reschedule(sids, self.config.access_token_ttl)
            for sid in sids:
                if sid in self.sockets:
                    self.sockets[sid].rechecks += 1
            with contextlib.suppress(Exception):
                await self.registry.keep(user_id)
        elif isinstance(outcome, AppError):
            for sid in sids:
                live = self.sockets.get(sid)
                if live is not None:
                    payload = {"session_id": live.session_id, **outcome.to_dict()}
                    await self._close_socket(sid, "session.expired", payload)
        else:  # the database could not answer: keep the socket, ask again soon
            log.warning("session re-check failed; retrying", exc_info=outcome)
            self._reschedule(sids, min(RECHECK_RETRY, self.config.access_token_ttl))

    async def _close_socket(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        """Tell one of this node's sockets why, then disconnect it. Both go straight to the
        socket (``ignore_queue``): through Redis the event could arrive after the disconnect."""
        try:
            await self.server.emit(event, payload, to=sid, namespace=NAMESPACE, ignore_queue=True)
            await self.server.disconnect(sid, namespace=NAMESPACE, ignore_queue=True)
        except Exception:
            log.exception("closing socket %s (%s) failed", sid, event)
