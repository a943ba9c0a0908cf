"""Helpers for the records, care-circle, FHIR-export and adherence tests: the health app in the
SDK simulator with its clock tied to the simulator's (``clock.now_ms`` → ``sim.now``), Ann (the
owner of the records, in ``zone``), Bea (family), Otto (a stranger), a direct chat of Ann and
Bea, a family group of the three and each one's service chat with the app.

``START`` is Monday 2025-03-03 06:00 UTC. A service message's card cannot be pressed in the
simulator (it records notifications, not messages), so ``press_notified`` posts the same card
into the person's service chat as the app and presses it there — the press the app receives is
the one a client sends for the service message's button.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sdk.simulator import SimConversation, Simulator, SimUser

HEALTH_DIR = Path(__file__).resolve().parents[3] / "miniapps" / "health"
START = round(datetime(2025, 3, 3, 6, 0, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
DISCLAIMER = "Not medical advice."


def app_module(name: str):
    """One of the health app's own modules, as the loaded app imported it."""
    module = sys.modules[name]
    assert Path(module.__file__).resolve().parent == HEALTH_DIR, module.__file__
    return module


def local(ms: int, zone: str) -> datetime:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(zone))


@dataclass
class Health:
    sim: Simulator
    ann: SimUser
    bea: SimUser
    otto: SimUser
    direct: SimConversation  # Ann and Bea
    group: SimConversation  # Ann, Bea and Otto
    services: dict[str, SimConversation]

    def service(self, user: SimUser) -> SimConversation:
        """``user``'s service chat with the app."""
        if user.name not in self.services:
            self.services[user.name] = self.sim.conversation(members=[user], type="service")
        return self.services[user.name]

    async def command(self, user: SimUser, text: str, chat: SimConversation | None = None) -> str:
        """``user`` runs ``text``; what they were shown privately (a text, or a card's title,
        text and fields)."""
        before = len(self.sim.ephemeral(user))
        await self.sim.command(user, chat or self.service(user), text)
        shown = self.sim.ephemeral(user)
        assert len(shown) > before, f"{text!r} showed {user.name} nothing"
        return shown_text(shown[-1])

    def last_card(self, user: SimUser) -> dict[str, Any]:
        last = self.sim.ephemeral(user)[-1]
        assert "card" in last, last
        return last["card"]

    async def view(
        self, user: SimUser, name: str, params: dict | None = None, chat=None
    ) -> dict[str, Any]:
        return await self.sim.view(user, chat or self.service(user), name, params or {})

    async def press_notified(
        self, user: SimUser, card: dict[str, Any], action_id: str, value: str | None = None
    ) -> str:
        """``user`` presses ``action_id`` on a service message's ``card``; what they were told.
        Returns the message id of the card pressed (its updates are ``sim.card(id)``)."""
        chat = self.service(user)
        status, posted = await self.sim.call_capability(
            user, chat, "messages.send_card", {"card": card}
        )
        assert status == "ok", posted
        await self.sim.press(user, posted["message_id"], action_id, value)
        return posted["message_id"]

    def told(self, user: SimUser) -> str:
        return shown_text(self.sim.ephemeral(user)[-1])

    def stored(self, collection: str) -> dict[str, Any]:
        return self.sim.storage(collection)

    def written(self) -> dict[str, int]:
        """How many documents each collection holds (to check nothing was written)."""
        return {name: len(items) for name, items in self.sim._storage.items() if items}


def shown_text(item: dict[str, Any]) -> str:
    if "card" in item:
        card = item["card"]
        fields = " | ".join(f"{f['label']}: {f['value']}" for f in card.get("fields", []))
        return "\n".join(x for x in (card["title"], card.get("text", ""), fields) if x)
    return item["text"]


def open_health(monkeypatch, *, zone: str | None = None, **options: Any) -> Health:
    """The app in a simulator at ``START``; Ann's time zone ``zone`` (None: UTC)."""
    sim = Simulator(HEALTH_DIR, **options)
    sim.now = START
    monkeypatch.setattr(app_module("clock"), "now_ms", lambda: sim.now)
    # The first vital and the first export load pint's registry and fhir.resources (about a
    # second each): loaded here, so a busy test machine does not push a handler past its 3 s.
    app_module("units").registry()
    import fhir.resources.R4B.bundle  # noqa: F401

    ann = sim.user("ann", display_name="Ann", time_zone=zone)
    bea = sim.user("bea", display_name="Bea")
    otto = sim.user("otto", display_name="Otto")
    direct = sim.conversation(members=[ann, bea], type="direct")
    group = sim.conversation(members=[ann, bea, otto], title="Family")
    return Health(sim, ann, bea, otto, direct, group, {})


async def join_circle(health: Health, scopes: str = "all", member: SimUser | None = None) -> None:
    """Ann invites ``member`` (Bea) in their direct chat, who accepts."""
    member = member or health.bea
    chat = health.direct if member is health.bea else health.group
    await health.command(health.ann, f"/health circle invite {scopes}", chat)
    invite = [m for m in health.sim.messages(chat) if m["type"] == "card"][-1]
    await health.sim.press(member, invite["id"], "circle.accept")
