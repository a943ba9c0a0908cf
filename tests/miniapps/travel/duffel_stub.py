"""A local stub of Duffel's flights API (the routes ``miniapps.travel.flights`` uses), with the
cases Duffel's test mode has: no offers, holdable offers, a connecting itinerary, a search that
times out (the answer is held back until ``release()``), a price changed on re-price. Every
request is recorded (method, path with query, headers, JSON body)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from typing import Any

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

    def __init__(self) -> None:
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

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/air/offer_requests", self._offer_request)
        app.router.add_get("/air/offers/{id}", self._get_offer)
        app.router.add_post("/air/orders", self._create_order)
        app.router.add_get("/air/orders", self._list_orders)
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
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
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
