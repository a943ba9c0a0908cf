"""Copy trade in the simulator: ``/crypto share <order id>`` posts a trade card; another member
presses Copy, confirms on the card that comes to their chat with Crypto (or types ``/crypto copy
<share id>``), and gets their own order of the same side, pair, amount and price through the
normal order flow — once, however often they confirm; Cancel is final from the card; bad input
is refused with nothing written."""

from __future__ import annotations

import asyncio
import re

import pytest

from sdk.errors import ViewError
from sdk.simulator import HostRefused
from tests.miniapps.crypto.exchange_fixtures import open_exchange

PAPER = "Paper trading — no real money."
BTC = "BTC/USDT"


def fields(card: dict) -> dict[str, str]:
    return {f["label"]: f["value"] for f in card.get("fields", [])}


def told(ex, user) -> str:
    shown = ex.sim.ephemeral(user)[-1]
    return shown.get("text") or shown["card"]["title"]


def trade_cards(ex, chat=None) -> list[dict]:
    return [
        {**m["card"], "id": m["id"]}
        for m in ex.sim.messages(chat or ex.chat)
        if m["type"] == "card"
        and any(b.get("action_id") == "copy.start" for b in m["card"].get("buttons", []))
    ]


def orders_of(ex, user) -> list[dict]:
    return [o for o in ex.sim.storage("orders").values() if o["user"] == user.id]


async def share(ex, user, order_id: str, chat=None) -> dict:
    await ex.sim.command(user, chat or ex.chat, f"/crypto share {order_id}")
    return trade_cards(ex, chat)[-1]


def confirm_card_of(ex, user):
    """What the host does with the service message: the confirm card lands in ``user``'s
    service chat with Crypto, where its buttons can be pressed. ``(chat, message id)``."""
    card = ex.sim.notifications(user)[-1]
    assert isinstance(card, dict) and card["title"].startswith("Copy: "), card
    chat = ex.sim.conversation([user], type="service")
    return chat, ex.sim._post(chat, "card", card)


async def press_in(ex, user, chat, message_id: str, action_id: str, value: str):
    """A press reaching the app from a card whose button may be gone already (a second
    device's press, racing the first one's update)."""
    params = {"message_id": message_id, "action_id": action_id, "value": value}
    return await ex.sim._invoke("action", user, chat, params)


@pytest.fixture
def ex(monkeypatch):
    return open_exchange(monkeypatch)


async def test_a_filled_trade_shared_and_copied_through_the_confirm_card(ex):
    ann, bea = ex.trader("ann"), ex.trader("bea")
    bought = await ex.place(ann, "buy", "0.02")
    card = await share(ex, ann, bought["id"])
    assert card["title"] == "📈 Ann bought 0.02 BTC"
    assert fields(card) == {
        "Order": "Market · BTC/USDT",
        "Amount": "0.02 BTC",
        "Filled at": "60,000 USDT (average)",
    }
    assert PAPER in card["text"] and "same side, pair, amount and price" in card["text"]
    share_id = card["buttons"][0]["value"]
    assert re.fullmatch(r"sh-[0-9a-f]{16}", share_id)

    await ex.sim.press(bea, card["id"], "copy.start")
    assert told(ex, bea) == (
        "Copy Ann's trade: Buy 0.02 BTC at market. Confirm it in your chat with Crypto"
        f" (or: /crypto copy {share_id}). {PAPER}"
    )
    assert orders_of(ex, bea) == []  # nothing placed before she confirms
    _, message_id = confirm_card_of(ex, bea)
    confirm = ex.sim.card(message_id)
    assert confirm["title"] == "Copy: Buy 0.02 BTC at market" and PAPER in confirm["text"]
    assert [b["action_id"] for b in confirm["buttons"]] == ["copy.confirm", "copy.cancel"]

    await ex.sim.press(bea, message_id, "copy.confirm")
    placed = ex.sim.card(message_id)  # the confirm card became her order
    assert placed["title"] == "Buy 0.02 BTC at market"
    assert placed["text"] == f"Copied. {PAPER}"
    assert fields(placed)["Status"] == "closed"
    assert fields(placed)["Client order id"] == f"copy-{share_id}"
    [order] = orders_of(ex, bea)
    assert (order["side"], order["type"], order["amount"], order["symbol"]) == (
        "buy",
        "market",
        "0.02",
        BTC,
    )
    assert ex.balance(bea, "BTC") == (ex.balance(ann, "BTC")[0], 0)
    assert "copy.confirm" not in str(placed.get("buttons"))

    # Confirming again — typed, or Copy pressed again — is the same order.
    card_shown = await ex.command(bea, f"/crypto copy {share_id}")
    assert fields(card_shown)["Order"] == order["id"]
    await ex.sim.press(bea, card["id"], "copy.start")
    shown = ex.sim.ephemeral(bea)[-1]["card"]
    assert shown["text"] == f"You copied this trade already. {PAPER}"
    assert fields(shown)["Order"] == order["id"]
    assert len(orders_of(ex, bea)) == 1 and len(ex.sim.notifications(bea)) == 1
    ex.check_consistent()


async def test_an_open_limit_order_is_copied_at_its_price_by_the_typed_command(ex):
    ann, bea = ex.trader("ann"), ex.trader("bea")
    bid = await ex.place(ann, "buy", "0.01", price="59000")
    card = await share(ex, ann, bid["id"])
    assert card["title"] == "Ann is buying 0.01 BTC at 59,000"
    assert fields(card)["Order"] == "Limit GTC · BTC/USDT"
    assert fields(card)["Limit price"] == "59,000 USDT"
    share_id = card["buttons"][0]["value"]
    shown = await ex.command(bea, f"/crypto copy {share_id}")
    assert shown["title"] == "Buy 0.01 BTC at 59,000" and fields(shown)["Status"] == "open"
    [order] = orders_of(ex, bea)
    assert (order["price"], order["timeInForce"], order["status"]) == ("59000", "GTC", "open")
    assert len(ex.book().open_orders()) == 2
    ex.check_consistent()


async def test_what_a_partly_filled_order_traded_is_what_is_copied(ex):
    ann, bea, cai = ex.trader("ann"), ex.trader("bea"), ex.trader("cai")
    await ex.place(cai, "buy", "0.01")
    await ex.place(cai, "sell", "0.01", price="60100")
    bid = await ex.place(ann, "buy", "0.03", price="60100", tif="IOC", type="limit")
    assert bid["status"] == "expired" and bid["filled"] == "0.01"
    card = await share(ex, ann, bid["id"])
    assert card["title"] == "📈 Ann bought 0.01 BTC"
    share_id = card["buttons"][0]["value"]
    shown = await ex.command(bea, f"/crypto copy {share_id}")
    assert shown["title"] == "Buy 0.01 BTC at 60,100" and fields(shown)["Type"].startswith(
        "limit IOC"
    )


async def test_cancel_from_the_card_is_final_and_a_late_confirm_places_nothing(ex):
    ann, bea = ex.trader("ann"), ex.trader("bea")
    await ex.place(ann, "buy", "0.02")
    card = await share(ex, ann, (await ex.place(ann, "sell", "0.01", price="61000"))["id"])
    assert card["title"] == "Ann is selling 0.01 BTC at 61,000"
    share_id = card["buttons"][0]["value"]
    await ex.sim.press(bea, card["id"], "copy.start")
    chat, message_id = confirm_card_of(ex, bea)
    await ex.sim.press(bea, message_id, "copy.cancel")
    cancelled = ex.sim.card(message_id)
    assert cancelled["title"].startswith("Not copied: ") and PAPER in cancelled["text"]
    assert "buttons" not in cancelled or cancelled["buttons"] == []
    # A Confirm from another device, arriving after the Cancel: refused, nothing placed.
    await press_in(ex, bea, chat, message_id, "copy.confirm", share_id)
    assert told(ex, bea) == "You cancelled this copy."
    assert orders_of(ex, bea) == []
    # Typing the command is a decision of its own: placed (a sell: she buys coins first).
    await ex.place(bea, "buy", "0.02")
    shown = await ex.command(bea, f"/crypto copy {share_id}")
    assert shown["title"] == "Sell 0.01 BTC at 61,000" and fields(shown)["Status"] == "open"
    ex.check_consistent()


async def test_racing_confirms_place_one_order(ex):
    ann, bea = ex.trader("ann"), ex.trader("bea")
    card = await share(ex, ann, (await ex.place(ann, "buy", "0.01"))["id"])
    share_id = card["buttons"][0]["value"]
    await ex.sim.press(bea, card["id"], "copy.start")
    chat, message_id = confirm_card_of(ex, bea)
    await asyncio.gather(
        *(press_in(ex, bea, chat, message_id, "copy.confirm", share_id) for _ in range(3)),
        ex.sim.command(bea, ex.chat, f"/crypto copy {share_id}"),
        ex.view(bea, "copy.place", {"share_id": share_id}),
    )
    [order] = orders_of(ex, bea)
    assert order["status"] == "closed" and order["filled"] == "0.01"
    assert ex.balance(bea, "BTC") == (ex.balance(ann, "BTC")[0], 0)
    [ticket] = ex.sim.storage("copies").values()
    assert (ticket["status"], ticket["order_id"]) == ("placed", order["id"])
    ex.check_consistent()


async def test_confirm_and_cancel_racing_agree(ex):
    ann, bea = ex.trader("ann"), ex.trader("bea")
    card = await share(ex, ann, (await ex.place(ann, "buy", "0.01"))["id"])
    share_id = card["buttons"][0]["value"]
    await ex.sim.press(bea, card["id"], "copy.start")
    chat, message_id = confirm_card_of(ex, bea)
    await asyncio.gather(
        press_in(ex, bea, chat, message_id, "copy.confirm", share_id),
        press_in(ex, bea, chat, message_id, "copy.cancel", share_id),
    )
    [ticket] = ex.sim.storage("copies").values()
    placed = orders_of(ex, bea)
    assert (ticket["status"] == "placed") == (len(placed) == 1)
    assert ticket["status"] in ("placed", "declined") and len(placed) <= 1


async def test_without_service_messages_the_typed_command_confirms(ex):
    ann = ex.trader("ann")
    bea = ex.sim.user("bea", notifications=False)
    ex.sim.add_member(ex.chat, bea)
    card = await share(ex, ann, (await ex.place(ann, "buy", "0.01"))["id"])
    share_id = card["buttons"][0]["value"]
    await ex.sim.press(bea, card["id"], "copy.start")
    assert told(ex, bea) == (
        "Copy Ann's trade: Buy 0.01 BTC at market. Allow Crypto's messages to confirm copies in"
        f" your chat with it — or confirm now: /crypto copy {share_id}. {PAPER}"
    )
    assert ex.sim.subscription_asks == [bea] and ex.sim.notifications(bea) == []
    assert orders_of(ex, bea) == []
    bea.consent["notifications"] = False  # she says no: not asked again
    await ex.sim.press(bea, card["id"], "copy.start")
    assert "Crypto's messages are off for you — or confirm now" in told(ex, bea)
    assert ex.sim.subscription_asks == [bea]


async def test_a_copy_beyond_the_balance_is_refused_and_may_be_confirmed_later(ex):
    ann, bea = ex.trader("ann"), ex.trader("bea")
    card = await share(ex, ann, (await ex.place(ann, "buy", "0.1"))["id"])
    await ex.place(bea, "buy", "0.1")  # 6 012 USDT: 3 988 left, the copy needs about 6 012
    await ex.sim.press(bea, card["id"], "copy.start")
    _, message_id = confirm_card_of(ex, bea)
    before = {k: v for k, v in ex.snapshot().items() if k != "copies"}
    await ex.sim.press(bea, message_id, "copy.confirm")
    assert told(ex, bea).startswith("That needs ")
    still = ex.sim.card(message_id)
    assert still["text"].startswith("Not placed: That needs ")
    assert [b["action_id"] for b in still["buttons"]] == ["copy.confirm", "copy.cancel"]
    assert {k: v for k, v in ex.snapshot().items() if k != "copies"} == before
    assert [t["status"] for t in ex.sim.storage("copies").values()] == ["offered"]

    await ex.place(bea, "sell", "0.1")
    await ex.sim.press(bea, message_id, "copy.confirm")
    assert fields(ex.sim.card(message_id))["Status"] == "closed"
    ex.check_consistent()


async def test_sharing_again_posts_nothing_new_and_another_chat_gets_its_own_card(ex):
    ann, bea = ex.trader("ann"), ex.trader("bea")
    order = await ex.place(ann, "buy", "0.01")
    first = await share(ex, ann, order["id"])
    before = ex.snapshot()
    assert await ex.command(ann, f"/crypto share {order['id']}") == (
        "You shared this trade here already."
    )
    assert ex.snapshot() == before and len(trade_cards(ex)) == 1
    other = ex.sim.conversation([ann, bea], title="Friends")
    second = await share(ex, ann, order["id"], other)
    assert second["buttons"][0]["value"] != first["buttons"][0]["value"]
    await ex.sim.press(bea, second["id"], "copy.start")
    assert "Confirm it in your chat with Crypto" in told(ex, bea)


async def test_the_owner_cannot_copy_their_own_trade(ex):
    ann = ex.trader("ann")
    card = await share(ex, ann, (await ex.place(ann, "buy", "0.01"))["id"])
    before = ex.snapshot()
    await ex.sim.press(ann, card["id"], "copy.start")
    assert told(ex, ann) == "That is your own trade."
    assert "That is your own trade." in await ex.command(
        ann, f"/crypto copy {card['buttons'][0]['value']}"
    )
    assert ex.snapshot() == before and ex.sim.notifications(ann) == []


async def test_bad_share_and_copy_input_writes_nothing(ex):
    ann, bea = ex.trader("ann"), ex.trader("bea")
    await ex.place(ann, "buy", "0.02")
    mine = await ex.place(ann, "sell", "0.01", price="65000")
    cancelled = await ex.place(ann, "sell", "0.01", price="66000")
    await ex.command(ann, f"/crypto cancel {cancelled['id']}")
    unfilled_ioc = await ex.place(ann, "buy", "0.01", price="50000", tif="IOC", type="limit")
    assert unfilled_ioc["status"] == "expired"
    before = ex.snapshot()
    cases = [
        (ann, "/crypto share", "Usage: /crypto share <order id>"),
        (ann, "/crypto share a b", "Usage: /crypto share <order id>"),
        (ann, "/crypto share o-nothex", "You have no order 'o-nothex'."),
        (ann, "/crypto share o-0123456789abcdef0123", "You have no order"),
        (bea, f"/crypto share {mine['id']}", "You have no order"),  # Ann's, not Bea's
        (ann, f"/crypto share {cancelled['id']}", "never traded: nothing to share"),
        (ann, f"/crypto share {unfilled_ioc['id']}", "never traded: nothing to share"),
        (bea, "/crypto copy", "Usage: /crypto copy <share id>"),
        (bea, "/crypto copy sh-nothing", "No such shared trade"),
        (bea, "/crypto copy sh-0123456789abcdef", "No such shared trade"),
    ]
    for user, text, said in cases:
        assert said in await ex.command(user, text), text
    assert ex.snapshot() == before and trade_cards(ex) == []
    service = ex.sim.conversation([ann], type="service")
    await ex.sim.command(ann, service, f"/crypto share {mine['id']}")
    assert told(ex, ann) == "Share a trade in a group or a chat with someone."
    assert ex.snapshot() == before
    # A Copy press carrying a made-up value (a client playing): refused, nothing written.
    card = await share(ex, ann, mine["id"])
    before = ex.snapshot()
    await ex.sim.press(bea, card["id"], "copy.start", value="sh-ffffffffffffffff")
    assert told(ex, bea).startswith("No such shared trade")
    assert ex.snapshot() == before and ex.sim.notifications(bea) == []


async def test_the_copy_views(ex):
    ann, bea = ex.trader("ann"), ex.trader("bea")
    card = await share(ex, ann, (await ex.place(ann, "buy", "0.01", price="59500"))["id"])
    share_id = card["buttons"][0]["value"]
    preview = await ex.view(bea, "copy.preview", {"share_id": share_id})
    assert preview["paper"] == PAPER and preview["copied"] is None
    assert (
        preview["share"] | {"side": "buy", "amount": "0.01", "price": "59500"} == (preview["share"])
    )
    placed = await ex.view(bea, "copy.place", {"share_id": share_id})
    assert placed["order"]["status"] == "open" and placed["order"]["clientOrderId"] == (
        f"copy-{share_id}"
    )
    again = await ex.view(bea, "copy.preview", {"share_id": share_id})
    assert again["copied"]["id"] == placed["order"]["id"]
    for params in ({}, {"share_id": 42}, {"share_id": "sh-0000000000000000"}):
        with pytest.raises(ViewError) as raised:
            await ex.view(bea, "copy.place", params)
        assert raised.value.code == "not_found"
    with pytest.raises(ViewError) as raised:
        await ex.view(ann, "copy.place", {"share_id": share_id})
    assert raised.value.code == "own_trade"
    with pytest.raises(HostRefused):
        await ex.sim.press(bea, card["id"], "copy.confirm")  # not a button of the trade card
