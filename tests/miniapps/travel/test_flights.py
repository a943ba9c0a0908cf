"""Flight providers: the sample provider offline, and ``DuffelProvider`` over real HTTP against
the Duffel-shaped stub."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web

from tests.miniapps.travel.duffel_stub import API_KEY, DuffelStub
from tests.miniapps.travel.travel_fixtures import travel_module

flights = travel_module("flights")
DuffelProvider, Offer, ProviderError = flights.DuffelProvider, flights.Offer, flights.ProviderError
SampleProvider, to_decimal, to_minor = flights.SampleProvider, flights.to_decimal, flights.to_minor

NOW = dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.UTC)
PASSENGERS = [{"type": "adult", "given_name": "Ada", "family_name": "Lovelace"}]


def sample() -> SampleProvider:
    return SampleProvider(now=lambda: NOW)


# --- money ------------------------------------------------------------------------------------


def test_minor_units_round_trip() -> None:
    assert to_minor("123.45", "EUR") == 12345
    assert to_minor("1200", "JPY") == 1200
    assert to_decimal(12345, "EUR") == "123.45"
    assert to_decimal(5, "GBP") == "0.05"
    with pytest.raises(ProviderError) as err:
        to_minor("1.005", "EUR")
    assert err.value.code == "provider_error"


# --- sample provider --------------------------------------------------------------------------


async def test_sample_is_deterministic_with_direct_one_stop_and_holdable() -> None:
    day = dt.date(2027, 5, 1)
    first = await sample().search("LIS", "BER", day, 2)
    again = await sample().search("LIS", "BER", day, 2)
    assert first == again
    assert 2 <= len(first) <= 4
    assert [o.total_amount for o in first] == sorted(o.total_amount for o in first)
    assert {o.stops for o in first} == {0, 1}
    holdable = [o for o in first if o.holdable]
    assert len(holdable) == 1 and holdable[0].payment_required_by == NOW + dt.timedelta(hours=24)
    assert all(o.total_currency == "EUR" and o.expires_at > NOW for o in first)
    one_stop = next(o for o in first if o.stops == 1)
    legs = one_stop.slices[0].segments
    assert legs[0].destination == legs[1].origin  # the hub
    assert legs[1].departing_local > legs[0].arriving_local  # a real connection
    # longer trips cost more; more passengers cost more
    near = await sample().search("LIS", "OPO", day, 1)
    far = await sample().search("LIS", "NRT", day, 1)
    assert min(o.total_amount for o in far) > min(o.total_amount for o in near)
    single = await sample().search("LIS", "BER", day, 1)
    assert min(o.total_amount for o in first) > min(o.total_amount for o in single)


async def test_sample_local_times_in_each_airports_zone_across_dst() -> None:
    # 2027-03-28: Europe moves to summer time at 01:00 UTC; New York moved on 2027-03-14.
    day = dt.date(2027, 3, 28)
    offers = await sample().search("LHR", "JFK", day, 1)
    direct = [o for o in offers if o.stops == 0]
    assert direct
    for offer in direct:
        seg = offer.slices[0].segments[0]
        assert (seg.origin_zone, seg.destination_zone) == ("Europe/London", "America/New_York")
        dep, arr = seg.departing_local, seg.arriving_local
        assert dep.date() == day
        assert dep.utcoffset() == dt.timedelta(hours=1)  # BST after the change
        assert arr.utcoffset() == dt.timedelta(hours=-4)  # EDT
        assert arr > dep
        # the wall times the offer shows are the local ones
        assert seg.departing_at == dep.replace(tzinfo=None)
    # the week before, London is still on GMT
    before = await sample().search("LHR", "JFK", dt.date(2027, 3, 21), 1)
    seg = next(o for o in before if o.stops == 0).slices[0].segments[0]
    assert seg.departing_local.utcoffset() == dt.timedelta(0)
    assert seg.departing_local.tzinfo == ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("origin", "destination", "passengers", "code"),
    [
        ("XQX", "LIS", 1, "unknown_airport"),
        ("LIS", "lisbon", 1, "unknown_airport"),
        ("", "LIS", 1, "unknown_airport"),
        ("LIS", "LIS", 1, "bad_request"),
        ("LIS", "OPO", 0, "bad_request"),
    ],
)
async def test_sample_bad_search(origin: str, destination: str, passengers: int, code: str) -> None:
    with pytest.raises(ProviderError) as err:
        await sample().search(origin, destination, dt.date(2027, 5, 1), passengers)
    assert err.value.code == code


async def test_sample_order_is_idempotent_by_key() -> None:
    provider = sample()
    offers = await provider.search("LIS", "MAD", dt.date(2027, 5, 1), 1)
    offer = offers[0]
    assert await provider.find_order("trip-1-key-0001") is None
    order = await provider.create_order(
        offer.id, offer.total_amount, "EUR", PASSENGERS, "trip-1-key-0001"
    )
    again = await provider.create_order(
        offer.id, offer.total_amount, "EUR", PASSENGERS, "trip-1-key-0001"
    )
    assert again == order and order.type == "instant" and len(order.booking_reference) == 6
    assert await provider.find_order("trip-1-key-0001") == order
    other = await provider.create_order(
        offer.id, offer.total_amount, "EUR", PASSENGERS, "trip-1-key-0002"
    )
    assert other.id != order.id
    holdable = next(o for o in offers if o.holdable)
    held = await provider.create_order(
        holdable.id, holdable.total_amount, "EUR", PASSENGERS, "trip-1-key-0003", hold=True
    )
    assert held.type == "hold"
    with pytest.raises(ProviderError) as err:
        await provider.create_order(
            offer.id, offer.total_amount + 1, "EUR", PASSENGERS, "trip-1-key-0004"
        )
    assert err.value.code == "price_changed"
    assert await provider.find_order("trip-1-key-0004") is None  # nothing written
    with pytest.raises(ProviderError) as err:
        await provider.create_order("off_nope", 100, "EUR", PASSENGERS, "trip-1-key-0005")
    assert err.value.code == "offer_expired"


async def test_sample_reprice_refuses_an_expired_offer() -> None:
    provider = sample()
    offer = (await provider.search("LIS", "MAD", dt.date(2027, 5, 1), 1))[0]
    assert await provider.reprice(offer) == offer
    with pytest.raises(ProviderError) as err:
        await provider.reprice(offer, now=offer.expires_at)
    assert err.value.code == "offer_expired"


# --- Duffel over HTTP against the stub --------------------------------------------------------


class FetchTimeout(Exception):
    """What ``ctx.fetch`` raises on a timeout: a HostError-like error with ``code``."""

    code = "timeout"


def make_fetch(session: aiohttp.ClientSession, timeout: float) -> Any:
    async def fetch(
        url: str, *, method: str = "GET", headers: dict | None = None, body: str | None = None
    ) -> dict[str, Any]:
        try:
            async with session.request(
                method,
                url,
                headers=headers or {},
                data=body,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                return {
                    "status": resp.status,
                    "headers": dict(resp.headers),
                    "body": await resp.text(),
                }
        except TimeoutError:
            raise FetchTimeout(f"{url} did not answer") from None

    return fetch


@pytest.fixture
async def duffel(stub: DuffelStub) -> AsyncIterator[DuffelProvider]:
    async with aiohttp.ClientSession() as session:
        # the timeout only matters for the held-back answers, which never come in time
        yield DuffelProvider(make_fetch(session, timeout=0.5), API_KEY, base_url=stub.url)


async def test_duffel_search(stub: DuffelStub, duffel: DuffelProvider) -> None:
    offers = await duffel.search("LHR", "JFK", dt.date(2027, 5, 1), 2)
    request = stub.requests[-1]
    assert request["method"] == "POST"
    assert request["path"] == "/air/offer_requests?return_offers=true"
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert request["headers"]["Duffel-Version"] == "v2"
    assert request["body"]["data"]["slices"] == [
        {"origin": "LHR", "destination": "JFK", "departure_date": "2027-05-01"}
    ]
    assert len(request["body"]["data"]["passengers"]) == 2
    assert [o.total_amount for o in offers] == [31025, 42050, 45500]
    assert all(o.total_currency == "GBP" for o in offers)
    connecting, direct, holdable = offers
    assert connecting.stops == 1
    assert [s.destination for s in connecting.slices[0].segments] == ["DUB", "JFK"]
    assert direct.stops == 0 and not direct.holdable
    assert holdable.holdable and holdable.payment_required_by is not None
    seg = direct.slices[0].segments[0]
    assert seg.departing_local == dt.datetime(2027, 5, 1, 9, 0, tzinfo=ZoneInfo("Europe/London"))
    assert seg.arriving_local.utcoffset() == dt.timedelta(hours=-4)


async def test_duffel_no_offers(stub: DuffelStub, duffel: DuffelProvider) -> None:
    stub.no_offers.add(("LHR", "JFK"))
    with pytest.raises(ProviderError) as err:
        await duffel.search("LHR", "JFK", dt.date(2027, 5, 1), 1)
    assert err.value.code == "no_offers"


async def test_duffel_unknown_airport_makes_no_request(
    stub: DuffelStub, duffel: DuffelProvider
) -> None:
    with pytest.raises(ProviderError) as err:
        await duffel.search("LHR", "QQQ", dt.date(2027, 5, 1), 1)
    assert err.value.code == "unknown_airport"
    assert stub.requests == []


async def test_duffel_search_timeout(stub: DuffelStub, duffel: DuffelProvider) -> None:
    stub.slow_searches.add(("LHR", "JFK"))
    with pytest.raises(ProviderError) as err:
        await duffel.search("LHR", "JFK", dt.date(2027, 5, 1), 1)
    assert err.value.code == "timeout"


async def test_duffel_wrong_key_is_a_provider_error(stub: DuffelStub) -> None:
    async with aiohttp.ClientSession() as session:
        provider = DuffelProvider(make_fetch(session, 5), "wrong", base_url=stub.url)
        with pytest.raises(ProviderError) as err:
            await provider.search("LHR", "JFK", dt.date(2027, 5, 1), 1)
    assert err.value.code == "provider_error"


async def test_duffel_reprice_with_price_change(stub: DuffelStub, duffel: DuffelProvider) -> None:
    offers = await duffel.search("LHR", "JFK", dt.date(2027, 5, 1), 1)
    offer = offers[1]
    assert await duffel.reprice(offer) == offer
    assert stub.requests[-1]["method"] == "GET"
    assert stub.requests[-1]["path"] == f"/air/offers/{offer.id}"
    stub.price_changes[offer.id] = 1500
    with pytest.raises(ProviderError) as err:
        await duffel.reprice(offer)
    assert err.value.code == "price_changed"
    assert isinstance(err.value.offer, Offer) and err.value.offer.total_amount == 42050 + 1500
    # paying the old price is refused by the provider too, and nothing is booked
    with pytest.raises(ProviderError) as err:
        await duffel.create_order(offer.id, 42050, "GBP", PASSENGERS, "trip-9-order-0001")
    assert err.value.code == "price_changed"
    assert stub.orders == []


async def test_duffel_reprice_expired(stub: DuffelStub, duffel: DuffelProvider) -> None:
    offer = (await duffel.search("LHR", "JFK", dt.date(2027, 5, 1), 1))[0]
    with pytest.raises(ProviderError) as err:
        await duffel.reprice(offer, now=offer.expires_at + dt.timedelta(seconds=1))
    assert err.value.code == "offer_expired"
    with pytest.raises(ProviderError) as err:
        await duffel.create_order("off_gone", 100, "GBP", PASSENGERS, "trip-9-order-0002")
    assert err.value.code == "offer_expired"


async def test_duffel_create_order_instant_and_hold(
    stub: DuffelStub, duffel: DuffelProvider
) -> None:
    _connecting, direct, holdable = await duffel.search("LHR", "JFK", dt.date(2027, 5, 1), 1)
    order = await duffel.create_order(
        direct.id, direct.total_amount, "GBP", PASSENGERS, "trip-9-order-0003"
    )
    sent = stub.requests[-1]
    assert (sent["method"], sent["path"]) == ("POST", "/air/orders")
    assert sent["body"]["data"]["type"] == "instant"
    assert sent["body"]["data"]["metadata"] == {"idempotency_key": "trip-9-order-0003"}
    assert sent["body"]["data"]["payments"] == [
        {"type": "balance", "amount": "420.50", "currency": "GBP"}
    ]
    assert order.offer_id == direct.id and order.total_amount == 42050
    assert order.idempotency_key == "trip-9-order-0003" and order.booking_reference
    held = await duffel.create_order(
        holdable.id, holdable.total_amount, "GBP", PASSENGERS, "trip-9-order-0004", hold=True
    )
    assert held.type == "hold" and "payments" not in stub.requests[-1]["body"]["data"]
    # creating again with the same key: the caller looks it up first and finds it
    assert await duffel.find_order("trip-9-order-0003") == order
    assert len(stub.orders) == 2


async def test_duffel_order_timeout_then_lookup_books_once(
    stub: DuffelStub, duffel: DuffelProvider
) -> None:
    offers = await duffel.search("LHR", "JFK", dt.date(2027, 5, 1), 1)
    # other orders first, so the lookup pages through the list (the stub's pages hold 2)
    for n, offer in enumerate(offers):
        await duffel.create_order(
            offer.id, offer.total_amount, "GBP", PASSENGERS, f"other-order-{n:04d}"
        )
    target = offers[1]
    key = "trip-9-order-0005"
    stub.slow_orders = True
    with pytest.raises(ProviderError) as err:
        await duffel.create_order(target.id, target.total_amount, "GBP", PASSENGERS, key)
    assert err.value.code == "timeout"
    stub.slow_orders = False
    stub.release()
    # the order was made at the provider even though the answer never came: look it up first
    for n in range(3):  # newest first: push ours off the first page
        await duffel.create_order(
            offers[0].id, offers[0].total_amount, "GBP", PASSENGERS, f"later-order-{n:04d}"
        )
    found = await duffel.find_order(key)
    assert found is not None and found.offer_id == target.id
    lookups = [
        r for r in stub.requests if r["method"] == "GET" and r["path"].startswith("/air/orders")
    ]
    assert len(lookups) >= 2 and "after=" in lookups[-1]["path"]
    assert [o["metadata"]["idempotency_key"] for o in stub.orders].count(key) == 1
    assert await duffel.find_order("never-made-0001") is None


async def test_duffel_bad_order_input_makes_no_request(
    stub: DuffelStub, duffel: DuffelProvider
) -> None:
    for amount, currency, passengers, key in [
        (0, "GBP", PASSENGERS, "trip-9-order-0006"),
        (100, "gbp", PASSENGERS, "trip-9-order-0006"),
        (100, "GBP", [], "trip-9-order-0006"),
        (100, "GBP", PASSENGERS, "short"),
    ]:
        with pytest.raises(ProviderError) as err:
            await duffel.create_order("off_0001", amount, currency, passengers, key)
        assert err.value.code == "bad_request"
    assert stub.requests == []
    assert json.dumps(stub.orders) == "[]"


async def test_find_order_page_is_one_request_and_hands_on_the_cursor(
    stub: DuffelStub, duffel: DuffelProvider
) -> None:
    offers = await duffel.search("LHR", "JFK", dt.date(2027, 5, 1), 1)
    for n in range(5):  # the stub's pages hold 2, newest first: ours ends on the last page
        key = "trip-9-order-0007" if n == 0 else f"other-order-{n:04d}"
        await duffel.create_order(offers[0].id, offers[0].total_amount, "GBP", PASSENGERS, key)
    before = len(stub.requests)
    found, after = await duffel.find_order_page("trip-9-order-0007")
    assert found is None and after == stub.orders[-2]["id"]
    assert len(stub.requests) == before + 1  # one request, one page
    pages = 1
    while found is None and after:
        found, after = await duffel.find_order_page("trip-9-order-0007", after)
        pages += 1
    assert found is not None and found.idempotency_key == "trip-9-order-0007"
    assert (pages, after, len(stub.requests)) == (3, None, before + 3)
    assert "after=" in stub.requests[-1]["path"]
    assert await duffel.find_order_page("never-made-0001", None) == (None, stub.orders[-2]["id"])


async def test_a_create_that_timed_out_is_found_by_its_look_up_not_made_twice(
    stub: DuffelStub, duffel: DuffelProvider
) -> None:
    offer = (await duffel.search("LHR", "JFK", dt.date(2027, 5, 1), 1))[1]
    key = "trip-9-order-0008"
    stub.stalled_orders = True  # held back, nothing made: a timeout and nothing to find
    with pytest.raises(ProviderError) as err:
        await duffel.create_order(offer.id, offer.total_amount, "GBP", PASSENGERS, key)
    assert err.value.code == "timeout"
    assert await duffel.find_order_page(key) == (None, None)
    stub.stalled_orders = False
    stub.slow_orders = True  # made, but the answer comes too late
    with pytest.raises(ProviderError) as err:
        await duffel.create_order(offer.id, offer.total_amount, "GBP", PASSENGERS, key)
    assert err.value.code == "timeout"
    found, _ = await duffel.find_order_page(key)
    assert found is not None and found.offer_id == offer.id and found.idempotency_key == key
    assert len(stub.orders) == 1


async def test_a_refused_create_is_a_definitive_error(
    stub: DuffelStub, duffel: DuffelProvider
) -> None:
    with pytest.raises(ProviderError) as err:
        await duffel.create_order("off_gone", 100, "GBP", PASSENGERS, "trip-9-order-0009")
    assert err.value.code == "offer_expired"
    assert len(creates(stub)) == 1 and stub.orders == []


def creates(stub: DuffelStub) -> list[dict[str, Any]]:
    return [r for r in stub.requests if (r["method"], r["path"]) == ("POST", "/air/orders")]


async def test_sample_orders_are_one_page_and_idempotent_by_key() -> None:
    provider = sample()
    offer = (await provider.search("LIS", "MAD", dt.date(2027, 5, 1), 1))[0]
    assert await provider.find_order_page("k-000001") == (None, None)
    first = await provider.create_order(offer.id, offer.total_amount, "EUR", PASSENGERS, "k-000001")
    again = await provider.create_order(offer.id, offer.total_amount, "EUR", PASSENGERS, "k-000001")
    assert first == again
    assert await provider.find_order_page("k-000001") == (first, None)


# --- paying a hold order (pay_order / get_order) ----------------------------------------------


class PaymentsRoutes:
    """Duffel's ``GET /air/orders/{id}`` and ``POST /air/payments`` for one hold order: paid
    once (``already_paid`` after), the exact amount only (``price_changed``); ``slow`` pays but
    answers too late (the payment made, its answer lost)."""

    def __init__(self) -> None:
        self.order = {
            "id": "ord_hold_0001",
            "booking_reference": "ZZH001",
            "offer_id": "off_0002",
            "type": "hold",
            "total_amount": "455.00",
            "total_currency": "GBP",
            "metadata": {"idempotency_key": "bk0123456789-hold"},
            "payment_status": {
                "awaiting_payment": True,
                "payment_required_by": "2027-03-02T12:00:00Z",
            },
        }
        self.requests: list[tuple[str, str, Any]] = []
        self.payments: list[dict[str, Any]] = []
        self.slow = False
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/air/orders/{id}", self._get)
        app.router.add_post("/air/payments", self._pay)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    @staticmethod
    def _error(code: str) -> web.Response:
        return web.json_response({"errors": [{"code": code, "message": code}]}, status=422)

    async def _get(self, request: web.Request) -> web.Response:
        self.requests.append(("GET", request.path, None))
        if request.match_info["id"] != self.order["id"]:
            return web.json_response({"errors": [{"code": "not_found"}]}, status=404)
        return web.json_response({"data": self.order})

    async def _pay(self, request: web.Request) -> web.Response:
        body = (await request.json())["data"]
        self.requests.append(("POST", request.path, body))
        if not self.order["payment_status"]["awaiting_payment"]:
            return self._error("already_paid")
        if body["payment"]["amount"] != self.order["total_amount"]:
            return self._error("price_changed")
        self.order["payment_status"] = {"awaiting_payment": False, "payment_required_by": None}
        self.payments.append(body)
        if self.slow:
            await asyncio.sleep(2)  # paid, but the answer comes too late
        return web.json_response({"data": {"id": f"pay_{len(self.payments)}"}}, status=201)


@pytest.fixture
async def paying() -> AsyncIterator[tuple[PaymentsRoutes, DuffelProvider]]:
    routes = PaymentsRoutes()
    await routes.start()
    async with aiohttp.ClientSession() as session:
        yield routes, DuffelProvider(make_fetch(session, timeout=0.5), API_KEY, routes.url)
    assert routes.runner is not None
    await routes.runner.cleanup()


async def test_duffel_get_order_reads_its_payment_status(paying) -> None:
    routes, duffel = paying
    order = await duffel.get_order("ord_hold_0001")
    assert order.type == "hold" and order.awaiting_payment is True
    assert order.payment_required_by == dt.datetime(2027, 3, 2, 12, 0, tzinfo=dt.UTC)
    assert order.total_amount == 45500 and order.idempotency_key == "bk0123456789-hold"
    with pytest.raises(ProviderError) as err:
        await duffel.get_order("ord_nope")
    assert err.value.code == "provider_error"
    with pytest.raises(ProviderError) as err:
        await duffel.get_order("../air/offers")
    assert err.value.code == "bad_request"
    assert routes.requests == [
        ("GET", "/air/orders/ord_hold_0001", None),
        ("GET", "/air/orders/ord_nope", None),
    ]


async def test_duffel_pay_order_pays_once(paying) -> None:
    routes, duffel = paying
    assert await duffel.pay_order("ord_hold_0001", 45500, "GBP") is True
    assert routes.payments == [
        {
            "order_id": "ord_hold_0001",
            "payment": {"type": "balance", "amount": "455.00", "currency": "GBP"},
        }
    ]
    # paid already (``already_paid``): done, nothing paid twice
    assert await duffel.pay_order("ord_hold_0001", 45500, "GBP") is False
    assert len(routes.payments) == 1
    assert [r[:2] for r in routes.requests] == [("POST", "/air/payments")] * 2  # one each
    paid = await duffel.get_order("ord_hold_0001")
    assert paid.awaiting_payment is False and paid.booking_reference == "ZZH001"


async def test_duffel_pay_order_refuses_another_amount(paying) -> None:
    routes, duffel = paying
    with pytest.raises(ProviderError) as err:
        await duffel.pay_order("ord_hold_0001", 45000, "GBP")
    assert err.value.code == "price_changed"
    assert routes.payments == [] and routes.order["payment_status"]["awaiting_payment"] is True


async def test_duffel_pay_order_answer_lost_is_a_timeout_and_the_order_tells(paying) -> None:
    routes, duffel = paying
    routes.slow = True
    with pytest.raises(ProviderError) as err:
        await duffel.pay_order("ord_hold_0001", 45500, "GBP")  # paid, the answer too late
    assert err.value.code == "timeout"
    assert [r[:2] for r in routes.requests] == [("POST", "/air/payments")]  # nothing else
    assert (await duffel.get_order("ord_hold_0001")).awaiting_payment is False  # the look-up
    assert len(routes.payments) == 1


async def test_duffel_pay_order_bad_input_makes_no_request(paying) -> None:
    routes, duffel = paying
    for order_id, amount, currency in [
        ("ord/1", 100, "GBP"),
        ("", 100, "GBP"),
        ("ord_hold_0001", 0, "GBP"),
        ("ord_hold_0001", 100, "gbp"),
    ]:
        with pytest.raises(ProviderError) as err:
            await duffel.pay_order(order_id, amount, currency)
        assert err.value.code == "bad_request"
    assert routes.requests == []


async def test_sample_hold_order_is_paid_once() -> None:
    provider = sample()
    offers = await provider.search("LIS", "MAD", dt.date(2027, 5, 1), 1)
    offer = next(o for o in offers if o.holdable)
    held = await provider.create_order(
        offer.id, offer.total_amount, "EUR", PASSENGERS, "trip-1-hold-0001", hold=True
    )
    assert held.awaiting_payment is True
    assert held.payment_required_by == NOW + dt.timedelta(hours=24)
    assert await provider.get_order(held.id) == held
    with pytest.raises(ProviderError) as err:
        await provider.pay_order(held.id, offer.total_amount + 1, "EUR")
    assert err.value.code == "price_changed"
    assert await provider.pay_order(held.id, offer.total_amount, "EUR") is True
    paid = await provider.get_order(held.id)
    assert paid.awaiting_payment is False and paid.id == held.id
    assert await provider.pay_order(held.id, offer.total_amount, "EUR") is False  # once
    assert await provider.get_order(held.id) == paid
    assert await provider.find_order("trip-1-hold-0001") == paid
    with pytest.raises(ProviderError) as err:
        await provider.get_order("ord_sample_nope")
    assert err.value.code == "provider_error"
    # Another hold, paid two days later (by another process sharing the store): too late.
    second = await provider.create_order(
        offer.id, offer.total_amount, "EUR", PASSENGERS, "trip-1-hold-0002", hold=True
    )
    late = SampleProvider(provider._store, now=lambda: NOW + dt.timedelta(days=2))
    with pytest.raises(ProviderError) as err:
        await late.pay_order(second.id, offer.total_amount, "EUR")
    assert err.value.code == "offer_expired"
    assert (await late.get_order(second.id)).awaiting_payment is True
