"""Group buys (拼团) in the SDK simulator: start, join, fill (every hold captured, one order per
member, stock taken), fail at the deadline (every hold voided, stock back), the last join racing
the deadline in both orders and concurrently (each hold settled exactly once, the merchant
ledger exact), and the refusals — each answered privately with nothing written."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from sdk.simulator import HostRefused
from tests.miniapps.shop.groupbuy_fixtures import (
    add_product,
    change_product,
    conversation_of_type,
    last_text,
    new_sim,
    open_store,
    product_card,
    snapshot,
    stock_left,
)

TEAM_PRICE, PRICE = 900, 1200


@pytest.fixture
def sim():
    return new_sim()


@pytest.fixture
def mira(sim):
    return sim.user("mira")


@pytest.fixture
def people(sim):
    return [sim.user(name) for name in ("ann", "ben", "cat", "dan")]


@pytest.fixture
def group(sim, mira, people):
    return sim.conversation(members=[mira, *people], title="Tea lovers")


@pytest.fixture
async def mug(sim, mira):
    await open_store(sim, mira)
    return await add_product(sim, mira, "p-mug", "Blue Mug", price=PRICE, team_price=TEAM_PRICE)


async def start(sim, user, chat, product_id="p-mug", title="Blue Mug") -> tuple[str, str]:
    """``user`` presses Start group buy on the product's card: (group-buy card id, gb id)."""
    card_id = await product_card(sim, user, chat, title, product_id)
    await sim.press(user, card_id, "groupbuy.start")
    message = sim.messages(chat)[-1]
    [join] = [b for b in message["card"]["buttons"] if b["action_id"] == "groupbuy.join"]
    return message["id"], join["value"]


async def join(sim, user, card_id) -> str:
    """``user`` presses Join: the id of the hold they are asked to authorize."""
    await sim.press(user, card_id, "groupbuy.join")
    [payment] = [
        p for p in sim.payments.values() if p["user_id"] == user.id and p["status"] == "requested"
    ]
    assert payment["capture"] is False and payment["amount"] == TEAM_PRICE
    return payment["id"]


def field(card: dict, label: str) -> str:
    return next(f["value"] for f in card["fields"] if f["label"] == label)


def settlements(sim) -> Counter:
    """How many times each hold was settled (captured or voided), by payment id."""
    return Counter(
        e["payload"]["payment_id"]
        for e in sim.payment_events
        if e["name"] in ("payment.captured", "payment.voided")
    )


def groupbuy_orders(sim) -> list[dict]:
    return [o for o in sim.storage("orders").values() if o["source"] == "groupbuy"]


async def test_start_posts_the_card_and_reserves_a_team_of_stock(sim, mira, people, group, mug):
    ann = people[0]
    card_id, gb_id = await start(sim, ann, group)
    card = sim.card(card_id)
    assert card["title"] == "Group buy · Blue Mug"
    assert field(card, "Team price") == "$9.00 each (normally $12.00)"
    assert field(card, "Team") == "0 / 3 joined"
    assert field(card, "Deadline") == "ends in 23 h"
    assert [b["action_id"] for b in card["buttons"]] == ["groupbuy.join"]
    assert stock_left(sim, "p-mug") == 7  # 10 - a team of 3
    [timer] = sim.pending_timers()
    assert (timer["name"], timer["key"]) == ("groupbuy.deadline", gb_id)
    assert sim.storage("groupbuys")[gb_id]["state"] == "open"


async def test_a_full_team_is_captured_and_each_member_gets_an_order(sim, people, group, mug):
    ann, ben, cat, _ = people
    card_id, gb_id = await start(sim, ann, group)
    holds = {}
    for user in (ann, ben, cat):
        holds[user.name] = await join(sim, user, card_id)
    assert field(sim.card(card_id), "Team") == "0 / 3 joined"
    assert "Confirming: Ann, Ben, Cat" in sim.card(card_id)["text"]
    await sim.confirm_payment(ann, holds["ann"])
    card = sim.card(card_id)
    assert field(card, "Team") == "1 / 3 joined" and "Joined: ✓ Ann" in card["text"]
    await sim.confirm_payment(ben, holds["ben"])
    await sim.confirm_payment(cat, holds["cat"])

    payments = sim.payments
    assert {payments[h]["status"] for h in holds.values()} == {"paid"}
    assert {payments[h]["captured"] for h in holds.values()} == {TEAM_PRICE}
    orders = groupbuy_orders(sim)
    assert sorted(o["buyer"] for o in orders) == sorted(u.id for u in (ann, ben, cat))
    assert {(o["total"], o["state"], o["payment_id"] in holds.values()) for o in orders} == {
        (TEAM_PRICE, "paid", True)
    }
    assert stock_left(sim, "p-mug") == 7  # the team's units are sold
    card = sim.card(card_id)
    assert field(card, "Status") == "Team complete ✓" and card.get("buttons", []) == []
    assert "Team complete ✓" in card["text"]
    assert sim.merchant_balance("USD") == 3 * TEAM_PRICE

    # The captures' events, the settle timer and the old deadline change nothing more.
    await sim.deliver_payment_events()
    await sim.advance(hours=25)
    assert len(groupbuy_orders(sim)) == 3
    assert set(settlements(sim).values()) == {1} and len(settlements(sim)) == 3
    assert sim.merchant_balance("USD") == 3 * TEAM_PRICE and stock_left(sim, "p-mug") == 7
    assert sim.storage("groupbuys")[gb_id]["state"] == "filled"


async def test_without_a_full_team_every_hold_is_released_and_the_stock_comes_back(
    sim, people, group, mug
):
    ann, ben, cat, _ = people
    for user in (ann, ben):
        sim.set_balance(user, "USD", 5000)
    card_id, gb_id = await start(sim, ann, group)
    for user in (ann, ben):
        await sim.confirm_payment(user, await join(sim, user, card_id))
    pending = await join(sim, cat, card_id)  # never confirmed
    assert sim.balance(ann, "USD") == 5000 - TEAM_PRICE

    await sim.advance(hours=24)

    card = sim.card(card_id)
    assert card["text"].startswith("Not enough people — everyone's hold was released.")
    assert card.get("buttons", []) == []
    statuses = {p["user"]: p["status"] for p in sim.payments.values()}
    assert statuses == {"ann": "voided", "ben": "voided", "cat": "requested"}
    assert sim.balance(ann, "USD") == 5000 and sim.balance(ben, "USD") == 5000
    assert stock_left(sim, "p-mug") == 10
    assert sim.merchant_balance("USD") == 0 and groupbuy_orders(sim) == []
    assert sim.storage("groupbuys")[gb_id]["state"] == "failed"

    # Cat confirms late: her hold is voided at once, and she is told.
    await sim.confirm_payment(cat, pending)
    assert sim.payments[pending]["status"] == "voided"
    assert "ended before your hold came through" in last_text(sim, cat)
    await sim.deliver_payment_events()
    assert set(settlements(sim).values()) == {1} and len(settlements(sim)) == 3
    assert stock_left(sim, "p-mug") == 10 and sim.merchant_balance("USD") == 0


async def team_of_three_waiting_for_cat(sim, people, group):
    """Ann and Ben are in; Cat's hold is asked — the last one the team needs."""
    ann, ben, cat, _ = people
    card_id, gb_id = await start(sim, ann, group)
    for user in (ann, ben):
        await sim.confirm_payment(user, await join(sim, user, card_id))
    last = await join(sim, cat, card_id)
    # The deadline is what is left of 24 h: Cat's hold comes at that very moment.
    await sim.advance(hours=23, minutes=59, seconds=59)
    assert sim.storage("groupbuys")[gb_id]["state"] == "open"
    return card_id, gb_id, last


def assert_settled_once(sim, gb_id: str, outcome: str) -> None:
    holds = [p for p in sim.payments.values() if p["order_ref"].startswith(gb_id)]
    assert len(holds) == 3
    counts = settlements(sim)
    assert [counts[p["id"]] for p in holds] == [1, 1, 1]  # each hold settled exactly once
    gb = sim.storage("groupbuys")[gb_id]
    if outcome == "filled":
        assert gb["state"] == "filled"
        assert {p["status"] for p in holds} == {"paid"}
        assert sim.merchant_balance("USD") == 3 * TEAM_PRICE
        assert len(groupbuy_orders(sim)) == 3 and stock_left(sim, "p-mug") == 7
    else:
        assert gb["state"] == "failed"
        assert {p["status"] for p in holds} == {"voided"}
        assert sim.merchant_balance("USD") == 0
        assert groupbuy_orders(sim) == [] and stock_left(sim, "p-mug") == 10


async def test_last_join_authorized_then_the_deadline_fires(sim, people, group, mug):
    card_id, gb_id, last = await team_of_three_waiting_for_cat(sim, people, group)
    await sim.confirm_payment(people[2], last)
    await sim.advance(seconds=1)  # the deadline: the team is full already, nothing to do
    await sim.deliver_payment_events()
    assert_settled_once(sim, gb_id, "filled")
    assert field(sim.card(card_id), "Status") == "Team complete ✓"


async def test_the_deadline_fires_then_the_last_join_is_authorized(sim, people, group, mug):
    card_id, gb_id, last = await team_of_three_waiting_for_cat(sim, people, group)
    await sim.advance(seconds=1)
    await sim.confirm_payment(people[2], last)
    await sim.deliver_payment_events()
    assert_settled_once(sim, gb_id, "failed")
    assert "Not enough people" in sim.card(card_id)["text"]


async def later(awaitable, yields: int):
    """``awaitable`` after ``yields`` turns of the event loop: shifts where two racing
    invocations interleave (each capability call is a round trip that yields)."""
    for _ in range(yields):
        await asyncio.sleep(0)
    return await awaitable


async def test_the_last_join_and_the_deadline_at_the_same_moment(sim, people, group, mug):
    _card_id, gb_id, last = await team_of_three_waiting_for_cat(sim, people, group)
    await asyncio.gather(sim.confirm_payment(people[2], last), sim.advance(seconds=1))
    await sim.advance(seconds=2)  # a settle timer, if the team filled
    await sim.deliver_payment_events()
    outcome = sim.storage("groupbuys")[gb_id]["state"]
    assert outcome in ("filled", "failed")
    assert_settled_once(sim, gb_id, outcome)


async def test_the_race_goes_either_way_and_each_way_settles_once():
    """The last hold and the deadline, concurrently, at every interleaving from "the hold
    first" to "the deadline first": both outcomes happen, some through a conflicting write,
    and each is exact."""
    outcomes, conflicts = set(), 0
    for yields in range(0, 16, 2):
        sim = new_sim()
        people = [sim.user(name) for name in ("ann", "ben", "cat", "dan")]
        seller = sim.user("mira")
        group = sim.conversation(members=[seller, *people])
        await open_store(sim, seller)
        await add_product(sim, seller, "p-mug", "Blue Mug", price=PRICE, team_price=TEAM_PRICE)
        _, gb_id, last = await team_of_three_waiting_for_cat(sim, people, group)
        await asyncio.gather(
            later(sim.confirm_payment(people[2], last), yields), sim.advance(seconds=1)
        )
        await sim.advance(seconds=2)
        await sim.deliver_payment_events()
        outcome = sim.storage("groupbuys")[gb_id]["state"]
        assert_settled_once(sim, gb_id, outcome)
        outcomes.add(outcome)
        conflicts += sum(c.get("error") == "conflict" for c in sim.calls)
    assert outcomes == {"filled", "failed"}
    assert conflicts > 0


async def test_joining_twice_asks_once(sim, people, group, mug):
    ann = people[0]
    card_id, _gb_id = await start(sim, ann, group)
    hold = await join(sim, ann, card_id)
    await sim.press(ann, card_id, "groupbuy.join")
    assert last_text(sim, ann).startswith("You already joined. Confirm the hold of $9.00")
    assert list(sim.payments) == [hold]  # the same hold, shown again
    await sim.confirm_payment(ann, hold)
    before = snapshot(sim, group)
    await sim.press(ann, card_id, "groupbuy.join")
    assert last_text(sim, ann) == "You already joined this team ✓"
    assert snapshot(sim, group) == before
    assert field(sim.card(card_id), "Team") == "1 / 3 joined"


async def test_a_hold_after_the_team_filled_is_voided_at_once(sim, people, group, mug):
    ann, ben, cat, dan = people
    for user in people:
        sim.set_balance(user, "USD", 5000)
    card_id, _gb_id = await start(sim, ann, group)
    holds = {user.name: await join(sim, user, card_id) for user in people}  # 4 for 3 seats
    for user in (ann, ben, cat):
        await sim.confirm_payment(user, holds[user.name])
    await sim.confirm_payment(dan, holds["dan"])
    assert sim.payments[holds["dan"]]["status"] == "voided"
    assert "team was full" in last_text(sim, dan)
    assert sim.balance(dan, "USD") == 5000
    assert sorted(o["buyer"] for o in groupbuy_orders(sim)) == sorted(u.id for u in (ann, ben, cat))
    assert sim.merchant_balance("USD") == 3 * TEAM_PRICE


async def other_groupbuy(sim, mira, people, group) -> tuple[str, str]:
    await add_product(sim, mira, "p-pot", "Green Teapot", price=3000, team_price=2000)
    return await start(sim, people[3], group, "p-pot", "Green Teapot")


async def test_joining_a_full_group_buy_is_refused(sim, mira, people, group, mug):
    ann, ben, cat, dan = people
    card_id, gb_id = await start(sim, ann, group)
    for user in (ann, ben, cat):
        await sim.confirm_payment(user, await join(sim, user, card_id))
    with pytest.raises(HostRefused):  # the full team's card has no Join button any more
        await sim.press(dan, card_id, "groupbuy.join")
    # A client sending the full group buy's id from another card: refused, nothing written.
    other_card, _ = await other_groupbuy(sim, mira, people, group)
    before = snapshot(sim, group)
    await sim.press(dan, other_card, "groupbuy.join", value=gb_id)
    assert last_text(sim, dan) == "The team is already full."
    assert snapshot(sim, group) == before


async def test_joining_an_expired_group_buy_is_refused(sim, mira, people, group, mug):
    ann, dan = people[0], people[3]
    _card_id, gb_id = await start(sim, ann, group)
    await sim.advance(hours=12)
    other_card, _ = await other_groupbuy(sim, mira, people, group)
    await sim.advance(hours=12)  # the mug's deadline; the teapot's is 12 h away
    assert sim.storage("groupbuys")[gb_id]["state"] == "failed"
    before = snapshot(sim, group)
    await sim.press(dan, other_card, "groupbuy.join", value=gb_id)
    assert last_text(sim, dan) == "This group buy has ended."
    assert snapshot(sim, group) == before


async def test_a_join_pressed_as_the_deadline_fires_gets_no_seat(sim, people, group, mug):
    ann, dan = people[0], people[3]
    card_id, gb_id = await start(sim, ann, group)
    await sim.advance(hours=23, minutes=59, seconds=59)
    await asyncio.gather(sim.advance(seconds=1), sim.press(dan, card_id, "groupbuy.join"))
    assert sim.storage("groupbuys")[gb_id]["state"] == "failed"
    asked = [p for p in sim.payments.values() if p["user_id"] == dan.id]
    if asked:  # the join came first: its hold, if authorized, is voided at once
        await sim.confirm_payment(dan, asked[0]["id"])
        assert sim.payments[asked[0]["id"]]["status"] == "voided"
    else:
        assert last_text(sim, dan) == "This group buy has ended."
    assert sim.merchant_balance("USD") == 0 and stock_left(sim, "p-mug") == 10


async def test_group_buys_happen_in_groups(sim, mira, people, mug, monkeypatch):
    ann = people[0]
    for kind in ("direct", "service"):
        chat = conversation_of_type(sim, [ann, mira], kind, monkeypatch)
        card_id = await product_card(sim, ann, chat, "Blue Mug", "p-mug")
        before = snapshot(sim, chat)
        await sim.press(ann, card_id, "groupbuy.start")
        assert last_text(sim, ann) == "Group buys happen in groups: open this in a group chat."
        assert snapshot(sim, chat) == before
    group = conversation_of_type(sim, [ann, mira], "group", monkeypatch)
    await start(sim, ann, group)
    assert stock_left(sim, "p-mug") == 7


async def test_a_product_without_a_team_price_cannot_start_one(sim, mira, people, group, mug):
    ann = people[0]
    card_id = await product_card(sim, ann, group, "Blue Mug", "p-mug")
    await change_product(sim, "p-mug", team_price=None, team_size=None)  # after the card
    before = snapshot(sim, group)
    await sim.press(ann, card_id, "groupbuy.start")
    assert (
        last_text(sim, ann) == "This product has no team price: it cannot be bought in a group buy."
    )
    assert snapshot(sim, group) == before


@pytest.mark.parametrize(
    ("value", "answer"),
    [
        ("p-nothing", "That product is not for sale (any more)."),
        ("not a product", "That product does not exist."),
        ("p-mug:v9", "That product does not exist."),
    ],
)
async def test_start_with_a_bad_value_is_refused(sim, people, group, mug, value, answer):
    ann = people[0]
    card_id = await product_card(sim, ann, group, "Blue Mug", "p-mug")
    before = snapshot(sim, group)
    await sim.press(ann, card_id, "groupbuy.start", value=value)
    assert last_text(sim, ann) == answer
    assert snapshot(sim, group) == before


async def test_not_enough_stock_for_a_team_is_sold_out(sim, mira, people, group):
    await open_store(sim, mira)
    await add_product(sim, mira, "p-mug", "Blue Mug", stock=2)
    ann = people[0]
    card_id = await product_card(sim, ann, group, "Blue Mug", "p-mug")
    before = snapshot(sim, group)
    await sim.press(ann, card_id, "groupbuy.start")
    assert last_text(sim, ann) == "Sold out: fewer than 3 left for a team."
    assert snapshot(sim, group) == before


async def test_one_open_group_buy_per_product_and_chat(sim, people, group, mug):
    ann, ben = people[0], people[1]
    card_id = await product_card(sim, ann, group, "Blue Mug", "p-mug")
    await sim.press(ann, card_id, "groupbuy.start")
    before = snapshot(sim, group)
    await sim.press(ben, card_id, "groupbuy.start")
    assert last_text(sim, ben) == "A group buy of this product is open in this chat: join it."
    assert snapshot(sim, group) == before
    await sim.advance(hours=24)  # that one ends: a new one may start
    await sim.press(ben, card_id, "groupbuy.start")
    assert len([k for k in sim.storage("groupbuys")]) == 2 and stock_left(sim, "p-mug") == 7


async def test_join_with_a_bad_value_is_refused(sim, people, group, mug):
    ann = people[0]
    card_id, _ = await start(sim, ann, group)
    before = snapshot(sim, group)
    for value in ("gb-000000000000", "nonsense", ""):
        await sim.press(ann, card_id, "groupbuy.join", value=value)
        assert last_text(sim, ann) == "No such group buy in this chat."
    assert snapshot(sim, group) == before


async def test_a_group_buy_of_another_chat_cannot_be_joined_from_here(sim, mira, people, mug):
    ann, ben = people[0], people[1]
    group_one = sim.conversation(members=[ann, mira])
    group_two = sim.conversation(members=[ben, mira])
    _, gb_id = await start(sim, ann, group_one)
    await add_product(sim, mira, "p-pot", "Green Teapot", price=3000, team_price=2000)
    other_card, _ = await start(sim, ben, group_two, "p-pot", "Green Teapot")
    await sim.press(ben, other_card, "groupbuy.join", value=gb_id)
    assert last_text(sim, ben) == "No such group buy in this chat."


async def test_a_declined_hold_frees_the_member_to_join_again(sim, people, group, mug):
    ann = people[0]
    card_id, gb_id = await start(sim, ann, group)
    first = await join(sim, ann, card_id)
    await sim.cancel_payment(ann, first)
    assert sim.storage("groupbuys")[gb_id]["members"][ann.id]["state"] == "cancelled"
    assert "Confirming" not in sim.card(card_id)["text"]
    second = await join(sim, ann, card_id)
    assert sim.payments[second]["order_ref"] == f"{gb_id}.2"
    await sim.confirm_payment(ann, second)
    assert field(sim.card(card_id), "Team") == "1 / 3 joined"


async def test_a_big_team_is_settled_in_batches(sim, mira, people, group):
    await open_store(sim, mira)
    await add_product(sim, mira, "p-tea", "Jasmine Tea", team_size=12, stock=12)
    members = [sim.user(f"member{i}") for i in range(12)]
    for user in members:
        sim.add_member(group, user)
    card_id, gb_id = await start(sim, members[0], group, "p-tea", "Jasmine Tea")
    for user in members:
        await sim.confirm_payment(user, await join(sim, user, card_id))
    assert len(groupbuy_orders(sim)) == 10  # the first batch, at once
    await sim.advance(seconds=1)  # the settle timer does the rest
    assert len(groupbuy_orders(sim)) == 12
    assert sim.merchant_balance("USD") == 12 * TEAM_PRICE and stock_left(sim, "p-tea") == 0
    assert {m["state"] for m in sim.storage("groupbuys")[gb_id]["members"].values()} == {"paid"}


async def test_many_members_at_once_fill_exactly_one_team(sim, mira, group):
    await open_store(sim, mira)
    await add_product(sim, mira, "p-tea", "Jasmine Tea", team_size=5, stock=20)
    members = [sim.user(f"member{i}") for i in range(9)]
    for user in members:
        sim.add_member(group, user)
    card_id, gb_id = await start(sim, members[0], group, "p-tea", "Jasmine Tea")
    await asyncio.gather(*(sim.press(user, card_id, "groupbuy.join") for user in members))
    holds = [p for p in sim.payments.values() if p["order_ref"].startswith(gb_id)]
    assert len(holds) == 9 and len({p["order_ref"] for p in holds}) == 9
    await asyncio.gather(
        *(
            sim.confirm_payment(next(u for u in members if u.id == p["user_id"]), p["id"])
            for p in holds
        )
    )
    await sim.advance(seconds=2)
    await sim.deliver_payment_events()
    statuses = Counter(p["status"] for p in sim.payments.values())
    assert statuses == {"paid": 5, "voided": 4}
    assert set(settlements(sim).values()) == {1} and len(settlements(sim)) == 9
    assert len(groupbuy_orders(sim)) == 5 and sim.merchant_balance("USD") == 5 * TEAM_PRICE
    assert stock_left(sim, "p-tea") == 15


async def test_a_hold_that_runs_out_while_open_frees_its_seat(sim, people, group, mug):
    ann, ben = people[0], people[1]
    card_id, gb_id = await start(sim, ann, group)
    hold = await join(sim, ann, card_id)
    await sim.confirm_payment(ann, hold)
    await sim.confirm_payment(ben, await join(sim, ben, card_id))
    await sim.expire_hold(hold)  # the host's hold expiry (7 days there; any time here)
    assert field(sim.card(card_id), "Team") == "1 / 3 joined"
    assert "Ann" not in sim.card(card_id)["text"]
    again = await join(sim, ann, card_id)
    await sim.confirm_payment(ann, again)
    assert field(sim.card(card_id), "Team") == "2 / 3 joined"
    assert sim.storage("groupbuys")[gb_id]["state"] == "open"


async def test_a_hold_gone_before_its_capture_gives_its_unit_back(sim, mira, group):
    await open_store(sim, mira)
    await add_product(sim, mira, "p-tea", "Jasmine Tea", team_size=12, stock=12)
    members = [sim.user(f"member{i}") for i in range(12)]
    for user in members:
        sim.add_member(group, user)
    card_id, gb_id = await start(sim, members[0], group, "p-tea", "Jasmine Tea")
    holds = [await join(sim, user, card_id) for user in members]
    for user, hold in zip(members, holds, strict=True):
        await sim.confirm_payment(user, hold)
    # The first batch of 10 is captured; the 12th hold runs out before the settle timer.
    await sim.expire_hold(holds[11])
    await sim.advance(seconds=1)
    states = Counter(m["state"] for m in sim.storage("groupbuys")[gb_id]["members"].values())
    assert states == {"paid": 11, "lost": 1}
    assert len(groupbuy_orders(sim)) == 11 and stock_left(sim, "p-tea") == 1
    assert sim.merchant_balance("USD") == 11 * TEAM_PRICE
    await sim.advance(seconds=5)
    assert stock_left(sim, "p-tea") == 1  # given back once
