"""Money for the shop: amounts are integer minor units everywhere (1250 = 12.50 USD, 1250 = ¥1,250).

``format_price`` shows an amount in the reader's locale with babel; ``parse_price`` reads what a
merchant typed ("12.50", "12,5", "1250" for JPY) into minor units and refuses anything else with
a ``ValueError`` whose message can be shown as is.
"""

from __future__ import annotations

import re
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision, list_currencies

DEFAULT_LOCALE = "en"
# "12", "12.5", "12,50": digits, then optionally one decimal separator and digits.
_PRICE_RE = re.compile(r"(\d+)(?:[.,](\d+))?")


def _locale(locale: str | None) -> Locale:
    """The babel locale for ``"de-DE"``, ``"de_DE"`` or ``"de"``; English when unknown."""
    text = (locale or "").strip().replace("-", "_")
    if text:
        try:
            return Locale.parse(text)
        except (ValueError, TypeError, UnknownLocaleError):
            pass
    return Locale.parse(DEFAULT_LOCALE)


def is_currency(currency: str) -> bool:
    """Whether ``currency`` is an ISO 4217 code babel knows (upper case, e.g. ``"USD"``)."""
    return isinstance(currency, str) and currency.isupper() and currency in list_currencies()


def minor_digits(currency: str) -> int:
    """How many minor-unit digits ``currency`` has: 2 for USD and EUR, 0 for JPY."""
    return get_currency_precision(currency)


def format_price(amount: int, currency: str, locale: str | None) -> str:
    """``amount`` minor units of ``currency`` written for ``locale``.

    ``format_price(1250, "USD", "en") == "$12.50"``, ``format_price(1250, "EUR", "de-DE") ==
    "12,50 €"``, ``format_price(1250, "JPY", "ja") == "￥1,250"``. An unknown locale reads as
    English.
    """
    value = Decimal(int(amount)).scaleb(-minor_digits(currency))
    return format_currency(value, currency, locale=_locale(locale))


def parse_price(text: str, currency: str) -> int:
    """What a merchant typed (``"12.50"``) as minor units of ``currency`` (``1250``).

    Accepts digits with at most one ``.`` or ``,`` decimal separator and no more decimals than
    the currency has (none for JPY). Raises ``ValueError`` with a message for the merchant for
    anything else: empty, signs, letters, thousands separators, too many decimals, zero.
    """
    if not is_currency(currency):
        raise ValueError(f"Unknown currency {currency!r}: use an ISO 4217 code such as USD")
    cleaned = str(text).strip() if text is not None else ""
    if not cleaned:
        raise ValueError("Price is empty: type it like 12.50")
    match = _PRICE_RE.fullmatch(cleaned)
    if match is None:
        raise ValueError(f"Price {cleaned!r} is not a number: type it like 12.50")
    whole, fraction = match.group(1), match.group(2) or ""
    digits = minor_digits(currency)
    if len(fraction) > digits:
        if digits == 0:
            raise ValueError(f"{currency} has no minor units: type a whole number like 1250")
        raise ValueError(f"{currency} has {digits} decimals at most: {cleaned!r} has more")
    amount = int(whole) * 10**digits + int(fraction.ljust(digits, "0") or "0")
    if amount <= 0:
        raise ValueError("Price must be more than 0")
    return amount
