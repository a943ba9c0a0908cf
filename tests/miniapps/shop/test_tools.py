"""The shop's read-only tool for the assistant, ``search_products``, through the SDK simulator
(``sim.invoke_tool``, as the host runs it: arguments checked against the manifest's JSON Schema,
the invocation read-only, its card posted as the shop's): the matches as data and the card
``/shop search`` posts, whose Buy button only a person's tap presses; no match; refused
arguments; and that the tool writes nothing. And the same tool called by another app of the
chat (``apps.call_tool`` from the ``concierge`` test app) — in the simulator, and through the
running platform (a real gateway, the shop in its sandboxed process, Socket.IO clients), where
a person then taps Buy on the tool's card."""

from __future__ import annotations

import json
import shlex

import pytest

from gateway.keys import MESSAGING, MINIAPPS
from sdk.errors import InvalidParams
from sdk.simulator import Simulator
from sdk.tools import TOOL_CAPABILITIES
from storage.mongo import now_ms
from tests.helpers import eventually
from tests.messaging.chat_helpers import app_cards, close_all, group, people
from tests.miniapps.conftest import APPS_DIR
from tests.miniapps.shop import e2e_helpers as e2e
from tests.miniapps.shop.conftest import SHOP_DIR, add_product, open_store
from tests.miniapps.shop.e2e_helpers import grant_merchant
from tests.miniapps.test_app_tools_e2e import concierge, use
from tests.miniapps.test_webview_calls import add_apps


def world(sim: Simulator) -> dict:
    """Everything the shop could have changed: its storage, uploads, timers, payments."""
    return {
        "storage": {name: sim.storage(name) for name in list(sim._storage)},
        "media": sim.media_ids(),
        "timers": sim.pending_timers(),
        "payments": sim.payments,
    }


def calls_since(sim: Simulator, start: int) -> list[dict]:
    return sim.calls[start:]


@pytest.fixture
async def catalogue(sim, merchant, chat):
    """Mira's store: headphones (5 left), a sold-out mug, a tee whose variants cost different
    amounts, and a hidden speaker nobody may find."""
    await open_store(sim, merchant, chat)
    headphones = await add_product(
        sim, merchant, chat, title="Wireless Headphones", description="Over-ear, 30 h battery"
    )
    mug = await add_product(sim, merchant, chat, title="Blue Mug", price="12.50", stock=0)
    tee = await add_product(
        sim,
        merchant,
        chat,
        title="Cotton Tee",
        price="20.00",
        variants=[
            {"label": "M", "price": "18.00", "stock": 2},
            {"label": "XL", "price": "22.00", "stock": 0},
        ],
    )
    speaker = await add_product(sim, merchant, chat, title="Headphones Stand", visible=False)
    return {"headphones": headphones, "mug": mug, "tee": tee, "hidden": speaker}


async def test_search_products_answers_the_matches_and_the_search_card(sim, buyer, chat, catalogue):
    headphones = catalogue["headphones"]
    answer = await sim.invoke_tool(buyer, chat, "search_products", {"query": "hedphones"})
    # Typo tolerant like /shop search; the hidden product is never found.
    assert answer["result"] == [
        {
            "id": headphones["id"],
            "title": "Wireless Headphones",
            "price": "79.00",
            "currency": "USD",
            "in_stock": True,
        }
    ]
    tool_card = sim.card(answer["message_id"])
    # The very card /shop search posts (same product, same stock, same reader).
    await sim.command(buyer, chat, "/shop search hedphones")
    assert sim.messages(chat)[-1]["card"] == tool_card
    actions = [(b.get("action_id"), b.get("value")) for b in tool_card["buttons"]]
    assert ("product.buy", headphones["id"]) in actions
    assert ("cart.add", headphones["id"]) in actions
    # Posting the card bought nothing.
    assert sim.payments == {} and sim.storage("checkouts") == {}


async def test_prices_are_exact_decimals_the_lowest_variant_and_stock_a_flag(
    sim, buyer, chat, catalogue
):
    mug = (await sim.invoke_tool(buyer, chat, "search_products", {"query": "blue mug"}))["result"][
        0
    ]
    assert mug == {
        "id": catalogue["mug"]["id"],
        "title": "Blue Mug",
        "price": "12.50",
        "currency": "USD",
        "in_stock": False,
    }
    answer = await sim.invoke_tool(buyer, chat, "search_products", {"query": "cotton tee"})
    tee = answer["result"][0]
    assert (tee["price"], tee["in_stock"]) == ("18.00", True)  # "from $18.00" on the card
    assert {f["label"]: f["value"] for f in sim.card(answer["message_id"])["fields"]}[
        "Price"
    ] == "from $18.00"


async def test_a_yen_price_has_no_decimals(sim, merchant, buyer, chat):
    await open_store(sim, merchant, chat)
    await add_product(sim, merchant, chat, title="Matcha Bowl", price="1250", currency="JPY")
    answer = await sim.invoke_tool(buyer, chat, "search_products", {"query": "matcha"})
    assert [(r["price"], r["currency"]) for r in answer["result"]] == [("1250", "JPY")]


async def test_limit_bounds_the_matches_and_the_card_is_the_best_ones(sim, merchant, buyer, chat):
    await open_store(sim, merchant, chat)
    for title in ("Red Mug", "Green Mug", "Big Mug", "Mug Warmer"):
        await add_product(sim, merchant, chat, title=title, price="9.00")
    every = await sim.invoke_tool(buyer, chat, "search_products", {"query": "mug"})
    assert len(every["result"]) == 4
    two = await sim.invoke_tool(buyer, chat, "search_products", {"query": "mug", "limit": 2})
    assert two["result"] == every["result"][:2]
    assert sim.card(two["message_id"])["title"] == two["result"][0]["title"]


async def test_no_match_is_an_empty_result_and_no_card(sim, buyer, chat, catalogue):
    before = len(sim.messages(chat))
    answer = await sim.invoke_tool(buyer, chat, "search_products", {"query": "submarine"})
    assert answer == {"result": [], "message_id": None}
    assert len(sim.messages(chat)) == before


async def test_the_tool_only_reads(sim, buyer, chat, catalogue):
    before, start = world(sim), len(sim.calls)
    await sim.invoke_tool(buyer, chat, "search_products", {"query": "headphones"})
    await sim.invoke_tool(buyer, chat, "search_products", {"query": "nothing like it"})
    assert world(sim) == before
    made = calls_since(sim, start)
    assert made and all(c["ok"] for c in made), made  # nothing refused on the way either
    assert {c["method"] for c in made} <= TOOL_CAPABILITIES


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({}, "'query' is a required property"),
        ({"query": ""}, "arguments.query"),
        ({"query": "   "}, "arguments.query"),
        ({"query": "x" * 101}, "arguments.query"),
        ({"query": 7}, "arguments.query"),
        ({"query": "mug", "limit": 0}, "arguments.limit"),
        ({"query": "mug", "limit": 6}, "arguments.limit"),
        ({"query": "mug", "buy": True}, "Additional properties"),
    ],
)
async def test_bad_arguments_are_refused_before_the_shop_runs(
    sim, buyer, chat, catalogue, arguments, problem
):
    before, start = world(sim), len(sim.calls)
    with pytest.raises(InvalidParams) as refused:
        await sim.invoke_tool(buyer, chat, "search_products", arguments)
    assert refused.value.code == "invalid_params" and problem in refused.value.message
    assert calls_since(sim, start) == [] and world(sim) == before
    assert sim.messages(chat) == []


async def test_a_person_taps_buy_on_the_tools_card(sim, buyer, chat, catalogue):
    answer = await sim.invoke_tool(buyer, chat, "search_products", {"query": "headphones"})
    assert sim.payments == {}
    # The person, not the tool, presses Buy: the shop's own checkout asks them to pay.
    await sim.press(buyer, answer["message_id"], "product.buy", catalogue["headphones"]["id"])
    (payment,) = sim.payments.values()
    assert (payment["user"], payment["amount"], payment["status"]) == ("ben", 7900, "requested")


async def test_another_app_calls_the_tool_and_the_card_is_the_shops():
    concierge = Simulator(APPS_DIR / "concierge")
    ann = concierge.user("ann")
    chat = concierge.conversation(members=[ann, concierge.user("mira")])
    shop = concierge.install_app(SHOP_DIR)
    mira, shop_chat = shop.user("mira"), shop.mirror(chat)
    shop.grant_role(mira, "merchant")
    await open_store(shop, mira, shop_chat)
    await add_product(shop, mira, shop_chat, title="Wireless Headphones")
    arguments = shlex.quote(json.dumps({"query": "headphones"}))
    await concierge.command(ann, chat, f"/use shop search_products {arguments}")
    answer = json.loads(concierge.ephemeral(ann)[-1]["text"])
    assert [r["title"] for r in answer["result"]] == ["Wireless Headphones"]
    card = shop.card(answer["message_id"])
    assert any(b.get("action_id") == "product.buy" for b in card["buttons"])
    assert concierge.messages(chat) == [] and shop.payments == {}


# --- through the running platform ------------------------------------------------------------


async def app_state(db, app_id: str) -> dict:
    """What the platform keeps for ``app_id``: its storage documents (with their versions),
    its timers and its uploads."""
    state = {}
    for collection in ("app_storage", "app_timers", "media"):
        docs = [doc async for doc in db[collection].find({"app_id": app_id})]
        state[collection] = sorted(docs, key=lambda doc: str(doc["_id"]))
    return state


async def tool_calls(host, app_id: str, since: int) -> list[dict]:
    """The capability calls ``app_id`` made from ``since`` on (the host audits every one)."""
    entries = await host.audit.get_entries(app_id, before=None, limit=200)
    return [e for e in entries if e["at"] >= since]


@pytest.mark.timeout(120)
async def test_through_the_platform_a_tool_card_a_person_buys_from(gateway):
    add_apps(gateway)  # the concierge test app, which calls the chat's tools
    host, db = gateway.app[MINIAPPS], gateway.app[MESSAGING].db
    mira, ben, admin = await people(str(gateway.make_url("")).rstrip("/"), 3)
    try:
        await db.users.update_one({"_id": admin.user_id}, {"$set": {"role": "admin"}})
        await grant_merchant(admin, mira)
        cid = await group(mira, [ben], "Shopping")
        for app_id in ("shop", "concierge"):
            status, body = await mira.api.post(
                f"/api/v1/conversations/{cid}/apps", json={"app_id": app_id}
            )
            assert status == 201, body
        await e2e.open_store(mira, cid, "Mira's Market")
        product = await e2e.add_product(
            mira, cid, title="Wireless Headphones", price="79.00", stock=5
        )
        before, since = await app_state(db, "shop"), now_ms()

        answer = await concierge(ben, cid, use("shop", "search_products", {"query": "hedphones"}))
        assert answer["result"] == [
            {
                "id": product["id"],
                "title": "Wireless Headphones",
                "price": "79.00",
                "currency": "USD",
                "in_stock": True,
            }
        ]
        cards = await eventually(lambda: app_cards(ben, cid, "shop"), what="the tool's card")
        assert [c["id"] for c in cards] == [answer["message_id"]]
        assert cards[0]["sender_id"] == "app:shop"  # the shop's card: its buttons go there
        assert e2e.button(cards[0], "product.buy")["value"] == product["id"]
        # The tool only read; nobody was asked to pay.
        assert await app_state(db, "shop") == before
        made = await tool_calls(host, "shop", since)
        assert made and all(e["ok"] for e in made), made
        assert {e["method"] for e in made} <= TOOL_CAPABILITIES
        assert e2e.events_of(ben, "payment.confirm_required") == []
        refused = await concierge(ben, cid, use("shop", "search_products", {"query": " "}))
        assert refused["error"] == "invalid_params" and "arguments.query" in refused["message"]

        # Ben taps Buy on the card: the shop's checkout asks him (and only him) to pay.
        ack = await e2e.press(ben, cid, answer["message_id"], "product.buy", product["id"])
        assert ack["ok"], ack
        (asked,) = await eventually(
            lambda: e2e.events_of(ben, "payment.confirm_required"), what="the payment sheet"
        )
        assert asked["payment"]["amount"] == 7900
        assert e2e.events_of(mira, "payment.confirm_required") == []
    finally:
        await close_all([mira, ben, admin])
