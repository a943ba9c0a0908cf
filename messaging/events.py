"""Events: plain dicts with a ``type``, an explicit ``audience`` and a ``payload``.

Domain actions emit them only after their write is durable. The gateway's sink delivers them to
Socket.IO rooms (audience ``{"user": id}``, ``{"session": id}``, ``{"conversation": id}``); tests
use ``RecordingSink`` to check what an action emitted.
"""

from __future__ import annotations

from typing import Any, Protocol

Event = dict[str, Any]


def event(type_: str, audience: dict[str, str], payload: dict[str, Any]) -> Event:
    return {"type": type_, "audience": audience, "payload": payload}


class EventSink(Protocol):
    async def emit(self, event: Event) -> None: ...


class RecordingSink:
    """Keeps every emitted event in order (for tests and for composing sinks)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def emit(self, event: Event) -> None:
        self.events.append(event)
