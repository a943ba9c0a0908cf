"""The paper exchange's markets: its pairs (``PAIRS``, engine ``PairSpec`` each), the starting
paper balance (``START``: 10 000 USDT on a person's first trade or balance), and the names people
type — a coin (``btc``), a pair (``BTC/USDT``, ``btc-usdt``) — mapped to one another.

Pairs: BTC/USDT (tick 0.01, lot 0.00001), ETH/USDT (0.01, 0.0001), SOL/USDT (0.001, 0.001), each
with a minimum notional of 5 USDT, a maker fee of 0.1 % and a taker fee of 0.2 % (in USDT).
``COINS`` also names the watch-only coins (ada, doge, xrp) and every coin's CoinGecko id.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from engine import PairSpec

QUOTE = "USDT"
START: dict[str, Decimal] = {QUOTE: Decimal("10000")}
MAKER_FEE = Decimal("0.001")
TAKER_FEE = Decimal("0.002")
# Resting orders per book: the book, with its pending events and recent order ids, is one
# stored document of at most 64 KiB.
MAX_RESTING = 200


def _pair(base: str, tick: str, lot: str) -> PairSpec:
    return PairSpec(
        symbol=f"{base}/{QUOTE}",
        base=base,
        quote=QUOTE,
        tick=Decimal(tick),
        lot=Decimal(lot),
        min_notional=Decimal("5"),
        maker_fee=MAKER_FEE,
        taker_fee=TAKER_FEE,
        max_resting=MAX_RESTING,
    )


PAIRS: dict[str, PairSpec] = {
    spec.symbol: spec
    for spec in (
        _pair("BTC", "0.01", "0.00001"),
        _pair("ETH", "0.01", "0.0001"),
        _pair("SOL", "0.001", "0.001"),
    )
}
# Every coin the app knows (lower case) → its CoinGecko id; the first three trade here.
COINS: dict[str, str] = {
    "btc": "bitcoin",
    "eth": "ethereum",
    "sol": "solana",
    "ada": "cardano",
    "doge": "dogecoin",
    "xrp": "ripple",
}
TRADABLE = tuple(spec.base.lower() for spec in PAIRS.values())
WATCH_ONLY = tuple(coin for coin in COINS if coin not in TRADABLE)


def symbol_of(coin: str) -> str:
    """``btc`` → ``BTC/USDT``."""
    return f"{coin.upper()}/{QUOTE}"


def coin_of(symbol: str) -> str:
    """``BTC/USDT`` → ``btc``."""
    return symbol.split("/", 1)[0].lower()


def dashed(symbol: str) -> str:
    """``BTC/USDT`` → ``BTC-USDT``: the symbol as a storage key."""
    return symbol.replace("/", "-")


def find_pair(name: object) -> PairSpec | None:
    """The pair a person means by ``name`` — ``btc``, ``BTC``, ``BTC/USDT``, ``btc-usdt`` — or
    None (an unknown or watch-only coin, anything not a string)."""
    if not isinstance(name, str) or not 1 <= len(name) <= 20:
        return None
    text = name.strip().upper().replace("-", "/")
    if "/" not in text:
        text = f"{text}/{QUOTE}"
    return PAIRS.get(text)


# --- numbers ---------------------------------------------------------------------------------


def dec(value: Any) -> Decimal:
    """A stored amount (a Decimal string; None or missing is 0)."""
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def fmt(value: Decimal | None) -> str | None:
    """A Decimal as a plain string without exponent or trailing zeros (``"0.0105"``)."""
    if value is None:
        return None
    text = format(value.normalize() if value else Decimal(0), "f")
    return text


def parse_decimal(value: Any) -> Decimal | None:
    """A positive finite Decimal from a person's or a page's input, else None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip().replace(",", "")
    if not text or len(text) > 32:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite() or number <= 0:
        return None
    return number
