"""Watchlists and price alerts in the SDK simulator: every command with good and bad input, the
per-coin check timers, delivery to the group or the service chat, firing exactly once (also
when firings race), the stale guard, cancelling, and the retry of an undelivered alert."""

from __future__ import annotations

import asyncio

import pytest

from sdk.timers import timer_params
from tests.miniapps.crypto.price_fixtures import MINUTE, START, app_module, fields_of, open_crypto

ALERT_USAGE = "Usage: /crypto alert <coin> > <price> (or <), e.g. /crypto alert btc > 100000"
WATCH_USAGE = "Usage: /crypto watch · /crypto watch add <coins> · /crypto watch remove <coins>"


@pytest.fixture
def crypto(monkeypatch):
    return open_crypto(monkeypatch)


@pytest.fixture
def gecko(monkeypatch):
    """CoinGecko says BTC is 99,000 (fresh)."""
    crypto = open_crypto(monkeypatch, provider="coingecko")
    crypto.gecko.set("bitcoin", "99000")
    return crypto


def cards(sim, chat) -> list[dict]:
    return [m["card"] for m in sim.messages(chat) if m["type"] == "card"]


def alerts_stored(crypto) -> list[dict]:
    return list(crypto.stored("alerts").values())


async def fire_concurrently(sim, timer: dict, user, chat, copies: int) -> None:
    """The pending ``timer`` fired ``copies`` times at once, as that many nodes would."""
    sim.now = max(sim.now, timer["due_at"])
    params = timer_params(timer["name"], timer["key"], timer["due_at"], dict(timer["payload"]), 1)
    await asyncio.gather(*(sim._invoke("timer", user, chat, dict(params)) for _ in range(copies)))


# --- watchlist -------------------------------------------------------------------------------


async def test_the_watchlist_from_empty_to_full_and_back(crypto):
    ann = crypto.ann
    told = await crypto.command(ann, "/crypto watch")
    assert "It is empty: /crypto watch add btc eth" in told
    assert await crypto.command(ann, "/crypto watch add btc Ethereum") == (
        "Added BTC, ETH to your watchlist."
    )
    assert await crypto.command(ann, "/crypto watch add eth,sol") == (
        "Added SOL to your watchlist. ETH is already on it."
    )
    await crypto.command(ann, "/crypto watch")
    card = crypto.last_private_card(ann)
    prices = app_module("prices")
    btc = prices.simulated_quote("btc", START)
    assert card["title"] == "Your watchlist"
    assert list(fields_of(card)) == ["Bitcoin · BTC", "Ethereum · ETH", "Solana · SOL"]
    assert fields_of(card)["Bitcoin · BTC"].startswith(prices.format_usd(btc.price, "en"))
    assert "Simulated market prices" in card["text"]
    assert card["text"].endswith("Remove: /crypto watch remove <coin>.")
    assert "buttons" not in card  # shown to Ann only: such a card is not kept, nothing to press
    assert crypto.stored("watchlists")[ann.id] == {"owner": ann.id, "coins": ["btc", "eth", "sol"]}

    assert await crypto.command(ann, "/crypto watch remove eth") == (
        "Removed ETH from your watchlist."
    )
    assert await crypto.command(ann, "/crypto watch remove eth btc") == (
        "Removed BTC from your watchlist. ETH was not on it."
    )
    assert crypto.stored("watchlists")[ann.id]["coins"] == ["sol"]
    await crypto.command(ann, "/crypto watch")
    assert list(fields_of(crypto.last_private_card(ann))) == ["Solana · SOL"]
    # Bea's list is her own.
    assert "It is empty" in await crypto.command(crypto.bea, "/crypto watch")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("/crypto watch add", WATCH_USAGE),
        ("/crypto watch remove", WATCH_USAGE),
        ("/crypto watch btc", WATCH_USAGE),
        ("/crypto watch clear btc", WATCH_USAGE),
        ("/crypto watch add btc shiba", "Unknown coin 'shiba'. Known coins: btc, eth, sol"),
        ("/crypto watch remove nope", "Unknown coin 'nope'."),
        ("/crypto watch remove btc", "BTC was not on it."),
    ],
)
async def test_bad_watch_commands_write_nothing(crypto, text, said):
    assert said in await crypto.command(crypto.ann, text, crypto.group)
    assert crypto.written() == {} and crypto.sim.messages(crypto.group) == []


async def test_watch_from_a_price_card(crypto):
    sim = crypto.sim
    await sim.command(crypto.ann, crypto.group, "/crypto price btc doge")
    (message,) = sim.messages(crypto.group)
    await sim.press(crypto.bea, message["id"], "watch.add", "doge")
    assert crypto.sim.ephemeral(crypto.bea)[-1]["text"] == (
        "Added DOGE to your watchlist (/crypto watch)."
    )
    await sim.press(crypto.bea, message["id"], "watch.add", "doge")
    assert crypto.sim.ephemeral(crypto.bea)[-1]["text"] == "DOGE is already on your watchlist."
    await sim.press(crypto.bea, message["id"], "watch.add", "nonsense")  # a forged value
    assert crypto.sim.ephemeral(crypto.bea)[-1]["text"] == "Unknown coin."
    assert crypto.stored("watchlists") == {
        crypto.bea.id: {"owner": crypto.bea.id, "coins": ["doge"]}
    }


# --- setting alerts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("/crypto alert", ALERT_USAGE),
        ("/crypto alert btc", ALERT_USAGE),
        ("/crypto alert btc >", ALERT_USAGE),
        ("/crypto alert btc ! 5", ALERT_USAGE),
        ("/crypto alert btc > > 5", ALERT_USAGE),
        ("/crypto alert btc > 5 extra", ALERT_USAGE),
        ("/crypto alert shiba > 5", "Unknown coin 'shiba'. Known coins: btc, eth"),
        ("/crypto alert btc > 0", "'0' is not a price"),
        ("/crypto alert btc > 0.000", "'0.000' is not a price"),
        ("/crypto alert btc < -5", "'-5' is not a price"),
        ("/crypto alert btc > abc", "'abc' is not a price"),
        ("/crypto alert btc > NaN", "'NaN' is not a price"),
        ("/crypto alert btc > Infinity", "'Infinity' is not a price"),
        ("/crypto alert btc > 1e5", "'1e5' is not a price"),
        ("/crypto alert btc > 1,000", "'1,000' is not a price"),
        ("/crypto alert btc > 1234567890123", "'1234567890123' is not a price"),
    ],
)
async def test_bad_alerts_write_nothing(crypto, text, said):
    assert said in await crypto.command(crypto.ann, text, crypto.group)
    assert crypto.written() == {} and crypto.sim.pending_timers() == []
    assert crypto.sim.messages(crypto.group) == [] and crypto.sim.subscription_asks == []


async def test_an_alert_in_a_group_is_checked_by_a_per_coin_timer(gecko):
    sim, ann = gecko.sim, gecko.ann
    told = await gecko.command(ann, "/crypto alert btc > 100000", gecko.group)
    assert told == (
        "🔔 Alert set: BTC > $100,000.00. I'll post in this group when it is met (checked every"
        " minute). BTC is $99,000.00 now."
    )
    (alert,) = alerts_stored(gecko)
    assert alert["status"] == "armed" and alert["price"] == "100000"
    assert alert["deliver"] == "group" and alert["conversation_id"] == gecko.group.id
    # Three more alerts on BTC in this chat, one on ETH: two timers, at the next minute.
    await gecko.command(gecko.bea, "/crypto alert btc >= 100000", gecko.group)
    await gecko.command(gecko.otto, "/crypto alert bitcoin above 100500", gecko.group)
    await gecko.command(gecko.otto, "/crypto alert btc below 98000", gecko.group)
    await gecko.command(gecko.otto, "/crypto alert eth < 3000", gecko.group)
    timers = gecko.timers("alerts:")
    assert sorted(t["payload"]["coin"] for t in timers) == ["btc", "eth"]
    assert {t["due_at"] for t in timers} == {START // MINUTE * MINUTE + MINUTE}

    await sim.advance(minutes=1)  # 99,000: nothing met
    assert sim.messages(gecko.group) == []
    gecko.gecko.set("bitcoin", "100000")  # equal: ">=" fires, ">" does not
    await sim.advance(minutes=1)
    (posted,) = cards(sim, gecko.group)
    assert posted["title"] == "🔔 BTC at or above $100,000.00"
    assert posted["text"] == "Your alert BTC >= $100,000.00 is met."
    assert fields_of(posted)["Bitcoin · BTC"].startswith("$100,000.00 · ▲ +3.64% (24 h)")
    gecko.gecko.set("bitcoin", "100600")
    await sim.advance(minutes=1)
    titles = [c["title"] for c in cards(sim, gecko.group)]
    assert titles == [
        "🔔 BTC at or above $100,000.00",
        "🔔 BTC above $100,000.00",
        "🔔 BTC above $100,500.00",
    ]
    # Fired alerts never fire again; the timers keep going while something is armed.
    await sim.advance(minutes=5)
    assert len(cards(sim, gecko.group)) == 3
    assert sorted(t["payload"]["coin"] for t in gecko.timers("alerts:")) == ["btc", "eth"]
    statuses = sorted((a["op"], a["price"], a["status"]) for a in alerts_stored(gecko))
    assert statuses == [
        ("<", "3000", "armed"),
        ("<", "98000", "armed"),
        (">", "100000", "fired"),
        (">", "100500", "fired"),
        (">=", "100000", "fired"),
    ]
    assert all(a["delivered"] for a in alerts_stored(gecko) if a["status"] == "fired")


async def test_the_check_stops_when_nothing_is_armed(gecko):
    sim = gecko.sim
    await gecko.command(gecko.ann, "/crypto alert btc > 99500", gecko.group)
    gecko.gecko.set("bitcoin", "99600")
    await sim.advance(minutes=1)  # the first check reads the cached price (99,000, < 60 s old)
    assert cards(sim, gecko.group) == [] and len(gecko.timers("alerts:")) == 1
    await sim.advance(minutes=1)
    assert len(cards(sim, gecko.group)) == 1 and gecko.timers("alerts:") == []
    await sim.advance(minutes=10)
    assert len(cards(sim, gecko.group)) == 1


async def test_a_direct_chat_alert_comes_as_a_service_message(gecko):
    sim, ann = gecko.sim, gecko.ann
    told = await gecko.command(ann, "/crypto alert btc < 98000", gecko.direct)
    assert "You'll get a service message when it is met" in told
    assert "Allow" not in told and sim.subscription_asks == []
    gecko.gecko.set("bitcoin", "97000.5", change="-2.5")
    await sim.advance(minutes=2)
    assert sim.messages(gecko.direct) == []
    (sent,) = sim.notifications(ann)
    assert sent["title"] == "🔔 BTC below $98,000.00"
    assert fields_of(sent)["Bitcoin · BTC"].startswith("$97,000.50 · ▼ -2.50% (24 h)")
    (alert,) = alerts_stored(gecko)
    assert alert["status"] == "fired" and alert["delivery"] == "sent"


async def test_an_alert_in_the_service_chat_asks_to_allow_messages(monkeypatch):
    crypto = open_crypto(monkeypatch, provider="coingecko")
    sim = crypto.sim
    dan = sim.user("dan", notifications=False)
    told = await crypto.command(dan, "/crypto alert btc > 60000")
    assert "Allow Crypto's messages to receive it." in told
    assert sim.subscription_asks == [dan]
    assert "That is met already: it fires at the next check." in told  # 67,187.34
    await sim.answer_subscription(dan, True)
    await sim.advance(minutes=1)
    (sent,) = sim.notifications(dan)
    assert sent["title"] == "🔔 BTC above $60,000.00"


async def test_an_alert_is_refused_to_someone_who_declined_messages(monkeypatch):
    crypto = open_crypto(monkeypatch)
    eve = crypto.sim.user("eve", notifications=False, consent={"notifications": False})
    told = await crypto.command(eve, "/crypto alert btc > 60000")
    assert told.startswith("Alerts set here come as service messages, which you turned off")
    assert crypto.written() == {} and crypto.sim.pending_timers() == []


async def test_an_undeliverable_alert_fires_once_all_the_same(gecko):
    sim, ann = gecko.sim, gecko.ann
    await gecko.command(ann, "/crypto alert btc > 99500", gecko.direct)
    ann.notifications = False  # she turned the messages off since
    gecko.gecko.set("bitcoin", "99600")
    await sim.advance(minutes=2)
    (alert,) = alerts_stored(gecko)
    assert alert["status"] == "fired" and alert["delivery"] == "scope_denied"
    assert sim.notifications(ann) == [] and gecko.timers("alerts:") == []


async def test_the_same_alert_twice_is_one_alert(gecko):
    await gecko.command(gecko.ann, "/crypto alert btc > 100000", gecko.group)
    told = await gecko.command(gecko.ann, "/crypto alert BTC > 100000.00", gecko.group)
    assert told == "You already have this alert: BTC > $100,000.00."
    # A double tap, concurrently: still one.
    await asyncio.gather(
        *(gecko.sim.command(gecko.bea, gecko.group, "/crypto alert eth < 3000") for _ in range(4))
    )
    assert sorted(a["coin"] for a in alerts_stored(gecko)) == ["btc", "eth"]


async def test_at_most_ten_armed_alerts_a_person(gecko):
    for n in range(10):
        await gecko.command(gecko.ann, f"/crypto alert btc > {100001 + n}", gecko.group)
    told = await gecko.command(gecko.ann, "/crypto alert btc > 200000", gecko.group)
    assert told == "You have 10 alerts already: cancel one first (/crypto alerts)."
    assert len(alerts_stored(gecko)) == 10
    # Re-setting one of the ten is fine; another person is not limited by Ann's.
    assert "already have" in await gecko.command(
        gecko.ann, "/crypto alert btc > 100001", gecko.group
    )
    assert "Alert set" in await gecko.command(gecko.bea, "/crypto alert btc > 200000", gecko.group)


# --- listing and cancelling ------------------------------------------------------------------


async def test_alerts_are_listed_and_cancelled_by_their_owner_only(gecko):
    sim, ann, bea = gecko.sim, gecko.ann, gecko.bea
    assert "None: /crypto alert btc > 100000" in await gecko.command(ann, "/crypto alerts")
    await gecko.command(ann, "/crypto alert btc > 100000", gecko.group)
    sim.now += 90_000
    await gecko.command(ann, "/crypto alert eth < 3000", gecko.direct)
    await gecko.command(bea, "/crypto alert sol > 200", gecko.group)
    # Asked in the group: the list, with buttons, goes to her chat with Crypto.
    told = await gecko.command(ann, "/crypto alerts", gecko.group)
    assert told == "Your 2 alerts (with Cancel buttons) are in your chat with Crypto."
    assert sim.messages(gecko.group) == []
    card = sim.notifications(ann)[-1]
    assert card["title"] == "Your price alerts"
    assert fields_of(card) == {
        "BTC > $100,000.00": "armed · posts in the group · set 12:00\u202fPM",
        "ETH < $3,000.00": "armed · service message · set 12:02\u202fPM",
    }
    assert [b["label"] for b in card["buttons"]] == [
        "Cancel BTC > $100,000.00",
        "Cancel ETH < $3,000.00",
    ]
    btc_id = card["buttons"][0]["value"]

    # Bea cannot cancel Ann's alert, even with its id on a copy of the card.
    _, told = await gecko.press_notified(bea, card, "alert.cancel", btc_id)
    assert told == "No such alert of yours."
    _, told = await gecko.press_notified(bea, card, "alert.cancel", "al-not-an-id")
    assert told == "No such alert of yours."
    assert gecko.stored("alerts")[btc_id]["status"] == "armed"

    message_id, told = await gecko.press_notified(ann, card, "alert.cancel", btc_id)
    assert told == "Cancelled BTC > $100,000.00."
    updated = sim.card(message_id)  # the card pressed, updated in place
    assert updated["text"].startswith("Cancelled BTC > $100,000.00.")
    assert list(fields_of(updated)) == ["ETH < $3,000.00"] and len(updated["buttons"]) == 1
    _, told = await gecko.press_notified(ann, card, "alert.cancel", btc_id)
    assert told == "BTC > $100,000.00 was cancelled already."
    # A cancelled alert never fires.
    gecko.gecko.set("bitcoin", "150000")
    await sim.advance(minutes=2)
    assert cards(sim, gecko.group) == []
    assert gecko.stored("alerts")[btc_id]["status"] == "cancelled"
    assert "Usage: /crypto alerts" in await gecko.command(ann, "/crypto alerts all")
    mine = await sim.view(ann, gecko.group, "alerts.mine", {})
    assert [a["coin"] for a in mine["alerts"]] == ["eth"] and mine["watchlist"] == []


async def test_in_the_service_chat_the_list_is_posted_there(gecko):
    sim, ann = gecko.sim, gecko.ann
    await gecko.command(ann, "/crypto alert btc > 100000")
    await sim.command(ann, gecko.service(ann), "/crypto alerts")
    (message,) = [m for m in sim.messages(gecko.service(ann)) if m["type"] == "card"]
    assert message["card"]["title"] == "Your price alerts"
    await sim.press(ann, message["id"], "alert.cancel")
    assert sim.ephemeral(ann)[-1]["text"] == "Cancelled BTC > $100,000.00."
    assert sim.card(message["id"])["text"].startswith("Cancelled BTC > $100,000.00. None")


async def test_without_service_messages_the_list_has_no_buttons(monkeypatch):
    crypto = open_crypto(monkeypatch)
    dan = crypto.sim.user("dan")
    crypto.sim.add_member(crypto.group, dan)
    await crypto.command(dan, "/crypto alert btc > 100000", crypto.group)
    dan.notifications = False
    await crypto.command(dan, "/crypto alerts", crypto.group)
    card = crypto.last_private_card(dan)
    assert list(fields_of(card)) == ["BTC > $100,000.00"] and "buttons" not in card
    assert card["text"].endswith("Cancel one: /crypto alert cancel btc > 100000.")


async def test_an_alert_is_cancelled_by_naming_it(gecko):
    ann = gecko.ann
    await gecko.command(ann, "/crypto alert btc > 100000", gecko.group)
    said = await gecko.command(ann, "/crypto alert cancel bitcoin > 100000.0", gecko.group)
    assert said == "Cancelled BTC > $100,000.00."
    said = await gecko.command(ann, "/crypto alert cancel btc > 100000", gecko.group)
    assert said == "BTC > $100,000.00 was cancelled already."
    for text, told in (
        ("/crypto alert cancel btc < 100000", "No such alert of yours."),
        ("/crypto alert cancel", ALERT_USAGE),
        ("/crypto alert cancel doge > x", "'x' is not a price"),
    ):
        assert told in await gecko.command(ann, text, gecko.group)
    # Bea naming Ann's alert cancels nothing.
    await gecko.command(ann, "/crypto alert eth < 3000", gecko.group)
    said = await gecko.command(gecko.bea, "/crypto alert cancel eth < 3000", gecko.group)
    assert said == "No such alert of yours."
    assert sorted(a["status"] for a in alerts_stored(gecko)) == ["armed", "cancelled"]


async def test_cancelling_a_fired_alert_says_so(gecko):
    await gecko.command(gecko.ann, "/crypto alert btc > 99500", gecko.group)
    await gecko.command(gecko.ann, "/crypto alerts", gecko.group)
    card = gecko.sim.notifications(gecko.ann)[-1]
    gecko.gecko.set("bitcoin", "99600")
    await gecko.sim.advance(minutes=2)
    _, told = await gecko.press_notified(
        gecko.ann, card, "alert.cancel", card["buttons"][0]["value"]
    )
    assert told == "BTC > $99,500.00 has fired already."


# --- firing: once, fresh prices only ---------------------------------------------------------


async def test_racing_firings_post_once(gecko):
    sim = gecko.sim
    await gecko.command(gecko.ann, "/crypto alert btc > 99500", gecko.group)
    await gecko.command(gecko.bea, "/crypto alert btc > 99400", gecko.group)
    gecko.gecko.set("bitcoin", "99600")
    sim.now += MINUTE  # past the cached 99,000: every copy reads the new price
    await sim.view(gecko.ann, gecko.group, "prices.quotes", {"coins": ["btc"]})
    (timer,) = gecko.timers("alerts:")
    await fire_concurrently(sim, timer, gecko.ann, gecko.group, copies=4)
    assert sorted(c["title"] for c in cards(sim, gecko.group)) == [
        "🔔 BTC above $99,400.00",
        "🔔 BTC above $99,500.00",
    ]
    assert all(a["status"] == "fired" for a in alerts_stored(gecko))
    await sim.advance(minutes=3)
    assert len(cards(sim, gecko.group)) == 2


async def test_an_old_price_never_fires(gecko):
    sim, g = gecko.sim, gecko.gecko
    await gecko.command(gecko.ann, "/crypto alert btc > 99500", gecko.group)
    # Met, but CoinGecko last updated it 5 minutes before the alert was set: stale by then.
    g.set("bitcoin", "120000", updated_ms=START - 5 * MINUTE)
    await sim.advance(minutes=2)
    assert gecko.stored("prices")["btc"]["price"] == "120000.00"  # the check read it
    assert cards(sim, gecko.group) == [] and alerts_stored(gecko)[0]["status"] == "armed"
    assert len(gecko.timers("alerts:")) == 1
    g.set("bitcoin", "120000")  # updated now
    await sim.advance(minutes=1)
    (posted,) = cards(sim, gecko.group)
    assert posted["title"] == "🔔 BTC above $99,500.00"


async def test_a_price_the_provider_failed_to_refresh_never_fires(monkeypatch):
    crypto = open_crypto(monkeypatch, provider="coingecko")
    sim, g = crypto.sim, crypto.gecko
    g.set("bitcoin", "120000")
    await sim.view(crypto.ann, crypto.group, "prices.quotes", {"coins": ["btc"]})
    sim.now += 70_000  # 12:01:40: the cached price (a minute old) would be met
    g.fail("500")
    told = await crypto.command(crypto.ann, "/crypto alert btc > 99500", crypto.group)
    assert "BTC is $120,000.00 now." in told and "met already" not in told
    await sim.advance(minutes=1)  # 12:02: inside the failure back-off, the cache is stale
    assert cards(sim, crypto.group) == [] and alerts_stored(crypto)[0]["status"] == "armed"
    assert g.quote_fetches() == 2
    g.fail(None)
    await sim.advance(minutes=1)
    (posted,) = cards(sim, crypto.group)
    assert posted["title"] == "🔔 BTC above $99,500.00"


async def test_a_retry_delivers_what_a_failed_firing_marked(gecko):
    """A firing that wrote ``fired`` and failed before posting is retried by the host; the
    retry posts it (once), a first attempt does not post it again."""
    sim = gecko.sim
    await gecko.command(gecko.ann, "/crypto alert btc > 99500", gecko.group)
    (alert,) = alerts_stored(gecko)
    status, _ = await sim.call_capability(
        gecko.ann,
        gecko.group,
        "storage.update",
        {
            "collection": "alerts",
            "key": alert["id"],
            "set": {
                "status": "fired",
                "delivered": False,
                "fired_at": START,
                "fired_price": "99650",
                "fired_change": "1.5",
                "fired_quote_at": START,
                "fired_source": "coingecko",
            },
        },
    )
    assert status == "ok"
    (timer,) = gecko.timers("alerts:")
    params = timer_params(timer["name"], timer["key"], timer["due_at"], timer["payload"], 1)
    await sim._invoke("timer", gecko.ann, gecko.group, params)
    assert cards(sim, gecko.group) == []
    await sim._invoke("timer", gecko.ann, gecko.group, {**params, "attempt": 2})
    (posted,) = cards(sim, gecko.group)
    assert fields_of(posted)["Bitcoin · BTC"].startswith("$99,650.00 · ▲ +1.50% (24 h)")
    await sim._invoke("timer", gecko.ann, gecko.group, {**params, "attempt": 3})
    assert len(cards(sim, gecko.group)) == 1


async def test_alerts_on_the_simulated_market(crypto):
    sim = crypto.sim
    told = await crypto.command(crypto.ann, "/crypto alert doge > 0.01", crypto.group)
    assert "That is met already: it fires at the next check." in told
    await sim.advance(minutes=1)
    (posted,) = cards(sim, crypto.group)
    assert posted["title"] == "🔔 DOGE above $0.01"
    assert "Simulated market prices (not real quotes)." in posted["text"]
    price = app_module("prices").simulated_price("doge", sim.now)
    assert fields_of(posted)["Dogecoin · DOGE"].startswith(
        app_module("prices").format_usd(price, "en")
    )


async def test_a_price_may_be_written_with_a_dollar_sign(crypto):
    told = await crypto.command(crypto.ann, "/crypto alert ada <= $0.25", crypto.group)
    assert told.startswith("🔔 Alert set: ADA <= $0.25. I'll post in this group")
    (alert,) = alerts_stored(crypto)
    assert (alert["coin"], alert["op"], alert["price"]) == ("ada", "<=", "0.25")
