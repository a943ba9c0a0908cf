"""``/crypto portfolio`` and the ``portfolio`` view in the simulator: positions, the average cost
from the person's own trades in the event log, realised and unrealised P&L at the current
price, and the total against the starting paper balance."""

from __future__ import annotations

from tests.miniapps.crypto.exchange_fixtures import open_exchange

PAPER = "Paper trading — no real money."


def fields(card: dict) -> dict[str, str]:
    return {f["label"]: f["value"] for f in card.get("fields", [])}


async def test_average_cost_and_profit_and_loss(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann, bea = ex.trader("ann"), ex.trader("bea")
    await ex.place(ann, "buy", "0.1")  # 6 000 + 12 fee at 60 000: 60 120 a BTC
    ex.market.set("btc", "66000")
    before = await ex.view(ann, "portfolio")
    [btc] = before["positions"]
    assert (btc["amount"], btc["average_cost"], btc["unrealised"]) == ("0.1", "60120", "588")
    assert btc["realised"] == "0"

    await ex.place(ann, "sell", "0.04", price="65000")
    await ex.place(bea, "buy", "0.04", price="65000")  # Ann is the maker: 0.1 % fee

    mine = await ex.view(ann, "portfolio")
    [btc] = mine["positions"]
    # Realised: 2 600 - 2.6 fee - 0.04 at the 60 120 average; the rest keeps its average.
    assert btc == {
        "asset": "BTC",
        "symbol": "BTC/USDT",
        "amount": "0.06",
        "average_cost": "60120",
        "price": "66000",
        "value": "3960",
        "unrealised": "352.8",
        "realised": "192.6",
        "stale": False,
    }
    assert mine["cash"] == "6585.4"
    assert (mine["total_value"], mine["start_value"]) == ("10545.4", "10000")
    assert (mine["pnl"], mine["pnl_pct"]) == ("545.4", "5.45")
    assert mine["paper"] == PAPER

    theirs = await ex.view(bea, "portfolio")
    [btc] = theirs["positions"]
    assert (btc["average_cost"], btc["unrealised"], btc["realised"]) == ("65130", "34.8", "0")
    assert theirs["pnl"] == "34.8"


async def test_the_portfolio_card(monkeypatch):
    ex = open_exchange(monkeypatch)
    ann = ex.trader("ann")
    await ex.place(ann, "buy", "0.1")
    await ex.place(ann, "buy", "1", symbol="ETH/USDT")
    ex.market.set("btc", "54000")
    ex.market.set("eth", "3300", stale=True)

    card = await ex.command(ann, "/crypto portfolio")

    assert card["title"] == "Portfolio"
    assert PAPER in card["text"] and "Simulated market prices" in card["text"]
    # 10 000 - 6 012 - 3 006 = 982 cash; 5 400 + 3 300 in coins.
    assert card["text"].startswith("Worth 9,682 USDT: -318 (-3.18 %) since the start.")
    shown = fields(card)
    assert shown["Cash"] == "982 USDT"
    assert shown["BTC"] == (
        "0.1 · avg cost 60,120 · now 54,000 · value 5,400 USDT · unrealised -612 · realised +0"
    )
    assert "now 3,300 (stale price)" in shown["ETH"]
    assert card["buttons"] == [{"label": "Chart", "opens": "webview", "path": "#portfolio"}]
    assert ex.sim.messages(ex.chat) == []


async def test_an_empty_portfolio_is_the_starting_balance(monkeypatch):
    ex = open_exchange(monkeypatch)
    bea = ex.trader("bea")
    mine = await ex.view(bea, "portfolio")
    assert mine["positions"] == [] and mine["cash"] == "10000"
    assert (mine["total_value"], mine["pnl"], mine["pnl_pct"]) == ("10000", "0", "0")
    assert "accounts" not in ex.sim._storage  # looking writes nothing
