"""``python run.py seed-demo`` (``make demo``): demo people, a group with the apps and each app's
sample data — made through the running platform, and a second run changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from gateway.demo import DEMO_PASSWORD, GROUP_TITLE
from tests.helpers import ApiClient
from tests.miniapps.shop.e2e_helpers import view

ROOT = Path(__file__).resolve().parent.parent


def seed(data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URL", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "run.py", "--data-dir", str(data_dir), "seed-demo"],
        cwd=ROOT,
        env={**clean, "LOG_LEVEL": "warning", **env},
        capture_output=True,
        text=True,
        timeout=240,
    )


class _Person:
    """Enough of tests.messaging.chat_helpers.Person for ``view``."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api


async def test_seed_demo_twice_then_use_it(gateway, mongo_url, mongo_db_name, tmp_path):
    env = {"MONGODB_URL": mongo_url, "MONGODB_DB": mongo_db_name, "AETHERIAL_ENV": "development"}
    first = seed(tmp_path / "seed", **env)
    assert first.returncode == 0, first.stderr
    assert "people: ana, ben, chen, dara" in first.stdout
    assert "Aetherial Demo Store: 12 products created" in first.stdout
    assert "courses: 2 created (python-101, data-science)" in first.stdout
    assert "500.00 USD and 500.00 EUR each" in first.stdout
    assert "health: 3 practitioners created (dr_silva: Dr. Ana Silva, dr_wang: " in first.stdout
    assert "crypto: paper orders placed (ben: 12, dara: 8)" in first.stdout
    assert "travel: trip to Lisbon " in first.stdout and "3 shared expenses" in first.stdout
    again = seed(tmp_path / "seed", **env)
    assert again.returncode == 0, again.stderr
    assert "Aetherial Demo Store: already seeded" in again.stdout
    assert "courses: already seeded" in again.stdout
    assert "health: already seeded" in again.stdout
    assert "crypto: already seeded" in again.stdout
    assert "travel: already seeded" in again.stdout

    # What a newcomer then sees, on a gateway over the same database.
    api = ApiClient(str(gateway.make_url("")).rstrip("/"))
    try:
        await api.login("ben", DEMO_PASSWORD)
        status, body = await api.get("/api/v1/conversations")
        assert status == 200, body
        [demo_group] = [c for c in body["conversations"] if c["title"] == GROUP_TITLE]
        status, body = await api.get(f"/api/v1/conversations/{demo_group['id']}/apps")
        assert status == 200, body
        assert {"poll", "shop", "courses"} <= {app["id"] for app in body["miniapps"]}
        assert "health" in {app["id"] for app in body["miniapps"]}
        status, wallet = await api.get("/api/v1/wallet")
        assert status == 200, wallet
        assert {"currency": "USD", "amount": 50_000} in [
            {k: b[k] for k in ("currency", "amount")} for b in wallet["balances"]
        ]
        front = await view(_Person(api), demo_group["id"], "storefront")
        titles = [product["title"] for product in front["items"]]
        assert len(titles) >= 10 and len(set(titles)) == len(titles)  # 11 visible, one hidden
        # The three demo practitioners take bookings: a newcomer sees them with free times.
        doctors = await view(_Person(api), demo_group["id"], "doctors.list", app="health")
        by_zone = {d["zone"]: d for d in doctors["doctors"]}
        assert set(by_zone) == {"Europe/Lisbon", "Asia/Shanghai", "America/New_York"}
        assert by_zone["Europe/Lisbon"]["fee_text"] == "Free"
        assert by_zone["Asia/Shanghai"]["fee"]["amount"] > 0
        assert all(d["next_slots"] for d in doctors["doctors"])
        # The two demo traders' paper orders rest on both books, around the market price.
        assert "crypto" in {app["id"] for app in body["miniapps"]}
        for symbol in ("BTC/USDT", "ETH/USDT"):
            book = await view(
                _Person(api), demo_group["id"], "book", {"symbol": symbol}, app="crypto"
            )
            assert len(book["asks"]) == 3 and len(book["bids"]) == 6, book
            assert Decimal(book["best_bid"]) < Decimal(book["best_ask"])
            assert book["paper"] == "Paper trading — no real money."
        mine = await view(_Person(api), demo_group["id"], "orders.mine", app="crypto")
        assert len(mine["open"]) == 10  # ben's: 3 asks and 2 bids on each book
        # The crew plans a trip to Lisbon: four travellers, flights there and back and a stay in
        # the plan (the labelled sample provider), a vote, and expenses Ben can settle.
        assert {"travel", "assistant"} <= {app["id"] for app in body["miniapps"]}
        trip = (await view(_Person(api), demo_group["id"], "trip.get", app="travel"))["trip"]
        assert trip["title"] == "Lisbon" and len(trip["travellers"]) == 4
        kinds = sorted(item["kind"] for item in trip["items"])
        assert kinds == ["activity", "flight", "flight", "stay"], kinds
        assert [v["status"] for v in trip["votes"]] == ["open"]
        money = await view(_Person(api), demo_group["id"], "expenses.get", app="travel")
        assert sorted(e["title"] for e in money["expenses"]) == [
            "Airport taxi",
            "Dinner at Ramiro",
            "Tram passes",
        ]
        assert sum(money["balances"]["EUR"].values()) == 0
        assert any(t["to"] == money["me"] for t in money["transfers"]["EUR"])  # ben is owed
    finally:
        await api.close()


def test_seed_demo_without_development_tops_up_nothing(mongo_url, mongo_db_name, tmp_path):
    env = {"MONGODB_URL": mongo_url, "MONGODB_DB": mongo_db_name}
    result = seed(tmp_path / "seed", **env)
    assert result.returncode == 0, result.stderr
    assert "wallets: not topped up" in result.stdout
