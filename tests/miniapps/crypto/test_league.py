"""Group trading leagues in the simulator: ``/crypto league start|join``, the Join button, the
leaderboard card refreshed by a throttled timer, the podium posted exactly once (also when the
end's firings race, or one fails after marking the league ended), the stale-price guard, and
every kind of bad input refused with nothing written."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from sdk.simulator import AppCallError, HostRefused
from sdk.timers import timer_params
from tests.miniapps.crypto.exchange_fixtures import SECOND, T0, app_module, open_exchange

PAPER = "Paper trading — no real money."
HOUR = 3600 * SECOND


def fields(card: dict) -> dict[str, str]:
    return {f["label"]: f["value"] for f in card.get("fields", [])}


def cards(ex, title: str) -> list[dict]:
    """The group's cards (current versions) whose title starts with ``title``."""
    return [
        {**m["card"], "id": m["id"]}
        for m in ex.sim.messages(ex.chat)
        if m["type"] == "card" and m["card"]["title"].startswith(title)
    ]


def league_doc(ex) -> dict:
    [doc] = ex.sim.storage("leagues").values()
    return doc


def told(ex, user) -> str:
    shown = ex.sim.ephemeral(user)[-1]
    return shown.get("text") or shown["card"]["title"]


def timers(ex, name: str) -> list[dict]:
    return [t for t in ex.sim.pending_timers() if t["name"] == name]


async def start(ex, user, duration: str = "2h") -> dict:
    await ex.sim.command(user, ex.chat, f"/crypto league start {duration}")
    [card] = cards(ex, "🏆 Trading league")[-1:]
    return card


async def join(ex, user, card: dict) -> str:
    await ex.sim.press(user, card["id"], "league.join")
    return told(ex, user)


async def fire_at_once(ex, timer: dict, copies: int, attempt: int = 1) -> None:
    """The pending ``timer`` fired ``copies`` times at once (as that many nodes would)."""
    ex.sim.now = max(ex.sim.now, timer["due_at"])
    params = timer_params(timer["name"], timer["key"], timer["due_at"], timer["payload"], attempt)
    user = next(iter(ex.people.values()))
    await asyncio.gather(
        *(ex.sim._invoke("timer", user, ex.chat, dict(params)) for _ in range(copies))
    )


@pytest.fixture
def ex(monkeypatch):
    return open_exchange(monkeypatch)


async def test_a_league_from_start_to_podium(ex):
    ann, bea, cai = ex.trader("ann"), ex.trader("bea"), ex.trader("cai")
    await ex.command(ann, "/crypto buy 0.02 btc")  # Ann holds BTC before she joins

    card = await start(ex, ann, "2h")
    assert PAPER in card["text"] and "Nobody has joined yet" in card["text"]
    assert [b.get("action_id") for b in card["buttons"]] == ["league.join", None]
    [end] = timers(ex, "league.end")
    assert end["due_at"] == T0 + 2 * HOUR
    assert timers(ex, "league.board") == []  # nothing to refresh before anyone joins

    said = await join(ex, ann, card)
    # 10 000 - 1 200 - 2.4 (fee) in USDT + 0.02 BTC at 60 000.
    assert said.startswith("You joined the league: your paper portfolio (9,997.6 USDT now)")
    assert PAPER in said
    assert league_doc(ex)["members"][ann.id]["start_value"] == "9997.6"
    assert "already" in await join(ex, ann, card)
    ex.sim.now += 100
    assert "joined" in await join(ex, bea, card)
    ex.sim.now += 100
    assert (await ex.command(cai, "/crypto league join")).startswith("You joined")
    assert set(league_doc(ex)["members"]) == {ann.id, bea.id, cai.id}

    # The card catches up at the next 5-second boundary: everyone at 0 %.
    assert ex.sim.card(card["id"]) == {k: v for k, v in card.items() if k != "id"}
    await ex.sim.advance(seconds=5)
    shown = fields(ex.sim.card(card["id"]))
    assert list(shown) == ["1. Ann", "2. Bea", "3. Cai"]  # ties: who joined first
    assert shown["1. Ann"] == "+0 % · 9,997.6 USDT"
    assert "3 traders" in ex.sim.card(card["id"])["text"]

    # BTC moves; Bea buys at 66 000; BTC moves again.
    ex.market.set("btc", "66000")
    await ex.command(bea, "/crypto buy 0.05 btc")
    ex.market.set("btc", "70000")
    await ex.sim.advance(seconds=10)
    shown = fields(ex.sim.card(card["id"]))
    assert shown == {
        "1. Ann": "+2 % · 10,197.6 USDT",  # 8 797.6 + 0.02 * 70 000
        "2. Bea": "+1.93 % · 10,193.4 USDT",  # 10 000 - 3 306.6 + 0.05 * 70 000
        "3. Cai": "+0 % · 10,000 USDT",
    }

    # The end: the podium once, the card turned into the final standings (no Join).
    await ex.sim.advance(hours=2)
    [podium] = cards(ex, "🏆 League podium")
    assert fields(podium) == {
        "🥇 Ann": "+2 % · 10,197.6 USDT",
        "🥈 Bea": "+1.93 % · 10,193.4 USDT",
        "🥉 Cai": "+0 % · 10,000 USDT",
    }
    assert PAPER in podium["text"] and "3 traders took part" in podium["text"]
    final = ex.sim.card(card["id"])
    assert final["title"] == "🏁 Trading league · final" and PAPER in final["text"]
    assert "league.join" not in str(final["buttons"])
    with pytest.raises(HostRefused):
        await ex.sim.press(bea, card["id"], "league.join")
    assert league_doc(ex)["status"] == "ended" and league_doc(ex)["podium_posted"] is True
    assert timers(ex, "league.board") == timers(ex, "league.end") == []

    # A new league may start now; the last one is kept among the past results.
    second = await start(ex, bea, "1d")
    assert second["id"] != card["id"]
    doc = league_doc(ex)
    assert doc["status"] == "running" and doc["members"] == {}
    assert [p["board"][0]["name"] for p in doc["past"]] == ["Ann"]
    ex.check_consistent()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("/crypto league start", "Usage: /crypto league start <duration>"),
        ("/crypto league start 0h", "A league lasts from 1 hour (1h) to 30 days (30d)."),
        ("/crypto league start 31d", "A league lasts from 1 hour (1h) to 30 days (30d)."),
        ("/crypto league start 721h", "A league lasts from 1 hour (1h) to 30 days (30d)."),
        ("/crypto league start -1d", "'-1d' is not a duration"),
        ("/crypto league start 2w", "'2w' is not a duration"),
        ("/crypto league start 1.5d", "'1.5d' is not a duration"),
        ("/crypto league start soon", "'soon' is not a duration"),
        ("/crypto league start 2h 3d", "Usage: /crypto league start <duration>"),
        ("/crypto league frobnicate", "Usage: /crypto league start <duration>"),
        ("/crypto league join now", "Usage: /crypto league start <duration>"),
        ("/crypto league join", "No league is running in this group"),
        ("/crypto league", "No league is running in this group"),
    ],
)
async def test_bad_league_commands_write_nothing(ex, text, said):
    ann = ex.trader("ann")
    before = ex.snapshot()
    assert said in await ex.command(ann, text)
    assert ex.snapshot() == before
    assert ex.sim.pending_timers() == [] and ex.sim.messages(ex.chat) == []


@pytest.mark.parametrize("kind", ["direct", "service"])
async def test_leagues_run_in_groups_only(ex, kind):
    ann = ex.trader("ann")
    chat = ex.sim.conversation([ann], type=kind)
    for text in ("/crypto league start 3d", "/crypto league join", "/crypto league"):
        await ex.sim.command(ann, chat, text)
        assert told(ex, ann) == "Leagues run in groups: start one in a group chat."
    assert ex.snapshot() == {} and ex.sim.pending_timers() == []


async def test_one_league_at_a_time_even_when_two_start_at_once(ex):
    ann, bea = ex.trader("ann"), ex.trader("bea")
    await asyncio.gather(
        ex.sim.command(ann, ex.chat, "/crypto league start 2h"),
        ex.sim.command(bea, ex.chat, "/crypto league start 3d"),
    )
    assert len(cards(ex, "🏆 Trading league")) == 1
    [end] = timers(ex, "league.end")  # the refused start's end timer was cancelled
    assert end["payload"]["league"] == league_doc(ex)["id"]
    refused = [u for u in (ann, bea) if ex.sim.ephemeral(u)]
    assert len(refused) == 1
    assert told(ex, refused[0]).startswith("A league is running in this group until")
    before = ex.snapshot()
    assert "A league is running" in await ex.command(ann, "/crypto league start 1d")
    assert ex.snapshot() == before and len(timers(ex, "league.end")) == 1


async def test_the_podium_is_posted_once_when_firings_race(ex):
    ann, bea = ex.trader("ann"), ex.trader("bea")
    card = await start(ex, ann, "1h")
    await join(ex, ann, card)
    await join(ex, bea, card)
    await ex.command(bea, "/crypto buy 0.01 btc")
    [end] = timers(ex, "league.end")
    await fire_at_once(ex, end, copies=4)
    [podium] = cards(ex, "🏆 League podium")
    assert list(fields(podium)) == ["🥇 Ann", "🥈 Bea"]  # Bea paid a fee
    # A late firing, and a retried one, find it posted: still one podium.
    await fire_at_once(ex, end, copies=1)
    await fire_at_once(ex, end, copies=2, attempt=2)
    assert len(cards(ex, "🏆 League podium")) == 1


async def test_a_retry_posts_the_podium_a_failed_firing_marked(ex):
    ann = ex.trader("ann")
    card = await start(ex, ann, "1h")
    await join(ex, ann, card)
    ex.sim.fail_next("messages.send_card")
    with pytest.raises(AppCallError):
        await ex.sim.advance(hours=1)
    doc = league_doc(ex)
    assert doc["status"] == "ended" and doc["podium_posted"] is False
    assert cards(ex, "🏆 League podium") == []
    await ex.sim.advance(seconds=5)  # the host tries the firing again
    [podium] = cards(ex, "🏆 League podium")
    assert list(fields(podium)) == ["🥇 Ann"]
    assert league_doc(ex)["podium_posted"] is True


async def test_a_stale_price_holds_the_board_and_the_end_back(ex):
    ann, bea = ex.trader("ann"), ex.trader("bea")
    await ex.command(ann, "/crypto buy 0.02 btc")
    card = await start(ex, ann, "1h")
    await join(ex, ann, card)

    # Joining needs a fresh price for what the joiner holds: Bea holds no BTC.
    await ex.command(bea, "/crypto buy 0.01 eth")
    ex.market.set("btc", "60000", stale=True)
    assert "joined" in await join(ex, bea, card)

    # A stale price: the card keeps its last standings, the end waits a minute at a time.
    await ex.sim.advance(seconds=5)
    assert fields(ex.sim.card(card["id"])) == {}
    await ex.sim.advance(hours=1)
    assert cards(ex, "🏆 League podium") == []
    [end] = timers(ex, "league.end")
    assert end["due_at"] == T0 + HOUR + 60 * SECOND
    ex.market.set("btc", "61000")
    await ex.sim.advance(minutes=1)
    [podium] = cards(ex, "🏆 League podium")
    assert list(fields(podium)) == ["🥇 Ann", "🥈 Bea"]
    assert "stale" not in podium["text"]


async def test_a_price_stale_for_an_hour_past_the_end_is_used_and_said(ex):
    ann = ex.trader("ann")
    await ex.command(ann, "/crypto buy 0.02 btc")
    card = await start(ex, ann, "1h")
    await join(ex, ann, card)
    ex.market.set("btc", "50000", stale=True)
    await ex.sim.advance(hours=2, seconds=1)
    [podium] = cards(ex, "🏆 League podium")
    assert podium["text"].startswith("Some prices were stale at the end")
    assert fields(podium) == {"🥇 Ann": "-2 % · 9,797.6 USDT"}


async def test_joining_with_a_stale_price_for_what_you_hold_writes_nothing(ex):
    ann = ex.trader("ann")
    await ex.command(ann, "/crypto buy 0.02 btc")
    card = await start(ex, ann, "1h")
    ex.market.set("btc", "60000", stale=True)
    before = ex.snapshot()
    assert (await join(ex, ann, card)).startswith("No fresh market price for what you hold")
    assert ex.snapshot() == before and timers(ex, "league.board") == []


async def test_the_live_card_is_throttled(ex):
    people = [ex.trader(name) for name in ("ann", "bea", "cai", "dan")]
    card = await start(ex, people[0], "1h")
    ex.sim.now += 1200  # joins within one 5-second window
    for person in people:
        await join(ex, person, card)
    [board] = timers(ex, "league.board")
    assert board["due_at"] == T0 + 5 * SECOND  # one refresh, at the boundary
    await ex.sim.advance(seconds=4)
    assert len(ex.sim.card_history(card["id"])) == 2  # posted, then one update
    assert len(fields(ex.sim.card(card["id"]))) == 4

    # Nothing changes: the refreshes back off (10 s, 20 s, then every 30 s) and update nothing.
    await ex.sim.advance(minutes=2)

    def board_times() -> list[int]:
        return [f["at"] - T0 for f in ex.sim.timers_fired if f["name"] == "league.board"]

    assert board_times() == [5_000, 10_000, 20_000, 40_000, 70_000, 100_000]
    assert len(ex.sim.card_history(card["id"])) == 2

    # A change shows at the next refresh, and brings the 5-second pace back.
    await ex.command(people[1], "/crypto buy 0.01 btc")
    ex.market.set("btc", "65000")
    await ex.sim.advance(seconds=30)
    assert board_times()[6:8] == [130_000, 135_000]
    assert next(iter(fields(ex.sim.card(card["id"])))) == "1. Bea"
    assert len(ex.sim.card_history(card["id"])) == 3


async def test_racing_refreshes_update_the_card_once(ex):
    ann = ex.trader("ann")
    card = await start(ex, ann, "1h")
    await join(ex, ann, card)
    [board] = timers(ex, "league.board")
    await fire_at_once(ex, board, copies=3)
    assert len(ex.sim.card_history(card["id"])) == 2
    assert league_doc(ex)["board_seq"] == 1


async def test_concurrent_joins_are_all_counted(ex):
    people = [ex.trader(f"t{n}") for n in range(12)]
    card = await start(ex, people[0], "1h")
    await asyncio.gather(*(ex.sim.press(p, card["id"], "league.join") for p in people))
    assert set(league_doc(ex)["members"]) == {p.id for p in people}
    await ex.sim.advance(seconds=5)
    assert len(fields(ex.sim.card(card["id"]))) == 12


async def test_a_full_league_and_a_finished_one_refuse_joins(ex, monkeypatch):
    monkeypatch.setattr(app_module("league"), "MAX_MEMBERS", 1)
    ann, bea = ex.trader("ann"), ex.trader("bea")
    card = await start(ex, ann, "1h")
    await join(ex, ann, card)
    before = ex.snapshot()
    assert await join(ex, bea, card) == "This league is full (at most 1 traders)."
    assert ex.snapshot() == before
    await ex.sim.advance(hours=1)
    assert "This league has ended." in await ex.command(bea, "/crypto league join")
    # The Join of the next league's card sending the first league's id (a client playing
    # an old card), or no league id at all: refused, nothing written.
    second = await start(ex, ann, "2h")
    before = ex.snapshot()
    for value in (card["buttons"][0]["value"], "nonsense"):
        await ex.sim.press(bea, second["id"], "league.join", value=value)
        assert told(ex, bea) == "This league has ended."
    assert ex.snapshot() == before


async def test_the_card_is_posted_again_and_kept_live(ex):
    ann = ex.trader("ann")
    first = await start(ex, ann, "1h")
    await ex.sim.command(ann, ex.chat, "/crypto league")
    again = cards(ex, "🏆 Trading league")[-1]
    assert again["id"] != first["id"] and league_doc(ex)["message_id"] == again["id"]
    await join(ex, ann, again)
    await ex.sim.advance(seconds=10)
    assert list(fields(ex.sim.card(again["id"]))) == ["1. Ann"]
    assert fields(ex.sim.card(first["id"])) == {}


async def test_the_league_view(ex):
    ann, bea = ex.trader("ann"), ex.trader("bea")
    assert await ex.view(ann, "league.get") == {"league": None, "paper": PAPER}
    card = await start(ex, ann, "1h")
    await join(ex, ann, card)
    await ex.sim.advance(seconds=5)
    answer = await ex.view(ann, "league.get")
    league = answer["league"]
    assert (league["status"], league["members"], league["joined"]) == ("running", 1, True)
    assert league["board"] == [{"name": "Ann", "value": "10000", "pct": "0"}]
    assert league["podium"] is None and league["ends_at"] == T0 + HOUR
    assert (await ex.view(bea, "league.get"))["league"]["joined"] is False
    await ex.sim.advance(hours=1)
    assert (await ex.view(bea, "league.get"))["league"]["podium"] == ["Ann"]


async def test_league_values_are_exact_decimals(ex):
    ann = ex.trader("ann")
    await ex.command(ann, "/crypto buy 0.0001 btc")
    card = await start(ex, ann, "1h")
    await join(ex, ann, card)
    start_value = Decimal(league_doc(ex)["members"][ann.id]["start_value"])
    assert start_value == Decimal("10000") - Decimal("0.0001") * 60000 * Decimal("0.002")
