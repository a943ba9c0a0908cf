"""Currencies and exchange rates: parse and show a trip's money, and convert it into each
reader's currency where a rate is known.

- **Minor units.** Every amount is an ``int`` in the minor units of its ISO 4217 currency, with
  the ISO exponent (``flights.exponent``: EUR 2, JPY 0, KWD 3) — the wallet's, so what a settle-up
  transfer moves is exactly what the app shows. A currency is accepted when it is legal tender
  somewhere today (babel's territory data: ``EUR``, ``JPY``… — not ``DEM`` nor ``XYZ``).
- **Text.** ``parse_amount("42.50", "EUR")`` → ``4250``; finer than the currency allows
  (``"42.505"``), zero, negative or not a number → ``TravelError("invalid_amount")``.
  ``format_money(4250, "EUR", "pt-PT")`` → ``"42,50 €"`` (babel, in the reader's locale, always
  with the currency's ISO digits).
- **Rates** are units of a currency per 1 EUR: the app config ``fx_rates`` (a JSON object
  ``{"EUR": 1, "USD": 1.08, …}``), checked — an invalid one is logged and ignored — else
  ``SAMPLE_RATES``, a small table labelled ``SAMPLE_LABEL`` wherever a converted amount shows.
  ``convert`` goes through EUR and rounds half-even to the target's minor unit; None when either
  currency has no rate. Conversions are only ever shown ("≈ 25.27 $"); balances, splits and
  transfers always stay in the expense's own currency.
- **Reader's currency** (``reader_currency``): the currency of the territory in the reader's
  locale (``en-US`` → USD, ``de-CH`` → CHF); a locale without a territory (``en``) reads in the
  trip's currency.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import logging
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import clock
import flights
from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.numbers import format_currency, get_currency_precision, get_territory_currencies
from store import TravelError

log = logging.getLogger("travel.fx")

BASE = "EUR"
SAMPLE_LABEL = "Sample exchange rates — not live rates"
# Units per 1 EUR: round, plausible numbers for showing "≈" amounts offline, not market data.
SAMPLE_RATES: dict[str, Decimal] = {
    code: Decimal(rate)
    for code, rate in {
        "EUR": "1", "USD": "1.08", "GBP": "0.85", "CHF": "0.95", "JPY": "162", "CNY": "7.8",
        "CAD": "1.47", "AUD": "1.64", "NZD": "1.79", "SEK": "11.4", "NOK": "11.6", "DKK": "7.46",
        "PLN": "4.3", "CZK": "25.1", "HUF": "395", "BRL": "5.9", "MXN": "18.6", "INR": "90",
        "KRW": "1470", "SGD": "1.45", "HKD": "8.45", "THB": "38.5", "TRY": "35", "ZAR": "19.8",
        "AED": "3.97", "ILS": "4.0", "MAD": "10.8",
    }.items()
}  # fmt: skip
MAX_MINOR = 10**13  # the largest amount the app accepts (10 billion EUR): bounds every sum
_AMOUNT = re.compile(r"^\+?(\d{1,15})(?:[.,](\d{1,6}))?$")
_CODE = re.compile(r"^[A-Za-z]{3}$")


@dataclass(frozen=True)
class Rates:
    """Units per 1 EUR by currency, and the label to show beside converted amounts (None for
    the configured rates, ``SAMPLE_LABEL`` for the sample table)."""

    table: dict[str, Decimal]
    label: str | None


# --- currencies -------------------------------------------------------------------------------


@functools.cache
def currencies() -> frozenset[str]:
    """ISO codes that are legal tender in some territory today (babel's CLDR data)."""
    found = set()
    for entries in get_global("territory_currencies").values():
        for code, _start, end, tender in entries:
            if tender and end is None:
                found.add(code)
    return frozenset(found)


def currency_code(text: object) -> str | None:
    """``"eur"`` → ``"EUR"``; None unless a known currency."""
    if not isinstance(text, str) or not _CODE.match(text.strip()):
        return None
    code = text.strip().upper()
    return code if code in currencies() else None


def require_currency(text: object) -> str:
    """The known currency ``text`` names, else ``TravelError("unknown_currency")``."""
    code = currency_code(text)
    if code is None:
        shown = str(text)[:12] if text not in (None, "") else "(none)"
        raise TravelError(
            "unknown_currency",
            f"{shown} is not a currency I know: use an ISO code like EUR, USD, JPY.",
        )
    return code


def exponent(currency: str) -> int:
    """Digits after the decimal point in ``currency`` (ISO 4217, as the wallet counts)."""
    return flights.exponent(currency)


def parse_amount(text: object, currency: str, zero_ok: bool = False) -> int:
    """``"42.50"`` (or ``"42,50"``) in ``currency`` → minor units, > 0 (≥ 0 with ``zero_ok``:
    one person's part of an exact split); else ``TravelError("invalid_amount")`` naming the
    problem (not a number, zero or less, finer than the currency's minor unit, too large)."""
    raw = text.strip() if isinstance(text, str) else ""
    match = _AMOUNT.match(raw)
    if match is None:
        if raw.startswith("-"):
            raise TravelError("invalid_amount", "The amount must be above zero.")
        raise TravelError(
            "invalid_amount",
            f"{str(text)[:20] or '(nothing)'} is not an amount: write it like 42.50.",
        )
    whole, fraction = match.group(1), match.group(2) or ""
    digits = exponent(currency)
    if len(fraction.rstrip("0")) > digits:
        finest = f"0.{'0' * (digits - 1)}1" if digits else "1"
        raise TravelError(
            "invalid_amount",
            f"{raw} is finer than {currency} allows (its smallest unit is {finest}).",
        )
    minor = int(whole) * 10**digits + int((fraction + "0" * digits)[:digits] or 0)
    return 0 if zero_ok and minor == 0 else check_minor(minor)


def check_minor(minor: object) -> int:
    """A whole number of minor units, > 0 and ≤ ``MAX_MINOR``, else ``invalid_amount``."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise TravelError("invalid_amount", "The amount must be a whole number of minor units.")
    if minor <= 0:
        raise TravelError("invalid_amount", "The amount must be above zero.")
    if minor > MAX_MINOR:
        raise TravelError("invalid_amount", "That amount is too large.")
    return minor


def plain(minor: int, currency: str) -> str:
    """``4250, "EUR"`` → ``"42.50"`` — what a person types back (``/trip settle Ben 42.50``)."""
    digits = exponent(currency)
    value = Decimal(minor).scaleb(-digits)
    return str(value.quantize(Decimal(1).scaleb(-digits)))


def locale_of(tag: str | None) -> Locale:
    """The babel locale for a BCP 47 tag (``"pt-PT"``), English when it is not one."""
    try:
        return Locale.parse((tag or "en").replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return Locale.parse("en")


def format_money(amount: int, currency: str, locale: str | None) -> str:
    """``4250, "EUR", "en"`` → ``"€42.50"``; ``"de-DE"`` → ``"42,50 €"`` (babel). Always shows
    the currency's ISO digits (babel's own for a few currencies, HUF say, differ)."""
    where = locale_of(locale)
    digits = exponent(currency)
    value = Decimal(amount).scaleb(-digits)
    if get_currency_precision(currency) == digits:
        return format_currency(value, currency, locale=where)
    fixed = copy.copy(where.currency_formats["standard"])
    fixed.frac_prec = (digits, digits)
    return format_currency(value, currency, format=fixed, locale=where, currency_digits=False)


# --- rates --------------------------------------------------------------------------------------


def _parse_config(text: str) -> dict[str, Decimal]:
    """The configured table, or ``ValueError`` saying what is wrong with it."""
    try:
        raw = json.loads(text)
    except (TypeError, ValueError):
        raise ValueError("fx_rates is not JSON") from None
    if not isinstance(raw, dict) or not raw:
        raise ValueError('fx_rates must be a JSON object such as {"EUR": 1, "USD": 1.08}')
    if len(raw) > 400:
        raise ValueError("fx_rates has too many currencies")
    table: dict[str, Decimal] = {}
    for key, value in raw.items():
        code = currency_code(key)
        if code is None or code != key:
            raise ValueError(f"fx_rates: {str(key)[:12]!r} is not an ISO currency code")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"fx_rates: the rate of {code} is not a number")
        try:
            rate = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"fx_rates: the rate of {code} is not a number") from None
        if not rate.is_finite() or rate <= 0 or rate > Decimal(10) ** 9:
            raise ValueError(f"fx_rates: the rate of {code} must be a positive number")
        table[code] = rate
    if table.setdefault(BASE, Decimal(1)) != 1:
        raise ValueError("fx_rates: rates are per 1 EUR, so EUR must be 1")
    return table


def rates(ctx) -> Rates:
    """The rates in force: the app config ``fx_rates`` when valid, else the labelled sample."""
    text = (getattr(ctx, "config", None) or {}).get("fx_rates")
    if text:
        try:
            return Rates(_parse_config(text), None)
        except ValueError as exc:
            log.warning("ignoring the fx_rates config (%s): using the sample rates", exc)
    return Rates(SAMPLE_RATES, SAMPLE_LABEL)


def convert(ctx, amount: int, from_cur: str, to_cur: str) -> int | None:
    """``amount`` minor units of ``from_cur`` in minor units of ``to_cur`` (through EUR,
    rounded half-even), or None when a rate is missing. The same currency converts to itself."""
    if from_cur == to_cur:
        return amount
    table = rates(ctx).table
    if from_cur not in table or to_cur not in table:
        return None
    major = Decimal(amount).scaleb(-exponent(from_cur))
    target = major * table[to_cur] / table[from_cur]
    return int(target.scaleb(exponent(to_cur)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def reader_currency(ctx, trip: dict[str, Any] | None) -> str:
    """The currency of the territory in ``ctx.locale`` (``en-US`` → USD) when it names one,
    else the trip's currency (EUR without a trip)."""
    fallback = (trip or {}).get("currency") or BASE
    territory = locale_of(getattr(ctx, "locale", None)).territory
    if not territory:
        return fallback
    today = dt.datetime.fromtimestamp(clock.now_ms() / 1000, dt.UTC).date()
    found = get_territory_currencies(territory, start_date=today, tender=True)
    return next((code for code in found if code in currencies()), fallback)
