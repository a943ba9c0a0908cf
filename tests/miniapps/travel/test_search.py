"""Flight search in the simulator: ``/trip flights …`` posts one offer card and stores the offers;
the provider is picked by the app settings (the labelled sample by default, Duffel through the
Duffel-shaped stub over real HTTP); bad input answers a clear error and writes nothing; the sample
provider's offers and orders live in the app storage (fresh provider objects — another process —
see them); ``providers.reprice`` and ``providers.step`` as booking uses them (one step per
invocation, the phase kept between them)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from miniapps.travel.texts import SAMPLE_LABEL
from sdk.simulator import SimUser
from tests.miniapps.travel.duffel_stub import API_KEY, DuffelStub, serve_fetch
from tests.miniapps.travel.travel_fixtures import MINUTE, Group, app_module

# --- helpers shared by the search, stays and changes tests -----------------------------------


async def plan_trip(
    group: Group,
    names: tuple[str, ...] = ("ana", "ben"),
    command: str = '/trip new "Lisbon" 2027-05-01 2027-05-05 from MAD',
) -> dict[str, Any]:
    """A trip (``/trip new``) with ``names`` as travellers (the first creates it)."""
    people = [group.person(name) for name in names]
    answer = await group.command(people[0], command)
    assert group.trip() is not None, answer
    for person in people[1:]:
        await group.command(person, "/trip join")
    return group.trip()


def use_duffel(group: Group, monkeypatch, stub: DuffelStub) -> list[dict[str, Any]]:
    """The app set to Duffel at the stub (its clock the simulator's), ``http.fetch`` for real."""
    group.sim.set_config("flights_provider", "duffel")
    group.sim.set_config("duffel_api_key", API_KEY)
    group.sim.set_config("duffel_api_url", stub.url)
    stub.now = lambda: dt.datetime.fromtimestamp(group.sim.now / 1000, dt.UTC)
    return serve_fetch(group.sim, monkeypatch)


async def attempt(group: Group, user: SimUser, work) -> tuple[str, Any]:
    """``await work(ctx)`` in an invocation of the app → ``("ok", result)`` or
    ``("error", code, message)`` for a ``TravelError``."""
    store = app_module("store")

    async def run(ctx):
        try:
            return {"ok": await work(ctx)}
        except store.TravelError as exc:
            return {"error": [exc.code, exc.message]}

    answer = await group.run_as(user, run)
    return ("ok", answer["ok"]) if "ok" in answer else ("error", *answer["error"])


async def book_in_steps(
    group: Group,
    user: SimUser,
    doc: dict[str, Any],
    key: str,
    *,
    phase: str | None = None,
    hold_order: dict[str, Any] | None = None,
    until_timeout: bool = False,
) -> tuple[Any, ...]:
    """Book ``doc`` as ``booking`` does: ``providers.step`` in an invocation of its own each,
    from ``phase`` (default the offer's first), the next phase and the look-up's cursor kept
    between them → ``("ok", result, phases)``, ``("error", code, message, phases)`` or — with
    ``until_timeout`` — ``("timeout", next phase, phases)`` at the first timeout."""
    providers = app_module("providers")
    phase = phase or providers.first_phase(doc)
    cursor: dict[str, Any] | None = None
    phases: list[str] = []
    for _ in range(20):
        phases.append(phase)

        async def one(ctx, phase=phase, cursor=cursor):
            done = await providers.step(ctx, doc, key, phase, hold_order=hold_order, cursor=cursor)
            return dataclasses.asdict(done)

        answer = await attempt(group, user, one)
        if answer[0] == "error":
            return (*answer, phases)
        done = answer[1]
        if done["outcome"] == "done":
            return "ok", done["result"], phases
        if done["outcome"] == "timeout" and until_timeout:
            return "timeout", done["phase"], phases
        phase, cursor = done["phase"], done["cursor"]
    raise AssertionError(f"not booked in 20 steps: {phases}")


def cards(group: Group) -> list[dict[str, Any]]:
    return [m["card"] for m in group.sim.messages(group.chat) if m["type"] == "card"]


def offers(group: Group) -> dict[str, Any]:
    return group.sim.storage("offers")


# --- the sample provider (the default) --------------------------------------------------------


async def test_flights_post_one_offer_card_and_store_the_offers(group):
    trip = await plan_trip(group)
    ana = group.people["ana"]
    before = len(cards(group))
    assert await group.command(ana, "/trip flights FCO 2027-05-01") == {}
    assert len(cards(group)) == before + 1
    card = cards(group)[-1]
    assert card["title"] == "Flights MAD → FCO · Sat 1 May"
    assert card["text"].startswith(SAMPLE_LABEL) and "For 2 travellers" in card["text"]
    stored = offers(group)
    assert 2 <= len(stored) <= 5 and len(card["buttons"]) == len(stored)
    prices = [doc["total"]["amount"] for doc in stored.values()]
    for n, button in enumerate(card["buttons"], start=1):
        doc = stored[button["value"]]
        assert button["action_id"] == "offer.book"
        assert button["label"].startswith(f"{n}. Book together: €")
        assert doc["kind"] == "flight" and doc["trip_id"] == trip["id"]
        assert doc["provider"] == "sample" and doc["label"] == SAMPLE_LABEL
        assert doc["passengers"] == 2 and doc["total"]["currency"] == "EUR"
        assert doc["expires_ms"] == group.sim.now + 30 * MINUTE
        assert doc["title"].startswith("MAD → FCO · Sat 1 May ")
    assert sorted(prices) == [stored[b["value"]]["total"]["amount"] for b in card["buttons"]]
    # the items the booking will add: one per segment, local times in each airport's zone
    one_stop = next(d for d in stored.values() if len(d["items"]) == 2)
    first, second = one_stop["items"]
    assert first["zone"] == "Europe/Madrid" and second["end_zone"] == "Europe/Rome"
    assert first["details"]["destination"] == second["details"]["origin"]  # the hub
    assert first["end"] < second["start"] or first["end_zone"] != second["zone"]
    direct = next(d for d in stored.values() if len(d["items"]) == 1)
    segment = direct["raw"]["slices"][0]["segments"][0]
    assert direct["items"][0]["start"] == segment["departing_at"][:16]
    assert direct["items"][0]["kind"] == "flight" and "MAD" in direct["items"][0]["place"]
    assert direct["items"][0]["title"].endswith("MAD → FCO")
    field = card["fields"][0]["value"]
    assert field.startswith(segment["departing_at"][11:16]) and "valid until 00:30" in field
    holdable = [d for d in stored.values() if d["holdable"]]
    assert len(holdable) == 1 and holdable[0]["pay_by_ms"] == group.sim.now + 24 * 60 * MINUTE


async def test_the_three_ways_to_say_where(group):
    await plan_trip(group)
    ana = group.people["ana"]
    await group.command(ana, "/trip flights OPO LIS 2027-05-01")
    assert cards(group)[-1]["title"].startswith("Flights OPO → LIS")
    await group.command(ana, "/trip flights lis 2027-05-02 from bcn")
    assert cards(group)[-1]["title"] == "Flights BCN → LIS · Sun 2 May"
    await group.command(ana, "/trip flights 2027-05-05")  # to the trip's destination, from home
    assert cards(group)[-1]["title"] == "Flights MAD → LIS · Wed 5 May"


async def test_prices_in_the_readers_locale(group, monkeypatch):
    await plan_trip(group)
    dora = group.person("dora", locale="de-DE")
    await group.command(dora, "/trip join")
    await group.command(dora, "/trip flights LIS 2027-05-01")
    card = cards(group)[-1]
    assert card["title"] == "Flights MAD → LIS · Sa. 1 Mai"
    assert card["buttons"][0]["label"].endswith("\xa0€") and "," in card["buttons"][0]["label"]


@pytest.mark.parametrize(
    ("text", "code_words"),
    [
        ("/trip flights XQX 2027-05-01", "No airport with the code XQX"),
        ("/trip flights LIS 2027-05-01 from ZZZ", "No airport with the code ZZZ"),
        ("/trip flights LIS 2027-13-01", "is not a date"),
        ("/trip flights LIS 1/5/2027", "is not a date"),
        ("/trip flights LIS 2027-02-27", "is in the past"),
        ("/trip flights MAD 2027-05-01", "MAD is both the origin and the destination"),
        ("/trip flights", "Usage: /trip flights"),
        ("/trip flights A B C D", "Usage: /trip flights"),
        ("/trip flights MAD LIS 2027-05-01 from OPO", "Usage: /trip flights"),
    ],
)
async def test_bad_flight_searches_answer_and_write_nothing(group, text, code_words):
    await plan_trip(group)
    ana = group.people["ana"]
    before, shown = group.snapshot(), len(group.sim.messages(group.chat))
    answer = await group.command(ana, text)
    assert code_words in answer["ephemeral"] and code_words in group.said(ana)
    assert group.snapshot() == before
    assert len(group.sim.messages(group.chat)) == shown


async def test_no_origin_without_a_home_airport(group):
    await plan_trip(group, command='/trip new "Lisbon" 2027-05-01 2027-05-05')
    ana = group.people["ana"]
    before = group.snapshot()
    await group.command(ana, "/trip flights LIS 2027-05-01")
    assert group.said(ana).startswith("From where?") and "Usage: /trip flights" in group.said(ana)
    assert group.snapshot() == before


async def test_only_travellers_search_and_only_with_a_trip(group):
    ana = group.person("ana")
    await group.command(ana, "/trip flights LIS 2027-05-01")
    assert "no trip yet" in group.said(ana)
    await plan_trip(group, names=("ben",))
    before = group.snapshot()
    await group.command(ana, "/trip flights LIS 2027-05-01")
    assert "Only the trip's travellers" in group.said(ana)
    assert group.snapshot() == before


async def test_at_most_nine_passengers(group):
    await plan_trip(group, names=tuple(f"p{n}" for n in range(10)))
    p0 = group.people["p0"]
    before = group.snapshot()
    await group.command(p0, "/trip flights LIS 2027-05-01")
    assert "1 to 9 travellers" in group.said(p0) and "this trip has 10" in group.said(p0)
    assert group.snapshot() == before


async def test_the_search_view(group):
    trip = await plan_trip(group)
    ana = group.people["ana"]
    answer = await group.view(ana, "search.flights", {"destination": "LIS", "date": "2027-05-01"})
    assert answer["label"] == SAMPLE_LABEL
    assert [o["id"] for o in answer["offers"]] == sorted(
        offers(group), key=lambda k: offers(group)[k]["total"]["amount"]
    )
    assert all(o["trip_id"] == trip["id"] for o in answer["offers"])
    answer = await group.view(ana, "search.flights", {"origin": "OPO", "date": "2027-05-02"})
    assert answer["offers"][0]["title"].startswith("OPO → LIS")
    before = group.snapshot()
    for params, code in [
        ({"destination": "QQQ", "date": "2027-05-01"}, "unknown_airport"),
        ({"destination": "LIS", "date": "2027-01-01"}, "dates_in_past"),
        ({"destination": "LIS", "date": "tomorrow"}, "bad_date"),
        ({"destination": "LIS"}, "usage"),
        ({"destination": 7, "date": "2027-05-01"}, "usage"),
    ]:
        assert (await group.refused(ana, "search.flights", params)).code == code
    assert (await group.refused(group.person("eve"), "search.flights", {})).code == (
        "not_a_traveller"
    )
    assert group.snapshot() == before


# --- choosing the provider --------------------------------------------------------------------


async def test_duffel_needs_its_key_and_an_unknown_provider_is_refused(group):
    await plan_trip(group)
    ana = group.people["ana"]
    group.sim.set_config("flights_provider", "duffel")
    before = group.snapshot()
    await group.command(ana, "/trip flights LIS 2027-05-01")
    assert "an administrator must set duffel_api_key" in group.said(ana)
    group.sim.set_config("flights_provider", "amadeus")
    await group.command(ana, "/trip flights LIS 2027-05-01")
    assert "Unknown flights_provider 'amadeus'" in group.said(ana)
    assert group.snapshot() == before
    group.sim.set_config("flights_provider", "SAMPLE")
    await group.command(ana, "/trip flights LIS 2027-05-01")
    assert cards(group)[-1]["text"].startswith(SAMPLE_LABEL)


async def test_duffel_search_through_the_stub(group, monkeypatch, stub):
    await plan_trip(group, command='/trip new "New York" 2027-05-01 2027-05-05 from LHR')
    group.person("cy")
    await group.command(group.people["cy"], "/trip join")
    sent = use_duffel(group, monkeypatch, stub)
    ana = group.people["ana"]
    await group.command(ana, "/trip flights JFK 2027-05-01")
    request = stub.requests[-1]
    assert request["path"] == "/air/offer_requests?return_offers=true"
    assert len(request["body"]["data"]["passengers"]) == 3
    assert sent[-1]["url"] == f"{stub.url}/air/offer_requests?return_offers=true"
    card = cards(group)[-1]
    assert SAMPLE_LABEL not in card["text"] and card["title"] == "Flights LHR → JFK · Sat 1 May"
    assert [f["label"] for f in card["fields"]] == ["1. £310.25", "2. £420.50", "3. £455.00"]
    assert card["fields"][0]["value"].startswith(
        "07:00 LHR → 12:50 JFK · 1 stop (DUB) · ZZ 3, ZZ 4"
    )
    assert "can be held" in card["fields"][2]["value"]
    stored = offers(group)
    connecting = stored[card["buttons"][0]["value"]]
    assert connecting["provider"] == "duffel" and connecting["label"] is None
    assert [i["title"] for i in connecting["items"]] == ["ZZ 3 LHR → DUB", "ZZ 4 DUB → JFK"]
    assert [i["zone"] for i in connecting["items"]] == ["Europe/London", "Europe/Dublin"]
    assert connecting["raw"]["id"] in stub.offers
    holdable = stored[card["buttons"][2]["value"]]
    assert holdable["holdable"] and holdable["pay_by_ms"] == group.sim.now + 24 * 60 * MINUTE


async def test_duffel_no_offers_and_timeout_answer_clearly(group, monkeypatch, stub):
    await plan_trip(group, command='/trip new "New York" 2027-05-01 2027-05-05 from LHR')
    use_duffel(group, monkeypatch, stub)
    ana = group.people["ana"]
    before, shown = group.snapshot(), len(cards(group))
    stub.no_offers.add(("LHR", "JFK"))
    await group.command(ana, "/trip flights JFK 2027-05-01")
    assert group.said(ana) == "No flights from LHR to JFK on Sat 1 May: try another day."
    stub.no_offers.clear()
    stub.slow_searches.add(("LHR", "JFK"))
    await group.command(ana, "/trip flights JFK 2027-05-01")
    assert "did not answer in time: try again" in group.said(ana)
    group.sim.fail_next("http.fetch", "timeout")
    await group.command(ana, "/trip flights JFK 2027-05-02")
    assert "did not answer in time: try again" in group.said(ana)
    assert (await group.refused(ana, "search.flights", {"date": "2027-05-02"})).code == (
        "provider_timeout"
    )
    assert group.snapshot() == before and len(cards(group)) == shown


# --- the sample provider across processes; reprice and the booking steps ---------------------


async def test_sample_offers_and_orders_live_in_storage(group):
    await plan_trip(group)
    ana, ben = group.people["ana"], group.people["ben"]
    await group.command(ana, "/trip flights FCO 2027-05-01")
    providers = app_module("providers")
    doc = next(d for d in offers(group).values() if not d["holdable"])
    raw_id = doc["raw"]["id"]
    assert raw_id in group.sim.storage("sample_offers")

    # another process: a fresh provider object, fed by the storage alone
    async def fresh_offer(ctx):
        offer = await providers.flights(ctx).get_offer(raw_id)
        return offer.total_amount

    assert await attempt(group, ben, fresh_offer) == ("ok", doc["total"]["amount"])
    repriced = await attempt(group, ben, lambda ctx: providers.reprice(ctx, doc))
    assert repriced[0] == "ok" and repriced[1]["total"] == doc["total"]
    assert not providers.reserves(doc) and providers.first_phase(doc) == "create"
    first = await book_in_steps(group, ana, doc, "bk0000000001")
    assert first[0] == "ok" and first[2] == ["create"]  # the sample answers at once
    assert first[1]["order_id"].startswith("ord_sample_") and len(first[1]["reference"]) == 6
    # a create sent again by another process (a lost answer): the same order, by its key
    assert await book_in_steps(group, ben, doc, "bk0000000001") == first
    orders = group.sim.storage("sample_orders")
    assert list(orders) == ["bk0000000001"]
    assert orders["bk0000000001"]["passengers"] == [
        {"type": "adult", "given_name": "Ana", "family_name": "Ana"},
        {"type": "adult", "given_name": "Ben", "family_name": "Ben"},
    ]
    looked_up = await book_in_steps(group, ben, doc, "bk0000000001", phase="lookup")
    assert looked_up == ("ok", first[1], ["lookup"])


async def test_sample_reserve_then_pay_once(group):
    await plan_trip(group)
    ana = group.people["ana"]
    await group.command(ana, "/trip flights FCO 2027-05-01")
    providers = app_module("providers")
    holdable = next(d for d in offers(group).values() if d["holdable"])
    plain = next(d for d in offers(group).values() if not d["holdable"])
    assert providers.reserves(holdable) and not providers.reserves(plain)
    kind, held, phases = await book_in_steps(group, ana, holdable, "bk01", phase="reserve")
    assert kind == "ok" and phases == ["reserve"] and held["pay_by_ms"] == holdable["pay_by_ms"]
    stored = group.sim.storage("sample_orders")["bk01-hold"]
    assert stored["type"] == "hold" and stored["payment_status"]["awaiting_payment"] is True
    assert held == {
        "order_id": stored["id"],
        "pay_by_ms": holdable["pay_by_ms"],
        "reference": stored["booking_reference"],
    }
    found = await book_in_steps(group, ana, holdable, "bk01", phase="reserve_lookup")
    assert found == ("ok", held, ["reserve_lookup"])
    paid = await book_in_steps(group, ana, holdable, "bk01", hold_order=held)
    assert paid == (
        "ok",
        {"order_id": held["order_id"], "reference": stored["booking_reference"]},
        ["create"],
    )
    # paid already: as it stands, nothing paid twice
    assert await book_in_steps(group, group.people["ben"], holdable, "bk01", hold_order=held) == (
        paid
    )
    stored = group.sim.storage("sample_orders")
    assert list(stored) == ["bk01-hold"]  # paying made no other order
    assert stored["bk01-hold"]["payment_status"]["awaiting_payment"] is False


async def test_reprice_refuses_an_expired_offer_and_a_changed_group(group):
    await plan_trip(group)
    ana = group.people["ana"]
    await group.command(ana, "/trip flights LIS 2027-05-01")
    providers = app_module("providers")
    doc = next(iter(offers(group).values()))
    group.sim.now += 31 * MINUTE
    assert (await attempt(group, ana, lambda ctx: providers.reprice(ctx, doc)))[1] == (
        "offer_expired"
    )
    group.sim.now -= 31 * MINUTE
    await group.command(group.person("cy"), "/trip join")
    result = await attempt(group, ana, lambda ctx: providers.reprice(ctx, doc))
    assert result[1] == "offer_expired" and "3 travellers now, 2 in the offer" in result[2]
    group.sim.set_config("flights_provider", "duffel")
    group.sim.set_config("duffel_api_key", API_KEY)
    result = await book_in_steps(group, ana, doc, "bk0000000002")
    assert result[1] == "offer_expired" and "provider changed" in result[2]
    result = await attempt(group, ana, lambda ctx: providers.step(ctx, doc, "bk02", "nope"))
    assert result[:2] == ("error", "provider_error")


async def test_duffel_reprice_price_changed_names_the_new_price(group, monkeypatch, stub):
    await plan_trip(group, command='/trip new "New York" 2027-05-01 2027-05-05 from LHR')
    use_duffel(group, monkeypatch, stub)
    ana = group.people["ana"]
    await group.command(ana, "/trip flights JFK 2027-05-01")
    providers = app_module("providers")
    doc = offers(group)[cards(group)[-1]["buttons"][1]["value"]]
    assert (await attempt(group, ana, lambda ctx: providers.reprice(ctx, doc)))[0] == "ok"
    stub.price_changes[doc["raw"]["id"]] = 2000
    result = await attempt(group, ana, lambda ctx: providers.reprice(ctx, doc))
    assert result[:2] == ("error", "price_changed")
    assert "now costs £440.50" in result[2] and "Press Book again" in result[2]
    assert offers(group)[doc["id"]]["total"]["amount"] == 44050  # kept: the next press books it
    again = await attempt(group, ana, lambda ctx: providers.reprice(ctx, offers(group)[doc["id"]]))
    assert again[0] == "ok" and again[1]["total"]["amount"] == 44050


async def test_duffel_a_lost_order_answer_is_looked_up_not_made_again(group, monkeypatch, stub):
    await plan_trip(group, command='/trip new "New York" 2027-05-01 2027-05-05 from LHR')
    sent = use_duffel(group, monkeypatch, stub)
    ana = group.people["ana"]
    await group.command(ana, "/trip flights JFK 2027-05-01")
    doc = offers(group)[cards(group)[-1]["buttons"][1]["value"]]
    stub.slow_orders = True  # made at the provider, the answer too late
    before = len(sent)
    lost = await book_in_steps(group, ana, doc, "bk0000000003", until_timeout=True)
    assert lost == ("timeout", "lookup", ["create"]) and len(sent) == before + 1
    stub.slow_orders = False
    stub.release()
    found = await book_in_steps(group, ana, doc, "bk0000000003", phase="lookup")
    assert found[0] == "ok" and found[1]["reference"].startswith("ZZ")
    assert found[2] == ["lookup"] and found[1]["order_id"] == stub.orders[0]["id"]
    assert [o["metadata"]["idempotency_key"] for o in stub.orders] == ["bk0000000003"]
    assert stub.orders[0]["passengers"][0]["given_name"] == "Ana"


async def test_duffel_stalled_create_is_one_timeout_and_nothing_is_made(group, monkeypatch, stub):
    await plan_trip(group, command='/trip new "New York" 2027-05-01 2027-05-05 from LHR')
    sent = use_duffel(group, monkeypatch, stub)
    ana = group.people["ana"]
    await group.command(ana, "/trip flights JFK 2027-05-01")
    doc = offers(group)[cards(group)[-1]["buttons"][0]["value"]]
    stub.stalled_orders = True
    before = len(sent)
    result = await book_in_steps(group, ana, doc, "bk0000000004", until_timeout=True)
    assert result == ("timeout", "lookup", ["create"])
    assert len(sent) == before + 1 and stub.orders == []  # one request: the held-back create
    # looked up: not made → created again (it answers now)
    stub.stalled_orders = False
    again = await book_in_steps(group, ana, doc, "bk0000000004", phase="lookup")
    assert again[0] == "ok" and again[2] == ["lookup", "create"] and len(stub.orders) == 1


async def test_duffel_reserve_then_pay_the_held_order_once(group, monkeypatch, stub):
    await plan_trip(group, command='/trip new "New York" 2027-05-01 2027-05-05 from LHR')
    use_duffel(group, monkeypatch, stub)
    ana = group.people["ana"]
    await group.command(ana, "/trip flights JFK 2027-05-01")
    doc = offers(group)[cards(group)[-1]["buttons"][2]["value"]]
    kind, held, _ = await book_in_steps(group, ana, doc, "bk05", phase="reserve")
    assert kind == "ok" and held["pay_by_ms"] == doc["pay_by_ms"]
    order = stub.order(held["order_id"])
    assert order["type"] == "hold" and order["payment_status"]["awaiting_payment"]
    assert order["metadata"] == {"idempotency_key": "bk05-hold"}
    assert held["reference"] == order["booking_reference"]

    stub.slow_payments = True  # paid, but the answer comes too late: the order tells
    lost = await book_in_steps(group, ana, doc, "bk05", hold_order=held, until_timeout=True)
    assert lost == ("timeout", "lookup", ["create"])
    stub.slow_payments = False
    stub.release()
    paid = await book_in_steps(group, ana, doc, "bk05", hold_order=held, phase="lookup")
    expected = {"order_id": held["order_id"], "reference": order["booking_reference"]}
    assert paid == ("ok", expected, ["lookup"])
    # sent again anyway: paid already, done — nothing paid twice
    assert await book_in_steps(group, ana, doc, "bk05", hold_order=held) == (
        "ok",
        expected,
        ["create"],
    )
    assert len(stub.payments) == 1 and len(stub.orders) == 1
    assert stub.payments[0]["amount"] == "455.00"


async def test_stub_pays_a_hold_order_once_for_its_amount(stub):
    import aiohttp

    headers = {"Authorization": f"Bearer {API_KEY}", "Duffel-Version": "v2"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def post(path: str, data: dict) -> tuple[int, dict]:
            async with http.post(stub.url + path, json={"data": data}) as resp:
                return resp.status, await resp.json()

        _, search = await post(
            "/air/offer_requests?return_offers=true",
            {
                "slices": [{"origin": "LHR", "destination": "JFK", "departure_date": "2027-05-01"}],
                "passengers": [{"type": "adult"}],
            },
        )
        holdable = search["data"]["offers"][1]
        _, made = await post(
            "/air/orders",
            {"type": "hold", "selected_offers": [holdable["id"]], "passengers": [{}]},
        )
        order_id = made["data"]["id"]

        def payment(amount: str) -> dict:
            return {
                "order_id": order_id,
                "payment": {"type": "balance", "amount": amount, "currency": "GBP"},
            }

        status, body = await post("/air/payments", payment("1.00"))
        assert (status, body["errors"][0]["code"]) == (422, "price_changed")
        status, body = await post("/air/payments", payment("455.00"))
        assert status == 201 and body["data"]["order_id"] == order_id
        status, body = await post("/air/payments", payment("455.00"))
        assert (status, body["errors"][0]["code"]) == (422, "already_paid")
        async with http.get(f"{stub.url}/air/orders/{order_id}") as resp:
            order = (await resp.json())["data"]
        assert order["payment_status"]["awaiting_payment"] is False
        async with http.get(f"{stub.url}/air/orders/ord_none") as resp:
            assert resp.status == 404
    assert len(stub.payments) == 1
