"""Prices in the SDK simulator: the simulated market (deterministic, plausible, labelled), the
``/crypto price`` card (locale, zone, sparkline, live updates), bad input, and the CoinGecko
adapter played with ``sim.fake_http`` — parsing, the API key, the shared cache (one fetch for
many people), the stale guard and every provider failure. Plus the CoinGecko stub server."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
import pytest

from sdk import ViewError
from sdk.simulator import Simulator
from tests.miniapps.crypto.coingecko_stub import CoinGeckoStub
from tests.miniapps.crypto.price_fixtures import (
    API_KEY,
    CRYPTO_DIR,
    MINUTE,
    SECOND,
    START,
    app_module,
    fields_of,
    open_crypto,
    usd,
)

SIMULATED = "Simulated market prices (not real quotes)."
DAY = 24 * 60 * MINUTE


@pytest.fixture
def crypto(monkeypatch):
    return open_crypto(monkeypatch, ann_zone="Europe/Berlin")


@pytest.fixture
def gecko(monkeypatch):
    return open_crypto(monkeypatch, provider="coingecko")


def posted_cards(sim, chat) -> list[dict]:
    return [m for m in sim.messages(chat) if m["type"] == "card"]


# --- the simulated market ----------------------------------------------------------------


def test_the_simulated_market_is_a_pure_function_of_coin_and_time(crypto):
    prices = app_module("prices")
    # Another "node": the same function, nothing shared but the code.
    again = {c: prices.simulated_price(c, START) for c in prices.COINS}
    prices._day_walk.cache_clear()
    prices._anchor.cache_clear()
    assert {c: prices.simulated_price(c, START) for c in prices.COINS} == again
    bucket = START // prices.BUCKET_MS * prices.BUCKET_MS
    # One point per 5 minutes: constant within it, moving from one to the next.
    assert prices.simulated_price("btc", bucket) == prices.simulated_price("btc", bucket + 299_999)
    walk = [prices.simulated_price("btc", bucket + i * prices.BUCKET_MS) for i in range(12)]
    assert len(set(walk)) > 6
    # Coins walk apart: not one walk scaled.
    ratios = {prices.simulated_price("eth", bucket + i * DAY) / walk[0] for i in range(5)}
    assert len(ratios) > 1


def test_the_simulated_market_is_plausible_and_on_the_price_step(crypto):
    prices = app_module("prices")
    for coin in prices.COINS.values():
        seen = [prices.simulated_price(coin.symbol, START + day * DAY) for day in range(0, 400, 4)]
        assert coin.start / 3 < min(seen) and max(seen) < coin.start * 3, coin.symbol
        assert all(p == p.quantize(coin.step) and p > 0 for p in seen)
    q = prices.simulated_quote("btc", START)
    assert q.source == "simulated" and not q.stale
    assert q.at_ms == START // prices.BUCKET_MS * prices.BUCKET_MS
    day_ago = prices.simulated_price("btc", q.at_ms - DAY)
    assert q.change_24h == ((q.price - day_ago) * 100 / day_ago).quantize(Decimal("0.01"))
    history = prices.simulated_history("btc", START)
    assert len(history) == 289 and history[-1] == q.price and history[0] == day_ago


async def test_two_simulators_show_the_same_price(monkeypatch):
    one = open_crypto(monkeypatch)
    await one.sim.command(one.ann, one.group, "/crypto price btc")
    first = posted_cards(one.sim, one.group)[0]["card"]
    other = Simulator(CRYPTO_DIR)  # a second node, its own storage
    other.now = START
    ann = other.user("ann")
    chat = other.conversation(members=[ann])
    await other.command(ann, chat, "/crypto price btc")
    second = posted_cards(other, chat)[0]["card"]
    assert first["title"] == second["title"]
    assert first["title"] == f"BTC {usd(app_module('prices').simulated_price('btc', START))}"


# --- /crypto price ---------------------------------------------------------------------------


async def test_price_card_for_two_coins(crypto):
    sim, ann = crypto.sim, crypto.ann
    prices = app_module("prices")
    await sim.command(ann, crypto.group, "/crypto price btc ETH")
    (message,) = posted_cards(sim, crypto.group)
    card = message["card"]
    assert card["title"] == "Crypto prices"
    assert SIMULATED in card["text"] and "Times in Europe/Berlin." in card["text"]
    fields = fields_of(card)
    assert list(fields) == ["Bitcoin · BTC", "Ethereum · ETH"]
    btc = prices.simulated_quote("btc", START)
    # 12:00 UTC is 13:00 in Berlin: the 5-minute point of 12:00 UTC.
    assert fields["Bitcoin · BTC"].startswith(f"{usd(btc.price)} · ")
    assert "(24 h)" in fields["Bitcoin · BTC"] and "updated 1:00\u202fPM" in fields["Bitcoin · BTC"]
    sign = "+" if btc.change_24h >= 0 else "-"
    assert f"{sign}{abs(btc.change_24h):.2f}%" in fields["Bitcoin · BTC"]
    assert [b["value"] for b in card["buttons"]] == ["btc", "eth"]
    media = sim.media(card["image"])
    assert media["kind"] == "image" and media["data"][:8] == b"\x89PNG\r\n\x1a\n"
    assert (media["width"], media["height"]) == (240, 120)  # a small multiple: a row each
    assert sim.ephemeral(ann) == []
    assert crypto.gecko is None and not [c for c in sim.calls if c["method"] == "http.fetch"]


async def test_price_card_in_the_readers_locale(monkeypatch):
    crypto = open_crypto(monkeypatch, ann_locale="de-DE", ann_zone="Asia/Tokyo")
    await crypto.sim.command(crypto.ann, crypto.group, "/crypto price bitcoin")
    card = posted_cards(crypto.sim, crypto.group)[0]["card"]
    price = app_module("prices").simulated_price("btc", START)
    assert card["title"] == f"BTC {usd(price, 'de-DE')}"
    assert card["title"].endswith("\xa0$") and "," in card["title"]
    line = fields_of(card)["Bitcoin · BTC"]
    assert "updated 21:00" in line  # 12:00 UTC in Tokyo, German clock
    assert "Times in Asia/Tokyo." in card["text"]


async def test_the_same_chart_is_uploaded_once(crypto):
    sim = crypto.sim
    await sim.command(crypto.ann, crypto.group, "/crypto price btc")
    await sim.command(crypto.bea, crypto.group, "/crypto price btc")
    first, second = (m["card"] for m in posted_cards(sim, crypto.group))
    assert first["image"] == second["image"] and len(sim.media_ids()) == 1
    await sim.advance(minutes=5)  # a new point: a new chart
    await sim.command(crypto.otto, crypto.group, "/crypto price btc")
    assert posted_cards(sim, crypto.group)[-1]["card"]["image"] != first["image"]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("/crypto price", "Usage: /crypto price <coins>"),
        ("/crypto price , ,", "Usage: /crypto price <coins>"),
        (
            "/crypto price btc foo",
            "Unknown coin 'foo'. Known coins: btc, eth, sol, ada, doge, xrp.",
        ),
        ("/crypto price foo bar foo", "Unknown coin 'foo', 'bar'."),
        ("/crypto price usdt", "Unknown coin 'usdt'."),
    ],
)
async def test_bad_price_commands_write_nothing(crypto, text, said):
    told = await crypto.command(crypto.ann, text, crypto.group)
    assert said in told
    assert crypto.sim.messages(crypto.group) == []
    assert crypto.written() == {} and crypto.sim.media_ids() == []
    assert crypto.sim.pending_timers() == []


async def test_the_card_stays_live_for_ten_minutes(crypto):
    sim = crypto.sim
    await sim.command(crypto.ann, crypto.group, "/crypto price btc")
    (message,) = posted_cards(sim, crypto.group)
    assert len(crypto.timers("live:")) == 1
    await sim.advance(minutes=1)  # the same 5-minute point: nothing to change
    assert len(sim.card_history(message["id"])) == 1
    await sim.advance(minutes=5)  # a new point: updated in place
    history = sim.card_history(message["id"])
    assert len(history) == 2 and history[1]["title"] != history[0]["title"]
    price = app_module("prices").simulated_price("btc", sim.now)
    assert sim.card(message["id"])["title"] == f"BTC {usd(price)}"
    await sim.advance(minutes=10)
    assert crypto.timers("live:") == []
    versions = len(sim.card_history(message["id"]))
    await sim.advance(minutes=30)
    assert len(sim.card_history(message["id"])) == versions
    assert len(sim.messages(crypto.group)) == 1


async def test_views_answer_quotes_and_history(crypto):
    sim, ann, chat = crypto.sim, crypto.ann, crypto.group
    answer = await sim.view(ann, chat, "prices.quotes", {"coins": ["btc", "sol"]})
    assert answer["simulated"] is True
    btc = app_module("prices").simulated_quote("btc", START)
    assert answer["quotes"][0] == btc.to_json() and answer["quotes"][1]["coin"] == "sol"
    everything = await sim.view(ann, chat, "prices.quotes", {})
    assert [q["coin"] for q in everything["quotes"]] == ["btc", "eth", "sol", "ada", "doge", "xrp"]
    chart = await sim.view(ann, chat, "prices.history", {"coin": "eth"})
    assert len(chart["points"]) == 289
    with pytest.raises(ViewError) as refused:
        await sim.view(ann, chat, "prices.quotes", {"coins": ["btc", "nope"]})
    assert refused.value.code == "unknown_coin"
    with pytest.raises(ViewError) as refused:
        await sim.view(ann, chat, "prices.history", {"coin": 7})
    assert refused.value.code == "unknown_coin"


async def test_a_bad_provider_setting_is_a_clear_error(monkeypatch):
    crypto = open_crypto(monkeypatch, provider="bloomberg")
    told = await crypto.command(crypto.ann, "/crypto price btc", crypto.group)
    assert "price_provider must be simulated or coingecko" in told
    assert crypto.sim.messages(crypto.group) == [] and crypto.written() == {}


# --- CoinGecko ---------------------------------------------------------------------------------


async def test_coingecko_quotes_are_read_exactly_with_the_api_key(gecko):
    sim, ann = gecko.sim, gecko.ann
    await sim.command(ann, gecko.group, "/crypto price btc eth doge")
    card = posted_cards(sim, gecko.group)[0]["card"]
    fields = fields_of(card)
    assert fields["Bitcoin · BTC"] == "$67,187.34 · ▲ +3.64% (24 h) · updated 12:00\u202fPM"
    assert fields["Ethereum · ETH"].startswith("$3,401.12 · ▼ -1.25% (24 h)")
    assert fields["Dogecoin · DOGE"].startswith("$0.17234 · 24 h change unknown")
    assert "Prices: CoinGecko (USD)." in card["text"] and SIMULATED not in card["text"]
    (quotes_request,) = [r for r in gecko.gecko.requests if "/simple/price" in r["url"]]
    assert quotes_request["url"] == (
        "https://api.coingecko.com/api/v3/simple/price?ids=bitcoin,ethereum,solana,cardano,"
        "dogecoin,ripple&vs_currencies=usd&include_24hr_change=true&include_last_updated_at=true"
    )
    assert quotes_request["headers"]["x-cg-demo-api-key"] == API_KEY
    charts = [r["url"] for r in gecko.gecko.requests if "/market_chart" in r["url"]]
    assert sorted(charts) == sorted(
        f"https://api.coingecko.com/api/v3/coins/{i}/market_chart?vs_currency=usd&days=1"
        for i in ("bitcoin", "ethereum", "dogecoin")
    )
    assert all(r["headers"]["x-cg-demo-api-key"] == API_KEY for r in gecko.gecko.requests)
    stored = gecko.stored("prices")["btc"]
    assert stored["price"] == "67187.34" and stored["at_ms"] == START // 1000 * 1000
    quote = await sim.view(ann, gecko.group, "prices.quotes", {"coins": ["btc"]})
    assert quote["quotes"][0]["price"] == "67187.34" and quote["simulated"] is False


async def test_a_pro_key_goes_in_the_pro_header(monkeypatch):
    pro = "https://pro-api.coingecko.com/api/v3"
    crypto = open_crypto(monkeypatch, provider="coingecko", config={"price_api_url": pro + "/"})
    prices = app_module("prices")
    crypto.sim.fake_http(
        prices.quotes_url(pro), body='{"bitcoin": {"usd": 1, "last_updated_at": 1740000000}}'
    )
    await crypto.sim.view(crypto.ann, crypto.group, "prices.quotes", {"coins": ["btc"]})
    (request,) = crypto.gecko.requests
    assert request["url"].startswith(pro + "/simple/price?")
    assert request["headers"]["x-cg-pro-api-key"] == API_KEY
    assert "x-cg-demo-api-key" not in request["headers"]


async def test_one_fetch_a_minute_for_everybody(gecko):
    sim, g = gecko.sim, gecko.gecko
    for user in (gecko.ann, gecko.bea, gecko.otto):
        await sim.command(user, gecko.group, "/crypto price btc")
        await sim.view(user, gecko.group, "prices.quotes", {"coins": ["eth", "sol"]})
    assert g.quote_fetches() == 1 and g.chart_fetches() == 1
    await sim.advance(seconds=59)
    await sim.view(gecko.bea, gecko.group, "prices.quotes", {"coins": ["btc"]})
    assert g.quote_fetches() == 1
    await sim.advance(seconds=2)
    g.set("bitcoin", "68000")
    answer = await sim.view(gecko.bea, gecko.group, "prices.quotes", {"coins": ["btc"]})
    assert answer["quotes"][0]["price"] == "68000.00" and g.quote_fetches() == 2


async def test_many_people_at_once_after_the_cache_aged_fetch_once(gecko):
    sim, g = gecko.sim, gecko.gecko
    await sim.view(gecko.ann, gecko.group, "prices.quotes", {"coins": ["btc"]})
    sim.now += 90 * SECOND
    g.set("bitcoin", "70000")
    people = [sim.user(f"p{n}") for n in range(8)]
    for person in people:
        sim.add_member(gecko.group, person)
    answers = await asyncio.gather(
        *(sim.view(p, gecko.group, "prices.quotes", {"coins": ["btc"]}) for p in people)
    )
    assert g.quote_fetches() == 2  # the first, then one refresh for all eight
    # Who lost the refresh answered from the cache meanwhile: still fresh, not stale.
    assert {a["quotes"][0]["price"] for a in answers} <= {"67187.34", "70000.00"}
    assert not any(a["quotes"][0]["stale"] for a in answers)


async def test_an_old_last_updated_at_is_stale(gecko):
    sim, g = gecko.sim, gecko.gecko
    g.set("bitcoin", "65000", updated_ms=START - 6 * MINUTE)
    await sim.command(gecko.ann, gecko.group, "/crypto price btc eth")
    card = posted_cards(sim, gecko.group)[0]["card"]
    fields = fields_of(card)
    assert fields["Bitcoin · BTC"].startswith("⚠ stale · $65,000.00")
    assert "updated 11:54\u202fAM" in fields["Bitcoin · BTC"]
    assert "never used to fill orders" in card["text"]
    answer = await sim.view(gecko.ann, gecko.group, "prices.quotes", {"coins": ["btc", "eth"]})
    assert [q["stale"] for q in answer["quotes"]] == [True, True]


async def test_stale_after_minutes_is_a_setting(monkeypatch):
    crypto = open_crypto(monkeypatch, provider="coingecko", config={"stale_after_minutes": "15"})
    crypto.gecko.set("bitcoin", "65000", updated_ms=START - 10 * MINUTE)
    answer = await crypto.sim.view(crypto.ann, crypto.group, "prices.quotes", {"coins": ["btc"]})
    assert answer["quotes"][0]["stale"] is False
    crypto.sim.now += 6 * MINUTE  # 16 minutes old now
    crypto.sim._http.clear()  # and the provider unreachable: the cache answers
    answer = await crypto.sim.view(crypto.ann, crypto.group, "prices.quotes", {"coins": ["btc"]})
    assert answer["quotes"][0]["stale"] is True and answer["quotes"][0]["price"] == "65000.00"


@pytest.mark.parametrize("mode", ["429", "500", "bad_json", "timeout"])
async def test_a_failing_provider_leaves_the_cached_price_marked_stale(gecko, mode):
    sim, g = gecko.sim, gecko.gecko
    await sim.command(gecko.ann, gecko.group, "/crypto price btc")
    sim.now += 2 * MINUTE
    g.fail(mode)
    await sim.command(gecko.bea, gecko.group, "/crypto price btc")
    cards = posted_cards(sim, gecko.group)
    assert len(cards) == 2
    line = fields_of(cards[1]["card"])["Bitcoin · BTC"]
    assert line.startswith("⚠ stale · $67,187.34")  # the cached price, two minutes old
    assert g.quote_fetches() == 2
    # Nobody asks the failing provider again during the back-off, and the answer stays stale.
    sim.now += 10 * SECOND
    answer = await sim.view(gecko.otto, gecko.group, "prices.quotes", {"coins": ["btc"]})
    assert answer["quotes"][0]["stale"] is True and g.quote_fetches() == 2
    # A 429's Retry-After (120 s here) holds longer than the usual back-off of 30 s.
    sim.now += 30 * SECOND
    g.fail(None)
    answer = await sim.view(gecko.otto, gecko.group, "prices.quotes", {"coins": ["btc"]})
    assert g.quote_fetches() == (2 if mode == "429" else 3)
    assert answer["quotes"][0]["stale"] is (mode == "429")
    sim.now += 2 * MINUTE
    answer = await sim.view(gecko.otto, gecko.group, "prices.quotes", {"coins": ["btc"]})
    assert answer["quotes"][0]["stale"] is False
    assert gecko.stored("price_refresh")["coingecko"].get("failed_at") is None


@pytest.mark.parametrize("mode", ["429", "500", "bad_json", "timeout"])
async def test_a_failing_provider_with_nothing_cached_is_prices_unavailable(gecko, mode):
    gecko.gecko.fail(mode)
    told = await gecko.command(gecko.ann, "/crypto price btc", gecko.group)
    assert told == "Prices are unavailable right now; try again in a minute."
    assert gecko.sim.messages(gecko.group) == []
    assert "prices" not in gecko.written() and gecko.sim.media_ids() == []
    answer = await gecko.sim.view(gecko.ann, gecko.group, "prices.quotes", {"coins": ["btc"]})
    assert answer["quotes"] == []
    with pytest.raises(ViewError) as refused:  # prices.quote(ctx, coin), as trading calls it
        await gecko.sim.view(gecko.ann, gecko.group, "prices.quotes", {"coin": "btc"})
    assert refused.value.code == "prices_unavailable"
    assert "prices" not in gecko.written()


async def test_a_coin_the_provider_lacks_is_unavailable_not_invented(gecko):
    sim, g = gecko.sim, gecko.gecko
    del g.prices["ripple"]
    g.publish()
    await sim.command(gecko.ann, gecko.group, "/crypto price btc xrp")
    fields = fields_of(posted_cards(sim, gecko.group)[0]["card"])
    assert fields["XRP · XRP"] == "price unavailable"
    assert fields["Bitcoin · BTC"].startswith("$67,187.34")
    answer = await sim.view(gecko.ann, gecko.group, "prices.quotes", {"coins": ["xrp"]})
    assert answer["quotes"] == []


async def test_numbers_that_are_no_prices_are_not_used(gecko):
    sim = gecko.sim
    body = (
        '{"bitcoin": {"usd": -5, "last_updated_at": 1740000000},'
        ' "ethereum": {"usd": "3401.12"},'
        ' "solana": {"usd": 1e400},'
        ' "cardano": {"usd": true},'
        ' "dogecoin": {"usd": 0.17, "usd_24h_change": 1e40},'
        ' "ripple": {"usd": 0}}'
    )
    sim.fake_http(gecko.gecko.quotes_url(), body=body)
    answer = await sim.view(gecko.ann, gecko.group, "prices.quotes", {})
    assert answer["quotes"] == [
        {
            "coin": "doge",
            "price": "0.17000",
            "change_24h": None,
            "at_ms": START,
            "stale": False,
            "source": "coingecko",
        }
    ]
    sim.now += 2 * MINUTE
    sim.fake_http(gecko.gecko.quotes_url(), body='{"bitcoin": {"usd": NaN}}')
    answer = await sim.view(gecko.ann, gecko.group, "prices.quotes", {"coins": ["doge"]})
    assert answer["quotes"][0]["stale"] is True  # NaN is no JSON number: a bad answer
    assert gecko.stored("price_refresh")["coingecko"]["error"] == "bad_json"


async def test_history_falls_back_to_the_cached_chart(gecko):
    sim, g = gecko.sim, gecko.gecko
    first = await sim.view(gecko.ann, gecko.group, "prices.history", {"coin": "btc"})
    assert len(first["points"]) == 289 and first["points"][-1] == "67187.340000"
    sim.now += 10 * MINUTE
    g.fail("500")
    again = await sim.view(gecko.ann, gecko.group, "prices.history", {"coin": "btc"})
    assert again == first
    nothing = await sim.view(gecko.ann, gecko.group, "prices.history", {"coin": "eth"})
    assert nothing["points"] == []


# --- the stub server -----------------------------------------------------------------------


async def test_the_stub_speaks_coingecko():
    stub = CoinGeckoStub(changes={"bitcoin": "3.5"}, last_updated_at=1740000000)
    async with stub, aiohttp.ClientSession() as http:
        url = f"{stub.url}/simple/price"
        query = {
            "ids": "bitcoin,dogecoin,nope",
            "vs_currencies": "usd",
            "include_24hr_change": "true",
            "include_last_updated_at": "true",
        }
        async with http.get(url, params=query, headers={"x-cg-demo-api-key": "k"}) as r:
            assert r.status == 200
            body = await r.text()
        assert parse(body) == {
            "bitcoin": {
                "usd": Decimal("67187.34"),
                "usd_24h_change": Decimal("3.5"),
                "last_updated_at": 1740000000,
            },
            "dogecoin": {
                "usd": Decimal("0.17234"),
                "usd_24h_change": None,
                "last_updated_at": 1740000000,
            },
        }
        assert stub.requests[-1]["headers"]["x-cg-demo-api-key"] == "k"
        chart = f"{stub.url}/coins/solana/market_chart"
        async with http.get(chart, params={"vs_currency": "usd", "days": "1"}) as r:
            points = parse(await r.text())["prices"]
        assert len(points) == 289 and points[-1][1] == Decimal("171.204")
        assert points[-1][0] - points[0][0] == 24 * 60 * MINUTE
        async with http.get(f"{stub.url}/coins/shiba/market_chart") as r:
            assert r.status == 404
        for mode, status in (("429", 429), ("500", 500), ("bad_json", 200)):
            stub.failure = mode
            async with http.get(url, params=query) as r:
                assert r.status == status
                text = await r.text()
            if mode == "429":
                assert r.headers["Retry-After"] == "60"
            if mode == "bad_json":
                with pytest.raises(ValueError):
                    parse(text)
        stub.failure = "timeout"
        with pytest.raises(TimeoutError):
            async with http.get(url, params=query, timeout=aiohttp.ClientTimeout(total=0.3)):
                pass


def parse(body: str):
    return json.loads(body, parse_float=Decimal)
