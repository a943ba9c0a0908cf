"""Invocations and their call ids.

Every command, button press or event handed to an app gets a ``call_id`` that binds the app's
capability calls to that invocation's user and conversation; it expires when the invocation ends
(or after ``CALL_TTL``). For remote apps the call is also written to MongoDB (``app_calls``), so
their callbacks work whichever gateway node they reach.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import asdict, dataclass

from miniapps.host.store.app_calls import AppCalls
from storage.mongo import now_ms

CALL_TTL = 30.0  # seconds a call_id stays usable after its invocation started
SWEEP_EVERY = 256  # shared entries: remove expired ones every this many remote invocations


@dataclass
class Call:
    app_id: str
    user_id: str
    app_user_id: str
    conversation_id: str
    expires: float  # loop time
    depth: int = 0  # 0 for a user's command or action, n for an event n hops away from one
    # A tool's invocation (``apps.call_tool``): it may only read (``TOOL_CAPABILITIES``).
    read_only: bool = False


class CallRegistry:
    def __init__(self, shared: AppCalls) -> None:
        self._local: dict[str, Call] = {}
        self._shared = shared
        self._remote_started = 0

    async def open(
        self,
        app_id: str,
        user_id: str,
        app_user_id: str,
        conversation_id: str,
        depth: int,
        *,
        remote: bool,
        read_only: bool = False,
    ) -> str:
        loop = asyncio.get_running_loop()
        call_id = "c-" + secrets.token_urlsafe(16)
        call = Call(
            app_id,
            user_id,
            app_user_id,
            conversation_id,
            loop.time() + CALL_TTL,
            depth,
            read_only,
        )
        self._local[call_id] = call
        for stale in [k for k, c in self._local.items() if c.expires < loop.time()]:
            self._local.pop(stale, None)
        if remote:
            fields = {k: v for k, v in asdict(call).items() if k != "expires"}
            await self._shared.add_call(call_id, fields, now_ms() + int(CALL_TTL * 1000))
            self._remote_started += 1
            if self._remote_started % SWEEP_EVERY == 0:
                await self._shared.remove_expired(now_ms())
        return call_id

    async def get(self, call_id: object, *, remote: bool) -> Call | None:
        if not isinstance(call_id, str):
            return None
        call = self._local.get(call_id)
        loop = asyncio.get_running_loop()
        if call is not None:
            return call if call.expires >= loop.time() else None
        if not remote:
            return None
        doc = await self._shared.get_call(call_id, now_ms())
        if doc is None:
            return None
        left = (doc["expires_at"] - now_ms()) / 1000
        return Call(
            doc["app_id"],
            doc["user_id"],
            doc["app_user_id"],
            doc["conversation_id"],
            loop.time() + left,
            int(doc.get("depth", 0)),
            bool(doc.get("read_only", False)),
        )

    async def close(self, call_id: str, *, remote: bool) -> None:
        self._local.pop(call_id, None)
        if remote:
            await self._shared.remove_call(call_id)
