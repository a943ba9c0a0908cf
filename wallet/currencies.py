"""ISO 4217 currencies: every amount is an integer count of a currency's minor unit.

The exponent says how many minor units make a major one (USD 2: 1250 is 12.50; JPY 0; BHD 3).
Only currencies in this table are accepted.
"""

from __future__ import annotations

from storage.errors import AppError

# ISO 4217 code -> minor-unit exponent (a practical subset; extend as needed).
EXPONENTS: dict[str, int] = {
    "AED": 2, "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2, "CZK": 2,
    "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2,
    "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "MYR": 2, "NGN": 2, "NOK": 2,
    "NZD": 2, "OMR": 3, "PHP": 2, "PKR": 2, "PLN": 2, "RON": 2, "SAR": 2, "SEK": 2, "SGD": 2,
    "THB": 2, "TND": 3, "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2, "VND": 0, "ZAR": 2,
}  # fmt: skip


def check_currency(currency: object, field: str = "currency") -> str:
    if not isinstance(currency, str) or currency not in EXPONENTS:
        raise AppError(
            "unknown_currency",
            "currency must be an ISO 4217 code this wallet supports (e.g. USD, EUR, JPY)",
            details={"field": field},
        )
    return currency


def check_amount(amount: object, maximum: int, field: str = "amount") -> int:
    """A positive whole number of minor units, at most ``maximum``."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise AppError(
            "invalid_amount",
            f"{field} must be a whole number of the currency's minor unit (1250 for 12.50)",
            details={"field": field},
        )
    if amount <= 0:
        raise AppError("invalid_amount", f"{field} must be positive", details={"field": field})
    if amount > maximum:
        raise AppError(
            "amount_too_large",
            f"{field} is above the limit of {maximum} minor units",
            details={"field": field, "maximum": maximum},
        )
    return amount


def format_amount(amount: int, currency: str) -> str:
    """12.50 USD style text for cards and previews."""
    exponent = EXPONENTS[currency]
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**exponent)
    text = f"{major:,}" if exponent == 0 else f"{major:,}.{minor:0{exponent}d}"
    return f"{sign}{text} {currency}"
