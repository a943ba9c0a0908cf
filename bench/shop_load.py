"""The shop's flash sale against `run.py`: checkouts/s and p50/p99 latency.

    .venv/bin/python bench/shop_load.py [--buyers 200] [--units 50] [--groups 10]

Seeds the demo (`run.py seed-demo`: ana is a merchant with a store), starts Aetherial on the
embedded store (as `make run` does), and lets ana list a product of ``--units`` through the
shop's web view. ``--buyers`` people sign up, are topped up and join ``--groups`` groups where
ana posts the product's card; then every buyer presses Buy at once over Socket.IO. Measured per
buyer: press → the answer (asked to pay, or told "sold out"): the **checkout latency**; then the
asked ones confirm at once (confirmation latency), and the orders are counted as their cards
appear. Prints checkouts/s (reservations and sold-out answers per second of the burst) with
p50/p99, confirmations p50/p99 and paid orders/s.
The exit code is 1 when the outcome is wrong (not exactly ``--units`` paid orders).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._servers import server_env, start_aetherial
from gateway.demo import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Correct-horse-9"
PRICE = 1500


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


class Buyer:
    def __init__(self, session: aiohttp.ClientSession, base: str, name: str) -> None:
        self.session, self.base, self.name = session, base, name
        self.token = ""
        self.user_id = ""
        self.sio = socketio.AsyncClient(reconnection=False)
        self.answered = asyncio.Event()
        self.payment_id: str | None = None
        self.sold_out = False

    async def http(self, method: str, path: str, body=None):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.request(method, self.base + path, json=body, headers=headers) as r:
            return r.status, await r.json(content_type=None)

    async def sign_in(self, password: str, *, register: bool) -> None:
        if register:
            body = {"username": self.name, "email": f"{self.name}@x.invalid", "password": password}
            status, answer = await self.http("POST", "/api/v1/auth/register", body)
            assert status == 201, answer
        login = {"login": self.name, "password": password}
        status, answer = await self.http("POST", "/api/v1/auth/login", login)
        assert status == 200, answer
        self.token, self.user_id = answer["access_token"], answer["user"]["id"]

        @self.sio.on("payment.confirm_required", namespace="/")
        async def asked(data):
            self.payment_id = data["payment"]["id"]
            self.answered.set()

        @self.sio.on("miniapp.ephemeral", namespace="/")
        async def ephemeral(data):
            if "Sold out" in (data.get("text") or ""):
                self.sold_out = True
                self.answered.set()

        await self.sio.connect(self.base, auth={"token": self.token}, transports=["websocket"])

    async def call(self, event: str, data: dict) -> dict:
        return await self.sio.call(event, data, timeout=120)


async def scenario(base: str, args: argparse.Namespace) -> int:
    async with aiohttp.ClientSession() as session:
        ana = Buyer(session, base, "ana")
        await ana.sign_in(DEMO_PASSWORD, register=False)
        buyers = [Buyer(session, base, f"buyer{i}") for i in range(args.buyers)]
        for first in range(0, len(buyers), 25):
            await asyncio.gather(
                *(b.sign_in(PASSWORD, register=True) for b in buyers[first : first + 25])
            )
        for b in buyers:
            await b.http(
                "POST", "/api/v1/wallet/dev-topup", {"amount": 2 * PRICE, "currency": "USD"}
            )
        per_group = args.buyers // args.groups
        chats = []
        for index in range(args.groups):
            members = buyers[index * per_group : (index + 1) * per_group]
            body = {
                "type": "group",
                "title": f"Sale {index}",
                "member_ids": [m.user_id for m in members],
            }
            _, made = await ana.http("POST", "/api/v1/conversations", body)
            cid = made["conversation"]["id"]
            await ana.http("POST", f"/api/v1/conversations/{cid}/apps", {"app_id": "shop"})
            chats.append((cid, members))
        _, launch = await ana.http("POST", f"/api/v1/conversations/{chats[0][0]}/apps/shop/launch")
        product = {"title": "Bench Lamp", "price": PRICE, "currency": "USD", "stock": args.units}
        status, saved = await ana.http(
            "POST",
            "/api/v1/webviews/call",
            {"token": launch["token"], "name": "product.save", "params": product},
        )
        assert status == 200, saved
        product_id = saved["result"]["product"]["id"]
        cards = {}
        card_seen = asyncio.Event()

        @ana.sio.on("message.new", namespace="/")
        async def card(data):
            message = data["message"]
            for button in (message.get("card") or {}).get("buttons", []):
                if button["action_id"] == "product.buy" and button.get("value") == product_id:
                    cards[message["conversation_id"]] = (message["id"], button["value"])
                    if len(cards) == len(chats):
                        card_seen.set()

        for cid, _ in chats:
            await ana.call(
                "message.send",
                {
                    "conversation_id": cid,
                    "client_msg_id": f"b{cid}",
                    "text": "/shop search Bench Lamp",
                },
            )
        await asyncio.wait_for(card_seen.wait(), 60)

        latencies: list[float] = []

        async def buy(buyer: Buyer, cid: str) -> None:
            message_id, value = cards[cid]
            began = time.perf_counter()
            ack = await buyer.call(
                "miniapp.action",
                {
                    "conversation_id": cid,
                    "message_id": message_id,
                    "action_id": "product.buy",
                    "value": value,
                },
            )
            assert ack["ok"], ack
            await asyncio.wait_for(buyer.answered.wait(), 120)
            latencies.append((time.perf_counter() - began) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(buy(b, cid) for cid, members in chats for b in members))
        burst = time.perf_counter() - began
        payers = [b for b in buyers if b.payment_id]
        confirm_latencies: list[float] = []
        orders_seen: set[str] = set()
        all_paid = asyncio.Event()

        @ana.sio.on("message.new", namespace="/")
        async def order(data):  # ana is in every group: she sees each order card once
            title = (data["message"].get("card") or {}).get("title", "")
            if title.startswith("Order "):
                orders_seen.add(data["message"]["id"])
                if len(orders_seen) == len(payers):
                    all_paid.set()

        async def pay(buyer: Buyer) -> None:
            start = time.perf_counter()
            ack = await buyer.call("payment.confirm", {"payment_id": buyer.payment_id})
            assert ack["ok"], ack
            confirm_latencies.append((time.perf_counter() - start) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(pay(b) for b in payers))
        await asyncio.wait_for(all_paid.wait(), 300)
        paying = time.perf_counter() - began
        sold_out = sum(b.sold_out for b in buyers)
        print(
            f"flash sale: {args.buyers} buyers, {args.units} units, {args.groups} groups\n"
            f"  checkouts (press → asked to pay / sold out): {len(latencies) / burst:.1f}/s, "
            f"p50 {statistics.median(latencies):.0f} ms, p99 {pct(latencies, 99):.0f} ms\n"
            f"  reserved {len(payers)}, sold out {sold_out}\n"
            f"  payment confirmations: p50 {statistics.median(confirm_latencies):.0f} ms, "
            f"p99 {pct(confirm_latencies, 99):.0f} ms; all {len(orders_seen)} order cards "
            f"{paying:.1f} s after the first confirmation "
            f"({len(orders_seen) / paying:.1f} orders/s)"
        )
        for b in [ana, *buyers]:
            await b.sio.disconnect()
        return 0 if len(payers) == args.units and sold_out == args.buyers - args.units else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--units", type=int, default=50)
    parser.add_argument("--groups", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = {**server_env(), "AETHERIAL_ENV": "development"}
        seeded = subprocess.run(
            [
                sys.executable,
                str(ROOT / "run.py"),
                "--data-dir",
                str(workdir / "data"),
                "seed-demo",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if seeded.returncode != 0:
            print(seeded.stderr, file=sys.stderr)
            return 1
        server = start_aetherial(workdir)
        try:
            return asyncio.run(scenario(server.url, args))
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
