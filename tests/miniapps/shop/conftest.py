"""Fixtures for the shop's tests: the app in the SDK simulator, a merchant, a buyer, a chat."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from sdk.simulator import Simulator

SHOP_DIR = Path(__file__).resolve().parents[3] / "miniapps" / "shop"
DEMO_PHOTO = SHOP_DIR / "demo_photos" / "01-headphones.jpg"


@pytest.fixture
def sim() -> Simulator:
    return Simulator(SHOP_DIR)


@pytest.fixture
def merchant(sim):
    """Mira, who has the ``merchant`` role."""
    user = sim.user("mira")
    sim.grant_role(user, "merchant")
    return user


@pytest.fixture
def buyer(sim):
    return sim.user("ben")


@pytest.fixture
def chat(sim, merchant, buyer):
    return sim.conversation(members=[merchant, buyer])


def photo_data_url(path: Path = DEMO_PHOTO) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


async def open_store(sim, merchant, chat, name: str = "Mira's Market") -> dict:
    """``merchant`` opens their store through the web view; the answer's ``store``."""
    return (await sim.view(merchant, chat, "store.save", {"name": name}))["store"]


async def add_product(sim, merchant, chat, **fields) -> dict:
    """``merchant`` lists a product through the web view (a USD product with 5 in stock unless
    ``fields`` say otherwise); the answer's ``product``."""
    params = {"title": "Wireless Headphones", "price": "79.00", "currency": "USD", "stock": 5}
    params.update(fields)
    return (await sim.view(merchant, chat, "product.save", params))["product"]
