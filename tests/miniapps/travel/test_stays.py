"""Stays: the sample provider on its own (deterministic hotels, prices in the trip's currency,
bookings idempotent by key), ``/trip stays`` and the ``search.stays`` view in the simulator, and
Duffel Stays through the stub over real HTTP — search shape, no results, a search that times out,
quote then booking exactly once even when the booking's answer is lost (``providers.step``, one
request per invocation)."""

from __future__ import annotations

import datetime as dt

import pytest

from miniapps.travel.texts import SAMPLE_LABEL
from tests.miniapps.travel.test_search import (
    attempt,
    book_in_steps,
    cards,
    offers,
    plan_trip,
    use_duffel,
)
from tests.miniapps.travel.travel_fixtures import MINUTE, app_module, open_group

MAY1, MAY5 = dt.date(2027, 5, 1), dt.date(2027, 5, 5)
LISBON = (38.7813, -9.13592)
GUEST = [{"given_name": "Ana", "family_name": "Silva"}]


# --- the sample provider ----------------------------------------------------------------------


@pytest.fixture
def stays(monkeypatch):
    """The app's ``stays`` module (its folder's modules import each other by bare name)."""
    open_group(monkeypatch)
    return app_module("stays")


async def test_sample_stays_are_deterministic_and_priced_in_the_currency(stays):
    SampleStays, MemoryStore = stays.SampleStays, stays.MemoryStore
    first = await SampleStays(MemoryStore()).search(*LISBON, MAY1, MAY5, 2)
    again = await SampleStays(MemoryStore()).search(*LISBON, MAY1, MAY5, 2)
    assert first == again and len(first) == 6
    assert [o.total_amount for o in first] == sorted(o.total_amount for o in first)
    assert all(o.total_currency == "EUR" and o.nights == 4 and o.rooms == 1 for o in first)
    assert all(abs(o.latitude - LISBON[0]) < 0.02 for o in first)
    assert len({o.accommodation_id for o in first}) == 6
    shorter = await SampleStays(MemoryStore()).search(*LISBON, MAY1, dt.date(2027, 5, 3), 2)
    assert shorter[0].total_amount < first[0].total_amount
    yen = await SampleStays(MemoryStore(), currency="JPY").search(*LISBON, MAY1, MAY5, 2)
    assert yen[0].total_currency == "JPY" and yen[0].total_amount > first[0].total_amount
    assert yen[0].rate_id != first[0].rate_id  # one place, two currencies: two rates
    assert yen[0].to_raw()["total_amount"].isdigit()  # no decimals in yen
    four = await SampleStays(MemoryStore()).search(*LISBON, MAY1, MAY5, 4)
    assert four[0].rooms == 2


@pytest.mark.parametrize(
    ("where", "check_in", "check_out", "guests"),
    [
        ((91.0, 0.0), MAY1, MAY5, 2),
        (LISBON, MAY5, MAY1, 2),
        (LISBON, MAY1, MAY1, 2),
        (LISBON, MAY1, MAY1 + dt.timedelta(days=31), 2),
        (LISBON, MAY1, MAY5, 0),
        (LISBON, MAY1, MAY5, 10),
    ],
)
async def test_sample_stays_refuse_bad_searches(stays, where, check_in, check_out, guests):
    with pytest.raises(app_module("flights").ProviderError) as err:
        await stays.SampleStays(stays.MemoryStore()).search(*where, check_in, check_out, guests)
    assert err.value.code == "bad_request"


async def test_sample_stay_quote_and_booking_once_per_key(stays):
    SampleStays, MemoryStore = stays.SampleStays, stays.MemoryStore
    ProviderError = app_module("flights").ProviderError
    store = MemoryStore()
    offer = (await SampleStays(store).search(*LISBON, MAY1, MAY5, 2))[0]
    other = SampleStays(store)  # another process, the same store
    quote = await other.quote(offer.rate_id)
    assert (quote.total_amount, quote.check_in, quote.check_out) == (offer.total_amount, MAY1, MAY5)
    assert await other.find_booking_page(quote.id, "bk0000000001") == (None, None)
    booking = await other.create_booking(quote.id, GUEST, "a@example.com", "+351", "bk0000000001")
    again = await SampleStays(store).create_booking(
        quote.id, GUEST, "a@example.com", "+351", "bk0000000001"
    )
    assert again == booking and booking.status == "confirmed" and len(booking.reference) == 6
    assert await other.find_booking_page(quote.id, "bk0000000001") == (booking, None)
    assert list(store.data["sample_stay_bookings"]) == ["bk0000000001"]
    different = await other.create_booking(quote.id, GUEST, "a@example.com", "+351", "bk0000000002")
    assert different.id != booking.id
    with pytest.raises(ProviderError) as err:
        await other.quote("rat_sample_gone")
    assert err.value.code == "offer_expired"
    with pytest.raises(ProviderError) as err:
        await other.create_booking("quo_gone", GUEST, "a@example.com", "+351", "bk0000000003")
    assert err.value.code == "offer_expired"


# --- /trip stays with the sample provider -----------------------------------------------------


async def test_stays_card_for_the_trips_dates_and_travellers(group):
    trip = await plan_trip(group)
    ana = group.people["ana"]
    await group.command(ana, "/trip stays")
    card = cards(group)[-1]
    assert card["title"] == "Stays in Lisbon · Sat 1 May → Wed 5 May"
    assert card["text"].startswith(SAMPLE_LABEL) and "4 nights for 2 guests" in card["text"]
    assert len(card["fields"]) == 5 and len(card["buttons"]) == 5
    stored = offers(group)
    docs = [stored[b["value"]] for b in card["buttons"]]
    assert [d["total"]["amount"] for d in docs] == sorted(d["total"]["amount"] for d in docs)
    for n, doc in enumerate(docs, start=1):
        assert card["buttons"][n - 1]["label"].startswith(f"{n}. Book together: €")
        assert doc["kind"] == "stay" and doc["trip_id"] == trip["id"] and doc["guests"] == 2
        assert doc["provider"] == "sample" and doc["label"] == SAMPLE_LABEL
        assert doc["total"]["currency"] == trip["currency"] == "EUR"
        assert doc["expires_ms"] == group.sim.now + 30 * MINUTE
        assert not doc["holdable"] and doc["pay_by_ms"] is None
        assert doc["raw"]["rate_id"] in group.sim.storage("sample_rates")
        (item,) = doc["items"]
        assert item["kind"] == "stay" and item["title"] == doc["raw"]["name"]
        assert (item["start"], item["end"]) == ("2027-05-01T15:00", "2027-05-05T11:00")
        assert item["zone"] == item["end_zone"] == "Europe/Lisbon"
        assert doc["title"].startswith(doc["raw"]["name"] + " · 4 nights · ")


async def test_stays_with_dates_and_guests(group):
    await plan_trip(group)
    ana = group.people["ana"]
    await group.command(ana, "/trip stays 2027-05-02 2027-05-04 guests 3")
    card = cards(group)[-1]
    assert card["title"] == "Stays in Lisbon · Sun 2 May → Tue 4 May"
    assert "2 nights for 3 guests" in card["text"] and "2 rooms" in card["fields"][0]["value"]
    await group.command(ana, "/trip stays guests 1")
    assert "4 nights for 1 guest," in cards(group)[-1]["text"]
    answer = await group.view(ana, "search.stays", {"check_in": "2027-05-03", "guests": 2})
    assert answer["label"] == SAMPLE_LABEL and len(answer["offers"]) == 5
    assert answer["offers"][0]["items"][0]["start"] == "2027-05-03T15:00"
    assert answer["offers"][0]["items"][0]["end"] == "2027-05-05T11:00"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("/trip stays 2027-05-04 2027-05-02", "Check-out must be after check-in"),
        ("/trip stays 2027-05-04 2027-05-04", "Check-out must be after check-in"),
        ("/trip stays 2027-02-01 2027-02-03", "is in the past"),
        ("/trip stays 2027-05-01 2027-06-15", "at most 30 nights"),
        ("/trip stays 2027-05-01 soon", "is not a check-out date"),
        ("/trip stays 2027-05-01", "Usage: /trip stays"),
        ("/trip stays guests", "Usage: /trip stays"),
        ("/trip stays guests 0", "Guests must be a number from 1 to 9"),
        ("/trip stays guests ten", "Guests must be a number from 1 to 9"),
        ("/trip stays guests 12", "Guests must be a number from 1 to 9"),
    ],
)
async def test_bad_stay_searches_answer_and_write_nothing(group, text, words):
    await plan_trip(group)
    ana = group.people["ana"]
    before, shown = group.snapshot(), len(group.sim.messages(group.chat))
    answer = await group.command(ana, text)
    assert words in answer["ephemeral"]
    assert group.snapshot() == before and len(group.sim.messages(group.chat)) == shown


async def test_stays_need_a_place_and_a_traveller(group):
    await plan_trip(group, command='/trip new "Atlantis" 2027-05-01 2027-05-05')
    ana = group.people["ana"]
    before = group.snapshot()
    answer = await group.command(ana, "/trip stays")
    assert "no place to search stays around" in answer["ephemeral"]
    assert (await group.refused(ana, "search.stays", {})).code == "no_destination"
    assert (await group.refused(group.person("eve"), "search.stays", {})).code == (
        "not_a_traveller"
    )
    assert (await group.refused(ana, "search.stays", {"guests": "many"})).code == "bad_guests"
    assert group.snapshot() == before


async def test_sample_stay_reprice_and_book_once_across_processes(group):
    await plan_trip(group)
    ana, ben = group.people["ana"], group.people["ben"]
    await group.command(ana, "/trip stays")
    providers = app_module("providers")
    doc = offers(group)[cards(group)[-1]["buttons"][0]["value"]]
    kind, fresh = await attempt(group, ben, lambda ctx: providers.reprice(ctx, doc))
    assert kind == "ok" and fresh["total"] == doc["total"] and fresh["raw"]["quote_id"]
    first = await book_in_steps(group, ana, doc, "bk0000000010")
    assert first[0] == "ok" and first[2] == ["quote", "create"]
    assert first[1]["order_id"].startswith("bok_sample_")
    # another process, from the quote again: the kept quote, the same booking
    assert await book_in_steps(group, ben, doc, "bk0000000010") == first
    assert list(group.sim.storage("sample_stay_bookings")) == ["bk0000000010"]
    assert list(group.sim.storage("stay_quotes")) == ["bk0000000010"]
    booked = group.sim.storage("sample_stay_bookings")["bk0000000010"]
    assert booked["guests"] == [{"given_name": "Ana", "family_name": "Ana"}]
    group.sim.now += 31 * MINUTE
    expired = await attempt(group, ana, lambda ctx: providers.reprice(ctx, doc))
    assert expired[:2] == ("error", "offer_expired")


# --- Duffel Stays through the stub -------------------------------------------------------------


async def test_duffel_stay_search_shape_and_cheapest_rates(group, monkeypatch, stub):
    await plan_trip(group)
    use_duffel(group, monkeypatch, stub)
    ana = group.people["ana"]
    await group.command(ana, "/trip stays guests 3")
    request = stub.requests[-1]
    assert (request["method"], request["path"]) == ("POST", "/stays/search")
    assert request["body"]["data"] == {
        "location": {
            "radius": 5,
            "geographic_coordinates": {"latitude": 38.7813, "longitude": -9.13592},
        },
        "check_in_date": "2027-05-01",
        "check_out_date": "2027-05-05",
        "rooms": 2,
        "guests": [{"type": "adult"}] * 3,
    }
    card = cards(group)[-1]
    assert SAMPLE_LABEL not in card["text"]
    assert [f["label"] for f in card["fields"]] == ["1. £160.00", "2. £382.00", "3. £720.00"]
    assert card["fields"][2]["value"].startswith("Stub Grand Hotel · ★★★★★")
    docs = [offers(group)[b["value"]] for b in card["buttons"]]
    assert all(d["provider"] == "duffel" and d["label"] is None for d in docs)
    # the cheaper of each hotel's two rates (the stub lists the dearer one first)
    assert all(stub.stay_rates[d["raw"]["rate_id"]]["amount"] == d["total"]["amount"] for d in docs)


async def test_duffel_stays_no_results_and_timeout(group, monkeypatch, stub):
    await plan_trip(group)
    use_duffel(group, monkeypatch, stub)
    ana = group.people["ana"]
    before, shown = group.snapshot(), len(cards(group))
    stub.stays_no_results = True
    answer = await group.command(ana, "/trip stays")
    assert answer["ephemeral"] == (
        "No stays available around Lisbon from Sat 1 May to Wed 5 May: try other dates."
    )
    stub.stays_no_results = False
    stub.slow_stay_searches = True
    answer = await group.command(ana, "/trip stays")
    assert "did not answer in time: try again" in answer["ephemeral"]
    assert (await group.refused(ana, "search.stays", {})).code == "provider_timeout"
    assert group.snapshot() == before and len(cards(group)) == shown


async def test_duffel_stay_quote_then_book_once_even_when_the_answer_is_lost(
    group, monkeypatch, stub
):
    await plan_trip(group)
    use_duffel(group, monkeypatch, stub)
    ana, ben = group.people["ana"], group.people["ben"]
    await group.command(ana, "/trip stays")
    providers = app_module("providers")
    doc = offers(group)[cards(group)[-1]["buttons"][0]["value"]]
    kind, fresh = await attempt(group, ana, lambda ctx: providers.reprice(ctx, doc))
    assert kind == "ok" and fresh["raw"]["quote_id"] in stub.stay_quotes
    stub.slow_stay_bookings = True  # booked at Duffel, the answer too late
    lost = await book_in_steps(group, ana, doc, "bk0000000020", until_timeout=True)
    assert lost == ("timeout", "lookup", ["quote", "create"])
    stub.slow_stay_bookings = False
    stub.release()
    first = await book_in_steps(group, ben, doc, "bk0000000020", phase="lookup")
    assert first[0] == "ok" and first[1]["reference"].startswith("STAY")
    assert first[2] == ["lookup"]  # found by its quote, not booked again
    assert len(stub.stay_bookings) == 1
    made = stub.stay_bookings[0]
    assert made["metadata"] == {"idempotency_key": "bk0000000020"}
    assert made["guests"] == [{"given_name": "Ana", "family_name": "Ana"}]
    assert made["email"] and made["phone_number"]
    creates = [r for r in stub.requests if (r["method"], r["path"]) == ("POST", "/stays/bookings")]
    assert len(creates) == 1
    # a second booking key is a second stay
    other = await book_in_steps(group, ana, doc, "bk0000000021")
    assert other[0] == "ok" and other[1]["order_id"] != first[1]["order_id"]
    assert len(stub.stay_bookings) == 2


async def test_duffel_stay_stalled_booking_times_out_and_books_later(group, monkeypatch, stub):
    await plan_trip(group)
    sent = use_duffel(group, monkeypatch, stub)
    ana = group.people["ana"]
    await group.command(ana, "/trip stays")
    doc = offers(group)[cards(group)[-1]["buttons"][1]["value"]]
    stub.stalled_stay_bookings = True
    stalled = await book_in_steps(group, ana, doc, "bk0000000030", until_timeout=True)
    assert stalled == ("timeout", "lookup", ["quote", "create"]) and stub.stay_bookings == []
    before = len(sent)
    looked = await book_in_steps(
        group, ana, doc, "bk0000000030", phase="lookup", until_timeout=True
    )
    assert looked == ("timeout", "lookup", ["lookup", "create"])  # not made: created again
    assert len(sent) == before + 2  # a request a step
    stub.stalled_stay_bookings = False
    stub.release()
    later = await book_in_steps(group, ana, doc, "bk0000000030", phase="lookup")
    assert later[0] == "ok" and len(stub.stay_bookings) == 1
    # the same quote throughout: the look-ups could find it
    quotes = {
        r["body"]["data"]["quote_id"] for r in stub.requests if r["path"] == "/stays/bookings"
    }
    assert quotes == {group.sim.storage("stay_quotes")["bk0000000030"]["quote_id"]}


async def test_duffel_stay_price_change_and_a_gone_rate(group, monkeypatch, stub):
    await plan_trip(group)
    use_duffel(group, monkeypatch, stub)
    ana = group.people["ana"]
    await group.command(ana, "/trip stays")
    providers = app_module("providers")
    doc = offers(group)[cards(group)[-1]["buttons"][0]["value"]]
    stub.stay_price_changes[doc["raw"]["rate_id"]] = 1000
    result = await attempt(group, ana, lambda ctx: providers.reprice(ctx, doc))
    assert result[:2] == ("error", "price_changed") and "now costs £170.00" in result[2]
    assert offers(group)[doc["id"]]["total"]["amount"] == 17000
    booked = await book_in_steps(group, ana, doc, "bk0000000040")
    assert booked[:2] == ("error", "price_changed") and stub.stay_bookings == []
    assert booked[3] == ["quote"]
    assert group.sim.storage("stay_quotes") == {}
    del stub.stay_rates[doc["raw"]["rate_id"]]
    gone = await attempt(group, ana, lambda ctx: providers.reprice(ctx, offers(group)[doc["id"]]))
    assert gone[:2] == ("error", "offer_expired")
