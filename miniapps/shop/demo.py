"""Demo data: "Aetherial Demo Store" and a dozen products with photos, made by the view
``demo.seed`` (``python run.py seed-demo`` calls it as the demo merchant, like the web view would).

Idempotent and resumable: the store is the merchant's own (one per merchant), the products have
fixed ids (``p-demo-01`` …) and each is written only when absent, so a second run changes
nothing and a run cut short is finished by the next. The photos are JPEGs in ``demo_photos/``
next to this file, uploaded with ``ctx.upload_media`` when their product is created.
"""

from __future__ import annotations

import base64
from pathlib import Path

import listings
from listings import CatalogError

PHOTOS = Path(__file__).resolve().parent / "demo_photos"
STORE = {
    "name": "Aetherial Demo Store",
    "description": "Everything you need to try the shop: gadgets, gear, tea — and a course.",
}
# (photo file, product fields). Prices in minor units; "stock" or per-variant "stock".
PRODUCTS: list[tuple[str, dict]] = [
    (
        "01-headphones.jpg",
        {
            "title": "Wireless Headphones",
            "description": "Over-ear, noise cancelling, 30 hours of battery. Folds flat.",
            "price": 7900,
            "stock": 25,
        },
    ),
    (
        "02-mug.jpg",
        {
            "title": "Ceramic Coffee Mug",
            "description": "350 ml stoneware mug, dishwasher safe. Keeps your coffee company.",
            "price": 1250,
            "stock": 100,
        },
    ),
    (
        "03-python-course.jpg",
        {
            "title": "Data Science Basics (course)",
            "description": "From spreadsheets to your first model, step by step. "
            "Buying it enrols you in the course in the Courses app.",
            "price": 1900,
            "stock": 10000,
            "course_id": "data-science",
        },
    ),
    (
        "04-running-shoes.jpg",
        {
            "title": "Running Shoes",
            "description": "Light trail runners with a grippy sole. Pick your size.",
            "price": 8900,
            "variants": [
                {"label": "EU 40", "price": 8900, "stock": 4},
                {"label": "EU 41", "price": 8900, "stock": 6},
                {"label": "EU 42", "price": 8900, "stock": 6},
                {"label": "EU 44", "price": 9400, "stock": 2},
            ],
        },
    ),
    (
        "05-yoga-mat.jpg",
        {
            "title": "Yoga Mat",
            "description": "6 mm cork and rubber mat with a carry strap. Cheaper as a team!",
            "price": 2900,
            "stock": 40,
            "team_price": 1900,
            "team_size": 3,
        },
    ),
    (
        "06-green-tea.jpg",
        {
            "title": "Green Tea Sampler",
            "description": "Sencha, gyokuro and genmaicha, 50 g each.",
            "price": 1500,
            "stock": 60,
        },
    ),
    (
        "07-wallet.jpg",
        {
            "title": "Leather Wallet",
            "description": "Slim vegetable-tanned leather wallet with six card slots.",
            "price": 4500,
            "stock": 15,
        },
    ),
    (
        "08-desk-lamp.jpg",
        {
            "title": "Desk Lamp",
            "description": "Warm LED desk lamp with a dimmer and a weighted base.",
            "price": 3490,
            "stock": 12,
        },
    ),
    (
        "09-phone-case.jpg",
        {
            "title": "Phone Case",
            "description": "Shock-absorbing case with raised edges, recycled plastic.",
            "price": 1990,
            "stock": 80,
        },
    ),
    (
        "10-backpack.jpg",
        {
            "title": "Travel Backpack",
            "description": "28 l, laptop sleeve, water resistant, fits under a plane seat.",
            "price": 6400,
            "stock": 3,
        },
    ),
    (
        "11-notebooks.jpg",
        {
            "title": "Notebook Set",
            "description": "Three A5 dotted notebooks, 96 pages each.",
            "price": 990,
            "stock": 200,
        },
    ),
    (
        "12-speaker.jpg",
        {
            "title": "Bluetooth Speaker",
            "description": "Coming soon: a pocket speaker with a big sound.",
            "price": 5900,
            "stock": 0,
            "visible": False,
        },
    ),
]


def demo_id(index: int) -> str:
    return f"p-demo-{index:02d}"


async def seed(ctx) -> dict:
    """Create the demo store and products for the calling merchant, where missing; answers
    ``{"summary", "store_id", "created"}``."""
    listings.check_merchant(ctx)
    store = await listings.get_store(ctx, listings.store_id_of(ctx.user_id))
    if store is None:
        store = await listings.do_save_store(ctx, dict(STORE))
    elif store["name"] != STORE["name"]:
        raise CatalogError("not_demo_store", f"You already run the store {store['name']!r}.")
    created = []
    for index, (photo, fields) in enumerate(PRODUCTS, 1):
        product_id = demo_id(index)
        if await ctx.storage_get("products", product_id) is not None:
            continue
        media_id = (await listings.do_upload_photo(ctx, {"data": read_photo(photo)}))["media_id"]
        params = {"currency": "USD", **fields, "photos": [media_id]}
        await listings.do_save_product(ctx, params, new_id=product_id)
        created.append(product_id)
    summary = (
        f"{STORE['name']}: {len(created)} products created"
        if created
        else f"{STORE['name']}: already seeded"
    )
    return {"summary": summary, "store_id": store["id"], "created": created}


def read_photo(name: str) -> str:
    """A demo photo as base64 text, as the web view sends one."""
    return base64.b64encode((PHOTOS / name).read_bytes()).decode("ascii")
