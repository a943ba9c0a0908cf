"""Expenses in the simulator (miniapps/travel/expenses.py): adding (every split mode, the
rounding rule through the app, idempotent retries, ten people at once), the list, deleting,
bookings as expenses, balances in each reader's currency, settling up through wallet transfer
requests (paid once however often the event comes, declined, expired, forged), and every class
of bad input answered with nothing written.

The trips are written directly (``open_trip``: a trip document, the group's pointer and its card
as ``trips.py`` would leave them), so these tests depend on no other helper's commands."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from tests.miniapps.travel.travel_fixtures import (
    T0,
    Group,
    app_module,
    lisbon_trip,
    open_group,
    store_trip,
)

pytestmark = pytest.mark.asyncio

NAMES = ("ana", "ben", "cleo")


async def open_trip(
    monkeypatch, names=NAMES, *, currency="EUR", outsiders=("zoe",), config=None, **user_options
) -> tuple[Group, dict]:
    """A group with ``names`` on a trip to Lisbon (and ``outsiders``: in the chat, not on the
    trip), its trip card posted."""
    group = open_group(monkeypatch)
    for name, value in (config or {}).items():
        group.sim.set_config(name, value)
    for name in (*names, *outsiders):
        group.person(name, **user_options.get(name, {}))
    first = group.people[names[0]]
    travellers = [group.people[n] for n in names]
    trip_id = "tr" + secrets.token_hex(5)
    trip = lisbon_trip(trip_id, group.chat.id, first, travellers, T0, currency=currency)
    await store_trip(group, first, trip, card=True)
    return group, trip


def stored_expenses(group: Group) -> list[dict]:
    found = [e for e in group.sim.storage("expenses").values() if not e.get("deleted_at")]
    return sorted(found, key=lambda e: (e["created_at"], e["id"]))


def texts(group: Group) -> list[str]:
    return [m["text"] for m in group.sim.messages(group.chat) if m["type"] == "text"]


def card_text(card: dict) -> str:
    fields = "\n".join(f"{f['label']}: {f['value']}" for f in card.get("fields", []))
    return f"{card.get('text', '')}\n{fields}"


async def refused_command(group: Group, user, text: str) -> str:
    """The command's ephemeral error, checking it wrote nothing and posted nothing."""
    before, posted = group.snapshot(), len(group.sim.messages(group.chat))
    await group.command(user, text)
    assert group.snapshot() == before, text
    assert len(group.sim.messages(group.chat)) == posted
    return group.said(user)


async def refused_view(group: Group, user, name: str, params: dict) -> str:
    before = group.snapshot()
    error = await group.refused(user, name, params)
    assert group.snapshot() == before, params
    return error.code


# --- adding -------------------------------------------------------------------------------------


async def test_add_an_equal_split_posts_one_text_and_counts_it_on_the_card(monkeypatch) -> None:
    group, trip = await open_trip(monkeypatch)
    ana = group.people["ana"]
    await group.command(ana, '/trip expense add 42.50 EUR "Dinner at Ramiro"')
    [expense] = stored_expenses(group)
    assert expense["id"] == "e1"
    assert expense["paid"] == {ana.id: 4250}
    assert sorted(expense["parts"].values()) == [1416, 1417, 1417]
    assert set(expense["parts"]) == set(trip["travellers"])
    assert expense["kind"] == "expense" and expense["mode"] == "equal"
    assert texts(group)[-1] == "Ana paid €42.50 for Dinner at Ramiro, split 3 ways"
    assert group.trip()["spent"] == {"EUR": 4250}
    card = group.sim.card(trip["card"]["message_id"])
    assert "€42.50" in card_text(card)


async def test_ten_cents_over_three_never_creates_or_loses_a_cent(monkeypatch) -> None:
    group, trip = await open_trip(monkeypatch)
    ana = group.people["ana"]
    await group.command(ana, '/trip expense add 10.00 "Coffee"')
    [expense] = stored_expenses(group)
    smallest = min(trip["travellers"])
    assert expense["parts"][smallest] == 334
    assert sorted(expense["parts"].values()) == [333, 333, 334]
    answer = await group.view(ana, "expenses.get")
    assert sum(answer["balances"]["EUR"].values()) == 0
    assert answer["balances"]["EUR"][ana.id] == 1000 - expense["parts"][ana.id]


async def test_paid_by_exact_among_and_shares(monkeypatch) -> None:
    group, _ = await open_trip(monkeypatch)
    ana, ben, cleo = (group.people[n] for n in NAMES)
    await group.command(
        ana, '/trip expense add 42.50 "Taxi" paid by ben split exact Ana=20,Be=22.50'
    )
    await group.command(ana, '/trip expense add 30 "Museum" split shares Ana=2,Cleo=1')
    await group.command(cleo, '/trip expense add 9 "Ice cream" paid by me among Ana, Ben')
    await group.command(ben, '/trip expense add 6 "Water" paid by Ana=1.5,Cleo=4.50 among ana ben')
    taxi, museum, ice, water = stored_expenses(group)
    assert taxi["paid"] == {ben.id: 4250} and taxi["parts"] == {ana.id: 2000, ben.id: 2250}
    assert museum["paid"] == {ana.id: 3000} and museum["parts"] == {ana.id: 2000, cleo.id: 1000}
    assert museum["shares"] == {ana.id: 2, cleo.id: 1}
    assert ice["paid"] == {cleo.id: 900} and ice["parts"] == {ana.id: 450, ben.id: 450}
    assert water["paid"] == {ana.id: 150, cleo.id: 450}
    assert texts(group)[-4:] == [
        "Ben paid €42.50 for Taxi, split 2 ways",
        "Ana paid €30.00 for Museum, split 2 ways",
        "Cleo paid €9.00 for Ice cream, split 2 ways",
        "Ana and Cleo paid €6.00 for Water, split 2 ways",
    ]
    assert group.trip()["spent"] == {"EUR": 4250 + 3000 + 900 + 600}


async def test_the_currency_defaults_to_the_trips_and_follows_its_exponent(monkeypatch) -> None:
    group, _ = await open_trip(monkeypatch, currency="JPY")
    ana = group.people["ana"]
    await group.command(ana, '/trip expense add 3000 "Sushi"')
    await group.command(ana, '/trip expense add 12.30 eur "Bus"')
    sushi, bus = stored_expenses(group)
    assert (sushi["amount"], sushi["currency"]) == (3000, "JPY")
    assert (bus["amount"], bus["currency"]) == (1230, "EUR")
    assert group.trip()["spent"] == {"JPY": 3000, "EUR": 1230}
    said = await refused_command(group, ana, '/trip expense add 12.5 "Tea"')
    assert "finer than JPY" in said


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('/trip expense add 0 "Nothing"', "above zero"),
        ('/trip expense add -5 "Refund"', "above zero"),
        ('/trip expense add 42.505 EUR "Dinner"', "finer than EUR"),
        ('/trip expense add lots "Dinner"', "not an amount"),
        ('/trip expense add 10 XYZ "Dinner"', "not a currency"),
        ('/trip expense add 10 "Dinner" split exact Ana=5,Ben=4', "add up to 9.00, not 10.00"),
        ('/trip expense add 10 "Dinner" split shares Ana=2,Ben=0', "shares"),
        ('/trip expense add 10 "Dinner" split shares Ana=x', "not a whole number"),
        ('/trip expense add 10 "Dinner" split thirds', "Split equal, exact or shares"),
        ('/trip expense add 10 "Dinner" paid by Max', 'No traveller called "Max"'),
        ('/trip expense add 10 "Dinner" among Ana,Zoe', 'No traveller called "Zoe"'),
        ('/trip expense add 10 "Dinner" paid by Ana=4,Ben=5', "adds up to 9.00, not 10.00"),
        ('/trip expense add 10 "Dinner" split exact Ana=5,Ana=5', "named twice"),
        ("/trip expense add 10", "title"),
        ("/trip expense add", "Usage"),
    ],
)
async def test_bad_input_is_refused_with_nothing_written(monkeypatch, text, expected) -> None:
    group, _ = await open_trip(monkeypatch)
    said = await refused_command(group, group.people["ana"], text)
    assert expected in said


async def test_an_ambiguous_name_and_an_outsider_are_refused(monkeypatch) -> None:
    group, _ = await open_trip(monkeypatch, ("ana", "anabel", "ben"))
    ana, zoe = group.people["ana"], group.people["zoe"]
    said = await refused_command(group, ana, '/trip expense add 10 "Taxi" paid by An')
    assert "could be Ana and Anabel" in said
    # "ana" is exactly Ana, not ambiguous with Anabel.
    await group.command(ana, '/trip expense add 10 "Taxi" paid by ana among anab,ben')
    assert stored_expenses(group)[0]["paid"] == {ana.id: 1000}
    said = await refused_command(group, zoe, '/trip expense add 10 "Taxi"')
    assert "Only the trip's travellers" in said


async def test_the_view_refuses_each_class_of_bad_input(monkeypatch) -> None:
    group, trip = await open_trip(monkeypatch)
    ana, ben, zoe = group.people["ana"], group.people["ben"], group.people["zoe"]
    good = {"title": "Dinner", "amount": "30.00", "currency": "EUR", "mode": "equal"}
    cases = [
        ({"among": [ana.id, zoe.id]}, "not_a_traveller"),
        ({"payer": zoe.id}, "not_a_traveller"),
        ({"mode": "exact", "exact": {ana.id: "10", ben.id: "10"}}, "exact_mismatch"),
        ({"mode": "exact", "exact": {ana.id: "30", zoe.id: "0"}}, "not_a_traveller"),
        ({"mode": "shares", "shares": {ana.id: 1, ben.id: 0}}, "invalid_shares"),
        ({"mode": "shares"}, "invalid_shares"),
        ({"mode": "thirds"}, "unknown_mode"),
        ({"currency": "XYZ"}, "unknown_currency"),
        ({"amount": "0"}, "invalid_amount"),
        ({"amount": "-3"}, "invalid_amount"),
        ({"amount": "30.001"}, "invalid_amount"),
        ({"amount": 30.5}, "invalid_amount"),
        ({"amount": 0, "minor": True}, "invalid_amount"),
        ({"title": "  "}, "invalid_title"),
        ({"request_id": "bad id!"}, "invalid_request_id"),
    ]
    for change, code in cases:
        assert await refused_view(group, ana, "expense.add", good | change) == code, change
    assert await refused_view(group, zoe, "expense.add", good) == "not_a_traveller"
    answer = await group.view(ana, "expense.add", good | {"amount": 3000, "minor": True})
    assert answer["expense"]["amount"] == 3000
    assert set(answer["names"]) == set(trip["travellers"])


async def test_a_retried_add_with_the_same_request_id_adds_once(monkeypatch) -> None:
    group, _ = await open_trip(monkeypatch)
    ana, ben = group.people["ana"], group.people["ben"]
    params = {"title": "Groceries", "amount": "18.60", "request_id": "req-1"}
    first = await group.view(ana, "expense.add", params)
    again = await group.view(ana, "expense.add", params)
    assert first["expense"] == again["expense"]
    assert len(stored_expenses(group)) == 1
    assert group.trip()["spent"] == {"EUR": 1860}
    assert texts(group).count("Ana paid €18.60 for Groceries, split 3 ways") == 1
    # The same request id from someone else is their own request.
    await group.view(ben, "expense.add", params)
    assert len(stored_expenses(group)) == 2


async def test_ten_people_adding_at_once_all_count(monkeypatch) -> None:
    names = tuple(f"p{i}" for i in range(10))
    group, _ = await open_trip(monkeypatch, names)
    people = [group.people[n] for n in names]
    await asyncio.gather(
        *(
            group.command(p, f'/trip expense add {i + 1}.01 "Round {i}"')
            for i, p in enumerate(people)
        )
    )
    expenses = stored_expenses(group)
    assert len(expenses) == 10
    assert sorted(int(e["id"][1:]) for e in expenses) == list(range(1, 11))
    assert group.trip()["spent"] == {"EUR": sum((i + 1) * 100 + 1 for i in range(10))}
    answer = await group.view(people[0], "expenses.get")
    assert sum(answer["balances"]["EUR"].values()) == 0
    assert len(answer["transfers"]["EUR"]) <= 9


# --- list, delete, bookings ---------------------------------------------------------------------


async def test_the_list_shows_the_latest_expenses_to_the_reader_only(monkeypatch) -> None:
    group, _ = await open_trip(monkeypatch)
    ana, ben = group.people["ana"], group.people["ben"]
    await group.command(ana, '/trip expense add 42.50 "Dinner at Ramiro"')
    await group.command(ben, '/trip expense add 8 "Tram" paid by ana among ana,ben')
    posted = len(group.sim.messages(group.chat))
    await group.command(ben, "/trip expense list")
    card = group.said(ben)
    assert len(group.sim.messages(group.chat)) == posted
    lines = card["text"].splitlines()
    assert lines[0].startswith("e2 · ") and "Tram · €8.00 · Ana paid · split 2 ways" in lines[0]
    assert lines[1].startswith("e1 · ") and "Dinner at Ramiro · €42.50" in lines[1]
    assert card["buttons"][0]["action_id"] == "expense.balances"


async def test_delete_by_its_adder_or_payer_only_and_only_once(monkeypatch) -> None:
    group, trip = await open_trip(monkeypatch)
    ana, ben, cleo = (group.people[n] for n in NAMES)
    await group.command(cleo, '/trip expense add 20 "Taxi" paid by ana')
    await group.command(ana, '/trip expense add 5 "Snack"')
    assert "Only whoever added or paid" in await refused_command(
        group, ben, "/trip expense delete e1"
    )
    assert "no expense e9" in await refused_command(group, ana, "/trip expense delete e9")
    await group.command(cleo, "/trip expense delete e1")  # cleo added it
    assert texts(group)[-1] == "Cleo deleted the expense Taxi (€20.00)"
    assert group.trip()["spent"] == {"EUR": 500}
    assert "no expense e1" in await refused_command(group, ana, "/trip expense delete E1")
    await group.view(ana, "expense.delete", {"expense_id": "e2"})  # ana paid it
    assert group.trip()["spent"] == {}
    answer = await group.view(ana, "expenses.get")
    assert answer["expenses"] == [] and answer["balances"] == {}
    assert group.sim.storage("expenses")[f"{trip['id']}-e1"]["deleted_by"] == cleo.id


async def test_two_deletes_at_once_lower_spent_once(monkeypatch) -> None:
    group, _ = await open_trip(monkeypatch)
    ana = group.people["ana"]
    await group.command(ana, '/trip expense add 20 "Taxi"')
    await group.command(ana, '/trip expense add 5 "Snack"')
    await asyncio.gather(*(group.command(ana, "/trip expense delete e1") for _ in range(3)))
    assert group.trip()["spent"] == {"EUR": 500}


def booking_of(trip: dict, shares: dict[str, int], booking_id: str = "bk0123456789") -> dict:
    return {
        "id": booking_id,
        "trip_id": trip["id"],
        "conversation_id": trip["conversation_id"],
        "title": "MAD → LIS · Sat 1 May 07:05",
        "total": {"amount": sum(shares.values()), "currency": "EUR"},
        "shares": shares,
        "started_by": next(iter(shares)),
    }


async def test_a_booking_becomes_one_expense_that_cannot_be_deleted(monkeypatch) -> None:
    group, trip = await open_trip(monkeypatch)
    ana, ben, cleo = (group.people[n] for n in NAMES)
    shares = {ana.id: 10001, ben.id: 10000, cleo.id: 10000}
    expenses = app_module("expenses")
    first = await group.run_as(
        ana, lambda ctx: expenses.record_booking(ctx, booking_of(trip, shares))
    )
    again = await group.run_as(
        ben, lambda ctx: expenses.record_booking(ctx, booking_of(trip, shares))
    )
    assert first == again
    assert first["id"] == "bk-bk0123456789" and first["kind"] == "booking"
    assert first["paid"] == first["parts"] == shares
    assert group.trip()["spent"] == {"EUR": 30001}
    answer = await group.view(ana, "expenses.get")
    assert set(answer["balances"]["EUR"].values()) == {0}
    assert "stays" in await refused_command(group, ana, "/trip expense delete bk-bk0123456789")
    bad = booking_of(trip, shares, "bk9999999999") | {"total": {"amount": 1, "currency": "EUR"}}

    async def record_bad(ctx):
        try:
            await expenses.record_booking(ctx, bad)
        except app_module("store").TravelError as exc:
            return exc.code

    before = group.snapshot()
    assert await group.run_as(ana, record_bad) == "invalid_booking"
    assert group.snapshot() == before


# --- balances -----------------------------------------------------------------------------------


async def test_balances_card_shows_what_the_reader_owes_with_pay_buttons(monkeypatch) -> None:
    group, trip = await open_trip(monkeypatch)
    ana, ben, cleo = (group.people[n] for n in NAMES)
    await group.command(ana, '/trip expense add 30 "Dinner"')  # Ana +20, Ben -10, Cleo -10
    await group.command(cleo, '/trip expense add 24 "Fado" among ben,cleo')  # Ben -12, Cleo +12
    await group.command(ben, "/trip balances")
    card = group.said(ben)
    assert card["title"] == "Balances · Lisbon"
    assert "You owe Ana €20.00" in card["text"]
    assert "You owe Cleo €2.00" in card["text"]
    assert card["fields"][0]["label"] == "EUR"
    assert (
        card["fields"][0]["value"]
        == "Ana gets back €20.00 · Cleo gets back €2.00 · Ben owes €22.00"
    )
    values = sorted(b["value"] for b in card["buttons"] if b["action_id"] == "settle.pay")
    assert values == sorted([f"{trip['id']}:{ana.id}:2000:EUR", f"{trip['id']}:{cleo.id}:200:EUR"])
    # Cleo is owed: no button, a line saying who owes her.
    await group.command(cleo, "/trip balances")
    card = group.said(cleo)
    assert "Ben owes you €2.00" in card["text"] and "You owe" not in card["text"]
    assert "buttons" not in card
    # The trip card's button posts the group's balances card (the same for all: no "you") and
    # tells the presser their own position.
    await group.press(ana, trip["card"]["message_id"], "expense.balances", trip["id"])
    assert group.said(ana) == "Ben owes you €20.00."
    shared = group.sim.messages(group.chat)[-1]["card"]
    assert shared["title"] == "Balances · Lisbon" and "you" not in shared["text"].lower()
    assert "Ben pays Ana €20.00" in shared["text"] and "Ben pays Cleo €2.00" in shared["text"]
    assert [b.get("action_id") for b in shared["buttons"]] == ["settle.mine", None]


async def test_the_group_balances_card_pays_what_i_owe_and_redraws_itself(monkeypatch) -> None:
    group, trip = await open_trip(monkeypatch)
    ana, ben, cleo = (group.people[n] for n in NAMES)
    await group.command(ana, '/trip expense add 30 "Dinner"')  # Ben and Cleo owe Ana 10 each
    await group.press(ben, trip["card"]["message_id"], "expense.balances", trip["id"])
    first = group.sim.messages(group.chat)[-1]["id"]
    # Pressed again: posted at the bottom, the older one says it moved (no buttons left).
    await group.press(cleo, trip["card"]["message_id"], "expense.balances", trip["id"])
    card_id = group.sim.messages(group.chat)[-1]["id"]
    assert card_id != first and "moved" in group.sim.card(first)["text"]
    assert "buttons" not in group.sim.card(first)
    # Ana is owed, not owing: nothing to pay, nothing written.
    before = group.snapshot()
    await group.press(ana, card_id, "settle.mine")
    assert group.said(ana) == "You owe nobody anything on this trip." and group.snapshot() == before
    # Ben pays what he owes: one transfer request of 10.00 to Ana; pressing again asks nothing.
    await group.press(ben, card_id, "settle.mine")
    assert group.said(ben) == "Confirm in your wallet: pay Ana €10.00."
    transfer = transfer_of(group, ben)
    assert (transfer["amount"], transfer["currency"]) == (1000, "EUR")
    before = group.snapshot()
    await group.press(ben, card_id, "settle.mine")
    assert "already asked" in group.said(ben) and group.snapshot() == before
    # He confirms: the card redraws in place — only Cleo still pays Ana.
    await group.sim.confirm_payment(ben, transfer["id"])
    await group.sim.deliver_payment_events()
    text = group.sim.card(card_id)["text"]
    assert "Cleo pays Ana €10.00" in text and "Ben pays" not in text
    # A value naming another chat's trip is refused.
    await group.press(cleo, card_id, "settle.mine", "tr0000000000")
    assert "no longer exists" in group.said(cleo)


async def test_amounts_in_the_readers_currency_with_the_rates_label(monkeypatch) -> None:
    group, _ = await open_trip(monkeypatch, ben={"locale": "en-US"})
    ana, ben = group.people["ana"], group.people["ben"]
    await group.command(ana, '/trip expense add 30 "Dinner"')
    await group.command(ben, "/trip balances")
    text = group.said(ben)["text"]
    assert "You owe Ana €10.00 (≈ $10.80)" in text  # sample rate 1.08
    assert "Sample exchange rates" in text
    answer = await group.view(ben, "expenses.get")
    assert answer["reader_currency"] == "USD"
    assert answer["totals_in_reader"][ben.id] == -1080
    assert answer["rates_label"]
    assert (await group.view(ana, "expenses.get"))["reader_currency"] == "EUR"


async def test_configured_rates_replace_the_sample_and_a_bad_config_is_ignored(monkeypatch) -> None:
    rates = '{"EUR": 1, "USD": 1.25}'
    group, _ = await open_trip(monkeypatch, config={"fx_rates": rates}, ben={"locale": "en-US"})
    ana, ben = group.people["ana"], group.people["ben"]
    await group.command(ana, '/trip expense add 30 "Dinner"')
    await group.command(ben, "/trip balances")
    text = group.said(ben)["text"]
    assert "(≈ $12.50)" in text and "Sample" not in text
    group.sim.set_config("fx_rates", '{"EUR": 2, "USD": 1.25}')
    await group.command(ben, "/trip balances")
    assert "(≈ $10.80)" in group.said(ben)["text"]
    group.sim.set_config("fx_rates", '{"EUR": 1}')  # no USD rate: nothing converted
    answer = await group.view(ben, "expenses.get")
    assert answer["totals_in_reader"] is None
    await group.command(ben, "/trip balances")
    assert "≈" not in group.said(ben)["text"]


# --- settling up --------------------------------------------------------------------------------


def transfer_of(group: Group, payer) -> dict:
    [payment] = [
        p
        for p in group.sim.payments.values()
        if p["kind"] == "transfer_request"
        and p["user_id"] == payer.id
        and p["status"] == "requested"
    ]
    return payment


async def test_settle_up_end_to_end_counted_once(monkeypatch) -> None:
    group, _ = await open_trip(monkeypatch)
    ana, ben, cleo = (group.people[n] for n in NAMES)
    await group.command(ana, '/trip expense add 30 "Dinner"')
    await group.command(ben, "/trip settle ana 10.00 EUR")
    assert group.said(ben) == "Confirm in your wallet: pay Ana €10.00."
    payment = transfer_of(group, ben)
    assert (payment["to_user_id"], payment["amount"], payment["currency"]) == (ana.id, 1000, "EUR")
    assert payment["note"] == "Trip Lisbon: settle up"
    [settlement] = group.sim.storage("settlements").values()
    assert settlement["status"] == "requested"
    assert payment["order_ref"] == f"settle-{settlement['id']}"
    event = await group.sim.confirm_payment(ben, payment["id"])
    settlement = group.sim.storage("settlements")[settlement["id"]]
    assert settlement["status"] == "paid" and settlement["payment_id"] == payment["id"]
    assert texts(group)[-1] == "Ben settled €10.00 with Ana"
    # The wallet delivers the event again: nothing changes.
    await group.sim.deliver_event("transfer_request.paid", event, user=ben, conversation=group.chat)
    settles = [e for e in stored_expenses(group) if e["kind"] == "settlement"]
    assert len(settles) == 1 and settles[0]["id"] == f"st-{settlement['id']}"
    assert sum("settled" in t for t in texts(group)) == 1
    answer = await group.view(ben, "expenses.get")
    assert answer["balances"]["EUR"][ben.id] == 0
    assert answer["transfers"]["EUR"] == [{"from": cleo.id, "to": ana.id, "amount": 1000}]
    assert group.trip()["spent"] == {"EUR": 3000}  # settling is not spending
    # Cleo settles everything she owes (no amount): balances are all zero.
    await group.command(cleo, "/trip settle Ana")
    await group.sim.confirm_payment(cleo, transfer_of(group, cleo)["id"])
    answer = await group.view(cleo, "expenses.get")
    assert set(answer["balances"]["EUR"].values()) == {0}
    assert answer["transfers"] == {"EUR": []}
    await group.command(ben, "/trip balances")
    assert "Everyone is settled up." in group.said(ben)["text"]


async def test_the_pay_button_and_the_view_request_a_transfer(monkeypatch) -> None:
    group, trip = await open_trip(monkeypatch)
    ana, ben, cleo = (group.people[n] for n in NAMES)
    await group.command(ana, '/trip expense add 30 "Dinner"')
    await group.command(ben, "/trip balances")
    balances = group.said(ben)

    # A client that renders the ephemeral card's buttons sends exactly this press.
    async def post(ctx):
        return await ctx.send_card(balances)

    message_id = await group.run_as(ben, post)
    await group.press(ben, message_id, "settle.pay")
    assert group.said(ben) == "Confirm in your wallet: pay Ana €10.00."
    assert transfer_of(group, ben)["amount"] == 1000
    # A tampered value, or a trip that is gone: refused, nothing written.
    for value in ("junk", f"{trip['id']}:{ana.id}:ten:EUR", f"tr0000000000:{ana.id}:100:EUR"):
        before = group.snapshot()
        await group.press(cleo, message_id, "settle.pay", value)
        assert group.snapshot() == before
        assert "out of date" in group.said(cleo) or "no longer exists" in group.said(cleo)
    answer = await group.view(cleo, "settle.request", {"to": ana.id, "amount": "4.00"})
    settlement = answer["settlement"]
    assert (settlement["from"], settlement["to"], settlement["amount"]) == (cleo.id, ana.id, 400)
    assert settlement["payment_id"] == transfer_of(group, cleo)["id"]


async def test_settling_more_than_owed_or_with_nobody_owed_writes_nothing(monkeypatch) -> None:
    group, trip = await open_trip(monkeypatch)
    ana, ben, cleo = (group.people[n] for n in NAMES)
    await group.command(ana, '/trip expense add 30 "Dinner"')
    assert "owe Ana 10.00 EUR now" in await refused_command(group, ben, "/trip settle Ana 10.01")
    assert "yourself" in await refused_command(group, ana, "/trip settle ana 1")
    assert "owe Cleo nothing" in await refused_command(group, ben, "/trip settle Cleo 1")
    assert "nothing in USD" in await refused_command(group, ben, "/trip settle Ana 1 USD")
    assert "above zero" in await refused_command(group, ben, "/trip settle Ana 0")
    assert "above zero" in await refused_command(group, ben, "/trip settle Ana -2")
    assert "not a currency" in await refused_command(group, ben, "/trip settle Ana 1 XYZ")
    assert "No traveller" in await refused_command(group, ben, "/trip settle Max 1")
    # An open request counts: 6 asked, so at most 4 more.
    await group.command(ben, "/trip settle Ana 6")
    said = await refused_command(group, ben, "/trip settle Ana 5")
    assert "owe Ana 4.00 EUR now (besides what you already asked to pay)" in said
    await group.command(ben, "/trip settle Ana 4")
    assert "already asked" in await refused_command(group, ben, "/trip settle Ana")
    views = [
        ({"to": ana.id, "amount": "1"}, ana, "same_user"),
        ({"to": ana.id, "amount": "5"}, cleo, None),
        ({"to": ana.id, "amount": "5.01"}, cleo, "exceeds_owed"),
        ({"to": ana.id, "amount": "1", "currency": "XYZ"}, cleo, "unknown_currency"),
        ({"to": "u-nobody", "amount": "1"}, cleo, "nothing_owed"),
        ({"amount": "1"}, cleo, "unknown_person"),
    ]
    for params, user, code in views:
        if code is None:
            await group.view(user, "settle.request", params)
        else:
            assert await refused_view(group, user, "settle.request", params) == code, params
    # A stale Pay button (for more than is owed now) is refused too.
    stale = {
        "title": "Pay",
        "buttons": [
            {"action_id": "settle.pay", "label": "Pay", "value": f"{trip['id']}:{ana.id}:900:EUR"}
        ],
    }

    async def post(ctx):
        return await ctx.send_card(stale)

    message_id = await group.run_as(cleo, post)
    before = group.snapshot()
    await group.press(cleo, message_id, "settle.pay")
    assert "already asked" in group.said(cleo) and group.snapshot() == before


async def test_two_requests_at_once_cannot_both_take_the_same_debt(monkeypatch) -> None:
    group, _ = await open_trip(monkeypatch)
    ana, ben = group.people["ana"], group.people["ben"]
    await group.command(ana, '/trip expense add 30 "Dinner"')
    await asyncio.gather(*(group.command(ben, "/trip settle Ana 10") for _ in range(4)))
    assert len(group.sim.storage("settlements")) == 1
    assert sum(p["kind"] == "transfer_request" for p in group.sim.payments.values()) == 1


async def test_declined_and_expired_only_change_the_status(monkeypatch) -> None:
    group, _ = await open_trip(monkeypatch)
    ana, ben = group.people["ana"], group.people["ben"]
    await group.command(ana, '/trip expense add 30 "Dinner"')
    await group.command(ben, "/trip settle Ana 10")
    posted = len(group.sim.messages(group.chat))
    await group.sim.cancel_payment(ben, transfer_of(group, ben)["id"])
    await group.command(ben, "/trip settle Ana 10")  # the declined one no longer counts
    await group.sim.expire_payment(transfer_of(group, ben)["id"])
    statuses = sorted(s["status"] for s in group.sim.storage("settlements").values())
    assert statuses == ["declined", "expired"]
    assert [e["kind"] for e in stored_expenses(group)] == ["expense"]
    assert len(group.sim.messages(group.chat)) == posted
    answer = await group.view(ben, "expenses.get")
    assert answer["balances"]["EUR"][ben.id] == -1000


async def test_a_forged_paid_event_changes_nothing(monkeypatch) -> None:
    group, _ = await open_trip(monkeypatch)
    ana, ben = group.people["ana"], group.people["ben"]
    await group.command(ana, '/trip expense add 30 "Dinner"')
    await group.command(ben, "/trip settle Ana 10")
    payment = transfer_of(group, ben)
    [settlement] = group.sim.storage("settlements").values()
    forged = {
        "payment_id": payment["id"],
        "order_ref": payment["order_ref"],
        "transfer_ref": payment["order_ref"],
        "amount": 1000,
        "currency": "EUR",
        "user_id": ben.id,
        "to_user_id": ana.id,
        "status": "paid",
        "at": T0,
        "signature": "forged",
    }
    before = group.snapshot()
    await group.sim.deliver_event(
        "transfer_request.paid", forged, user=ben, conversation=group.chat
    )
    assert group.snapshot() == before
    assert group.sim.storage("settlements")[settlement["id"]]["status"] == "requested"
