"""A local stub of Duffel's flights API (the routes ``miniapps.travel.flights`` uses), with the
cases Duffel's test mode has: no offers, holdable offers, a connecting itinerary, a search that
times out (the answer is held back until ``release()``), a price changed on re-price. Every
request is recorded (method, path with query, headers, JSON body).

Also: paying a hold order (``POST /air/payments``, ``GET /air/orders/{id}``), webhooks
(``POST /air/webhooks``; ``send_change`` posts a signed ``order.airline_initiated_change_detected``
event to every registered URL) and Duffel **Stays** (search, quotes, bookings). ``serve_fetch``
lets the SDK simulator's ``http.fetch`` reach this server for real."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

API_KEY = "duffel_test_stub_key"


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _segment(a: str, az: str, b: str, bz: str, dep: str, arr: str, n: int) -> dict[str, Any]:
    return {
        "origin": {"iata_code": a, "time_zone": az},
        "destination": {"iata_code": b, "time_zone": bz},
        "departing_at": dep,
        "arriving_at": arr,
        "marketing_carrier": {"iata_code": "ZZ", "name": "Duffel Airways"},
        "marketing_carrier_flight_number": str(n),
    }


class DuffelStub:
    """Routes: ``POST /air/offer_requests``, ``GET /air/offers/{id}``, ``POST /air/orders``,
    ``GET /air/orders`` (``limit`` / ``after`` cursor, newest first).

    Searches LHR→JFK (or any pair) answer three offers: a direct instant one, a direct holdable
    one (``payment_required_by``) and a connecting one via DUB. Configure cases with
    ``no_offers`` / ``slow_searches`` (sets of ``(origin, destination)``), ``price_changes``
    (offer id → minor units added on re-price and order), ``slow_orders`` (the order is created,
    its answer held back until ``release()``), ``stalled_orders`` (held back, nothing made)."""

    def __init__(self, now: Callable[[], dt.datetime] | None = None) -> None:
        # The stub's clock (offers' expiry, hold deadlines): pass the simulator's to agree with
        # the app's ``clock.now_ms``.
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        self.requests: list[dict[str, Any]] = []
        self.offers: dict[str, dict[str, Any]] = {}
        self.orders: list[dict[str, Any]] = []
        self.no_offers: set[tuple[str, str]] = set()
        self.slow_searches: set[tuple[str, str]] = set()
        self.price_changes: dict[str, int] = {}
        self.slow_orders = False
        self.stalled_orders = False  # held back before anything is made (a lost request)
        self.page_limit_cap = 2  # small pages, so paging is exercised
        self._release = asyncio.Event()
        self._ids = itertools.count(1)
        self.runner: web.AppRunner | None = None
        self.url = ""
        # Paying hold orders: ``payments`` made; ``slow_payments``: made, answer held back.
        self.payments: list[dict[str, Any]] = []
        self.slow_payments = False
        # Webhooks: registered ones, the events sent, and how an event reaches a URL
        # (``deliver(url, body, headers) -> status``; default: a real HTTP POST).
        self.webhooks: list[dict[str, Any]] = []
        self.sent_events: list[dict[str, Any]] = []
        self.deliver: Callable[[str, str, dict[str, str]], Awaitable[int]] = _http_post
        # Stays: ``stays_no_results``, ``slow_stay_searches`` (held back until ``release()``),
        # ``stay_price_changes`` (rate id → minor units added on quote), ``slow_stay_bookings``
        # (made, answer held back), ``stalled_stay_bookings`` (held back, nothing made).
        self.stay_rates: dict[str, dict[str, Any]] = {}
        self.stay_quotes: dict[str, dict[str, Any]] = {}
        self.stay_bookings: list[dict[str, Any]] = []
        self.stays_no_results = False
        self.slow_stay_searches = False
        self.stay_price_changes: dict[str, int] = {}
        self.slow_stay_bookings = False
        self.stalled_stay_bookings = False

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/air/offer_requests", self._offer_request)
        app.router.add_get("/air/offers/{id}", self._get_offer)
        app.router.add_post("/air/orders", self._create_order)
        app.router.add_get("/air/orders", self._list_orders)
        app.router.add_get("/air/orders/{id}", self._get_order)
        app.router.add_post("/air/payments", self._pay)
        app.router.add_post("/air/webhooks", self._create_webhook)
        app.router.add_delete("/air/webhooks/{id}", self._delete_webhook)
        app.router.add_post("/stays/search", self._stays_search)
        app.router.add_post("/stays/quotes", self._stays_quote)
        app.router.add_post("/stays/bookings", self._stays_book)
        app.router.add_get("/stays/bookings", self._stays_list)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def release(self) -> None:
        self._release.set()

    async def close(self) -> None:
        self.release()
        if self.runner is not None:
            await self.runner.cleanup()

    # -- helpers

    async def _record(self, request: web.Request) -> dict[str, Any] | None:
        raw = await request.text()
        body = json.loads(raw) if raw else None
        self.requests.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": dict(request.headers),
                "body": body,
            }
        )
        return body

    @staticmethod
    def _error(status: int, code: str, message: str) -> web.Response:
        return web.json_response(
            {"errors": [{"code": code, "title": code, "message": message}]}, status=status
        )

    def _authorised(self, request: web.Request) -> bool:
        return (
            request.headers.get("Authorization") == f"Bearer {API_KEY}"
            and request.headers.get("Duffel-Version") == "v2"
        )

    def _priced(self, offer_id: str) -> dict[str, Any]:
        offer = dict(self.offers[offer_id])
        delta = self.price_changes.get(offer_id, 0)
        offer["total_amount"] = f"{float(offer['total_amount']) + delta / 100:.2f}"
        return offer

    def _make_offer(
        self, slices: list[dict[str, Any]], amount: str, holdable: bool, now: dt.datetime
    ) -> dict[str, Any]:
        offer_id = f"off_{next(self._ids):04d}"
        self.offers[offer_id] = {
            "id": offer_id,
            "total_amount": amount,
            "total_currency": "GBP",
            "expires_at": _iso(now + dt.timedelta(minutes=20)),
            "slices": slices,
            "payment_requirements": {
                "requires_instant_payment": not holdable,
                "payment_required_by": _iso(now + dt.timedelta(days=1)) if holdable else None,
                "price_guaranteed_until": None,
            },
        }
        return self.offers[offer_id]

    # -- routes

    async def _offer_request(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if not self._authorised(request):
            return self._error(401, "unauthorized", "bad token")
        if request.query.get("return_offers") != "true":
            return self._error(422, "validation_error", "stub answers return_offers=true only")
        first = body["data"]["slices"][0]
        a, b, day = first["origin"], first["destination"], first["departure_date"]
        if (a, b) in self.slow_searches:
            await self._release.wait()
        now = self.now().replace(microsecond=0)
        offers = []
        if (a, b) not in self.no_offers:
            az, bz, hz = "Europe/London", "America/New_York", "Europe/Dublin"
            direct = [_segment(a, az, b, bz, f"{day}T09:00:00", f"{day}T12:05:00", 1)]
            late = [_segment(a, az, b, bz, f"{day}T17:30:00", f"{day}T20:40:00", 2)]
            via = [
                _segment(a, az, "DUB", hz, f"{day}T07:00:00", f"{day}T08:20:00", 3),
                _segment("DUB", hz, b, bz, f"{day}T10:30:00", f"{day}T12:50:00", 4),
            ]
            offers = [
                self._make_offer([{"segments": direct}], "420.50", False, now),
                self._make_offer([{"segments": late}], "455.00", True, now),
                self._make_offer([{"segments": via}], "310.25", False, now),
            ]
        return web.json_response(
            {"data": {"id": f"orq_{next(self._ids):04d}", "offers": offers}}, status=201
        )

    async def _get_offer(self, request: web.Request) -> web.Response:
        await self._record(request)
        if not self._authorised(request):
            return self._error(401, "unauthorized", "bad token")
        offer_id = request.match_info["id"]
        if offer_id not in self.offers:
            return self._error(404, "not_found", "no such offer")
        return web.json_response({"data": self._priced(offer_id)})

    async def _create_order(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if not self._authorised(request):
            return self._error(401, "unauthorized", "bad token")
        if self.stalled_orders:
            await self._release.wait()
            return self._error(504, "gateway_timeout", "too late")
        data = body["data"]
        offer_id = data["selected_offers"][0]
        if offer_id not in self.offers:
            return self._error(422, "offer_no_longer_available", "the offer is gone")
        offer = self._priced(offer_id)
        if data["type"] == "instant":
            paid = data["payments"][0]
            if paid["amount"] != offer["total_amount"]:
                return self._error(422, "price_changed", "the offer's price has changed")
        elif offer["payment_requirements"]["requires_instant_payment"]:
            return self._error(422, "validation_error", "this offer cannot be held")
        n = next(self._ids)
        order = {
            "id": f"ord_{n:04d}",
            "booking_reference": f"ZZ{n:04d}",
            "offer_id": offer_id,
            "type": data["type"],
            "total_amount": offer["total_amount"],
            "total_currency": offer["total_currency"],
            "metadata": data.get("metadata") or {},
            "passengers": data["passengers"],
            "slices": copy.deepcopy(offer["slices"]),
            "payment_status": {
                "awaiting_payment": data["type"] == "hold",
                "payment_required_by": offer["payment_requirements"]["payment_required_by"]
                if data["type"] == "hold"
                else None,
            },
        }
        self.orders.append(order)
        if self.slow_orders:
            await self._release.wait()  # created, but the answer comes too late
        return web.json_response({"data": order}, status=201)

    async def _list_orders(self, request: web.Request) -> web.Response:
        await self._record(request)
        if not self._authorised(request):
            return self._error(401, "unauthorized", "bad token")
        limit = min(int(request.query.get("limit", "50")), self.page_limit_cap)
        newest_first = list(reversed(self.orders))
        start = 0
        if "after" in request.query:
            ids = [o["id"] for o in newest_first]
            start = ids.index(request.query["after"]) + 1
        page = newest_first[start : start + limit]
        more = start + limit < len(newest_first)
        meta = {"limit": limit, "after": page[-1]["id"] if page and more else None}
        return web.json_response({"data": page, "meta": meta})

    # -- paying a hold order

    def order(self, order_id: str) -> dict[str, Any] | None:
        return next((o for o in self.orders if o["id"] == order_id), None)

    async def _get_order(self, request: web.Request) -> web.Response:
        await self._record(request)
        if not self._authorised(request):
            return self._error(401, "unauthorized", "bad token")
        order = self.order(request.match_info["id"])
        if order is None:
            return self._error(404, "not_found", "no such order")
        return web.json_response({"data": order})

    async def _pay(self, request: web.Request) -> web.Response:
        """``POST /air/payments`` {order_id, payment: {type, amount, currency}}: pays a hold order
        exactly once (``already_paid`` after that), for exactly its amount (``price_changed``)."""
        body = await self._record(request)
        if not self._authorised(request):
            return self._error(401, "unauthorized", "bad token")
        data = body["data"]
        order = self.order(data.get("order_id", ""))
        if order is None:
            return self._error(404, "not_found", "no such order")
        if not order["payment_status"]["awaiting_payment"]:
            return self._error(422, "already_paid", "this order has been paid for")
        paid = data.get("payment") or {}
        if (paid.get("amount"), paid.get("currency")) != (
            order["total_amount"],
            order["total_currency"],
        ):
            return self._error(422, "price_changed", "the amount is not the order's price")
        order["payment_status"]["awaiting_payment"] = False
        payment = {
            "id": f"pay_{next(self._ids):04d}",
            "order_id": order["id"],
            "type": paid.get("type", "balance"),
            "amount": paid["amount"],
            "currency": paid["currency"],
            "created_at": _iso(self.now()),
        }
        self.payments.append(payment)
        if self.slow_payments:
            await self._release.wait()  # paid, but the answer comes too late
        return web.json_response({"data": payment}, status=201)

    # -- webhooks

    async def _create_webhook(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if not self._authorised(request):
            return self._error(401, "unauthorized", "bad token")
        data = body["data"]
        if not str(data.get("url", "")).startswith(("http://", "https://")) or not data.get(
            "events"
        ):
            return self._error(422, "validation_error", "a webhook needs a url and events")
        n = next(self._ids)
        hook = {
            "id": f"sev_{n:04d}",
            "url": data["url"],
            "events": list(data["events"]),
            "secret": f"stub_webhook_secret_{n:04d}",
            "active": True,
            "live_mode": False,
            "created_at": _iso(self.now()),
        }
        self.webhooks.append(hook)
        return web.json_response({"data": hook}, status=201)

    async def _delete_webhook(self, request: web.Request) -> web.Response:
        await self._record(request)
        if not self._authorised(request):
            return self._error(401, "unauthorized", "bad token")
        before = len(self.webhooks)
        self.webhooks = [h for h in self.webhooks if h["id"] != request.match_info["id"]]
        if len(self.webhooks) == before:
            return self._error(404, "not_found", "no such webhook")
        return web.Response(status=204)

    async def send_change(
        self,
        order_id: str,
        new_departure: str,
        *,
        event_id: str | None = None,
        secret: str | None = None,
        signature: str | None = None,
    ) -> list[int]:
        """The airline moved the order's flights: every segment shifts by the same amount so
        that the first departs at ``new_departure`` (local, ``"2027-05-01T09:40:00"``). Posts a
        signed ``order.airline_initiated_change_detected`` event to every registered webhook
        (``secret``/``signature``: sign it wrongly) and returns each delivery's HTTP status."""
        order = self.order(order_id)
        if order is None:
            raise KeyError(order_id)
        removed = copy.deepcopy(order["slices"])
        first = dt.datetime.fromisoformat(removed[0]["segments"][0]["departing_at"])
        shift = dt.datetime.fromisoformat(new_departure) - first
        added = copy.deepcopy(removed)
        for flight_slice in added:
            for segment in flight_slice["segments"]:
                for key in ("departing_at", "arriving_at"):
                    moved = dt.datetime.fromisoformat(segment[key]) + shift
                    segment[key] = moved.isoformat()
        order["slices"] = added
        n = next(self._ids)
        event = {
            "id": event_id or f"wev_{n:04d}",
            "type": "order.airline_initiated_change_detected",
            "live_mode": False,
            "created_at": _iso(self.now()),
            "data": {
                "object": {
                    "id": f"oaic_{n:04d}",
                    "order_id": order_id,
                    "added": added,
                    "removed": removed,
                }
            },
        }
        return await self.send_event(event, secret=secret, signature=signature)

    async def send_event(
        self, event: dict[str, Any], *, secret: str | None = None, signature: str | None = None
    ) -> list[int]:
        """Post ``event`` (signed with each webhook's secret, or ``secret``; or with the header
        ``signature`` as given) to every active webhook that asked for its type → statuses."""
        body = json.dumps(event)
        self.sent_events.append(event)
        statuses = []
        for hook in list(self.webhooks):
            if not hook["active"] or event["type"] not in hook["events"]:
                continue
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "Duffel-Webhooks/1.0",
                "X-Duffel-Signature": signature
                if signature is not None
                else sign_webhook(secret or hook["secret"], body),
            }
            statuses.append(await self.deliver(hook["url"], body, headers))
        return statuses

    # -- stays

    async def _stays_search(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if not self._authorised(request):
            return self._error(401, "unauthorized", "bad token")
        data = body["data"]
        point = (data.get("location") or {}).get("geographic_coordinates") or {}
        if "latitude" not in point or "longitude" not in point or not data.get("guests"):
            return self._error(422, "validation_error", "location and guests are required")
        if self.slow_stay_searches:
            await self._release.wait()
        check_in = dt.date.fromisoformat(data["check_in_date"])
        check_out = dt.date.fromisoformat(data["check_out_date"])
        nights = (check_out - check_in).days
        results = []
        hotels = (
            ("Stub Grand Hotel", 5, 18000),
            ("Stub City Rooms", 3, 9550),
            ("Stub Hostel", 2, 4000),
        )
        for name, rating, per_night in [] if self.stays_no_results else hotels:
            n = next(self._ids)
            accommodation = {
                "id": f"acc_{n:04d}",
                "name": name,
                "rating": rating,
                "location": {
                    "geographic_coordinates": {
                        "latitude": point["latitude"] + n / 1000,
                        "longitude": point["longitude"],
                    },
                    "address": {"line_one": f"{n} Stub Street", "city_name": "Stubville"},
                },
            }
            rates = []
            for extra in (2000, 0):  # a dearer rate first: the cheapest is not always first
                rate_id = f"rat_{next(self._ids):04d}"
                amount = (per_night + extra) * nights
                rates.append(
                    {"id": rate_id, "total_amount": f"{amount / 100:.2f}", "total_currency": "GBP"}
                )
                self.stay_rates[rate_id] = {
                    "amount": amount,
                    "accommodation": accommodation,
                    "check_in_date": data["check_in_date"],
                    "check_out_date": data["check_out_date"],
                }
            results.append(
                {
                    "id": f"sr_{n:04d}",
                    "accommodation": {**accommodation, "rooms": [{"name": "Room", "rates": rates}]},
                }
            )
        return web.json_response(
            {"data": {"results": results, "created_at": _iso(self.now())}}, status=201
        )

    async def _stays_quote(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if not self._authorised(request):
            return self._error(401, "unauthorized", "bad token")
        rate_id = body["data"].get("rate_id", "")
        rate = self.stay_rates.get(rate_id)
        if rate is None:
            return self._error(422, "rate_unavailable", "this rate is no longer available")
        amount = rate["amount"] + self.stay_price_changes.get(rate_id, 0)
        quote = {
            "id": f"quo_{next(self._ids):04d}",
            "total_amount": f"{amount / 100:.2f}",
            "total_currency": "GBP",
            "check_in_date": rate["check_in_date"],
            "check_out_date": rate["check_out_date"],
            "accommodation": rate["accommodation"],
        }
        self.stay_quotes[quote["id"]] = quote
        return web.json_response({"data": quote}, status=201)

    async def _stays_book(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if not self._authorised(request):
            return self._error(401, "unauthorized", "bad token")
        if self.stalled_stay_bookings:
            await self._release.wait()
            return self._error(504, "gateway_timeout", "too late")
        data = body["data"]
        quote = self.stay_quotes.get(data.get("quote_id", ""))
        if quote is None:
            return self._error(422, "quote_not_found", "no such quote")
        if not data.get("guests") or not data.get("email") or not data.get("phone_number"):
            return self._error(422, "validation_error", "guests, email and phone are required")
        n = next(self._ids)
        booking = {
            "id": f"bok_{n:04d}",
            "reference": f"STAY{n:04d}",
            "status": "confirmed",
            "quote_id": quote["id"],
            "metadata": data.get("metadata") or {},
            "guests": data["guests"],
            "email": data["email"],
            "phone_number": data["phone_number"],
            "accommodation": quote["accommodation"],
            "check_in_date": quote["check_in_date"],
            "check_out_date": quote["check_out_date"],
            "confirmed_at": _iso(self.now()),
        }
        self.stay_bookings.append(booking)
        if self.slow_stay_bookings:
            await self._release.wait()  # booked, but the answer comes too late
        return web.json_response({"data": booking}, status=201)

    async def _stays_list(self, request: web.Request) -> web.Response:
        await self._record(request)
        if not self._authorised(request):
            return self._error(401, "unauthorized", "bad token")
        limit = min(int(request.query.get("limit", "50")), self.page_limit_cap)
        newest_first = list(reversed(self.stay_bookings))
        start = 0
        if "after" in request.query:
            start = [b["id"] for b in newest_first].index(request.query["after"]) + 1
        page = newest_first[start : start + limit]
        more = start + limit < len(newest_first)
        meta = {"limit": limit, "after": page[-1]["id"] if page and more else None}
        return web.json_response({"data": page, "meta": meta})


def sign_webhook(secret: str, body: str, timestamp: int | None = None) -> str:
    """Duffel's ``X-Duffel-Signature``: ``t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


async def _http_post(url: str, body: str, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body.encode(), headers=headers) as resp,
    ):
        return resp.status


def serve_fetch(sim, monkeypatch, *, timeout: float = 0.5) -> list[dict[str, Any]]:
    """Make the simulator's ``http.fetch`` a real HTTP request (to the stub on loopback): the
    host's checks still apply (permission, ``http.allowed_domains``, ``sim.fail_next``); an
    answer slower than ``timeout`` seconds fails like the host's, ``HostError`` code
    ``timeout``. Returns the list the requests are recorded in (``url``, ``method`` …)."""
    from sdk import simulator as simulator_module
    from sdk.capabilities import check_fetch_target
    from sdk.errors import HostError

    sent: list[dict[str, Any]] = []

    def effect(simulator, call, params):
        check_fetch_target(simulator.manifest, params["url"])
        return {"_live": dict(params)}

    monkeypatch.setitem(simulator_module._EFFECTS, "http.fetch", effect)
    checked = sim._capability

    async def capability(method: str, params: dict[str, Any]) -> dict[str, Any]:
        result = await checked(method, params)
        if method != "http.fetch" or "_live" not in result:
            return result
        request = result["_live"]
        sent.append(request)
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.request(
                    request.get("method") or "GET",
                    request["url"],
                    headers=request.get("headers") or {},
                    data=request.get("body"),
                    timeout=aiohttp.ClientTimeout(total=timeout),
                ) as resp,
            ):
                return {
                    "status": resp.status,
                    "headers": dict(resp.headers),
                    "body": await resp.text(),
                }
        except TimeoutError:
            raise HostError(f"{request['url']} did not answer in time", code="timeout") from None
        except aiohttp.ClientError as exc:
            raise HostError(f"{request['url']}: {exc}", code="fetch_failed") from None

    monkeypatch.setattr(sim, "_capability", capability)
    return sent
