"""How client -> server Socket.IO events are declared: name, JSON Schema, the domains the
handler needs, and whether it acts for one device. ``gateway/socket_events.py`` and
``gateway/call_events.py`` declare the events on ``socket_api``; ``gateway/realtime.py`` runs them.

A handler receives the domains it declared, read from the app — ``uses=(keys.WALLET,)`` gives it
``app[keys.WALLET]`` — just as a REST route reads ``request.app[KEY]``; nothing reaches one
domain through another's context.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway import keys
from gateway.schemas import string
from gateway.validation import Validator
from storage.errors import AppError

ID = string(64, 1)

# Called with the declared domains, then (user_id, payload), then the session id for device events.
Handler = Callable[..., Awaitable[dict[str, Any]]]

# The answer when a declared domain is not running in this process (code, message, status).
UNAVAILABLE: dict[web.AppKey[Any], tuple[str, str, int]] = {
    keys.MINIAPPS: ("miniapps_unavailable", "mini-programs are not running on this server", 400),
    keys.WALLET: ("wallet_unavailable", "the wallet is not running on this server", 400),
    keys.CALLS: ("calls_unavailable", "calls are not running on this server", 503),
}


def domain(app: web.Application, key: web.AppKey[Any]) -> Any:
    value = app.get(key)
    if value is None:
        code, message, status = UNAVAILABLE.get(
            key, ("unavailable", "this service is not running on this server", 503)
        )
        raise AppError(code, message, status=status)
    return value


@dataclass(frozen=True)
class SocketEvent:
    name: str
    summary: str
    schema: dict[str, Any]
    validator: Validator
    handler: Handler
    uses: tuple[web.AppKey[Any], ...]
    # The handler also takes the socket's session id (events that act for one device: calls).
    device: bool = False

    async def run(
        self, app: web.Application, user_id: str, payload: dict[str, Any], session_id: str | None
    ) -> dict[str, Any]:
        domains = [domain(app, key) for key in self.uses]
        if self.device:
            return await self.handler(*domains, user_id, payload, session_id)
        return await self.handler(*domains, user_id, payload)


class SocketApi:
    def __init__(self) -> None:
        self.events: dict[str, SocketEvent] = {}

    def on(
        self,
        name: str,
        *,
        summary: str,
        schema: dict[str, Any],
        uses: tuple[web.AppKey[Any], ...] = (keys.MESSAGING,),
        device: bool = False,
    ) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.events[name] = SocketEvent(
                name, summary, schema, Validator(schema), handler, uses, device
            )
            return handler

        return decorator


socket_api = SocketApi()
