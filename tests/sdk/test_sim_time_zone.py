"""The simulator's time zones: each person's own (``sim.user(name, time_zone=…)``) is the
``ctx.time_zone`` of what they invoke — commands, web views and the timers they scheduled —
``sim.set_time_zone`` is a person travelling, and the simulator's ``time_zone`` (``UTC``, as on
the platform) is that of everyone who chose none."""

from __future__ import annotations

import pytest

from sdk.simulator import Simulator
from tests.miniapps.conftest import APPS_DIR

APP_DIR = APPS_DIR / "localizer"


def texts(sim: Simulator, conversation, prefix: str) -> list[str]:
    return [
        m["text"]
        for m in sim.messages(conversation)
        if m.get("type") == "text" and m["text"].startswith(prefix)
    ]


async def test_each_person_invokes_in_their_own_time_zone():
    sim = Simulator(APP_DIR)
    ann = sim.user("ann", time_zone="Europe/Berlin")
    bea = sim.user("bea")
    chat = sim.conversation([ann, bea])
    assert (await sim.command(ann, chat, "/zone"))["text"] == "time zone: Europe/Berlin"
    assert (await sim.command(bea, chat, "/zone"))["text"] == "time zone: UTC"
    assert await sim.view(ann, chat, "time_zone") == {"time_zone": "Europe/Berlin"}
    assert await sim.view(bea, chat, "time_zone") == {"time_zone": "UTC"}


async def test_travel_changes_the_next_invocation_and_a_pending_timer():
    sim = Simulator(APP_DIR)
    ann = sim.user("ann", time_zone="Asia/Tokyo")
    chat = sim.conversation([ann])
    await sim.command(ann, chat, "/zone_later 60")
    sim.set_time_zone(ann, "America/New_York")
    assert (await sim.command(ann, chat, "/zone"))["text"] == "time zone: America/New_York"
    await sim.advance(minutes=2)
    # the timer fires in the scheduler's zone as it is when it fires
    assert texts(sim, chat, "timer time zone:") == ["timer time zone: America/New_York"]
    sim.set_time_zone(ann, None)
    assert (await sim.command(ann, chat, "/zone"))["text"] == "time zone: UTC"


async def test_the_simulators_time_zone_is_the_default():
    sim = Simulator(APP_DIR, time_zone="Australia/Sydney")
    ann = sim.user("ann")
    chat = sim.conversation([ann])
    assert (await sim.command(ann, chat, "/zone"))["text"] == "time zone: Australia/Sydney"


def test_unknown_zones_are_refused():
    with pytest.raises(ValueError):
        Simulator(APP_DIR, time_zone="Mars/Olympus")
    sim = Simulator(APP_DIR)
    with pytest.raises(ValueError):
        sim.user("ann", time_zone="Europe/Atlantis")
    bea = sim.user("bea")
    with pytest.raises(ValueError):
        sim.set_time_zone(bea, "localtime")
    assert bea.time_zone is None
