"""The travel app in the SDK simulator, for the travel tests: its clock tied to the simulator's
(``clock.now_ms`` → ``sim.now``, so the app's time and the timers' are one), people, a group chat
and shortcuts to commands, presses and views.

``T0`` is Monday 2027-03-01 00:00 UTC (trips in the tests are in May 2027).
"""

from __future__ import annotations

import importlib
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.errors import ViewError
from sdk.simulator import SimConversation, Simulator, SimUser

TRAVEL_DIR = Path(__file__).resolve().parents[3] / "miniapps" / "travel"
T0 = 1_803_859_200_000  # Monday 2027-03-01 00:00 UTC
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
_RUNS = itertools.count(1)


def app_module(name: str):
    """One of the travel app's own modules, as the loaded app imported it (imported from the
    app's folder now when no module of the app has imported it yet)."""
    module = sys.modules.get(name) or importlib.import_module(name)
    assert Path(module.__file__).resolve().parent == TRAVEL_DIR, module.__file__
    return module


def travel_module(name: str):
    """One of the travel app's modules imported on its own, as the app imports it (its folder
    first on ``sys.path``, as ``sdk.loader`` puts it): for the tests of its pure modules."""
    folder = str(TRAVEL_DIR)
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    module = sys.modules.get(name)
    if module is not None and Path(module.__file__).resolve().parent != TRAVEL_DIR:
        del sys.modules[name]  # another app's module of that name
    return importlib.import_module(name)


@dataclass
class Group:
    sim: Simulator
    chat: SimConversation
    people: dict[str, SimUser] = field(default_factory=dict)

    def person(self, name: str, **options) -> SimUser:
        """A member of the group chat (display name ``name``)."""
        user = self.sim.user(name, **options)
        self.sim.add_member(self.chat, user)
        self.people[name] = user
        return user

    async def command(self, user: SimUser, text: str) -> dict:
        return await self.sim.command(user, self.chat, text)

    async def press(self, user: SimUser, message_id: str, action_id: str, value: str | None = None):
        return await self.sim.press(user, message_id, action_id, value)

    async def view(self, user: SimUser, name: str, params: dict | None = None) -> dict:
        return await self.sim.view(user, self.chat, name, params or {})

    async def refused(self, user: SimUser, name: str, params: dict | None = None) -> ViewError:
        """The ``ViewError`` the page would get (the test fails if the call succeeds)."""
        try:
            answer = await self.view(user, name, params)
        except ViewError as exc:
            return exc
        raise AssertionError(f"{name} was accepted: {answer}")

    def said(self, user: SimUser) -> Any:
        """The last ephemeral reply to ``user``: a text, or a card dict."""
        last = self.sim.ephemeral(user)[-1]
        return last.get("text", last.get("card"))

    def snapshot(self) -> dict:
        """Every collection, to check that a refused call wrote nothing."""
        return {name: self.sim.storage(name) for name in list(self.sim._storage)}

    def trip(self) -> dict | None:
        """The group's current trip document, as stored."""
        pointer = self.sim.storage("current").get(self.chat.id)
        return self.sim.storage("trips").get(pointer["trip_id"]) if pointer else None

    def timer_keys(self) -> dict[str, int]:
        return {t["key"]: t["due_at"] for t in self.sim.pending_timers()}

    async def run_as(self, user: SimUser, work, conversation: SimConversation | None = None):
        """``await work(ctx)`` inside a real invocation of the app for ``user``."""
        name = f"test.run.{next(_RUNS)}"

        async def handler(ctx):
            return {"result": await work(ctx)}

        self.sim.app.view(name)(handler)
        answer = await self.sim.view(user, conversation or self.chat, name, {})
        return answer["result"]


def open_group(monkeypatch, *, now: int = T0) -> Group:
    """The app in a simulator at ``now``, its clock tied to the simulator's, and an empty group."""
    sim = Simulator(TRAVEL_DIR)
    sim.now = now
    monkeypatch.setattr(app_module("clock"), "now_ms", lambda: sim.now)
    return Group(sim, sim.conversation(members=[]))


# --- a trip written straight to storage (for tests of one module without /trip new) -----------


def lisbon_trip(
    trip_id: str, chat_id: str, creator: SimUser, travellers: list[SimUser], now: int, **changes
) -> dict[str, Any]:
    """A planning trip document to Lisbon (1-5 May 2027, from MAD) with ``travellers`` (joined
    in that order), as trips.py writes one; ``changes`` replace top-level fields."""
    return {
        "id": trip_id,
        "conversation_id": chat_id,
        "title": "Lisbon",
        "status": "planning",
        "destination": {
            "name": "Lisbon",
            "airport": "LIS",
            "zone": "Europe/Lisbon",
            "country": "PT",
            "lat": 38.77,
            "lon": -9.13,
        },
        "home_airport": "MAD",
        "start": "2027-05-01",
        "end": "2027-05-05",
        "currency": "EUR",
        "created_by": creator.id,
        "created_at": now,
        "travellers": {
            u.id: {"name": u.display_name, "joined_at": now + i} for i, u in enumerate(travellers)
        },
        "items": [],
        "votes": [],
        "booking": None,
        "spent": {},
        "card": None,
        "seq": 1,
        **changes,
    }


async def store_trip(group: Group, creator: SimUser, trip: dict[str, Any], *, card: bool) -> None:
    """Store ``trip`` as the group's current trip (as ``creator``), posting its card first when
    ``card``."""

    async def write(ctx):
        if card:
            trip["card"] = {"message_id": await ctx.send_card(app_module("card").render(trip))}
        await ctx.storage_put("trips", trip["id"], trip)
        await ctx.storage_put("current", group.chat.id, {"trip_id": trip["id"]})

    await group.run_as(creator, write)


# --- trips (H-trips): a trip started through the app's own commands ---------------------------

TRIP_NEW = '"Lisbon" 2027-05-01 2027-05-05 from MAD'


async def start_trip(group: Group, creator: SimUser, *joiners: SimUser, text: str = TRIP_NEW):
    """``/trip new`` by ``creator`` (default: Lisbon, 1-5 May 2027, from MAD), then ``/trip
    join`` by each of ``joiners``: the trip document as stored."""
    await group.command(creator, f"/trip new {text}")
    assert group.trip() is not None, group.sim.ephemeral(creator)
    for user in joiners:
        await group.command(user, "/trip join")
    return group.trip()


def trip_card(group: Group) -> dict:
    """The group's trip card as it stands (its latest version)."""
    return group.sim.card(group.trip()["card"]["message_id"])


def card_words(shown: dict) -> str:
    """A card's title, text, fields and button labels as one text, to look for words in."""
    parts = [shown.get("title", ""), shown.get("text", "")]
    parts += [f"{f['label']}: {f['value']}" for f in shown.get("fields", [])]
    parts += [b["label"] for b in shown.get("buttons", [])]
    return "\n".join(parts)
