"""Helpers for the group-buy and group-cart tests: the shop in the SDK simulator, products and
stock written straight into its storage (as the merchant's web view would leave them), and
chats of a given type."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sdk.simulator import Simulator

SHOP_DIR = Path(__file__).resolve().parents[3] / "miniapps" / "shop"
STORE_ID = "st-groupbuytests1"
COLLECTIONS = (
    "groupbuys",
    "groupbuy_open",
    "groupcarts",
    "groupcart_chats",
    "stock",
    "orders",
    "payments",
)


def new_sim() -> Simulator:
    return Simulator(SHOP_DIR)


async def put(sim: Simulator, collection: str, key: str, value: Any) -> None:
    """Write a document into the app's storage (with every check of the host)."""
    status, result = await sim.call_capability(
        None, None, "storage.put", {"collection": collection, "key": key, "value": value}
    )
    assert status == "ok", result


async def open_store(sim: Simulator, owner) -> str:
    await put(
        sim,
        "stores",
        STORE_ID,
        {
            "owner": owner.id,
            "name": "Tea House",
            "name_key": "tea house",
            "description": "",
            "logo": None,
            "created_at": int(time.time() * 1000),
        },
    )
    return STORE_ID


async def add_product(
    sim: Simulator,
    owner,
    product_id: str,
    title: str,
    *,
    price: int = 1200,
    team_price: int | None = 900,
    team_size: int | None = 3,
    stock: int = 10,
    currency: str = "USD",
    variants: list[dict] | None = None,
    **extra: Any,
) -> dict:
    """A visible product of the test store with ``stock`` units (per variant when it has
    variants), written the way the catalog stores it."""
    now = int(time.time() * 1000)
    product = {
        "store_id": STORE_ID,
        "owner": owner.id,
        "title": title,
        "description": "",
        "photos": [],
        "currency": currency,
        "price": price,
        "visible": True,
        "deleted": False,
        "variants": variants or [],
        "team_price": team_price,
        "team_size": team_size,
        "course_id": None,
        "rating_sum": 0,
        "rating_count": 0,
        "created_at": now,
        "updated_at": now,
        **extra,
    }
    await put(sim, "products", product_id, product)
    for variant_id in [v["id"] for v in variants or []] or ["-"]:
        await put(sim, "stock", f"{product_id}:{variant_id}", {"left": stock})
    return {**product, "id": product_id}


async def change_product(sim: Simulator, product_id: str, **fields: Any) -> None:
    """The merchant edits a product (e.g. drops its team price)."""
    await put(sim, "products", product_id, {**sim.storage("products")[product_id], **fields})


def stock_left(sim: Simulator, product_id: str, variant_id: str = "-") -> int:
    return sim.storage("stock")[f"{product_id}:{variant_id}"]["left"]


def snapshot(sim: Simulator, *chats) -> dict[str, Any]:
    """What the shop stored (in the collections these features touch), the payments it asked,
    its pending timers and the messages in ``chats``: equal before and after a refused input."""
    return {
        "storage": {name: sim.storage(name) for name in COLLECTIONS},
        "payments": sim.payments,
        "timers": sim.pending_timers(),
        "messages": [sim.messages(chat) for chat in chats],
    }


async def product_card(sim: Simulator, user, chat, title: str, product_id: str) -> str:
    """Post the product's card in ``chat`` (``/shop search <title>``) and return its id."""
    await sim.command(user, chat, f"/shop search {title}")
    for message in reversed(sim.messages(chat)):
        buttons = message.get("card", {}).get("buttons", [])
        if any(b.get("value", "").split(":")[0] == product_id for b in buttons):
            return message["id"]
    raise AssertionError(f"no card of {product_id} was posted")


def last_text(sim: Simulator, user) -> str:
    return sim.ephemeral(user)[-1]["text"]


def conversation_of_type(sim: Simulator, members, kind: str, monkeypatch=None):
    """A chat of type ``kind`` (``direct``, ``group``, ``service``): the app sees it as
    ``ctx.conversation_type``. (``monkeypatch`` is accepted and unused.)"""
    return sim.conversation(members=members, type=kind)
