"""A local stand-in for CoinGecko's API (the two routes the crypto app uses), for tests that run
the platform end to end, and the answer bodies the simulator tests play with ``sim.fake_http``.

Routes (under ``/api/v3``, CoinGecko's shape):

- ``GET /simple/price?ids=bitcoin,ethereum&vs_currencies=usd&include_24hr_change=true&
  include_last_updated_at=true`` → ``{"bitcoin": {"usd": 67187.34, "usd_24h_change": 3.64,
  "last_updated_at": 1711356300}, …}`` (only the ids asked for, and only those it knows);
- ``GET /coins/{id}/market_chart?vs_currency=usd&days=1`` → ``{"prices": [[ms, price], …],
  "market_caps": [], "total_volumes": []}``: 289 points, one per 5 minutes, ending at the
  coin's price.

What it answers is set on the object: ``prices`` (by CoinGecko id), ``changes``,
``last_updated_at`` (epoch seconds; None: now), and ``failure`` — None, ``"429"`` (with
``Retry-After``), ``"500"``, ``"bad_json"`` or ``"timeout"`` (the answer never comes in time).
Every request is recorded in ``requests`` (path, query, headers) to check, e.g., the API key::

    async with CoinGeckoStub({"bitcoin": "67187.34"}) as stub:
        ...  # price_api_url = stub.url
        assert stub.requests[-1]["headers"]["x-cg-demo-api-key"] == "key"

Run it alone for a local platform: ``python -m tests.miniapps.crypto.coingecko_stub --port
8765`` and set the crypto app's ``price_api_url`` to ``http://127.0.0.1:8765/api/v3``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from aiohttp import web

DEFAULT_PRICES = {
    "bitcoin": "67187.34",
    "ethereum": "3401.12",
    "solana": "171.204",
    "cardano": "0.6123",
    "dogecoin": "0.17234",
    "ripple": "0.6011",
}
CHART_POINTS = 289
CHART_STEP_MS = 5 * 60_000
HANG_SECONDS = 30.0


def json_text(value: Any) -> str:
    """JSON with Decimals written as exact JSON numbers (as CoinGecko writes its numbers)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f'"{k}":{json_text(v)}' for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"cannot write {type(value)}")


def simple_price_body(
    prices: Mapping[str, Any],
    changes: Mapping[str, Any] | None = None,
    last_updated_at: int | Mapping[str, int] | None = None,
    ids: list[str] | None = None,
) -> str:
    """``/simple/price``'s answer for ``ids`` (default: every coin in ``prices``)."""
    answer = {}
    for gecko_id in ids if ids is not None else list(prices):
        if gecko_id not in prices:
            continue
        updated = last_updated_at
        if isinstance(updated, Mapping):
            updated = updated.get(gecko_id)
        entry: dict[str, Any] = {"usd": Decimal(str(prices[gecko_id]))}
        change = (changes or {}).get(gecko_id)
        entry["usd_24h_change"] = None if change is None else Decimal(str(change))
        entry["last_updated_at"] = int(time.time()) if updated is None else int(updated)
        answer[gecko_id] = entry
    return json_text(answer)


def chart_points(price: Any, end_ms: int, points: int = CHART_POINTS) -> list[list[Any]]:
    """A gentle rise to ``price`` over the last 24 hours, one point per 5 minutes."""
    last = Decimal(str(price))
    start = last * Decimal("0.97")
    rows = []
    for index in range(points):
        share = Decimal(index) / Decimal(points - 1)
        wobble = Decimal((index * 7919) % 13 - 6) / 1000 * last / 10
        value = last if index == points - 1 else start + (last - start) * share + wobble
        rows.append(
            [end_ms - (points - 1 - index) * CHART_STEP_MS, value.quantize(Decimal("1e-6"))]
        )
    return rows


def market_chart_body(price: Any, end_ms: int | None = None) -> str:
    end = int(time.time() * 1000) if end_ms is None else end_ms
    return json_text({"prices": chart_points(price, end), "market_caps": [], "total_volumes": []})


class CoinGeckoStub:
    """The CoinGecko-shaped server (see the module's docstring); ``url`` is its API base."""

    def __init__(
        self,
        prices: Mapping[str, Any] | None = None,
        *,
        changes: Mapping[str, Any] | None = None,
        last_updated_at: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.prices: dict[str, Any] = dict(DEFAULT_PRICES if prices is None else prices)
        self.changes: dict[str, Any] = dict(changes or {})
        self.last_updated_at = last_updated_at
        self.failure: str | None = None
        self.retry_after = 60
        self.requests: list[dict[str, Any]] = []
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()  # set by close(): a hanging answer ends then
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v3/simple/price", self._simple_price)
        app.router.add_get("/api/v3/coins/{id}/market_chart", self._market_chart)
        return app

    async def _failed(self) -> web.Response | None:
        if self.failure == "429":
            return web.json_response(
                {"status": {"error_code": 429, "error_message": "rate limited"}},
                status=429,
                headers={"Retry-After": str(self.retry_after)},
            )
        if self.failure == "500":
            return web.Response(status=500, text="internal error")
        if self.failure == "bad_json":
            return web.Response(status=200, text="{not json", content_type="application/json")
        if self.failure == "timeout":
            # No answer in time (the caller's timeout is far shorter); close() ends the wait.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), HANG_SECONDS)
            return web.Response(status=504, text="gateway timeout")
        return None

    def _record(self, request: web.Request) -> None:
        self.requests.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "headers": {k.lower(): v for k, v in request.headers.items()},
            }
        )

    async def _simple_price(self, request: web.Request) -> web.Response:
        self._record(request)
        failed = await self._failed()
        if failed is not None:
            return failed
        if request.query.get("vs_currencies") != "usd":
            return web.json_response({"error": "vs_currencies must be usd here"}, status=400)
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        body = simple_price_body(self.prices, self.changes, self.last_updated_at, ids)
        return web.Response(text=body, content_type="application/json")

    async def _market_chart(self, request: web.Request) -> web.Response:
        self._record(request)
        failed = await self._failed()
        if failed is not None:
            return failed
        gecko_id = request.match_info["id"]
        if gecko_id not in self.prices:
            return web.json_response({"error": "coin not found"}, status=404)
        body = market_chart_body(self.prices[gecko_id])
        return web.Response(text=body, content_type="application/json")

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{self._host}:{port}/api/v3"
        return self.url

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> CoinGeckoStub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="A local CoinGecko-shaped price API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    options = parser.parse_args()
    web.run_app(CoinGeckoStub().app(), host=options.host, port=options.port)


if __name__ == "__main__":
    main()
