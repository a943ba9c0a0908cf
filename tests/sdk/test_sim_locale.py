"""The simulator's locales: each person's own (``sim.user(name, locale=…)``) is the ``ctx.locale``
of what they invoke — commands, web views and the timers they scheduled — and the simulator's
``locale`` is that of everyone who chose none, as ``en`` is on the platform."""

from __future__ import annotations

from sdk.simulator import Simulator
from tests.miniapps.conftest import APPS_DIR

APP_DIR = APPS_DIR / "localizer"


def texts(sim: Simulator, conversation) -> list[str]:
    return [m["text"] for m in sim.messages(conversation) if m.get("type") == "text"]


async def test_each_person_invokes_with_their_own_locale():
    sim = Simulator(APP_DIR)
    ann = sim.user("ann", locale="de-DE")
    bea = sim.user("bea")
    chat = sim.conversation([ann, bea])
    assert (await sim.command(ann, chat, "/where"))["text"] == "locale: de-DE"
    assert (await sim.command(bea, chat, "/where"))["text"] == "locale: en"
    assert await sim.view(ann, chat, "locale") == {"locale": "de-DE"}
    assert await sim.view(bea, chat, "locale") == {"locale": "en"}


async def test_a_timer_fires_with_the_locale_of_who_scheduled_it():
    sim = Simulator(APP_DIR)
    ann = sim.user("ann", locale="ja-JP")
    bea = sim.user("bea", locale="fr-FR")
    chat = sim.conversation([ann, bea])
    await sim.command(ann, chat, "/later 60")
    await sim.command(bea, chat, "/later 120")
    await sim.advance(minutes=3)
    assert texts(sim, chat)[-2:] == ["timer locale: ja-JP", "timer locale: fr-FR"]


async def test_the_simulators_locale_is_the_default():
    sim = Simulator(APP_DIR, locale="es-ES")
    ann = sim.user("ann")
    bea = sim.user("bea", locale="en-GB")
    chat = sim.conversation([ann, bea])
    assert (await sim.command(ann, chat, "/where"))["text"] == "locale: es-ES"
    assert (await sim.command(bea, chat, "/where"))["text"] == "locale: en-GB"
