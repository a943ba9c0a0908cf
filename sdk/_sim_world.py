"""What the simulator's parts share: its people, chats, messages and invocations, and the trip
through JSON every request and answer makes. Imported by ``sdk.simulator`` and the effect
modules it is built from (``sdk._sim_effects``, ``sdk._sim_payments``), which import nothing
of the simulator itself."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sdk.protocol import MAX_LINE_BYTES

Consent = Mapping[str, bool] | Callable[["SimUser", str], bool]


@dataclass(eq=False)
class SimUser:
    """A simulated person; ``id`` is their per-app id (what the app sees)."""

    name: str
    id: str
    display_name: str
    avatar_url: str | None = None
    notifications: bool = True  # opted in to this app's notifications
    consent: dict[str, bool] = field(default_factory=dict)
    locale: str | None = None  # their chosen locale; None: the simulator's ``locale``
    time_zone: str | None = None  # their IANA time zone; None: the simulator's ``time_zone``


@dataclass(eq=False)
class SimConversation:
    """A simulated chat and its members."""

    id: str
    title: str | None
    members: list[SimUser] = field(default_factory=list)
    type: str = "group"


@dataclass
class SimMessage:
    """A message the app posted: a text, or a card with its successive versions."""

    id: str
    conversation_id: str
    type: str  # "text" or "card"
    text: str | None = None
    versions: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        """The message as ``sim.messages()`` shows it (a card's current version)."""
        if self.type == "text":
            return {"id": self.id, "type": "text", "text": self.text}
        return {"id": self.id, "type": "card", "card": copy.deepcopy(self.versions[-1])}


@dataclass
class SimCall:
    """One live invocation (its ``call_id`` binds capability calls to it)."""

    user: SimUser | None
    conversation: SimConversation | None
    depth: int = 0  # 0 for a user's command or action, n for an event n hops away from one
    read_only: bool = False  # a tool's invocation: only sdk.capabilities.TOOL_CAPABILITIES


def wire(value: Any) -> Any:
    """``value`` after a trip through JSON, as the other side would receive it; ``ValueError``
    past the protocol's line limit, ``TypeError`` for what JSON cannot carry."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) + 1 > MAX_LINE_BYTES:
        raise ValueError(f"a protocol line may not exceed {MAX_LINE_BYTES} bytes")
    return json.loads(text)
