"""Helpers for the price and alert tests: the crypto app in the SDK simulator with its clock tied
to the simulator's (``clock.now_ms`` → ``sim.now``), Ann, Bea and Otto, a group of the three,
Ann's direct chat with Bea and each one's service chat; and ``CoinGecko``, which plays the
provider's answers with ``sim.fake_http`` (prices, ``last_updated_at``, 429/500/bad JSON) and a
timeout (the host's ``http.fetch`` answering ``timeout``), recording every request.

``START`` is Monday 2025-03-03 12:00:30 UTC.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sdk import HostError
from sdk import simulator as simulator_module
from sdk.simulator import SimConversation, Simulator, SimUser
from tests.miniapps.crypto.coingecko_stub import (
    DEFAULT_PRICES,
    market_chart_body,
    simple_price_body,
)

CRYPTO_DIR = Path(__file__).resolve().parents[3] / "miniapps" / "crypto"
START = round(datetime(2025, 3, 3, 12, 0, 30, tzinfo=UTC).timestamp() * 1000)
SECOND = 1000
MINUTE = 60 * SECOND
API = "https://api.coingecko.com/api/v3"
API_KEY = "cg-test-key"


def app_module(name: str):
    """One of the crypto app's own modules, as the loaded app imported it."""
    module = sys.modules[name]
    assert Path(module.__file__).resolve().parent == CRYPTO_DIR, module.__file__
    return module


class CoinGecko:
    """CoinGecko's answers in the simulator: ``set(...)`` what it says, ``fail(mode)`` to make it
    fail; ``requests`` are the app's ``http.fetch`` params (url, headers …)."""

    def __init__(self, sim: Simulator, monkeypatch) -> None:
        self.sim = sim
        self.prices: dict[str, Any] = dict(DEFAULT_PRICES)
        self.changes: dict[str, Any] = {"bitcoin": "3.64", "ethereum": "-1.25"}
        self.updated_ms: int | None = None  # None: "now" at each answer set
        self.mode: str | None = None
        self.requests: list[dict[str, Any]] = []
        original = simulator_module._EFFECTS["http.fetch"]

        def fetch(simulator, call, params):
            self.requests.append(dict(params))
            if self.mode == "timeout":
                raise HostError("the site did not answer in time", code="timeout")
            return original(simulator, call, params)

        monkeypatch.setitem(simulator_module._EFFECTS, "http.fetch", fetch)
        self.publish()

    def quotes_url(self) -> str:
        return app_module("prices").quotes_url(API)

    def chart_url(self, coin: str) -> str:
        return app_module("prices").chart_url(API, coin)

    def publish(self) -> None:
        """(Re)register the answers for the current prices, ``last_updated_at`` and mode."""
        updated = (self.sim.now if self.updated_ms is None else self.updated_ms) // 1000
        status, body, headers = 200, simple_price_body(self.prices, self.changes, updated), {}
        if self.mode == "429":
            status, body, headers = 429, '{"status": {"error_code": 429}}', {"Retry-After": "120"}
        elif self.mode == "500":
            status, body = 500, "internal error"
        elif self.mode == "bad_json":
            body = '{"bitcoin": {"usd": '
        self.sim.fake_http(self.quotes_url(), status=status, body=body, headers=headers)
        prices = app_module("prices")
        for coin in prices.COINS.values():
            if coin.gecko_id not in self.prices:
                self.sim.fake_http(self.chart_url(coin.symbol), status=404, body="{}")
                continue
            chart = market_chart_body(self.prices[coin.gecko_id], self.sim.now)
            self.sim.fake_http(
                self.chart_url(coin.symbol),
                status=status,
                body=chart if status == 200 and self.mode != "bad_json" else body,
                headers=headers,
            )

    def set(self, gecko_id: str, price: Any, *, change: Any = None, updated_ms: int | None = None):
        self.prices[gecko_id] = str(price)
        if change is not None:
            self.changes[gecko_id] = str(change)
        self.updated_ms = updated_ms
        self.mode = None
        self.publish()

    def fail(self, mode: str | None) -> None:
        """``"429"``, ``"500"``, ``"bad_json"``, ``"timeout"``; None: answer again."""
        self.mode = mode
        self.publish()

    def quote_fetches(self) -> int:
        return sum(1 for r in self.requests if r["url"] == self.quotes_url())

    def chart_fetches(self) -> int:
        return sum(1 for r in self.requests if "/market_chart" in r["url"])


@dataclass
class Crypto:
    sim: Simulator
    ann: SimUser
    bea: SimUser
    otto: SimUser
    group: SimConversation
    direct: SimConversation
    gecko: CoinGecko | None = None
    services: dict[str, SimConversation] = field(default_factory=dict)

    def service(self, user: SimUser) -> SimConversation:
        if user.name not in self.services:
            self.services[user.name] = self.sim.conversation(members=[user], type="service")
        return self.services[user.name]

    async def command(self, user: SimUser, text: str, chat: SimConversation | None = None) -> str:
        """``user`` runs ``text`` in ``chat`` (their service chat by default); what they were
        shown privately (a text, or a card's title, text and fields). Fails when nothing was."""
        before = len(self.sim.ephemeral(user))
        await self.sim.command(user, chat or self.service(user), text)
        shown = self.sim.ephemeral(user)
        assert len(shown) > before, f"{text!r} showed {user.name} nothing"
        return shown_text(shown[-1])

    def last_private_card(self, user: SimUser) -> dict[str, Any]:
        last = self.sim.ephemeral(user)[-1]
        assert "card" in last, last
        return last["card"]

    async def press_notified(
        self, user: SimUser, card: dict[str, Any], action_id: str, value: str | None = None
    ) -> tuple[str, str]:
        """``user`` presses ``action_id`` on a service message's ``card``. The simulator records
        service messages, not the messages of the service chat, so the same card is posted
        into their service chat as the app and pressed there — the press the app receives is
        the one a client sends for the service message's button. ``(message id, what they
        were told)``."""
        status, posted = await self.sim.call_capability(
            user, self.service(user), "messages.send_card", {"card": card}
        )
        assert status == "ok", posted
        before = len(self.sim.ephemeral(user))
        await self.sim.press(user, posted["message_id"], action_id, value)
        shown = self.sim.ephemeral(user)
        assert len(shown) > before, f"pressing {action_id} showed {user.name} nothing"
        return posted["message_id"], shown_text(shown[-1])

    def stored(self, collection: str) -> dict[str, Any]:
        return self.sim.storage(collection)

    def written(self) -> dict[str, int]:
        """How many documents each collection holds (to check that nothing was written)."""
        return {name: len(items) for name, items in self.sim._storage.items() if items}

    def timers(self, prefix: str = "") -> list[dict[str, Any]]:
        return [t for t in self.sim.pending_timers() if t["key"].startswith(prefix)]


def shown_text(item: dict[str, Any]) -> str:
    if "card" in item:
        card = item["card"]
        fields = " | ".join(f"{f['label']}: {f['value']}" for f in card.get("fields", []))
        return "\n".join(x for x in (card["title"], card.get("text", ""), fields) if x)
    return item["text"]


def fields_of(card: dict[str, Any]) -> dict[str, str]:
    return {f["label"]: f["value"] for f in card.get("fields", [])}


def open_crypto(
    monkeypatch,
    *,
    provider: str = "simulated",
    config: dict[str, str] | None = None,
    ann_zone: str | None = None,
    ann_locale: str | None = None,
    **options: Any,
) -> Crypto:
    """The app in a simulator at ``START``; with ``provider="coingecko"`` the provider is
    played by ``crypto.gecko`` (answering at once, API key set)."""
    settings = {"price_provider": provider, **(config or {})}
    if provider == "coingecko":
        settings.setdefault("price_api_key", API_KEY)
    sim = Simulator(CRYPTO_DIR, config=settings, **options)
    sim.now = START
    monkeypatch.setattr(app_module("clock"), "now_ms", lambda: sim.now)
    ann = sim.user("ann", display_name="Ann", time_zone=ann_zone, locale=ann_locale)
    bea = sim.user("bea", display_name="Bea")
    otto = sim.user("otto", display_name="Otto")
    group = sim.conversation(members=[ann, bea, otto], title="Traders")
    direct = sim.conversation(members=[ann, bea], type="direct")
    crypto = Crypto(sim, ann, bea, otto, group, direct)
    if provider == "coingecko":
        crypto.gecko = CoinGecko(sim, monkeypatch)
    return crypto


def usd(value: Any, locale: str = "en") -> str:
    return app_module("prices").format_usd(Decimal(str(value)), locale)
