"""Helpers for the booking, slot, visit and .ics tests: the health app in the SDK simulator with
its clock tied to the simulator's (``clock.now_ms`` → ``sim.now``, so the app's time and the
timers' time are one), practitioners whose profiles are saved through the web view's own call
(``practice.save``), patients, and a chat of them all.

``T0`` is Monday 2027-03-01 00:00 UTC; ``at(zone, "2027-03-02 09:00")`` is that local time as
epoch ms. ``Clinic.run_as`` runs code inside a real invocation (a view registered for the test),
e.g. to post a card as the app would.
"""

from __future__ import annotations

import itertools
import secrets
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sdk.errors import ViewError
from sdk.simulator import SimConversation, Simulator, SimUser

HEALTH_DIR = Path(__file__).resolve().parents[3] / "miniapps" / "health"
T0 = 1_803_859_200_000  # Monday 2027-03-01 00:00 UTC
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
_RUNS = itertools.count(1)

WEEKDAYS_9_TO_12 = [{"weekday": d, "start": "09:00", "end": "12:00"} for d in range(5)]
PROFILE: dict[str, Any] = {
    "name": "Dr. Ana Silva",
    "specialties": ["general practice"],
    "languages": ["pt", "en"],
    "fee": {"amount": 0, "currency": "USD"},
    "zone": "Europe/Lisbon",
    "visit_minutes": 30,
    "visit_type": "video",
    "weekly": WEEKDAYS_9_TO_12,
}


def at(zone: str, local: str) -> int:
    """``"2027-03-02 09:00"`` in ``zone`` as epoch ms (the first occurrence when ambiguous)."""
    moment = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(zone))
    return round(moment.timestamp() * 1000)


def app_module(name: str):
    """One of the health app's own modules, as the loaded app imported it."""
    module = sys.modules[name]
    assert Path(module.__file__).resolve().parent == HEALTH_DIR, module.__file__
    return module


@dataclass
class Clinic:
    sim: Simulator
    chat: SimConversation
    people: dict[str, SimUser] = field(default_factory=dict)

    # --- people -----------------------------------------------------------------------------

    def patient(self, name: str = "pat", **options) -> SimUser:
        user = self.sim.user(name, **options)
        self.sim.add_member(self.chat, user)
        self.people[name] = user
        return user

    async def practitioner(self, who: str = "doc", *, user_options=None, **profile) -> SimUser:
        """``who``, with the ``practitioner`` role and a saved profile (``PROFILE`` + changes)."""
        user = self.patient(who, **(user_options or {}))
        self.sim.grant_role(user, "practitioner")
        await self.view(user, "practice.save", {**PROFILE, **profile})
        return user

    # --- calls ------------------------------------------------------------------------------

    async def view(self, user: SimUser, name: str, params: dict | None = None) -> dict:
        return await self.sim.view(user, self.chat, name, params or {})

    async def refused(self, user: SimUser, name: str, params: dict | None = None) -> ViewError:
        """The ``ViewError`` the page would get (the test fails if the call succeeds)."""
        try:
            answer = await self.view(user, name, params)
        except ViewError as exc:
            return exc
        raise AssertionError(f"{name} was accepted: {answer}")

    async def command(self, user: SimUser, text: str) -> dict:
        return await self.sim.command(user, self.chat, text)

    def said(self, user: SimUser) -> Any:
        """The last ephemeral reply to ``user``: a text, or a card dict."""
        last = self.sim.ephemeral(user)[-1]
        return last.get("text", last.get("card"))

    async def hold(
        self, user: SimUser, doctor: SimUser, start: int, key: str | None = None, **extra
    ) -> dict:
        params = {
            "practitioner_id": doctor.id,
            "start": start,
            "booking_key": key or secrets.token_hex(8),
            **extra,
        }
        return (await self.view(user, "booking.hold", params))["appointment"]

    async def confirm(self, user: SimUser, appointment_id: str) -> dict:
        return await self.view(user, "booking.confirm", {"appointment_id": appointment_id})

    async def book(self, user: SimUser, doctor: SimUser, start: int, **extra) -> dict:
        """Hold, confirm and (for a priced practitioner) pay: the booked appointment."""
        held = await self.hold(user, doctor, start, **extra)
        answer = await self.confirm(user, held["id"])
        if answer.get("payment"):
            await self.sim.confirm_payment(user, answer["payment"]["payment_id"])
        appointment = self.appointment(held["id"])
        assert appointment["status"] == "booked", appointment
        return appointment

    # --- what is stored ---------------------------------------------------------------------

    def appointment(self, appointment_id: str) -> dict:
        return self.sim.storage("appointments")[appointment_id]

    def slot(self, doctor: SimUser, start: int) -> dict | None:
        return self.sim.storage("slots").get(f"{doctor.id}:{start}")

    def snapshot(self) -> dict:
        """Every collection, to check that a refused call wrote nothing."""
        return {name: self.sim.storage(name) for name in list(self.sim._storage)}

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


def open_clinic(monkeypatch, *, now: int = T0) -> Clinic:
    """The app in a simulator at ``now``, its clock tied to the simulator's, and an empty chat."""
    sim = Simulator(HEALTH_DIR)
    sim.now = now
    monkeypatch.setattr(app_module("clock"), "now_ms", lambda: sim.now)
    return Clinic(sim, sim.conversation(members=[]))
