"""The calls service of one node: the stores, the media relay, and the background scan.

Built by the composition root (``calls_ctx``) and handed to every call action as its first
argument (``lifecycle.do_start(service, …)``); it holds the messaging context as ``ctx``. The scan
(every ``SCAN_INTERVAL``) ends calls whose ring timed out, removes participants whose device
stayed disconnected past ``CALL_GRACE_PERIOD``, moves the heartbeat of the calls whose media
this node holds, and ends calls whose node stopped beating (it crashed). At start-up calls left
live by the previous run are ended and recorded; at shutdown this node's calls are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from messaging.calls import lifecycle
from messaging.calls.media import MediaServer, restrict_host_candidates
from messaging.context import Messaging
from messaging.events import event
from messaging.store.active_calls import ActiveCalls
from messaging.store.call_participants import CallParticipants
from messaging.store.call_seats import CallSeats
from messaging.store.calls import Calls
from storage.mongo import now_ms

log = logging.getLogger(__name__)

SCAN_INTERVAL = 1.0  # seconds
STALE_AFTER_MS = 30_000  # a call whose node has not beaten for this long is ended


class CallService:
    def __init__(self, ctx: Messaging) -> None:
        self.ctx = ctx
        self.calls = Calls(ctx.db)
        self.active = ActiveCalls(ctx.db)
        self.participants = CallParticipants(ctx.db)
        self.seats = CallSeats(ctx.db)
        self.media = MediaServer(list(ctx.config.ice_servers), self._signal, self._connection_lost)
        self.hosted: set[str] = set()  # calls started or joined on this node
        # Where ``call.started``/``call.ended`` of a call a mini-program started go:
        # (name, call document, extra) — the mini-program host's, set by the composition root.
        self.app_events: Callable[[str, dict, dict], Awaitable[None]] | None = None
        self._scanner: asyncio.Task | None = None
        ctx.metrics.track_calls(lambda: len(self.hosted), self.relayed_participants)

    def relayed_participants(self) -> int:
        """Participants whose media this node's relay carries (one server peer each)."""
        return sum(len(peers) for peers in self.media.calls.values())

    async def start(self) -> None:
        hosts = [h.strip() for h in self.ctx.config.call_media_host.split(",") if h.strip()]
        if hosts:
            restrict_host_candidates(hosts)
        # One node: every live call is from our previous run. Several: only those whose node
        # stopped beating (the others' calls are alive).
        single_node = not self.ctx.config.redis_url
        before = None if single_node else now_ms() - STALE_AFTER_MS
        try:
            await lifecycle.do_end_orphaned(self, heartbeat_before=before)
        except Exception:
            log.exception("ending calls left from the previous run failed")
        self._scanner = asyncio.create_task(self._scan_forever())

    async def close(self) -> None:
        if self._scanner is not None:
            self._scanner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scanner
        for call_id in list(self.hosted):
            try:
                await lifecycle.finish(self, call_id, "server_shutdown")
            except Exception:
                log.exception("ending call %s at shutdown failed", call_id)
        await self.media.close()

    async def device_disconnected(self, user_id: str, session_id: str | None) -> None:
        """A socket went away: its participants get the grace period to come back."""
        if session_id:
            await self.participants.mark_dropped(session_id, now_ms())

    async def device_connected(self, user_id: str, session_id: str | None) -> None:
        if session_id:
            await self.participants.mark_back(session_id)

    async def scan(self) -> None:
        await lifecycle.do_expire_rings(self)
        await lifecycle.do_remove_dropped(self)
        await self.calls.heartbeat(list(self.hosted), now_ms())
        await lifecycle.do_end_orphaned(self, heartbeat_before=now_ms() - STALE_AFTER_MS)

    async def _scan_forever(self) -> None:
        while True:
            await asyncio.sleep(SCAN_INTERVAL)
            try:
                await self.scan()
            except Exception:
                log.exception("call scan failed; trying again")

    async def _signal(self, session_id: str, type_: str, payload: dict[str, Any]) -> None:
        await self.ctx.events.emit(event(type_, {"session": session_id}, payload))

    async def _connection_lost(self, call_id: str, user_id: str, session_id: str) -> None:
        # ICE/DTLS failed or closed under a live participant: same grace as a lost socket.
        await self.participants.mark_dropped(session_id, now_ms())
