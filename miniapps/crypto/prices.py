"""Prices: the provider adapter (``quote``, ``quotes``, ``history``) and ``/crypto price``.

Two providers, chosen by the app setting ``price_provider``:

- ``simulated`` (the default, works offline): a **deterministic random walk per coin**, one
  point per 5 minutes. A price is a pure function of the coin and the time (integer arithmetic
  on SHAKE-256 noise, then ``Decimal.exp``, which is correctly rounded), so every node computes
  the same price with nothing stored. Within a day the walk is a random walk pinned to daily
  anchors (a Brownian bridge); the anchors are a sum of octaves of value noise (periods of 1 to
  64 days) around the coin's start price, so prices wander plausibly without drifting away.
  Every answer is labelled simulated (``texts.SIMULATED``) and is never stale.
- ``coingecko``: CoinGecko's API through ``http.fetch`` — ``/simple/price`` (every coin in one
  request, with the 24 h change and ``last_updated_at``) and ``/coins/{id}/market_chart?days=1``
  for the chart; the key ``price_api_key`` is sent as ``x-cg-demo-api-key`` (``x-cg-pro-api-key``
  for pro-api.coingecko.com). JSON numbers are read as ``Decimal``.

**Cache.** Quotes are kept in app storage (``prices/<coin>``) and refetched at most once a
minute (``CACHE_MS``) for everybody on every node: whoever finds the cache old claims the
refresh with a conditional write of ``price_refresh/coingecko`` (``lease_until``); the others
answer from the cache meanwhile. A coin never fetched before is fetched by whoever needs it.

**Staleness.** A quote is ``stale`` when its ``last_updated_at`` is older than
``stale_after_minutes`` (setting, default 5), or when the provider failed (timeout, 429, 5xx,
bad JSON) since it was fetched: it is then shown as stale and never used to fill an order. After
a failure nobody asks the provider again for ``FAILURE_BACKOFF_MS`` (a 429's ``Retry-After``
when it says longer). With no cached quote at all the answer is ``prices_unavailable``.

Prices are rounded to the coin's price step (BTC and ETH 0.01, SOL 0.001: the pairs' ticks).

**The assistant's tool** ``price {coins}`` (``TOOLS``, read-only: a tool may not write) reads
the cache and, when it is old, asks the provider itself without caching the answer (nor claiming
the refresh); its card is the ``/crypto price`` card, its chart only when the same picture was
uploaded before (a tool uploads nothing), not kept live (no timer).

``/crypto price <coins…>`` posts a card: each coin's price in the reader's locale (USD), the
24 h change, when it was updated (in the reader's zone), a stale marker, and a sparkline of the
last 24 hours (``sparkline.py``). The card stays live for ``LIVE_MS``: the timer
``prices.refresh`` (key ``live:<message>``) updates it in place each minute when it changed.

Data: ``prices/<coin>`` ``{coin, price, change_24h, at_ms, fetched_at, source}`` (strings for
Decimals); ``price_refresh/coingecko`` ``{lease_until, failed_at?, error?}``;
``price_history/<coin>`` ``{points: [str], fetched_at}``; ``sparklines/<coins>`` (sparkline.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import clock
import sparkline
from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, format_time
from babel.numbers import format_currency, format_percent
from texts import SIMULATED

from sdk import Button, Card, Field, HostError, NotFound, Reply

log = logging.getLogger("app.crypto.prices")


@dataclass(frozen=True)
class Coin:
    symbol: str  # "btc"
    gecko_id: str  # CoinGecko's id: "bitcoin"
    name: str
    start: Decimal  # the simulated market's central price
    daily_vol_ppm: int  # the simulated market's daily volatility, in millionths of log price
    step: Decimal  # the price step prices are rounded to


COINS: dict[str, Coin] = {
    c.symbol: c
    for c in (
        Coin("btc", "bitcoin", "Bitcoin", Decimal("60000"), 30_000, Decimal("0.01")),
        Coin("eth", "ethereum", "Ethereum", Decimal("3000"), 40_000, Decimal("0.01")),
        Coin("sol", "solana", "Solana", Decimal("150"), 60_000, Decimal("0.001")),
        Coin("ada", "cardano", "Cardano", Decimal("0.5"), 50_000, Decimal("0.0001")),
        Coin("doge", "dogecoin", "Dogecoin", Decimal("0.15"), 70_000, Decimal("0.00001")),
        Coin("xrp", "ripple", "XRP", Decimal("0.6"), 50_000, Decimal("0.0001")),
    )
}
_ALIASES = {
    **{c.symbol: c.symbol for c in COINS.values()},
    **{c.gecko_id: c.symbol for c in COINS.values()},
    **{c.name.lower(): c.symbol for c in COINS.values()},
}
PROVIDERS = ("simulated", "coingecko")
DEFAULT_API_URL = "https://api.coingecko.com/api/v3"
DEFAULT_STALE_MINUTES = 5
MINUTE_MS = 60_000
BUCKET_MS = 5 * MINUTE_MS  # the simulated market's step, and the chart's
DAY_BUCKETS = 24 * 60 * 60_000 // BUCKET_MS  # 288
CACHE_MS = MINUTE_MS  # a cached quote younger than this is served without asking the provider
HISTORY_CACHE_MS = BUCKET_MS
LEASE_MS = 15_000  # a refresh claimed and not finished within this is claimed again
FAILURE_BACKOFF_MS = 30_000
RETRY_AFTER_MAX_MS = 5 * MINUTE_MS
LIVE_MS = 10 * MINUTE_MS
CHART_COINS = 4  # coins drawn in one card's sparkline (a small multiple)
NUMBER_MAX = Decimal(10) ** 12  # a provider's number past this is not a price nor a change
PRICES, REFRESH, HISTORY = "prices", "price_refresh", "price_history"
REFRESH_KEY = "coingecko"
LIVE_TIMER = "prices.refresh"
USAGE = "Usage: /crypto price <coins> — e.g. /crypto price btc eth"


class PriceError(Exception):
    """A refusal with a stable ``code`` (``unknown_coin``, ``no_coins``, ``prices_unavailable``)
    and a ``message`` to show as is."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ProviderError(Exception):
    """The provider failed: ``code`` (``timeout``, ``rate_limited``, ``http_500``,
    ``bad_json``, ``fetch_failed``); ``retry_after_ms`` from a 429's ``Retry-After``."""

    def __init__(self, code: str, retry_after_ms: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.retry_after_ms = retry_after_ms


@dataclass(frozen=True)
class Quote:
    """One coin's price in USD: ``at_ms`` is when the provider last updated it (epoch ms);
    ``stale`` quotes are shown as such and never used to fill an order."""

    coin: str
    price: Decimal
    change_24h: Decimal | None  # percent, e.g. Decimal("2.31")
    at_ms: int
    stale: bool
    source: str  # "simulated" | "coingecko"

    def to_json(self) -> dict[str, Any]:
        return {
            "coin": self.coin,
            "price": str(self.price),
            "change_24h": None if self.change_24h is None else str(self.change_24h),
            "at_ms": self.at_ms,
            "stale": self.stale,
            "source": self.source,
        }


# --- coins and settings ------------------------------------------------------------------


def coin_of(text: str) -> str | None:
    """The coin ``text`` names (``"BTC"``, ``"bitcoin"``, ``"Bitcoin"`` → ``"btc"``), else None."""
    return _ALIASES.get(str(text).strip().lower()) if text is not None else None


def known_coins() -> str:
    return ", ".join(COINS)


def parse_coins(args: list[str]) -> list[str]:
    """The coins named in ``args`` (spaces or commas; duplicates once, in order). Raises
    ``PriceError`` ``no_coins`` or ``unknown_coin`` naming every unknown one."""
    words = [w for arg in args for w in re.split(r"[,\s]+", arg) if w]
    if not words:
        raise PriceError("no_coins", USAGE)
    unknown = [w for w in words if coin_of(w) is None]
    if unknown:
        names = ", ".join(repr(w[:20]) for w in dict.fromkeys(unknown))
        raise PriceError("unknown_coin", f"Unknown coin {names}. Known coins: {known_coins()}.")
    return list(dict.fromkeys(coin_of(w) for w in words))  # type: ignore[misc]


def _coin(coin: str) -> Coin:
    symbol = coin_of(coin)
    if symbol is None:
        raise PriceError(
            "unknown_coin", f"Unknown coin {str(coin)[:20]!r}. Known coins: {known_coins()}."
        )
    return COINS[symbol]


def provider_of(ctx) -> str:
    value = (ctx.config.get("price_provider") or "simulated").strip().lower()
    if value not in PROVIDERS:
        raise PriceError(
            "prices_unavailable",
            "Prices are unavailable: the setting price_provider must be simulated or coingecko.",
        )
    return value


def stale_after_ms(ctx) -> int:
    try:
        minutes = int(str(ctx.config.get("stale_after_minutes", DEFAULT_STALE_MINUTES)).strip())
    except ValueError:
        minutes = DEFAULT_STALE_MINUTES
    return (minutes if 1 <= minutes <= 24 * 60 else DEFAULT_STALE_MINUTES) * MINUTE_MS


def _round(coin: Coin, price: Decimal) -> Decimal:
    return price.quantize(coin.step, rounding=ROUND_HALF_EVEN)


def _change(now: Decimal, before: Decimal) -> Decimal:
    return ((now - before) * 100 / before).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


# --- the simulated market ----------------------------------------------------------------

_EXP = Context(prec=34)  # Decimal.exp is correctly rounded: the same digits on every machine
_OCTAVES = 7  # anchor noise with periods of 1, 2, 4 … 64 days


def _noise(label: str, count: int, spread: int) -> list[int]:
    """``count`` integers uniform in [-spread, spread], a pure function of ``label``."""
    raw = hashlib.shake_256(f"aetherial-sim:{label}".encode()).digest(4 * count)
    width = 2 * spread + 1
    return [int.from_bytes(raw[4 * i : 4 * i + 4], "big") % width - spread for i in range(count)]


@functools.lru_cache(maxsize=256)
def _day_walk(symbol: str, day: int) -> tuple[int, ...]:
    """The day's random walk: partial sums of ``DAY_BUCKETS`` steps (millionths of log price),
    ``[0, s1, …, s288]``; the steps' variance adds up to the coin's daily variance."""
    vol = COINS[symbol].daily_vol_ppm
    spread = _isqrt(3 * vol * vol // DAY_BUCKETS)  # uniform on [-r, r]: variance r(r+1)/3
    sums, total = [0], 0
    for step in _noise(f"{symbol}:walk:{day}", DAY_BUCKETS, spread):
        total += step
        sums.append(total)
    return tuple(sums)


@functools.lru_cache(maxsize=1024)
def _anchor(symbol: str, day: int) -> int:
    """The log-price offset (millionths) at the start of ``day``: octaves of value noise, each
    knot a sum of four uniforms with a spread growing as the square root of its period."""
    vol = COINS[symbol].daily_vol_ppm
    total = 0
    for octave in range(_OCTAVES):
        period = 1 << octave
        spread = _isqrt(3 * vol * vol * period // 32)  # knot std ≈ vol·√(period / 8)
        knot, offset = divmod(day, period)
        here = sum(_noise(f"{symbol}:anchor:{octave}:{knot}", 4, spread))
        there = sum(_noise(f"{symbol}:anchor:{octave}:{knot + 1}", 4, spread))
        total += (here * (period - offset) + there * offset) // period
    return total


def _isqrt(value: int) -> int:
    return math.isqrt(max(value, 0))


def simulated_price(coin: str, at_ms: int) -> Decimal:
    """The simulated market's price of ``coin`` at ``at_ms`` (constant within each 5 minutes)."""
    spec = _coin(coin)
    bucket = at_ms // BUCKET_MS
    day, step = divmod(bucket, DAY_BUCKETS)
    walk = _day_walk(spec.symbol, day)
    start, end = _anchor(spec.symbol, day), _anchor(spec.symbol, day + 1)
    # A random walk pinned to the anchors at both ends of the day (a Brownian bridge).
    log_ppm = (
        start
        + (end - start) * step // DAY_BUCKETS
        + walk[step]
        - walk[DAY_BUCKETS] * step // DAY_BUCKETS
    )
    factor = _EXP.exp(Decimal(log_ppm).scaleb(-6))
    return _round(spec, spec.start * factor)


def simulated_quote(coin: str, now_ms: int) -> Quote:
    spec = _coin(coin)
    at = now_ms // BUCKET_MS * BUCKET_MS
    price = simulated_price(spec.symbol, at)
    before = simulated_price(spec.symbol, at - DAY_BUCKETS * BUCKET_MS)
    return Quote(spec.symbol, price, _change(price, before), at, False, "simulated")


def simulated_history(coin: str, now_ms: int) -> list[Decimal]:
    """The last 24 hours of the simulated market, one point per 5 minutes, oldest first (289
    points: the last is the current price)."""
    spec = _coin(coin)
    last = now_ms // BUCKET_MS
    return [
        simulated_price(spec.symbol, bucket * BUCKET_MS)
        for bucket in range(last - DAY_BUCKETS, last + 1)
    ]


# --- CoinGecko -----------------------------------------------------------------------------


def _api_base(ctx) -> str:
    return (ctx.config.get("price_api_url") or DEFAULT_API_URL).strip().rstrip("/")


def _api_headers(ctx, base: str) -> dict[str, str]:
    headers = {"accept": "application/json"}
    key = (ctx.config.get("price_api_key") or "").strip()
    if key:
        pro = (urlsplit(base).hostname or "") == "pro-api.coingecko.com"
        headers["x-cg-pro-api-key" if pro else "x-cg-demo-api-key"] = key
    return headers


def quotes_url(base: str) -> str:
    """The ``/simple/price`` request for every coin at once."""
    ids = ",".join(c.gecko_id for c in COINS.values())
    return (
        f"{base}/simple/price?ids={ids}&vs_currencies=usd"
        "&include_24hr_change=true&include_last_updated_at=true"
    )


def chart_url(base: str, coin: str) -> str:
    return f"{base}/coins/{COINS[coin].gecko_id}/market_chart?vs_currency=usd&days=1"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _header(headers: Any, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if str(key).lower() == name:
            return str(value)
    return None


async def _fetch_json(ctx, url: str) -> Any:
    base = _api_base(ctx)
    try:
        response = await ctx.fetch(url, headers=_api_headers(ctx, base))
    except HostError as exc:
        log.warning("price provider unreachable (%s)", exc.code)
        code = exc.code if exc.code in ("timeout", "rate_limited") else "fetch_failed"
        raise ProviderError(code) from None
    status = response.get("status")
    if status == 429:
        said = (_header(response.get("headers"), "retry-after") or "").strip()
        retry_after = int(said) * 1000 if said.isdigit() else None
        raise ProviderError("rate_limited", retry_after)
    if status != 200:
        raise ProviderError(f"http_{status}")
    try:
        return json.loads(
            response.get("body") or "", parse_float=Decimal, parse_constant=_reject_constant
        )
    except (ValueError, TypeError):
        raise ProviderError("bad_json") from None


def _decimal(value: Any) -> Decimal | None:
    """A finite Decimal of a sane size from a JSON number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    number = Decimal(value)
    return number if number.is_finite() and abs(number) < NUMBER_MAX else None


def parse_simple_price(data: Any, now: int) -> dict[str, dict[str, Any]]:
    """``/simple/price``'s answer as cache documents by coin (a coin with no usable price is
    left out). Raises ``ProviderError("bad_json")`` for an answer of the wrong shape."""
    if not isinstance(data, dict):
        raise ProviderError("bad_json")
    docs = {}
    for coin in COINS.values():
        entry = data.get(coin.gecko_id)
        if not isinstance(entry, dict):
            continue
        price = _decimal(entry.get("usd"))
        if price is None or price <= 0:
            continue
        change = _decimal(entry.get("usd_24h_change"))
        updated = entry.get("last_updated_at")
        at_ms = updated * 1000 if isinstance(updated, int) and updated > 0 else now
        docs[coin.symbol] = {
            "coin": coin.symbol,
            "price": str(_round(coin, price)),
            "change_24h": None if change is None else str(change.quantize(Decimal("0.01"))),
            "at_ms": at_ms,
            "fetched_at": now,
            "source": "coingecko",
        }
    return docs


async def _claim_refresh(ctx, now: int) -> tuple[bool, dict]:
    """``(claimed, refresh doc)``: whether this call may ask the provider now — nobody else
    holds the refresh and no failure back-off runs; one of concurrent callers wins."""
    doc, version = await ctx.storage_get_versioned(REFRESH, REFRESH_KEY)
    doc = doc if isinstance(doc, dict) else {}
    if int(doc.get("lease_until", 0)) > now:
        return False, doc
    try:
        await ctx.storage_update(
            REFRESH,
            REFRESH_KEY,
            set={"lease_until": now + LEASE_MS},
            expected_version=version,
            upsert=version == 0,
        )
    except HostError as exc:
        if exc.code != "conflict":
            raise
        fresh, _ = await ctx.storage_get_versioned(REFRESH, REFRESH_KEY)
        return False, fresh if isinstance(fresh, dict) else {}
    return True, doc


async def _refresh(ctx, now: int, refresh: dict) -> tuple[dict[str, dict], dict]:
    """Ask the provider for every coin; ``(fresh docs by coin, refresh doc)``. A failure is
    noted (``failed_at``, the back-off as ``lease_until``) and leaves the docs empty."""
    try:
        docs = parse_simple_price(await _fetch_json(ctx, quotes_url(_api_base(ctx))), now)
    except ProviderError as exc:
        backoff = max(FAILURE_BACKOFF_MS, min(exc.retry_after_ms or 0, RETRY_AFTER_MAX_MS))
        noted = {"lease_until": now + backoff, "failed_at": now, "error": exc.code}
        log.warning("price provider failed: %s", exc.code)
        await ctx.storage_update(REFRESH, REFRESH_KEY, set=noted, upsert=True)
        return {}, {**refresh, **noted}
    await asyncio.gather(*(ctx.storage_put(PRICES, coin, doc) for coin, doc in docs.items()))
    await ctx.storage_update(
        REFRESH, REFRESH_KEY, set={"lease_until": now}, unset=["failed_at", "error"], upsert=True
    )
    return docs, {"lease_until": now}


def _quote_of(doc: dict, refresh: dict, now: int, stale_ms: int) -> Quote:
    failed_at = refresh.get("failed_at")
    failed = isinstance(failed_at, int) and int(doc.get("fetched_at", 0)) <= failed_at
    change = doc.get("change_24h")
    return Quote(
        coin=doc["coin"],
        price=Decimal(doc["price"]),
        change_24h=None if change is None else Decimal(change),
        at_ms=int(doc["at_ms"]),
        stale=failed or now - int(doc["at_ms"]) > stale_ms,
        source=doc.get("source", "coingecko"),
    )


async def _gecko_quotes(ctx, coins: list[str], now: int) -> dict[str, Quote]:
    found = await asyncio.gather(*(ctx.storage_get(PRICES, coin) for coin in coins))
    docs = {c: d for c, d in zip(coins, found, strict=True) if isinstance(d, dict)}
    refresh: dict = {}
    if any(c not in docs or now - int(docs[c].get("fetched_at", 0)) >= CACHE_MS for c in coins):
        claimed, refresh = await _claim_refresh(ctx, now)
        # A coin never cached is fetched by whoever needs it, claimed or not.
        if claimed or any(c not in docs for c in coins):
            fetched, refresh = await _refresh(ctx, now, refresh)
            docs.update({c: fetched[c] for c in coins if c in fetched})
    stale_ms = stale_after_ms(ctx)
    return {c: _quote_of(docs[c], refresh, now, stale_ms) for c in coins if c in docs}


async def _gecko_quotes_read_only(ctx, coins: list[str], now: int) -> dict[str, Quote]:
    """``_gecko_quotes`` for a tool's invocation, which may not write: the cache as it is, and
    when it is old the provider asked without claiming the refresh nor caching its answer —
    unless someone holds the refresh (or a failure's back-off runs) and every coin is cached,
    as the writers do. A failure marks what is cached stale and is noted nowhere."""
    found = await asyncio.gather(
        ctx.storage_get(REFRESH, REFRESH_KEY), *(ctx.storage_get(PRICES, coin) for coin in coins)
    )
    refresh = found[0] if isinstance(found[0], dict) else {}
    docs = {c: d for c, d in zip(coins, found[1:], strict=True) if isinstance(d, dict)}
    old = any(c not in docs or now - int(docs[c].get("fetched_at", 0)) >= CACHE_MS for c in coins)
    held = int(refresh.get("lease_until", 0)) > now
    if old and (not held or any(c not in docs for c in coins)):
        try:
            fetched = parse_simple_price(await _fetch_json(ctx, quotes_url(_api_base(ctx))), now)
        except ProviderError as exc:
            log.warning("price provider failed (tool, not cached): %s", exc.code)
            refresh = {**refresh, "failed_at": now}
        else:
            docs.update({c: fetched[c] for c in coins if c in fetched})
    stale_ms = stale_after_ms(ctx)
    return {c: _quote_of(docs[c], refresh, now, stale_ms) for c in coins if c in docs}


# --- the adapter -------------------------------------------------------------------------


async def quotes(ctx, coins: list[str], *, read_only: bool = False) -> dict[str, Quote]:
    """The current quotes of ``coins`` (symbols or names), by symbol, in the order given; a
    coin the provider has no price for (and none cached) is left out. Raises ``PriceError``
    ``unknown_coin`` (nothing fetched) or ``prices_unavailable`` (a bad provider setting).
    ``read_only`` (a tool's invocation): the cache is read, never written."""
    symbols = list(dict.fromkeys(_coin(c).symbol for c in coins))
    provider = provider_of(ctx)
    now = clock.now_ms()
    if provider == "simulated":
        return {c: simulated_quote(c, now) for c in symbols}
    if read_only:
        return await _gecko_quotes_read_only(ctx, symbols, now)
    return await _gecko_quotes(ctx, symbols, now)


async def quote(ctx, coin: str) -> Quote:
    """The current quote of ``coin``; ``PriceError`` ``unknown_coin`` or ``prices_unavailable``
    (the provider failed and nothing is cached). Check ``.stale`` before using it to fill."""
    symbol = _coin(coin).symbol
    found = (await quotes(ctx, [symbol])).get(symbol)
    if found is None:
        raise PriceError(
            "prices_unavailable",
            f"The price of {symbol.upper()} is unavailable right now; try again in a minute.",
        )
    return found


async def history(ctx, coin: str, *, read_only: bool = False) -> list[Decimal]:
    """About 24 hours of prices of ``coin`` for its sparkline, oldest first; ``[]`` when the
    provider has none (then the card has no chart). ``read_only`` (a tool's invocation): only
    a fresh cached chart, never fetched — its picture could not be uploaded anyway."""
    symbol = _coin(coin).symbol
    now = clock.now_ms()
    if provider_of(ctx) == "simulated":
        return simulated_history(symbol, now)
    cached = await ctx.storage_get(HISTORY, symbol)
    if isinstance(cached, dict) and now - int(cached.get("fetched_at", 0)) < HISTORY_CACHE_MS:
        return [Decimal(p) for p in cached["points"]]
    if read_only:
        return []
    try:
        data = await _fetch_json(ctx, chart_url(_api_base(ctx), symbol))
        points = _chart_points(data)
    except ProviderError as exc:
        log.info("chart of %s unavailable: %s", symbol, exc.code)
        return [Decimal(p) for p in cached["points"]] if isinstance(cached, dict) else []
    await ctx.storage_put(HISTORY, symbol, {"points": [str(p) for p in points], "fetched_at": now})
    return points


def _chart_points(data: Any) -> list[Decimal]:
    rows = data.get("prices") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise ProviderError("bad_json")
    points = []
    for row in rows[-400:]:
        if isinstance(row, list) and len(row) == 2:
            price = _decimal(row[1])
            if price is not None and price > 0:
                points.append(price)
    return points


# --- formatting in the reader's locale -----------------------------------------------------


def babel_locale(name: str | None) -> Locale:
    text = (name or "").strip().replace("-", "_")
    if text:
        try:
            return Locale.parse(text)
        except (ValueError, TypeError, UnknownLocaleError):
            pass
    return Locale.parse("en")


def format_usd(value: Decimal, locale: str | None) -> str:
    """``value`` dollars for ``locale``: ``$60,123.45``, ``60.123,45 $``, ``$0.15234``."""
    return format_currency(value, "USD", locale=babel_locale(locale), decimal_quantization=False)


def format_change(change: Decimal | None, locale: str | None) -> str:
    if change is None:
        return "24 h change unknown"
    arrow = "▲" if change > 0 else "▼" if change < 0 else "■"
    text = format_percent(change / 100, format="+#,##0.00%;-#,##0.00%", locale=babel_locale(locale))
    return f"{arrow} {text} (24 h)"


def zone_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


def format_moment(at_ms: int, ctx) -> str:
    """``at_ms`` in the reader's zone and locale: a time today, else a short date and time."""
    zone = zone_of(ctx.time_zone)
    moment = datetime.fromtimestamp(at_ms / 1000, zone)
    today = datetime.fromtimestamp(clock.now_ms() / 1000, zone).date()
    locale = babel_locale(ctx.locale)
    if moment.date() == today:
        return format_time(moment, "short", locale=locale)
    return format_datetime(moment, "short", locale=locale)


def quote_line(q: Quote, ctx) -> str:
    """``$60,123.45 · ▲ +2.31% (24 h) · updated 14:05`` (``⚠ stale`` first when stale)."""
    parts = [format_usd(q.price, ctx.locale), format_change(q.change_24h, ctx.locale)]
    parts.append(f"updated {format_moment(q.at_ms, ctx)}")
    line = " · ".join(parts)
    return f"⚠ stale · {line}" if q.stale else line


def coin_label(coin: str) -> str:
    spec = COINS[coin]
    return f"{spec.name} · {spec.symbol.upper()}"


def notes(ctx, shown: list[Quote]) -> str:
    """The card's text: where the prices come from, the zone, and what stale means."""
    lines = []
    if any(q.source == "simulated" for q in shown):
        lines.append(SIMULATED)
    elif shown:
        lines.append("Prices: CoinGecko (USD).")
    lines.append(f"Times in {ctx.time_zone or 'UTC'}.")
    if any(q.stale for q in shown):
        lines.append("⚠ Stale prices are shown for reference only and never used to fill orders.")
    return " ".join(lines)


# --- /crypto price --------------------------------------------------------------------------


async def price_card(ctx, coins: list[str]) -> Card:
    """The card of ``coins`` (valid symbols) now: a field per coin, the chart, Watch buttons.
    Raises ``PriceError`` when no coin has a price."""
    return (await card_and_quotes(ctx, coins))[0]


async def known_sparkline(ctx, series: list[sparkline.Series]) -> str | None:
    """The media id of ``series``' sparkline when ``sparkline.image_id`` uploaded the same
    picture before (its ``sparklines/<coins>`` record), else None: a tool uploads nothing."""
    key = "-".join(s.label.lower() for s in series)
    known = await ctx.storage_get(sparkline.SPARKLINES, key)
    if isinstance(known, dict) and known.get("digest") == sparkline.digest(series):
        return known.get("media_id") or None
    return None


async def card_and_quotes(
    ctx, coins: list[str], *, read_only: bool = False
) -> tuple[Card, dict[str, Quote]]:
    """``price_card`` and the quotes it shows, by symbol (a coin without a price left out).
    ``read_only`` (a tool's invocation): nothing written, nothing uploaded — the cache read
    (``quotes``, ``history``) and the chart only when its picture was uploaded before."""
    charted = coins[:CHART_COINS]
    # Together (each may wait for the provider), and every one finished before an error is
    # raised: nothing keeps running after the invocation ends.
    answers = await asyncio.gather(
        quotes(ctx, coins, read_only=read_only),
        *(history(ctx, c, read_only=read_only) for c in charted),
        return_exceptions=True,
    )
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    found: dict[str, Quote] = answers[0]  # type: ignore[assignment]
    charts: list[list[Decimal]] = list(answers[1:])  # type: ignore[arg-type]
    if not found:
        raise PriceError(
            "prices_unavailable", "Prices are unavailable right now; try again in a minute."
        )
    fields = [
        Field(coin_label(c), quote_line(found[c], ctx) if c in found else "price unavailable")
        for c in coins
    ]
    first = found.get(coins[0])
    if len(coins) == 1 and first is not None:
        title = f"{coins[0].upper()} {format_usd(first.price, ctx.locale)}"
    else:
        title = "Crypto prices"
    series = []
    for coin, points in zip(charted, charts, strict=True):
        q = found.get(coin)
        if q is not None and points and points[-1] != q.price:
            points = [*points, q.price]  # the chart ends at the price shown
        if len(points) >= 2:
            up = q.change_24h >= 0 if q and q.change_24h is not None else points[-1] >= points[0]
            series.append(sparkline.Series(coin.upper(), points, up))
    picture = known_sparkline if read_only else sparkline.image_id
    image = await picture(ctx, series) if series else None
    buttons = [Button("watch.add", f"Watch {c.upper()}", value=c) for c in coins]
    card = Card(
        title[:100],
        text=notes(ctx, list(found.values())),
        fields=fields,
        image=image,
        buttons=buttons,
    )
    return card, found


def private(message: str) -> Reply:
    return Reply(ephemeral=message)


def _live_key(message_id: str) -> str:
    return "live:" + hashlib.sha256(message_id.encode()).hexdigest()[:24]


def _digest(card: Card) -> str:
    return hashlib.sha256(json.dumps(card.to_dict(), sort_keys=True).encode()).hexdigest()[:32]


def _next_minute(now: int) -> int:
    """The next minute boundary at least a second away (a time the host still finds ahead
    when the call reaches it)."""
    return ((now + 1000) // MINUTE_MS + 1) * MINUTE_MS


async def cmd_price(ctx, args: list[str]) -> Reply | None:
    """``/crypto price <coins…>``: a price card posted in the chat, live for ``LIVE_MS``."""
    try:
        coins = parse_coins(args)
        card = await price_card(ctx, coins)
    except PriceError as exc:
        return private(exc.message)
    message_id = await ctx.send_card(card)
    now = clock.now_ms()
    with contextlib.suppress(HostError):  # too many timers: the card just stays as posted
        await ctx.schedule(
            LIVE_TIMER,
            at=_next_minute(now),
            key=_live_key(message_id),
            payload={
                "message_id": message_id,
                "coins": coins,
                "until": now + LIVE_MS,
                "digest": _digest(card),
            },
        )
    return None


async def on_refresh(ctx) -> None:
    """``prices.refresh``: update a live price card in place when its content changed; again
    next minute until its ``until``."""
    payload = ctx.payload or {}
    message_id, coins = payload.get("message_id"), payload.get("coins")
    if not isinstance(message_id, str) or not isinstance(coins, list):
        return
    try:
        card = await price_card(ctx, parse_coins([str(c) for c in coins]))
    except PriceError as exc:
        log.info("live card %s not refreshed: %s", message_id, exc.code)
        card = None
    digest = payload.get("digest")
    if card is not None and _digest(card) != digest:
        try:
            await ctx.update_card(message_id, card)
        except NotFound:
            return  # the card is gone: nothing more to update
        digest = _digest(card)
    now = clock.now_ms()
    until = int(payload.get("until", 0))
    if _next_minute(now) <= until:
        await ctx.schedule(
            LIVE_TIMER,
            at=_next_minute(now),
            key=ctx.timer_key,
            payload={**payload, "digest": digest},
        )


SUBCOMMANDS = {"price": cmd_price, "prices": cmd_price}
TIMERS = {LIVE_TIMER: on_refresh}
