"""The travel app's currencies and exchange rates (miniapps/travel/fx.py): amounts parsed with
each currency's ISO exponent, money shown with babel in the reader's locale, rates from the app
config (checked; a bad one ignored and logged) or the labelled sample table, conversion rounded
half-even, and the reader's currency from their locale's territory."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdk.simulator import Simulator
from tests.miniapps.travel.travel_fixtures import TRAVEL_DIR, app_module


@pytest.fixture(scope="module")
def fx():
    Simulator(TRAVEL_DIR)  # loads the app: its modules, imported as the app imports them
    return app_module("fx")


def ctx(locale: str = "en", **config: str) -> SimpleNamespace:
    return SimpleNamespace(locale=locale, config=config)


# --- amounts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("42.50", "EUR", 4250),
        ("42,5", "EUR", 4250),
        ("42", "EUR", 4200),
        ("0.01", "EUR", 1),
        ("42.500", "EUR", 4250),  # trailing zeros are not finer
        ("3000", "JPY", 3000),
        ("1.234", "KWD", 1234),
        (" 7.10 ", "USD", 710),
        ("+5", "GBP", 500),
    ],
)
def test_parse_amount(fx, text: str, currency: str, minor: int) -> None:
    assert fx.parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("42.505", "EUR", "finer than EUR allows (its smallest unit is 0.01)"),
        ("12.5", "JPY", "finer than JPY allows (its smallest unit is 1)"),
        ("0", "EUR", "above zero"),
        ("0.00", "EUR", "above zero"),
        ("-3", "EUR", "above zero"),
        ("1e3", "EUR", "not an amount"),
        ("1,000.50", "EUR", "not an amount"),
        ("NaN", "EUR", "not an amount"),
        ("", "EUR", "not an amount"),
        (None, "EUR", "not an amount"),
        (12, "EUR", "not an amount"),
        ("999999999999999", "EUR", "too large"),
    ],
)
def test_parse_amount_refuses(fx, text, currency: str, message: str) -> None:
    with pytest.raises(app_module("store").TravelError) as raised:
        fx.parse_amount(text, currency)
    assert raised.value.code == "invalid_amount"
    assert message in raised.value.message


def test_a_part_may_be_zero_only_when_asked(fx) -> None:
    assert fx.parse_amount("0", "EUR", zero_ok=True) == 0
    assert fx.parse_amount("0.10", "EUR", zero_ok=True) == 10


@settings(max_examples=300)
@given(st.integers(1, 10**12), st.sampled_from(["EUR", "JPY", "KWD", "USD"]))
def test_plain_text_parses_back_to_the_same_amount(fx, minor: int, currency: str) -> None:
    assert fx.parse_amount(fx.plain(minor, currency), currency) == minor


def test_currency_codes(fx) -> None:
    assert fx.currency_code("eur") == "EUR"
    assert fx.currency_code(" JPY ") == "JPY"
    assert fx.currency_code("DEM") is None  # no longer legal tender
    assert fx.currency_code("XYZ") is None
    assert fx.currency_code("EURO") is None
    assert fx.currency_code(None) is None
    with pytest.raises(app_module("store").TravelError) as raised:
        fx.require_currency("XYZ")
    assert raised.value.code == "unknown_currency"


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "text"),
    [
        (4250, "EUR", "en", "€42.50"),
        (4250, "EUR", "de-DE", "42,50\xa0€"),
        (4250, "EUR", "pt-PT", "42,50\xa0€"),
        (-4250, "EUR", "en", "-€42.50"),
        (2527, "USD", "en-US", "$25.27"),
        (3000, "JPY", "en", "¥3,000"),
        (1234, "KWD", "en", "KWD1.234"),
        (1234, "HUF", "en", "HUF12.34"),  # ISO digits, not babel's 0 for HUF
        (4250, "EUR", "not a locale", "€42.50"),
        (4250, "EUR", None, "€42.50"),
    ],
)
def test_format_money(fx, amount: int, currency: str, locale, text: str) -> None:
    assert fx.format_money(amount, currency, locale) == text
    assert app_module("expenses").format_money is fx.format_money


# --- rates and conversion ---------------------------------------------------------------------


def test_the_sample_rates_are_labelled(fx) -> None:
    rates = fx.rates(ctx())
    assert rates.label == fx.SAMPLE_LABEL and "Sample" in rates.label
    assert {"EUR", "USD", "GBP", "CHF", "JPY", "CNY"} <= set(rates.table)
    assert fx.convert(ctx(), 1000, "EUR", "USD") == 1080
    assert fx.convert(ctx(), 16200, "JPY", "EUR") == 10000


def test_configured_rates_are_used_unlabelled(fx) -> None:
    config = ctx(fx_rates='{"EUR": 1, "USD": "1.005", "JPY": 150}')
    rates = fx.rates(config)
    assert rates.label is None and set(rates.table) == {"EUR", "USD", "JPY"}
    # 1.00 EUR = 1.005 USD = 100.5 cents → 100 (half-even); 3.00 EUR = 301.5 cents → 302.
    assert fx.convert(config, 100, "EUR", "USD") == 100
    assert fx.convert(config, 300, "EUR", "USD") == 302
    assert fx.convert(config, 1000, "EUR", "JPY") == 1500  # 10.00 EUR = 1500 yen
    assert fx.convert(config, 1500, "JPY", "USD") == 1005
    assert fx.convert(config, 1000, "EUR", "GBP") is None  # no rate for GBP
    assert fx.convert(config, 1000, "GBP", "GBP") == 1000  # no rate needed
    assert fx.rates(ctx(fx_rates='{"USD": 1.1}')).table["EUR"] == 1  # EUR implied


@pytest.mark.parametrize(
    "config",
    [
        "not json",
        "[1, 2]",
        "{}",
        '{"usd": 1.1}',
        '{"XYZ": 1.1}',
        '{"USD": 0}',
        '{"USD": -1}',
        '{"USD": true}',
        '{"USD": "NaN"}',
        '{"USD": "lots"}',
        '{"USD": null}',
        '{"EUR": 2, "USD": 1.1}',
    ],
)
def test_an_invalid_config_is_ignored_and_logged(fx, config: str, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="travel.fx"):
        rates = fx.rates(ctx(fx_rates=config))
    assert rates.label == fx.SAMPLE_LABEL
    assert "ignoring the fx_rates config" in caplog.text


@pytest.mark.parametrize(
    ("locale", "trip", "currency"),
    [
        ("en-US", {"currency": "EUR"}, "USD"),
        ("de-CH", {"currency": "EUR"}, "CHF"),
        ("pt-BR", {"currency": "EUR"}, "BRL"),
        ("en-GB", {"currency": "EUR"}, "GBP"),
        ("en", {"currency": "JPY"}, "JPY"),  # no territory: the trip's currency
        ("nonsense", {"currency": "JPY"}, "JPY"),
        ("en", None, "EUR"),
    ],
)
def test_reader_currency(fx, locale: str, trip, currency: str) -> None:
    assert fx.reader_currency(ctx(locale), trip) == currency
