"""The shop's catalogue through the SDK simulator: stores, products, variants, stock, photos,
search, product cards, the web view's views, the demo seed and money formatting."""

from __future__ import annotations

import base64
import io
import sys

import pytest
from PIL import Image

from sdk import ViewError, validate_card
from sdk.simulator import HostRefused, Simulator
from tests.miniapps.shop.conftest import SHOP_DIR, add_product, open_store, photo_data_url

sys.path.insert(0, str(SHOP_DIR))  # the app's own modules, as its runtime imports them
import catalog
import listings
import money


def view_error(excinfo) -> str:
    return excinfo.value.code


def last_card(sim, chat) -> dict:
    message = sim.messages(chat)[-1]
    assert message["type"] == "card"
    return message


def buttons(card: dict) -> list[tuple[str, str, str | None]]:
    """The card's press buttons (those that open the web view: ``web_buttons``)."""
    return [
        (b["action_id"], b["label"], b.get("value"))
        for b in card.get("buttons", [])
        if "action_id" in b
    ]


def web_buttons(card: dict) -> list[tuple[str, str | None]]:
    """The card's buttons that open the shop's web view: (label, path)."""
    return [(b["label"], b.get("path")) for b in card.get("buttons", []) if "opens" in b]


def fields(card: dict) -> dict[str, str]:
    return {f["label"]: f["value"] for f in card.get("fields", [])}


def png_data_url() -> str:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def urlpath(url: str) -> str:
    return url.split("?", 1)[0]


def stored(sim) -> dict:
    return {c: sim.storage(c) for c in ("stores", "products", "stock", "uploads")}


# --- money ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (1250, "USD", "en", "$12.50"),
        (1250, "USD", "en-GB", "US$12.50"),
        (123456, "EUR", "de", "1.234,56\xa0€"),
        (123456, "EUR", "de-DE", "1.234,56\xa0€"),
        (1250, "JPY", "ja", "￥1,250"),  # no minor units: 1250 yen, not 12.50
        (1250, "JPY", "en", "¥1,250"),
        (5, "USD", "not a locale", "$0.05"),
    ],
)
def test_format_price(amount, currency, locale, expected):
    assert money.format_price(amount, currency, locale) == expected


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [("12.50", "USD", 1250), ("12,5", "EUR", 1250), ("12", "USD", 1200), ("1250", "JPY", 1250)],
)
def test_parse_price(text, currency, expected):
    assert money.parse_price(text, currency) == expected


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("", "USD", "empty"),
        ("-1", "USD", "not a number"),
        ("abc", "USD", "not a number"),
        ("1,000.00", "USD", "not a number"),
        ("1.234", "USD", "2 decimals at most"),
        ("1.5", "JPY", "no minor units"),
        ("0", "USD", "more than 0"),
        ("1", "usd", "Unknown currency"),
    ],
)
def test_parse_price_refuses(text, currency, message):
    with pytest.raises(ValueError, match=message):
        money.parse_price(text, currency)


# --- stores ---------------------------------------------------------------------------------


async def test_merchant_opens_and_edits_one_store(sim, merchant, chat):
    assert (await sim.view(merchant, chat, "store.mine"))["store"] is None
    store = await open_store(sim, merchant, chat, "Mira's Market")
    mine = await sim.view(merchant, chat, "store.mine")
    assert mine["store"]["name"] == "Mira's Market" and mine["store"]["id"] == store["id"]
    assert "USD" in mine["currencies"]
    # Saving again edits the one store: a merchant never has a second.
    await sim.view(merchant, chat, "store.save", {"name": "Mira's Bazaar", "description": "Hi"})
    [(store_id, doc)] = sim.storage("stores").items()
    assert store_id == store["id"]
    assert (doc["name"], doc["name_key"], doc["description"]) == (
        "Mira's Bazaar",
        "mira's bazaar",
        "Hi",
    )
    assert doc["owner"] == merchant.id


async def test_store_names_are_unique_whatever_the_case(sim, merchant, chat):
    await open_store(sim, merchant, chat, "Corner Shop")
    other = sim.user("omar")
    sim.grant_role(other, "merchant")
    sim.add_member(chat, other)
    before = stored(sim)
    with pytest.raises(ViewError) as excinfo:
        await sim.view(other, chat, "store.save", {"name": "  corner SHOP "})
    assert view_error(excinfo) == "store_name_taken"
    assert stored(sim) == before


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"name": ""}, "invalid_name"),
        ({"name": "   "}, "invalid_name"),
        ({"name": "x" * 61}, "invalid_name"),
        ({"name": 7}, "invalid_name"),
        ({"name": "Shop", "description": "d" * 501}, "invalid_description"),
        ({"name": "Shop", "logo": "0" * 24}, "invalid_photos"),
    ],
)
async def test_bad_store_input_writes_nothing(sim, merchant, chat, params, code):
    with pytest.raises(ViewError) as excinfo:
        await sim.view(merchant, chat, "store.save", params)
    assert view_error(excinfo) == code
    assert sim.storage("stores") == {}


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("store.mine", {}),
        ("store.save", {"name": "Mine now"}),
        ("product.save", {"title": "Mug", "price": "1.00", "currency": "USD"}),
        ("product.hide", {"product_id": "p-abc", "hidden": True}),
        ("product.delete", {"product_id": "p-abc"}),
        ("stock.set", {"product_id": "p-abc", "stock": 3}),
        ("photo.upload", {"data": "aGk="}),
        ("demo.seed", {}),
    ],
)
async def test_merchant_views_refuse_everyone_else(sim, buyer, chat, name, params):
    with pytest.raises(ViewError) as excinfo:
        await sim.view(buyer, chat, name, params)
    assert view_error(excinfo) == "not_a_merchant"
    assert stored(sim) == {"stores": {}, "products": {}, "stock": {}, "uploads": {}}


async def test_a_revoked_merchant_cannot_manage_their_store(sim, merchant, chat):
    await open_store(sim, merchant, chat)
    product = await add_product(sim, merchant, chat)
    sim.revoke_role(merchant, "merchant")
    with pytest.raises(ViewError) as excinfo:
        await sim.view(
            merchant, chat, "product.hide", {"product_id": product["id"], "hidden": True}
        )
    assert view_error(excinfo) == "not_a_merchant"
    assert sim.storage("products")[product["id"]]["visible"] is True


# --- products -------------------------------------------------------------------------------


async def test_add_product_with_photo_and_stock(sim, merchant, chat):
    store = await open_store(sim, merchant, chat)
    media_id = (await sim.view(merchant, chat, "photo.upload", {"data": photo_data_url()}))[
        "media_id"
    ]
    assert sim.media(media_id)["kind"] == "image"
    product = await add_product(
        sim, merchant, chat, description="Noise cancelling", photos=[media_id], stock=7
    )
    assert product["price"] == 7900 and product["price_text"] == "$79.00"
    assert product["left"] == 7 and product["stock_text"] == "7 left"
    doc = sim.storage("products")[product["id"]]
    assert doc["store_id"] == store["id"] and doc["owner"] == merchant.id
    assert doc["photos"] == [media_id] and doc["visible"] is True and doc["deleted"] is False
    assert (doc["rating_sum"], doc["rating_count"], doc["variants"]) == (0, 0, [])
    assert sim.storage("stock") == {f"{product['id']}:-": {"left": 7}}


async def test_a_product_needs_a_store(sim, merchant, chat):
    with pytest.raises(ViewError) as excinfo:
        await add_product(sim, merchant, chat)
    assert view_error(excinfo) == "no_store"
    assert sim.storage("products") == {}


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"title": ""}, "invalid_title"),
        ({"title": "  "}, "invalid_title"),
        ({"title": "t" * 121}, "invalid_title"),
        ({"title": None}, "invalid_title"),
        ({"description": "d" * 2001}, "invalid_description"),
        ({"price": "abc"}, "invalid_price"),
        ({"price": "0"}, "invalid_price"),
        ({"price": 0}, "invalid_price"),
        ({"price": -5}, "invalid_price"),
        ({"price": "-5"}, "invalid_price"),
        ({"price": 10**9 + 1}, "invalid_price"),
        ({"price": "1.234"}, "invalid_price"),
        ({"price": True}, "invalid_price"),
        ({"price": 12.5}, "invalid_price"),
        ({"price": None}, "invalid_price"),
        ({"price": "1.5", "currency": "JPY"}, "invalid_price"),
        ({"currency": "XYZ"}, "invalid_currency"),
        ({"currency": "usd"}, "invalid_currency"),
        ({"currency": None}, "invalid_currency"),
        ({"stock": -1}, "invalid_stock"),
        ({"stock": 100_001}, "invalid_stock"),
        ({"stock": "lots"}, "invalid_stock"),
        ({"stock": 2.5}, "invalid_stock"),
        ({"variants": [{"label": f"v{i}"} for i in range(21)]}, "invalid_variants"),
        ({"variants": "M"}, "invalid_variants"),
        ({"variants": [{"label": "M"}, {"label": "m"}]}, "invalid_variants"),
        ({"variants": [{"label": ""}]}, "invalid_label"),
        ({"variants": [{"label": "M", "price": "free"}]}, "invalid_price"),
        ({"variants": [{"label": "M", "stock": -2}]}, "invalid_stock"),
        ({"variants": [{"label": "M", "id": "v9"}]}, "invalid_variants"),
        ({"variants": [{"label": "M", "id": ["v1"]}]}, "invalid_variants"),
        ({"stock": "9" * 5000}, "invalid_stock"),
        ({"stock": "²"}, "invalid_stock"),
        ({"photos": ["0" * 24]}, "invalid_photos"),
        ({"photos": ["../etc/passwd"]}, "invalid_photos"),
        ({"photos": "abc"}, "invalid_photos"),
        ({"team_price": "79.00", "team_size": 3}, "invalid_team"),
        ({"team_price": "50.00", "team_size": 1}, "invalid_team"),
        ({"team_price": "50.00", "team_size": 51}, "invalid_team"),
        ({"team_price": "50.00"}, "invalid_team"),
        ({"course_id": "Python 101!"}, "invalid_course"),
        ({"visible": "yes"}, "invalid_visible"),
    ],
)
async def test_bad_product_input_writes_nothing(sim, merchant, chat, fields, code):
    await open_store(sim, merchant, chat)
    before = stored(sim)
    with pytest.raises(ViewError) as excinfo:
        await add_product(sim, merchant, chat, **fields)
    assert view_error(excinfo) == code
    assert excinfo.value.message  # a sentence for the merchant
    assert stored(sim) == before


async def test_too_many_photos_and_someone_elses_photo(sim, merchant, chat):
    await open_store(sim, merchant, chat)
    other = sim.user("omar")
    sim.grant_role(other, "merchant")
    sim.add_member(chat, other)
    theirs = (await sim.view(other, chat, "photo.upload", {"data": png_data_url()}))["media_id"]
    with pytest.raises(ViewError) as excinfo:
        await add_product(sim, merchant, chat, photos=[theirs])
    assert view_error(excinfo) == "invalid_photos"
    mine = (await sim.view(merchant, chat, "photo.upload", {"data": png_data_url()}))["media_id"]
    with pytest.raises(ViewError) as excinfo:
        await add_product(sim, merchant, chat, photos=[mine] * 7)
    assert view_error(excinfo) == "invalid_photos"
    with pytest.raises(ViewError) as excinfo:
        await add_product(sim, merchant, chat, photos=[mine, mine])
    assert view_error(excinfo) == "invalid_photos"
    assert sim.storage("products") == {}


async def test_edit_product_keeps_stock_and_adds_variant_stock(sim, merchant, chat):
    await open_store(sim, merchant, chat)
    product = await add_product(
        sim,
        merchant,
        chat,
        variants=[{"label": "S", "stock": 2}, {"label": "M", "price": "85.00", "stock": 4}],
    )
    assert [(v["id"], v["label"], v["price"], v["left"]) for v in product["variants"]] == [
        ("v1", "S", 7900, 2),
        ("v2", "M", 8500, 4),
    ]
    assert product["price_text"] == "from $79.00"
    edited = (
        await sim.view(
            merchant,
            chat,
            "product.save",
            {
                "product_id": product["id"],
                "title": "Headphones Pro",
                "price": "80.00",
                "variants": [
                    {"id": "v2", "label": "M", "price": "90.00", "stock": 99},  # stock: stock.set
                    {"label": "L", "stock": 3},
                ],
            },
        )
    )["product"]
    assert edited["title"] == "Headphones Pro" and edited["currency"] == "USD"
    assert [(v["id"], v["label"], v["price"], v["left"]) for v in edited["variants"]] == [
        ("v2", "M", 9000, 4),
        ("v3", "L", 8000, 3),
    ]
    assert sim.storage("stock")[f"{product['id']}:v2"] == {"left": 4}
    # A removed variant's number is never given again.
    again = (
        await sim.view(
            merchant,
            chat,
            "product.save",
            {
                "product_id": product["id"],
                "title": "Headphones Pro",
                "price": "80.00",
                "variants": [{"id": "v2", "label": "M"}, {"label": "XL"}],
            },
        )
    )["product"]
    assert [v["id"] for v in again["variants"]] == ["v2", "v4"]
    with pytest.raises(ViewError) as excinfo:  # one variant twice
        await sim.view(
            merchant,
            chat,
            "product.save",
            {
                "product_id": product["id"],
                "title": "Headphones Pro",
                "price": "80.00",
                "variants": [{"id": "v2", "label": "M"}, {"id": "v2", "label": "M2"}],
            },
        )
    assert view_error(excinfo) == "invalid_variants"


async def test_edit_refusals(sim, merchant, buyer, chat):
    await open_store(sim, merchant, chat)
    product = await add_product(sim, merchant, chat)
    other = sim.user("omar")
    sim.grant_role(other, "merchant")
    sim.add_member(chat, other)
    await open_store(sim, other, chat, "Omar's")
    before = stored(sim)
    cases = [
        (other, {"product_id": product["id"]}, "not_your_product"),
        (merchant, {"product_id": "p-nothere"}, "unknown_product"),
        (merchant, {"product_id": "../x"}, "unknown_product"),
        (merchant, {"product_id": 12}, "unknown_product"),
        (merchant, {"product_id": product["id"], "currency": "EUR"}, "invalid_currency"),
    ]
    for user, change, code in cases:
        params = {"title": "Changed", "price": "1.00", "currency": "USD", **change}
        with pytest.raises(ViewError) as excinfo:
            await sim.view(user, chat, "product.save", params)
        assert view_error(excinfo) == code, change
    for name, params in [
        ("product.hide", {"product_id": product["id"], "hidden": True}),
        ("product.delete", {"product_id": product["id"]}),
        ("stock.set", {"product_id": product["id"], "stock": 1}),
    ]:
        with pytest.raises(ViewError) as excinfo:
            await sim.view(other, chat, name, params)
        assert view_error(excinfo) == "not_your_product"
    with pytest.raises(ViewError) as excinfo:
        await sim.view(merchant, chat, "product.hide", {"product_id": product["id"], "hidden": 1})
    assert view_error(excinfo) == "invalid_hidden"
    assert stored(sim) == before


async def test_hide_show_and_delete(sim, merchant, buyer, chat):
    await open_store(sim, merchant, chat)
    product = await add_product(sim, merchant, chat)
    await sim.command(buyer, chat, "/shop")
    listing = last_card(sim, chat)
    assert (
        await sim.view(
            merchant, chat, "product.hide", {"product_id": product["id"], "hidden": True}
        )
    ) == {
        "product_id": product["id"],
        "visible": False,
    }
    # Hidden: not for sale, not on the storefront, not in search, not on a card; its merchant
    # still sees it.
    assert (await sim.view(buyer, chat, "storefront"))["items"] == []
    with pytest.raises(ViewError) as excinfo:
        await sim.view(buyer, chat, "product.get", {"product_id": product["id"]})
    assert view_error(excinfo) == "unknown_product"
    mine = await sim.view(merchant, chat, "product.get", {"product_id": product["id"]})
    assert mine["product"]["visible"] is False
    count = len(sim.messages(chat))
    await sim.press(buyer, listing["id"], "product.view")
    assert len(sim.messages(chat)) == count
    assert sim.ephemeral(buyer)[-1]["text"] == "That product is not for sale (any more)."
    await sim.command(buyer, chat, "/shop search headphones")
    assert sim.ephemeral(buyer)[-1]["text"].startswith("Nothing for sale matches")
    await sim.view(merchant, chat, "product.hide", {"product_id": product["id"], "hidden": False})
    assert [p["id"] for p in (await sim.view(buyer, chat, "storefront"))["items"]] == [
        product["id"]
    ]
    # Deleted: gone for everyone, its merchant included; the document stays for old orders.
    assert await sim.view(merchant, chat, "product.delete", {"product_id": product["id"]}) == {
        "product_id": product["id"],
        "deleted": True,
    }
    assert sim.storage("products")[product["id"]]["deleted"] is True
    assert (await sim.view(merchant, chat, "store.mine"))["products"] == []
    for user in (buyer, merchant):
        with pytest.raises(ViewError) as excinfo:
            await sim.view(user, chat, "product.get", {"product_id": product["id"]})
        assert view_error(excinfo) == "unknown_product"
    with pytest.raises(ViewError) as excinfo:
        await sim.view(merchant, chat, "product.delete", {"product_id": product["id"]})
    assert view_error(excinfo) == "unknown_product"


async def test_get_product_for_other_modules(sim, merchant, chat):
    await open_store(sim, merchant, chat)
    product = await add_product(sim, merchant, chat, variants=[{"label": "Red", "stock": 3}])
    await sim.view(merchant, chat, "product.hide", {"product_id": product["id"], "hidden": True})
    seen = {}

    async def look(ctx):
        seen["buyer"] = await catalog.get_product(ctx, product["id"])
        seen["merchant"] = await catalog.get_product(ctx, product["id"], include_hidden=True)
        seen["unknown"] = await catalog.get_product(ctx, "p-unknown")
        seen["stock"] = await catalog.product_stock(ctx, seen["merchant"])

    sim.app.views["test.look"] = look
    try:
        await sim.view(merchant, chat, "test.look")
    finally:
        del sim.app.views["test.look"]
    assert seen["buyer"] is None and seen["unknown"] is None
    assert seen["merchant"]["id"] == product["id"] and seen["stock"] == {"v1": 3}
    assert catalog.stock_key(product["id"], "v1") == f"{product['id']}:v1"
    assert catalog.parse_item(f"{product['id']}:v1") == (product["id"], "v1")
    with pytest.raises(catalog.CatalogError):
        catalog.parse_item("p-x:../")


# --- stock ----------------------------------------------------------------------------------


async def test_set_stock_is_conditional(sim, merchant, chat):
    await open_store(sim, merchant, chat)
    product = await add_product(sim, merchant, chat, stock=5)
    [row] = (await sim.view(merchant, chat, "store.mine"))["products"]
    version = row["stock_versions"]["-"]
    answer = await sim.view(
        merchant,
        chat,
        "stock.set",
        {"product_id": product["id"], "stock": 12, "expected_version": version},
    )
    assert answer["left"] == 12 and answer["version"] == version + 1
    # A checkout takes one (storage_incr, as cart.py does) while the merchant's page is open:
    # the merchant's stale write is refused instead of overwriting the sale.
    key = catalog.stock_key(product["id"])
    status, _ = await sim.call_capability(
        merchant,
        chat,
        "storage.incr",
        {"collection": "stock", "key": key, "field": "left", "delta": -1, "min": 0},
    )
    assert status == "ok"
    with pytest.raises(ViewError) as excinfo:
        await sim.view(
            merchant,
            chat,
            "stock.set",
            {"product_id": product["id"], "stock": 20, "expected_version": version + 1},
        )
    assert view_error(excinfo) == "stock_changed"
    assert "now 11 left" in excinfo.value.message
    assert sim.storage("stock")[key] == {"left": 11}
    # Without a version from the page, the current one is used.
    await sim.view(merchant, chat, "stock.set", {"product_id": product["id"], "stock": 0})
    assert sim.storage("stock")[key] == {"left": 0}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"stock": -1}, "invalid_stock"),
        ({"stock": 100_001}, "invalid_stock"),
        ({"stock": None}, "invalid_stock"),
        ({"stock": True}, "invalid_stock"),
        ({"stock": 3, "variant_id": "v1"}, "unknown_variant"),
        ({"stock": 3, "expected_version": -1}, "invalid_version"),
        ({"stock": 3, "expected_version": "1"}, "invalid_version"),
        ({"stock": 3, "product_id": "p-nothere"}, "unknown_product"),
    ],
)
async def test_bad_stock_input_writes_nothing(sim, merchant, chat, change, code):
    await open_store(sim, merchant, chat)
    product = await add_product(sim, merchant, chat, stock=5)
    before = stored(sim)
    with pytest.raises(ViewError) as excinfo:
        await sim.view(merchant, chat, "stock.set", {"product_id": product["id"], **change})
    assert view_error(excinfo) == code
    assert stored(sim) == before


async def test_variant_stock_needs_its_variant(sim, merchant, chat):
    await open_store(sim, merchant, chat)
    product = await add_product(sim, merchant, chat, variants=[{"label": "S", "stock": 1}])
    for variant_id in (None, "v7"):
        with pytest.raises(ViewError) as excinfo:
            await sim.view(
                merchant,
                chat,
                "stock.set",
                {"product_id": product["id"], "variant_id": variant_id, "stock": 4},
            )
        assert view_error(excinfo) == "unknown_variant"
    await sim.view(
        merchant, chat, "stock.set", {"product_id": product["id"], "variant_id": "v1", "stock": 4}
    )
    assert sim.storage("stock")[f"{product['id']}:v1"] == {"left": 4}


# --- photos ---------------------------------------------------------------------------------


async def test_photo_upload_png_and_base64(sim, merchant, chat):
    png = (await sim.view(merchant, chat, "photo.upload", {"data": png_data_url()}))["media_id"]
    raw = photo_data_url().split(",", 1)[1]
    jpeg = (await sim.view(merchant, chat, "photo.upload", {"data": raw}))["media_id"]
    assert sim.media(png)["kind"] == sim.media(jpeg)["kind"] == "image"
    assert sim.storage("uploads")[png]["owner"] == merchant.id


@pytest.mark.parametrize(
    "data",
    [
        None,
        "",
        "data:image/png;base64,@@@@",
        base64.b64encode(b"GIF89a" + b"\0" * 20).decode(),  # not a JPEG or PNG
        base64.b64encode(b"just text").decode(),
        base64.b64encode(b"\xff\xd8\xff" + b"broken jpeg").decode(),  # the host refuses it
    ],
)
async def test_bad_photos_are_refused(sim, merchant, chat, data):
    with pytest.raises(ViewError) as excinfo:
        await sim.view(merchant, chat, "photo.upload", {"data": data})
    assert view_error(excinfo) in ("invalid_photo", "invalid_image")
    assert sim.storage("uploads") == {} and sim.media_ids() == []


async def test_photo_size_limits(sim, merchant, chat):
    # The page shrinks photos first: a view's params are at most 64 KiB of JSON.
    big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 70_000).decode()
    with pytest.raises(HostRefused):
        await sim.view(merchant, chat, "photo.upload", {"data": big})
    with pytest.raises(catalog.CatalogError) as excinfo:
        listings.decode_photo(base64.b64encode(b"\xff\xd8\xff" + b"\0" * (512 * 1024)).decode())
    assert excinfo.value.code == "invalid_photo"


# --- commands and cards ---------------------------------------------------------------------


async def test_shop_storefront_card(sim, merchant, buyer, chat):
    await sim.command(buyer, chat, "/shop")
    assert sim.messages(chat) == []
    assert "Nothing is for sale yet" in sim.ephemeral(buyer)[-1]["text"]
    await open_store(sim, merchant, chat)
    mug = await add_product(sim, merchant, chat, title="Coffee Mug", price="12.50")
    lamp = await add_product(sim, merchant, chat, title="Desk Lamp", price="34.90")
    hidden = await add_product(sim, merchant, chat, title="Secret", visible=False)
    await sim.command(buyer, chat, "/shop")
    card = last_card(sim, chat)["card"]
    assert card["title"] == "Shop"
    assert web_buttons(card) == [("Open the shop", None)]
    assert fields(card) == {"Desk Lamp": "$34.90", "Coffee Mug": "$12.50"}
    # Newest first (two listed in the same millisecond: either order).
    assert sorted(buttons(card)) == [
        ("product.view", "Coffee Mug", mug["id"]),
        ("product.view", "Desk Lamp", lamp["id"]),
    ]
    assert hidden["id"] not in str(card)


async def test_product_card_from_view_and_share(sim, merchant, buyer, chat):
    await open_store(sim, merchant, chat)
    media_id = (await sim.view(merchant, chat, "photo.upload", {"data": photo_data_url()}))[
        "media_id"
    ]
    product = await add_product(
        sim, merchant, chat, description="Over-ear.", photos=[media_id], stock=3
    )
    await sim.command(buyer, chat, "/shop")
    await sim.press(buyer, last_card(sim, chat)["id"], "product.view")
    message = last_card(sim, chat)
    card = message["card"]
    assert card["title"] == "Wireless Headphones" and card["image"] == media_id
    assert card["text"] == "Over-ear."
    assert fields(card) == {
        "Price": "$79.00",
        "Rating": "no ratings yet",
        "Stock": "3 left",
        "Item": product["id"],
    }
    assert buttons(card) == [
        ("product.buy", "Buy", product["id"]),
        ("cart.add", "Add to cart", product["id"]),
        ("product.share", "Share", product["id"]),
    ]
    await sim.press(buyer, message["id"], "product.share")
    shared = last_card(sim, chat)
    assert shared["id"] != message["id"] and shared["card"] == card


async def test_view_and_share_refuse_bad_values(sim, merchant, buyer, chat):
    await open_store(sim, merchant, chat)
    product = await add_product(sim, merchant, chat)
    await sim.command(buyer, chat, "/shop")
    listing = last_card(sim, chat)
    for value in ("p-nothere", "nonsense", None):
        await sim.press(buyer, listing["id"], "product.view", value=value)
        assert sim.ephemeral(buyer)[-1]["text"] in (
            "That product is not for sale (any more).",
            "That product does not exist.",
        )
    await sim.press(buyer, listing["id"], "product.view", value=product["id"])
    card_message = last_card(sim, chat)
    await sim.view(merchant, chat, "product.delete", {"product_id": product["id"]})
    await sim.press(buyer, card_message["id"], "product.share")
    assert sim.ephemeral(buyer)[-1]["text"] == "That product is not for sale (any more)."
    assert last_card(sim, chat)["id"] == card_message["id"]


def test_product_card_rating_sold_out_team_and_variants():
    base = {
        "id": "p-1",
        "title": "Yoga Mat",
        "description": "",
        "currency": "USD",
        "price": 2900,
        "variants": [],
        "photos": [],
        "rating_sum": 9,
        "rating_count": 2,
        "team_price": 1900,
        "team_size": 3,
    }
    card = catalog.product_card(base, 0, "en").to_dict()
    assert fields(card)["Rating"] == "★ 4.5 (2)"
    assert fields(card)["Stock"] == "sold out"
    assert fields(card)["Group buy"] == "$19.00 each in a team of 3"
    assert buttons(card) == [  # sold out: no Buy / Add to cart
        ("product.share", "Share", "p-1"),
        ("groupbuy.start", "Start group buy", "p-1"),
    ]
    assert "image" not in card and "text" not in card
    # Variants: one Buy per variant in stock (and Add while the card has room).
    variants = [{"id": f"v{i}", "label": f"EU {39 + i}", "price": 2900} for i in range(1, 4)]
    card = catalog.product_card(
        {**base, "variants": variants, "team_price": None}, {"v1": 2, "v2": 0, "v3": 1}, "en"
    ).to_dict()
    assert buttons(card) == [
        ("product.buy", "Buy · EU 40", "p-1:v1"),
        ("product.buy", "Buy · EU 42", "p-1:v3"),
        ("cart.add", "Add · EU 40", "p-1:v1"),
        ("cart.add", "Add · EU 42", "p-1:v3"),
        ("product.share", "Share", "p-1"),
    ]
    assert fields(card)["EU 41"] == "$29.00 · sold out" and fields(card)["Stock"] == "3 left"
    # 8 variants: 8 Buy buttons, no room for Add; more than 8: pick in the web view.
    many = [{"id": f"v{i}", "label": f"S{i}", "price": 2900} for i in range(1, 10)]
    card = catalog.product_card(
        {**base, "variants": many[:8]}, {v["id"]: 1 for v in many[:8]}, "en"
    ).to_dict()
    assert [b[0] for b in buttons(card)] == ["product.buy"] * 8 + [
        "product.share",
        "groupbuy.start",
    ]
    assert "web view" in card["text"]
    card = catalog.product_card({**base, "variants": many}, {v["id"]: 1 for v in many}, "en")
    card = card.to_dict()
    assert [b[0] for b in buttons(card)] == ["product.share", "groupbuy.start"]
    assert "Pick a variant in the Shop web view" in card["text"]
    # A long title fits the card's 100 characters and stays whole in the text.
    card = catalog.product_card({**base, "title": "T" * 120}, 1, "en").to_dict()
    assert len(card["title"]) == 100 and card["text"] == "T" * 120


async def test_prices_follow_the_readers_locale():
    sim = Simulator(SHOP_DIR, locale="de")
    mira = sim.user("mira")
    sim.grant_role(mira, "merchant")
    room = sim.conversation(members=[mira])
    await open_store(sim, mira, room)
    await add_product(sim, mira, room, price="1234.50", currency="EUR")
    await add_product(sim, mira, room, title="Tea", price="1250", currency="JPY")
    items = (await sim.view(mira, room, "storefront"))["items"]
    assert sorted(i["price_text"] for i in items) == ["1.234,50\xa0€", "1.250\xa0¥"]
    await sim.command(mira, room, "/shop search tea")
    assert fields(last_card(sim, room)["card"])["Price"] == "1.250\xa0¥"


# --- search ---------------------------------------------------------------------------------


async def seed_demo(sim, merchant, chat) -> dict:
    return await sim.view(merchant, chat, "demo.seed")


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("hedphones", "Wireless Headphones"),  # a typo
        ("HEADPHONE", "Wireless Headphones"),
        ("coffe mug", "Ceramic Coffee Mug"),
        ("shoes running", "Running Shoes"),
        ("data sciense", "Data Science Basics (course)"),
        ("sencha", "Green Tea Sampler"),  # a word of the description
        ("bakpack", "Travel Backpack"),
    ],
)
async def test_search_is_typo_tolerant(sim, merchant, buyer, chat, query, first):
    await seed_demo(sim, merchant, chat)
    await sim.command(buyer, chat, f"/shop search {query}")
    cards = [m["card"] for m in sim.messages(chat) if m["type"] == "card"]
    assert 1 <= len(cards) <= 5
    assert cards[0]["title"] == first


async def test_search_misses_and_usage(sim, merchant, buyer, chat):
    await seed_demo(sim, merchant, chat)
    for text, answer in [
        ("/shop search", "Usage: /shop search <words>"),
        ("/shop search   ", "Usage: /shop search <words>"),
        ("/shop search qqqqzzzz", "Nothing for sale matches 'qqqqzzzz'."),
        ("/shop search bluetooth speaker", "Nothing for sale matches"),  # the hidden one
        ("/shop search " + "x" * 101, "Search for 100 characters at most."),
    ]:
        await sim.command(buyer, chat, text)
        assert sim.ephemeral(buyer)[-1]["text"].startswith(answer), text
    assert sim.messages(chat) == []


async def test_search_shows_at_most_five_cards(sim, merchant, buyer, chat):
    await open_store(sim, merchant, chat)
    for n in range(7):
        await add_product(sim, merchant, chat, title=f"Blue Mug {n}")
    await sim.command(buyer, chat, "/shop search mug")
    assert len(sim.messages(chat)) == 5


async def test_search_pages_through_the_catalogue(sim, merchant, buyer, chat):
    await open_store(sim, merchant, chat)
    for n in range(120):
        params = {"title": f"Plain Item {n}", "price": 100, "currency": "USD", "stock": 1}
        await sim.view(merchant, chat, "product.save", params)
    await add_product(sim, merchant, chat, title="Harmonica")
    await sim.command(buyer, chat, "/shop search harmonika")
    assert [m["card"]["title"] for m in sim.messages(chat)] == ["Harmonica"]


# --- /shop store ----------------------------------------------------------------------------


async def test_shop_store_command(sim, merchant, buyer, chat):
    store = await open_store(sim, merchant, chat, "Mira's Market")
    await sim.view(
        merchant, chat, "store.save", {"name": "Mira's Market", "description": "Fresh things."}
    )
    await sim.command(buyer, chat, "/shop store mira's market")
    card = last_card(sim, chat)["card"]
    assert card["title"] == "Mira's Market"
    assert card["text"] == "Fresh things.\nNothing for sale here yet."
    mug = await add_product(sim, merchant, chat, title="Coffee Mug", price="12.50")
    await add_product(sim, merchant, chat, title="Hidden", visible=False)
    await sim.command(buyer, chat, "/shop store MIRA'S MARKET")
    card = last_card(sim, chat)["card"]
    assert fields(card) == {"Coffee Mug": "$12.50"}
    assert buttons(card) == [("product.view", "Coffee Mug", mug["id"])]
    assert store["id"] == sim.storage("products")[mug["id"]]["store_id"]
    count = len(sim.messages(chat))
    for text, answer in [
        ("/shop store", "Usage: /shop store <store name>"),
        ("/shop store Nowhere", "There is no store called 'Nowhere'."),
    ]:
        await sim.command(buyer, chat, text)
        assert sim.ephemeral(buyer)[-1]["text"] == answer
    assert len(sim.messages(chat)) == count


# --- web view listing -----------------------------------------------------------------------


async def test_storefront_view_pages_and_filters(sim, merchant, buyer, chat):
    store = await open_store(sim, merchant, chat)
    ids = [(await add_product(sim, merchant, chat, title=f"Item {n}"))["id"] for n in range(5)]
    pages = [await sim.view(buyer, chat, "storefront", {"limit": 2})]
    while pages[-1]["next"]:
        after = pages[-1]["next"]
        pages.append(await sim.view(buyer, chat, "storefront", {"limit": 2, "after": after}))
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    seen = [item["id"] for page in pages for item in page["items"]]
    assert sorted(seen) == sorted(ids)
    created = [sim.storage("products")[product_id]["created_at"] for product_id in seen]
    assert created == sorted(created, reverse=True)  # newest first
    by_store = await sim.view(buyer, chat, "storefront", {"store_id": store["id"]})
    assert len(by_store["items"]) == 5
    assert (await sim.view(buyer, chat, "storefront", {"store_id": "st-none"}))["items"] == []
    found = await sim.view(buyer, chat, "storefront", {"q": "item 3"})
    assert found["items"][0]["id"] == ids[3] and found["next"] is None
    one = await sim.view(buyer, chat, "product.get", {"product_id": ids[0]})
    assert one["store"] == {"id": store["id"], "name": "Mira's Market"}
    assert one["product"]["price_text"] == "$79.00" and "visible" not in one["product"]


async def test_views_give_signed_photo_addresses(sim, merchant, buyer, chat):
    """``photo_urls``: addresses the host signs for the shop's own photos (``media.url``), made
    for each answer — the first photo's thumbnail in lists, every photo on the product page —
    beside the media ids in ``photos``; a product without photos has none."""
    await open_store(sim, merchant, chat)
    photos = [
        (await sim.view(merchant, chat, "photo.upload", {"data": data}))["media_id"]
        for data in (photo_data_url(), png_data_url())
    ]
    plain = await add_product(sim, merchant, chat, title="Plain Mug")
    pictured = await add_product(sim, merchant, chat, title="Headphones", photos=photos)

    items = {i["id"]: i for i in (await sim.view(buyer, chat, "storefront"))["items"]}
    assert items[plain["id"]]["photo_urls"] == [] and items[plain["id"]]["photos"] == []
    assert items[pictured["id"]]["photos"] == photos
    [tile] = items[pictured["id"]]["photo_urls"]
    assert tile.startswith(f"/sim/media/{photos[0]}/thumbnail?exp=")
    assert sim.fetch_media_url(tile) == (200, sim.media(photos[0])["data"])
    # Search results are a list too.
    [found] = (await sim.view(buyer, chat, "storefront", {"q": "headphones"}))["items"]
    assert [urlpath(u) for u in found["photo_urls"]] == [f"/sim/media/{photos[0]}/thumbnail"]

    page = (await sim.view(buyer, chat, "product.get", {"product_id": pictured["id"]}))["product"]
    assert page["photos"] == photos
    assert [urlpath(u) for u in page["photo_urls"]] == [f"/sim/media/{m}" for m in photos]
    assert [sim.fetch_media_url(u)[1] for u in page["photo_urls"]] == [
        sim.media(m)["data"] for m in photos
    ]

    mine = {p["id"]: p for p in (await sim.view(merchant, chat, "store.mine"))["products"]}
    assert mine[plain["id"]]["photo_urls"] == []
    assert [urlpath(u) for u in mine[pictured["id"]]["photo_urls"]] == [
        f"/sim/media/{photos[0]}/thumbnail"
    ]
    # Signed afresh for each answer: later answers carry the simulator's later time.
    await sim.advance(hours=2)
    assert sim.fetch_media_url(tile)[0] == 403
    [again] = (await sim.view(buyer, chat, "storefront", {"q": "headphones"}))["items"]
    assert sim.fetch_media_url(again["photo_urls"][0])[0] == 200


async def test_a_photo_the_host_no_longer_has_is_left_out(sim, merchant, buyer, chat):
    await open_store(sim, merchant, chat)
    media_id = (await sim.view(merchant, chat, "photo.upload", {"data": png_data_url()}))[
        "media_id"
    ]
    product = await add_product(sim, merchant, chat, photos=[media_id])
    sim._uploads.pop(media_id)  # as if the platform had dropped the media
    [item] = (await sim.view(buyer, chat, "storefront"))["items"]
    assert item["photos"] == [media_id] and item["photo_urls"] == []
    page = await sim.view(buyer, chat, "product.get", {"product_id": product["id"]})
    assert page["product"]["photo_urls"] == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": 0}, "invalid_limit"),
        ({"limit": 49}, "invalid_limit"),
        ({"limit": "5"}, "invalid_limit"),
        ({"after": 5}, "invalid_after"),
        ({"after": "garbage"}, "invalid_after"),
        ({"q": "x" * 101}, "invalid_query"),
        ({"q": 5}, "invalid_query"),
        ({"store_id": 5}, "invalid_store"),
    ],
)
async def test_storefront_view_bad_input(sim, buyer, chat, params, code):
    with pytest.raises(ViewError) as excinfo:
        await sim.view(buyer, chat, "storefront", params)
    assert view_error(excinfo) == code


async def test_product_get_unknown(sim, buyer, chat):
    for product_id in ("p-nothere", None, 5, "../../x"):
        with pytest.raises(ViewError) as excinfo:
            await sim.view(buyer, chat, "product.get", {"product_id": product_id})
        assert view_error(excinfo) == "unknown_product"


# --- demo -----------------------------------------------------------------------------------


async def test_demo_seed_is_idempotent(sim, merchant, buyer, chat):
    first = await seed_demo(sim, merchant, chat)
    assert first["summary"] == "Aetherial Demo Store: 12 products created"
    products = sim.storage("products")
    assert len(products) == 12 and len(sim.media_ids()) == 12
    assert sum(not p["visible"] for p in products.values()) == 1
    assert sum(bool(p["variants"]) for p in products.values()) == 1
    assert sum(bool(p["team_price"] and p["team_size"]) for p in products.values()) == 1
    assert [p["course_id"] for p in products.values() if p["course_id"]] == ["data-science"]
    assert all(len(p["photos"]) == 1 for p in products.values())
    snapshot, media = stored(sim), sim.media_ids()
    second = await seed_demo(sim, merchant, chat)
    assert second["summary"] == "Aetherial Demo Store: already seeded" and second["created"] == []
    assert stored(sim) == snapshot and sim.media_ids() == media
    # Every demo card renders (photos are this app's uploads).
    await sim.command(buyer, chat, "/shop")
    listing = last_card(sim, chat)
    for _, _, value in buttons(listing["card"]):
        await sim.press(buyer, listing["id"], "product.view", value=value)
        assert last_card(sim, chat)["card"]["image"] in media


async def test_demo_seed_refuses_a_merchant_with_another_store(sim, merchant, chat):
    await open_store(sim, merchant, chat, "Not the demo")
    with pytest.raises(ViewError) as excinfo:
        await seed_demo(sim, merchant, chat)
    assert view_error(excinfo) == "not_demo_store"
    assert sim.storage("products") == {}


async def test_shop_cards_open_the_web_view(sim, merchant, buyer, chat):
    """/shop's card opens the storefront web view; a product card's Details opens it at the
    product (shop.js reads ``#product=…``) — buttons the app never gets a press of."""
    await open_store(sim, merchant, chat)
    mug = await add_product(sim, merchant, chat, title="Coffee Mug", price="12.50")
    await sim.command(buyer, chat, "/shop")
    listing = last_card(sim, chat)
    [open_shop] = [b for b in listing["card"]["buttons"] if "opens" in b]
    assert open_shop == {"label": "Open the shop", "style": "primary", "opens": "webview"}
    assert buttons(listing["card"]) == [("product.view", "Coffee Mug", mug["id"])]
    await sim.press(buyer, listing["id"], "product.view", value=mug["id"])
    product = last_card(sim, chat)["card"]
    assert web_buttons(product) == [("Details", f"#product={mug['id']}")]
    assert [b["label"] for b in product["buttons"]] == ["Buy", "Add to cart", "Share", "Details"]
    # A card full of variant buttons (8 Buy, Share, Start group buy) keeps its 10: no Details.
    many = [{"id": f"v{i}", "label": f"S{i}", "price": 1250} for i in range(1, 9)]
    full = {**mug, "price": 1250, "variants": many, "team_price": 900, "team_size": 3}
    card = catalog.product_card(full, {v["id"]: 1 for v in many}, "en").to_dict()
    assert len(card["buttons"]) == 10 and web_buttons(card) == []
    validate_card(card)
