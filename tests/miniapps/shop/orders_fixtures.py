"""Helpers for the cart, order and review tests: a shop in the SDK simulator with a store and
products written straight into the app's storage (``storage.put`` through
``sim.call_capability``, every check of the host) — so these tests need none of catalog's views —
and a product card posted as the app, whose Buy / Add to cart buttons buyers press.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdk.simulator import SimConversation, Simulator, SimUser

SHOP_DIR = Path(__file__).resolve().parents[3] / "miniapps" / "shop"
STORE_ID = "st-mira"
MUG = "p-mug"


@dataclass
class Shop:
    """A simulator with a merchant's store, a buyer, and a chat with both of them."""

    sim: Simulator
    seller: SimUser
    buyer: SimUser
    chat: SimConversation

    async def call(self, method: str, params: dict, user: SimUser | None = None) -> Any:
        status, result = await self.sim.call_capability(user, self.chat, method, params)
        assert status == "ok", (method, result)
        return result

    async def put(self, collection: str, key: str, value: Any) -> None:
        await self.call("storage.put", {"collection": collection, "key": key, "value": value})

    async def product(
        self,
        product_id: str = MUG,
        *,
        title: str = "Blue mug",
        price: int = 1250,
        currency: str = "USD",
        stock: int | dict[str, int] = 5,
        variants: list[dict] | None = None,
        visible: bool = True,
        course_id: str | None = None,
        store_id: str = STORE_ID,
    ) -> str:
        """Write a product and its stock (``{variant id: n}`` for one with variants)."""
        await self.put(
            "products",
            product_id,
            {
                "store_id": store_id,
                "owner": self.seller.id,
                "title": title,
                "description": "",
                "photos": [],
                "currency": currency,
                "price": price,
                "visible": visible,
                "deleted": False,
                "variants": variants or [],
                "team_price": None,
                "team_size": None,
                "course_id": course_id,
                "rating_sum": 0,
                "rating_count": 0,
                "created_at": 0,
                "updated_at": 0,
            },
        )
        stocks = stock if isinstance(stock, dict) else {"-": stock}
        for variant_id, left in stocks.items():
            await self.put("stock", f"{product_id}:{variant_id}", {"left": left})
        return product_id

    async def change_product(self, product_id: str = MUG, **fields: Any) -> None:
        product = copy.deepcopy(self.sim.storage("products")[product_id])
        product.update(fields)
        await self.put("products", product_id, product)

    def stock(self, product_id: str = MUG, variant_id: str = "-") -> int:
        return self.sim.storage("stock")[f"{product_id}:{variant_id}"]["left"]

    async def product_card(self, *values: str) -> str:
        """A product card posted as the app with Buy and Add to cart per value (``"p-…"`` or
        ``"p-…:v1"``); its message id."""
        buttons = []
        for value in values:
            buttons.append({"action_id": "product.buy", "label": f"Buy {value}", "value": value})
            buttons.append({"action_id": "cart.add", "label": f"Add {value}", "value": value})
        result = await self.call(
            "messages.send_card", {"card": {"title": "Products", "buttons": buttons}}
        )
        return result["message_id"]

    async def buttons(self, *action_ids: str) -> str:
        """A card posted as the app with these buttons: a client may send any value with a press,
        so presses on it reach the app with whatever order id a test gives."""
        buttons = [{"action_id": a, "label": a} for a in action_ids]
        result = await self.call(
            "messages.send_card", {"card": {"title": "Buttons", "buttons": buttons}}
        )
        return result["message_id"]

    def said(self, user: SimUser | None = None) -> str:
        """The last ephemeral text shown to ``user`` (default: the buyer)."""
        shown = self.sim.ephemeral(user or self.buyer)
        assert shown, "nothing was shown"
        last = shown[-1]
        return last.get("text") or last["card"]["title"]

    def checkouts(self) -> dict[str, dict]:
        return self.sim.storage("checkouts")

    def orders(self) -> dict[str, dict]:
        return self.sim.storage("orders")

    def only_order(self) -> dict:
        (order,) = self.orders().values()
        return order

    def payment_for(self, order_ref: str) -> dict:
        (payment,) = [p for p in self.sim.payments.values() if p["order_ref"] == order_ref]
        return payment

    async def buy(self, user: SimUser | None = None, value: str = MUG) -> str | None:
        """``user`` presses Buy on a product card; the checkout it made (None: none)."""
        before = set(self.checkouts())
        card = await self.product_card(value)
        await self.sim.press(user or self.buyer, card, "product.buy", value)
        made = set(self.checkouts()) - before
        return made.pop() if made else None

    async def pay(self, checkout_id: str, user: SimUser | None = None) -> dict:
        """The buyer confirms the checkout's payment; the order it made."""
        payment = self.payment_for(checkout_id)
        await self.sim.confirm_payment(user or self.buyer, payment["id"])
        return self.order_for(checkout_id)

    def order_for(self, checkout_id: str) -> dict:
        (order,) = [o for o in self.orders().values() if o["source_ref"] == checkout_id]
        return order

    async def bought(self, user: SimUser | None = None, value: str = MUG) -> dict:
        """A paid order of one unit."""
        checkout_id = await self.buy(user, value)
        assert checkout_id is not None, self.said(user)
        return await self.pay(checkout_id, user)

    async def press(self, user: SimUser, order: dict, action_id: str) -> str:
        """``user`` presses ``action_id`` on the order's card; what they were told."""
        await self.sim.press(user, order["message_id"], action_id, order["id"])
        return self.said(user)

    async def command(self, user: SimUser, text: str, chat: SimConversation | None = None) -> str:
        await self.sim.command(user, chat or self.chat, text)
        return self.said(user)

    def order(self, order_id: str) -> dict:
        return self.orders()[order_id]


async def open_shop(config: dict[str, str] | None = None, **sim_options: Any) -> Shop:
    sim = Simulator(SHOP_DIR, config=config, **sim_options)
    seller, buyer = sim.user("mira"), sim.user("ben")
    sim.grant_role(seller, "merchant")
    shop = Shop(sim, seller, buyer, sim.conversation(members=[seller, buyer]))
    await shop.put(
        "stores",
        STORE_ID,
        {"owner": seller.id, "name": "Mira's Market", "name_key": "mira's market"},
    )
    await shop.product()
    return shop
