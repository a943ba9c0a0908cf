"""The crypto app's read-only tool for the assistant, ``price``, through the SDK simulator
(``sim.invoke_tool``, as the host runs it: arguments checked against the manifest's JSON Schema,
the invocation read-only, its card posted as the crypto app's): one row per coin asked with exact
decimals and the source's label, unknown coins answered as such, the ``/crypto price`` card
(its chart only when that picture was uploaded before — a tool uploads nothing), refused
arguments, and that the tool writes nothing — with the simulated market and with CoinGecko
(played by ``sim.fake_http``): a fresh cache is read, an old one is refetched *without* being
written, a failing provider leaves the cached price marked stale, nothing cached and a failing
provider is ``prices_unavailable``. And once through the running platform (a real gateway, the
app in its sandboxed process, Socket.IO clients)."""

from __future__ import annotations

import pytest

from gateway.keys import MESSAGING, MINIAPPS
from sdk.errors import InvalidParams
from sdk.tools import TOOL_CAPABILITIES
from storage.mongo import now_ms
from tests.helpers import eventually
from tests.messaging.chat_helpers import app_cards, close_all, group, people
from tests.miniapps.crypto.price_fixtures import MINUTE, START, app_module, open_crypto
from tests.miniapps.shop.test_tools import app_state, tool_calls
from tests.miniapps.test_app_tools_e2e import concierge, use
from tests.miniapps.test_webview_calls import add_apps

SIMULATED = "Simulated market prices (not real quotes)."


@pytest.fixture
def crypto(monkeypatch):
    return open_crypto(monkeypatch, ann_zone="Europe/Berlin")


@pytest.fixture
def gecko(monkeypatch):
    return open_crypto(monkeypatch, provider="coingecko")


def world(crypto) -> dict:
    """Everything the app could have changed: its storage (with versions: a rewrite of the
    same value counts), uploads, timers."""
    sim = crypto.sim
    return {
        "storage": {
            name: {key: (value, sim.storage_version(name, key)) for key, value in items.items()}
            for name, items in ((n, sim.storage(n)) for n in list(sim._storage))
        },
        "media": sim.media_ids(),
        "timers": sim.pending_timers(),
    }


async def price(crypto, *coins: str, user=None) -> dict:
    """The tool called as ``user`` (Ann) in the group, checking on the way that it only read."""
    sim = crypto.sim
    before, start = world(crypto), len(sim.calls)
    answer = await sim.invoke_tool(
        user or crypto.ann, crypto.group, "price", {"coins": list(coins)}
    )
    assert world(crypto) == before
    made = sim.calls[start:]
    # Nothing refused on the way either (a fetch may time out: the provider's failure).
    assert all(c["ok"] or c["method"] == "http.fetch" for c in made), made
    assert {c["method"] for c in made} <= TOOL_CAPABILITIES
    return answer


def last_card(crypto) -> dict:
    """The card posted last in the group (by the tool, or by ``/crypto price``)."""
    return [m for m in crypto.sim.messages(crypto.group) if m["type"] == "card"][-1]["card"]


# --- the simulated market -----------------------------------------------------------------


async def test_price_answers_exact_rows_and_the_price_card(crypto):
    prices = app_module("prices")
    answer = await price(crypto, "btc", "Ethereum")
    btc, eth = prices.simulated_quote("btc", START), prices.simulated_quote("eth", START)
    assert answer["result"] == [
        {
            "coin": "btc",
            "price": format(btc.price, "f"),
            "currency": "USD",
            "change_24h": format(btc.change_24h, "f"),
            "stale": False,
            "source_label": SIMULATED,
        },
        {
            "coin": "eth",
            "price": format(eth.price, "f"),
            "currency": "USD",
            "change_24h": format(eth.change_24h, "f"),
            "stale": False,
            "source_label": SIMULATED,
        },
    ]
    tool_card = crypto.sim.card(answer["message_id"])
    # The /crypto price card, without its chart: the picture was never uploaded, and a tool
    # uploads nothing (nor keeps the card live: no timer).
    assert "image" not in tool_card
    await crypto.sim.command(crypto.ann, crypto.group, "/crypto price btc eth")
    posted = last_card(crypto)
    assert {k: v for k, v in posted.items() if k != "image"} == tool_card
    assert [b["action_id"] for b in tool_card["buttons"]] == ["watch.add", "watch.add"]
    # Once /crypto price uploaded that picture, the tool's card shows it too.
    again = await price(crypto, "btc", "eth")
    assert crypto.sim.card(again["message_id"]) == posted


async def test_unknown_coins_are_answered_as_such_duplicates_once(crypto):
    answer = await price(crypto, "dogge", "BTC", "bitcoin", "usdt", "dogge")
    assert [row["coin"] for row in answer["result"]] == ["dogge", "btc", "usdt"]
    assert answer["result"][0] == {"coin": "dogge", "error": "unknown_coin"}
    assert answer["result"][2] == {"coin": "usdt", "error": "unknown_coin"}
    assert answer["result"][1]["price"]
    card = crypto.sim.card(answer["message_id"])
    assert [f["label"] for f in card["fields"]] == ["Bitcoin · BTC"]


async def test_no_known_coin_is_no_card(crypto):
    answer = await price(crypto, "nope", "usdt")
    assert answer == {
        "result": [
            {"coin": "nope", "error": "unknown_coin"},
            {"coin": "usdt", "error": "unknown_coin"},
        ],
        "message_id": None,
    }
    assert crypto.sim.messages(crypto.group) == []


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({}, "'coins' is a required property"),
        ({"coins": []}, "arguments.coins"),
        ({"coins": "btc"}, "arguments.coins"),
        ({"coins": ["btc", "eth", "sol", "ada", "doge", "xrp"]}, "arguments.coins"),
        ({"coins": [""]}, "arguments.coins.0"),
        ({"coins": ["x" * 21]}, "arguments.coins.0"),
        ({"coins": [7]}, "arguments.coins.0"),
        ({"coins": ["btc"], "buy": 1}, "Additional properties"),
    ],
)
async def test_bad_arguments_are_refused_before_the_app_runs(crypto, arguments, problem):
    before, start = world(crypto), len(crypto.sim.calls)
    with pytest.raises(InvalidParams) as refused:
        await crypto.sim.invoke_tool(crypto.ann, crypto.group, "price", arguments)
    assert refused.value.code == "invalid_params" and problem in refused.value.message
    assert crypto.sim.calls[start:] == [] and world(crypto) == before
    assert crypto.sim.messages(crypto.group) == []


# --- CoinGecko ------------------------------------------------------------------------------


async def test_a_fresh_cache_is_read_and_the_provider_not_asked(gecko):
    sim, g = gecko.sim, gecko.gecko
    await sim.command(gecko.ann, gecko.group, "/crypto price btc")
    posted = last_card(gecko)
    fetches = len(g.requests)
    answer = await price(gecko, "btc")
    assert len(g.requests) == fetches  # the cache (and the chart's) is a minute fresh
    assert answer["result"] == [
        {
            "coin": "btc",
            "price": "67187.34",
            "currency": "USD",
            "change_24h": "3.64",
            "stale": False,
            "source_label": "CoinGecko (USD)",
        }
    ]
    assert sim.card(answer["message_id"]) == posted  # the same chart, uploaded before


async def test_an_old_cache_is_refetched_and_not_written(gecko):
    sim, g = gecko.sim, gecko.gecko
    await sim.command(gecko.ann, gecko.group, "/crypto price btc")
    sim.now += 2 * MINUTE
    g.set("bitcoin", "70000", change="5")
    answer = await price(gecko, "btc", "eth")  # (price checks that nothing was written)
    assert g.quote_fetches() == 2 and g.chart_fetches() == 1  # no chart fetched: none drawn
    assert [(r["coin"], r["price"], r["stale"]) for r in answer["result"]] == [
        ("btc", "70000.00", False),
        ("eth", "3401.12", False),
    ]
    assert "image" not in sim.card(answer["message_id"])
    assert gecko.stored("prices")["btc"]["price"] == "67187.34"  # the cache as it was
    # Not cached, so asked again next time: the tool never claims the refresh.
    await price(gecko, "btc")
    assert g.quote_fetches() == 3


async def test_nothing_cached_the_tool_fetches_without_caching(gecko):
    answer = await price(gecko, "sol")
    assert answer["result"][0]["price"] == "171.204" and gecko.gecko.quote_fetches() == 1
    assert gecko.written() == {}


@pytest.mark.parametrize("mode", ["429", "500", "bad_json", "timeout"])
async def test_a_failing_provider_leaves_the_cached_price_marked_stale(gecko, mode):
    sim, g = gecko.sim, gecko.gecko
    await sim.command(gecko.ann, gecko.group, "/crypto price btc")
    sim.now += 2 * MINUTE
    g.fail(mode)
    answer = await price(gecko, "btc")
    (row,) = answer["result"]
    assert (row["price"], row["stale"]) == ("67187.34", True) and g.quote_fetches() == 2
    fields = {f["label"]: f["value"] for f in sim.card(answer["message_id"])["fields"]}
    assert fields["Bitcoin · BTC"].startswith("⚠ stale · $67,187.34")
    # The failure was noted nowhere (a tool writes nothing): the next one asks again.
    await price(gecko, "btc")
    assert g.quote_fetches() == 3


async def test_during_someone_elses_back_off_the_tool_answers_from_the_cache(gecko):
    sim, g = gecko.sim, gecko.gecko
    await sim.command(gecko.ann, gecko.group, "/crypto price btc")
    sim.now += 2 * MINUTE
    g.fail("500")
    await sim.command(gecko.bea, gecko.group, "/crypto price btc")  # fails: a 30 s back-off
    assert g.quote_fetches() == 2
    sim.now += 10_000
    answer = await price(gecko, "btc")
    assert g.quote_fetches() == 2 and answer["result"][0]["stale"] is True


@pytest.mark.parametrize("mode", ["500", "timeout"])
async def test_a_failing_provider_with_nothing_cached_is_prices_unavailable(gecko, mode):
    gecko.gecko.fail(mode)
    answer = await price(gecko, "btc", "nope")
    assert answer == {
        "result": [
            {"coin": "btc", "error": "prices_unavailable"},
            {"coin": "nope", "error": "unknown_coin"},
        ],
        "message_id": None,
    }
    assert gecko.sim.messages(gecko.group) == [] and gecko.written() == {}


# --- through the running platform ------------------------------------------------------------


@pytest.mark.timeout(120)
async def test_through_the_platform_the_tool_answers_prices_and_writes_nothing(gateway):
    add_apps(gateway)  # the concierge test app, which calls the chat's tools
    host, db = gateway.app[MINIAPPS], gateway.app[MESSAGING].db
    ann, bea = await people(str(gateway.make_url("")).rstrip("/"), 2)
    try:
        cid = await group(ann, [bea], "Traders")
        for app_id in ("crypto", "concierge"):
            status, body = await ann.api.post(
                f"/api/v1/conversations/{cid}/apps", json={"app_id": app_id}
            )
            assert status == 201, body
        before, since = await app_state(db, "crypto"), now_ms()

        answer = await concierge(ann, cid, use("crypto", "price", {"coins": ["BTC", "nope"]}))
        btc, nope = answer["result"]
        assert nope == {"coin": "nope", "error": "unknown_coin"}
        assert (btc["coin"], btc["currency"], btc["stale"]) == ("btc", "USD", False)
        assert btc["source_label"] == SIMULATED  # the default provider, labelled
        cards = await eventually(lambda: app_cards(bea, cid, "crypto"), what="the price card")
        assert [c["id"] for c in cards] == [answer["message_id"]]
        card = cards[0]["card"]
        assert cards[0]["sender_id"] == "app:crypto" and card["title"].startswith("BTC $")
        assert [(b["action_id"], b["value"]) for b in card["buttons"]] == [("watch.add", "btc")]
        assert await app_state(db, "crypto") == before  # no cache, no chart, no live timer
        made = await tool_calls(host, "crypto", since)
        assert made and all(e["ok"] for e in made), made
        assert {e["method"] for e in made} <= TOOL_CAPABILITIES
        refused = await concierge(ann, cid, use("crypto", "price", {"coins": []}))
        assert refused["error"] == "invalid_params" and "arguments.coins" in refused["message"]
    finally:
        await close_all([ann, bea])
