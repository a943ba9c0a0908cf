"""Catalog: the shop's stores and products as people see them — product cards, the storefront,
search, and the web view's answers. The data and its rules are in ``listings``.

- Buyers find products with ``/shop`` (a card of the newest), ``/shop search <words>`` (fuzzy,
  typo tolerant: rapidfuzz) and ``/shop store <name>``. Product cards carry the buttons the
  other modules handle (``product.buy``, ``cart.add``, ``groupbuy.start``); ``product.view`` and
  ``product.share`` post a product's current card into the chat.
- Merchants (role ``merchant``) run their store from the web view (``VIEWS``: ``store.mine``,
  ``store.save``, ``product.save``, ``product.hide``, ``product.delete``, ``stock.set``,
  ``photo.upload``); everyone browses it (``storefront``, ``product.get``).
- The web view shows product photos through ``photo_urls``: addresses the host signs for the
  app's own uploads (``ctx.media_url``, short-lived, loadable by the page under its CSP),
  made afresh for each answer — the first photo's thumbnail in lists (``storefront``,
  ``store.mine``), every photo on the product page (``product.get``).

- The assistant finds products with the read-only tool ``search_products`` (``TOOLS``): the
  matches as data and the best match's product card, which the host posts as the shop's.

A refused input is a ``CatalogError``: commands and buttons answer it as an ephemeral text, views
as a ``ViewError`` with the same code and message. Other modules use ``get_product``,
``product_card``, ``product_stock``, ``stock_key`` and ``parse_item``.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import demo
import listings
import money
from listings import (
    CURRENCIES,
    CatalogError,
    check_merchant,
    get_product,
    get_store,
    parse_item,
    product_stock,
    stock_key,
    store_id_of,
    variant_of,
)
from rapidfuzz import fuzz, utils

from sdk import Button, Card, Field, InvalidParams, NotFound, Reply, ViewError

__all__ = [
    "ACTIONS",
    "SUBCOMMANDS",
    "TOOLS",
    "VIEWS",
    "CatalogError",
    "clip",
    "get_product",
    "parse_item",
    "product_card",
    "product_stock",
    "stock_key",
    "storefront",
    "variant_of",
]

CARD_TITLE_MAX = 100  # the card schema's
CARD_TEXT_SHOWN = 280  # of a product's description on its card
CARD_BUTTONS_MAX = 10
VARIANT_BUY_BUTTONS_MAX = 8
LISTED_ON_CARD = 8  # products listed (with a View button each) on the storefront/store card
SEARCH_RESULTS = 5
SEARCH_SCORE_MIN = 75  # of 100 (rapidfuzz); "hedphones" scores ~95 against "Headphones"
SEARCH_PAGES_MAX = 10  # pages of 100 products: storage.find looks at the first 1000 anyway
PAGE_MAX = 48  # products of a storefront page in the web view
WEB_VIEW_HINT = "Open the Shop from this chat's app menu to browse everything."


# --- product cards --------------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def rating_text(product: dict) -> str:
    count = int(product.get("rating_count") or 0)
    if count <= 0:
        return "no ratings yet"
    return f"★ {int(product.get('rating_sum') or 0) / count:.1f} ({count})"


def stock_text(left: int) -> str:
    return f"{left} left" if left > 0 else "sold out"


def price_text(product: dict, locale: str) -> str:
    """The product's price, or "from …" when its variants cost different amounts."""
    currency = product["currency"]
    prices = {v["price"] for v in product.get("variants") or []} or {product["price"]}
    text = money.format_price(min(prices), currency, locale)
    return text if len(prices) == 1 else f"from {text}"


def product_card(product: dict, stock_left: int | dict[str, int], locale: str) -> Card:
    """A product as a card: photo, title, price for ``locale``, rating, stock, and the buttons
    Buy (``product.buy``) / Add to cart (``cart.add``) — one per variant in stock when it has
    variants, values ``"p-xxx:v1"`` — Share (``product.share``), with a team price Start group
    buy (``groupbuy.start``), and Details, opening the web view at the product when there is
    room. ``stock_left``: the total left, or ``product_stock``'s dict.
    """
    product_id, currency = product["id"], product["currency"]
    variants = product.get("variants") or []
    per_variant = stock_left if isinstance(stock_left, dict) else {}
    total = sum(per_variant.values()) if isinstance(stock_left, dict) else int(stock_left)
    # A title longer than a card's is shown whole in the text.
    lines = [product["title"]] if len(product["title"]) > CARD_TITLE_MAX else []
    if product.get("description"):
        lines.append(clip(product["description"], CARD_TEXT_SHOWN))
    fields = [
        Field("Price", price_text(product, locale)),
        Field("Rating", rating_text(product)),
        Field("Stock", stock_text(total)),
    ]
    team = product.get("team_price") and product.get("team_size")
    if team:
        group_price = money.format_price(product["team_price"], currency, locale)
        fields.append(Field("Group buy", f"{group_price} each in a team of {product['team_size']}"))
    extra = [Button("product.share", "Share", value=product_id)]
    if team:
        extra.append(Button("groupbuy.start", "Start group buy", value=product_id))
    buttons: list[Button] = []
    if not variants:
        if total > 0:
            buttons = [
                Button("product.buy", "Buy", value=product_id, style="primary"),
                Button("cart.add", "Add to cart", value=product_id),
            ]
    else:
        in_stock = [v for v in variants if per_variant.get(v["id"], 1 if total else 0) > 0]
        for variant in variants:
            left = per_variant.get(variant["id"])
            shown = money.format_price(variant["price"], currency, locale)
            state = "" if left is None else f" · {stock_text(left)}"
            fields.append(Field(variant["label"], shown + state))
        if len(in_stock) > VARIANT_BUY_BUTTONS_MAX:
            lines.append("Pick a variant in the Shop web view (this chat's app menu).")
        elif in_stock:
            buttons = [
                Button("product.buy", clip(f"Buy · {v['label']}", 80), f"{product_id}:{v['id']}")
                for v in in_stock
            ]
            if 2 * len(in_stock) + len(extra) <= CARD_BUTTONS_MAX:
                buttons += [
                    Button("cart.add", clip(f"Add · {v['label']}", 80), f"{product_id}:{v['id']}")
                    for v in in_stock
                ]
            else:
                lines.append("To add a variant to your cart, use the Shop web view.")
    # The id people type in commands (/shop cart add, /shop groupcart add).
    fields.append(Field("Item", product_id))
    photos = product.get("photos") or []
    buttons += extra
    if len(buttons) < CARD_BUTTONS_MAX:  # every photo, variant and review: the web view's page
        buttons.append(Button.webview("Details", path=f"#product={product_id}"))
    return Card(
        title=clip(product["title"], CARD_TITLE_MAX),
        text="\n".join(lines) or None,
        fields=fields,
        image=photos[0] if photos else None,
        buttons=buttons,
    )


async def card_of(ctx, product_id: str) -> Card:
    """The current card of a visible product; ``CatalogError`` when buyers cannot see it."""
    product = await get_product(ctx, product_id)
    if product is None:
        raise CatalogError("unknown_product", "That product is not for sale (any more).")
    return product_card(product, await product_stock(ctx, product), ctx.locale)


# --- listing and search ---------------------------------------------------------------------

FOR_SALE = {"visible": True, "deleted": False}


async def newest_page(ctx, query: dict, after: str | None, limit: int) -> dict:
    """A page of products matching ``query``, newest first: ``{"items": [product…], "next"}``;
    a cursor the host does not recognise is the page's mistake (``invalid_after``)."""
    try:
        page = await ctx.storage_page(
            "products", query, sort="created_at", order="desc", after=after, limit=limit
        )
    except InvalidParams:
        if after is None:
            raise
        raise CatalogError("invalid_after", "That page cursor is not valid: start again.") from None
    return {"items": [{**i["value"], "id": i["key"]} for i in page["items"]], "next": page["next"]}


async def newest_products(ctx, *, store_id=None, after=None, limit=PAGE_MAX) -> dict:
    """A page of products for sale, newest first (one store's with ``store_id``)."""
    query = {**FOR_SALE, **({"store_id": store_id} if store_id else {})}
    return await newest_page(ctx, query, after, limit)


def search_score(query: str, product: dict) -> float:
    """How well ``query`` matches a product (0-100): typo tolerant on the title (``WRatio``),
    word by word on the title and description (each query word against its closest word)."""
    title = product["title"]
    score = fuzz.WRatio(query, title, processor=utils.default_process)
    words = utils.default_process(f"{title} {product.get('description', '')}").split()
    wanted = utils.default_process(query).split()
    if words and wanted:
        closest = [max(fuzz.ratio(word, other) for other in words) for word in wanted]
        score = max(score, 0.95 * sum(closest) / len(closest))
    return score


async def search_products(ctx, query: str, limit: int = SEARCH_RESULTS) -> list[dict]:
    """The products for sale matching ``query`` best (score ≥ ``SEARCH_SCORE_MIN``), best
    first; looks through the catalogue page by page."""
    scored: list[tuple[float, int, dict]] = []
    after = None
    for _ in range(SEARCH_PAGES_MAX):
        page = await ctx.storage_page("products", FOR_SALE, after=after, limit=100)
        for item in page["items"]:
            product = {**item["value"], "id": item["key"]}
            score = search_score(query, product)
            if score >= SEARCH_SCORE_MIN:
                scored.append((score, int(product.get("created_at") or 0), product))
        after = page["next"]
        if after is None:
            break
    scored.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    return [product for _, _, product in scored[:limit]]


async def find_store_by_name(ctx, name: str) -> dict | None:
    items = await ctx.storage_find("stores", {"name_key": name.strip().casefold()}, limit=1)
    return {**items[0]["value"], "id": items[0]["key"]} if items else None


def listing_card(title: str, text: str, products: list[dict], locale: str, image=None) -> Card:
    """A card listing products (title — price) with a View button each."""
    shown = products[:LISTED_ON_CARD]
    return Card(
        title=clip(title, CARD_TITLE_MAX),
        text=text,
        fields=[Field(clip(p["title"], 100), price_text(p, locale)) for p in shown],
        image=image,
        buttons=[Button("product.view", clip(p["title"], 80), value=p["id"]) for p in shown],
    )


# --- commands and buttons -------------------------------------------------------------------


async def storefront(ctx) -> Reply:
    """``/shop``: a card with the newest products and "Open the shop", which opens the web view
    (the full storefront: every product, search, photos, variants)."""
    page = await newest_products(ctx, limit=LISTED_ON_CARD)
    if not page["items"]:
        return Reply(ephemeral="Nothing is for sale yet. " + WEB_VIEW_HINT)
    text = "Newest products — tap one to see its card, or open the shop to browse everything."
    card = listing_card("Shop", text, page["items"], ctx.locale)
    card.buttons.append(Button.webview("Open the shop", style="primary"))
    return Reply(card=card)


async def search_command(ctx, args: list[str]) -> Reply | None:
    """``/shop search <words>``: up to 5 product cards, posted so their buttons work."""
    query = " ".join(args).strip()
    if not query:
        return Reply(ephemeral="Usage: /shop search <words>, e.g. /shop search headphones")
    if len(query) > 100:
        return Reply(ephemeral="Search for 100 characters at most.")
    found = await search_products(ctx, query)
    if not found:
        return Reply(ephemeral=f"Nothing for sale matches {clip(query, 40)!r}.")
    stocks = await asyncio.gather(*(product_stock(ctx, product) for product in found))
    for product, left in zip(found, stocks, strict=True):
        await ctx.send_card(product_card(product, left, ctx.locale))
    return None


async def store_command(ctx, args: list[str]) -> Reply | None:
    """``/shop store <name>``: the store's card, listing its newest products."""
    name = " ".join(args).strip()
    if not name:
        return Reply(ephemeral="Usage: /shop store <store name>")
    store = await find_store_by_name(ctx, name)
    if store is None:
        return Reply(ephemeral=f"There is no store called {clip(name, 60)!r}.")
    page = await newest_products(ctx, store_id=store["id"], limit=LISTED_ON_CARD)
    text = store.get("description") or ""
    text = (text + "\n" if text else "") + (
        "Its newest products:" if page["items"] else "Nothing for sale here yet."
    )
    return Reply(
        card=listing_card(store["name"], text, page["items"], ctx.locale, store.get("logo"))
    )


async def post_product(ctx) -> Reply:
    """``product.view`` / ``product.share`` (value: product id): the product's current card,
    posted into the chat as a normal card."""
    try:
        product_id, _ = parse_item(ctx.value)
        return Reply(card=await card_of(ctx, product_id))
    except CatalogError as exc:
        return Reply(ephemeral=exc.message)


# --- web view answers -----------------------------------------------------------------------


def product_view(product: dict, left: dict[str, int], locale: str, *, owner: bool = False) -> dict:
    """A product as the web view shows it (prices formatted for the reader)."""
    currency = product["currency"]
    view = {
        "id": product["id"],
        "store_id": product["store_id"],
        "title": product["title"],
        "description": product.get("description", ""),
        "photos": product.get("photos") or [],
        "currency": currency,
        "price": product["price"],
        "price_text": price_text(product, locale),
        "rating_text": rating_text(product),
        "rating_count": int(product.get("rating_count") or 0),
        "left": sum(left.values()),
        "stock_text": stock_text(sum(left.values())),
        "variants": [
            {
                **variant,
                "price_text": money.format_price(variant["price"], currency, locale),
                "left": left.get(variant["id"], 0),
            }
            for variant in product.get("variants") or []
        ],
        "team_price": product.get("team_price"),
        "team_size": product.get("team_size"),
        "course_id": product.get("course_id"),
    }
    if product.get("team_price"):
        view["team_price_text"] = money.format_price(product["team_price"], currency, locale)
    if owner:
        view["visible"] = bool(product.get("visible"))
    return view


async def signed_photo(ctx, media_id: str, *, thumbnail: bool) -> str | None:
    """An address the web view can load for one of the shop's photos; None when the host no
    longer has it (the page then shows the letter tile)."""
    try:
        return await ctx.media_url(media_id, thumbnail=thumbnail)
    except NotFound:
        return None


async def photo_urls(ctx, product: dict, *, every: bool = False) -> list[str]:
    """Signed addresses of a product's photos, in order: the first one's thumbnail (lists), or
    every photo (``every``: the product page)."""
    photos = (product.get("photos") or [])[: None if every else 1]
    urls = await asyncio.gather(*(signed_photo(ctx, m, thumbnail=not every) for m in photos))
    return [url for url in urls if url]


async def views_of(ctx, products: list[dict]) -> list[dict]:
    """``product_view`` of each product with its first photo's address, their stock and
    addresses fetched concurrently."""
    stocks, urls = await asyncio.gather(
        asyncio.gather(*(product_stock(ctx, product) for product in products)),
        asyncio.gather(*(photo_urls(ctx, product) for product in products)),
    )
    return [
        {**product_view(p, left, ctx.locale), "photo_urls": photo_list}
        for p, left, photo_list in zip(products, stocks, urls, strict=True)
    ]


def check_after(params: dict) -> str | None:
    after = params.get("after")
    if after is not None and (not isinstance(after, str) or len(after) > 1000):
        raise CatalogError("invalid_after", "after is the next cursor of the previous page.")
    return after


async def view_storefront(ctx) -> dict:
    """Products for sale, newest first (``after``: the previous page's ``next``; ``store_id``:
    one store's), or the best matches of ``q``."""
    params = ctx.params
    query = params.get("q")
    if query not in (None, ""):
        if not isinstance(query, str) or len(query) > 100:
            raise CatalogError("invalid_query", "Search for 100 characters at most.")
        products, next_cursor = await search_products(ctx, query, limit=PAGE_MAX), None
    else:
        store_id = params.get("store_id")
        if store_id is not None and not isinstance(store_id, str):
            raise CatalogError("invalid_store", "store_id is a store's id.")
        limit = params.get("limit", 24)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE_MAX:
            raise CatalogError("invalid_limit", f"limit is 1 to {PAGE_MAX}.")
        page = await newest_products(ctx, store_id=store_id, after=check_after(params), limit=limit)
        products, next_cursor = page["items"], page["next"]
    return {"items": await views_of(ctx, products), "next": next_cursor}


async def view_product_get(ctx) -> dict:
    """One product for sale (its merchant also sees it hidden) and its store."""
    product = await get_product(ctx, ctx.params.get("product_id"), include_hidden=True)
    owner = product is not None and product.get("owner") == ctx.user_id
    if product is None or (not product.get("visible") and not owner):
        raise CatalogError("unknown_product", "That product is not for sale (any more).")
    store, left, urls = await asyncio.gather(
        get_store(ctx, product["store_id"]),
        product_stock(ctx, product),
        photo_urls(ctx, product, every=True),
    )
    view = {**product_view(product, left, ctx.locale, owner=owner), "photo_urls": urls}
    return {
        "product": view,
        "store": {"id": product["store_id"], "name": (store or {}).get("name")},
    }


async def own_view(ctx, product: dict) -> dict:
    """A product as its merchant sees it, with each stock document's version (``stock.set``
    sends it back, so a sale in between is not overwritten) and its first photo's address."""
    ids = [variant["id"] for variant in product.get("variants") or []] or ["-"]
    docs, urls = await asyncio.gather(
        asyncio.gather(
            *(ctx.storage_get_versioned("stock", stock_key(product["id"], i)) for i in ids)
        ),
        photo_urls(ctx, product),
    )
    left = {i: int((doc or {}).get("left", 0)) for i, (doc, _) in zip(ids, docs, strict=True)}
    view = product_view(product, left, ctx.locale, owner=True)
    view["stock_versions"] = {i: version for i, (_, version) in zip(ids, docs, strict=True)}
    view["photo_urls"] = urls
    return view


async def view_store_mine(ctx) -> dict:
    """The merchant's store (None before they open one) and a page of their products, hidden
    ones too, with each stock document's version for ``stock.set``."""
    check_merchant(ctx)
    store = await get_store(ctx, store_id_of(ctx.user_id))
    if store is None:
        return {"store": None, "products": [], "next": None, "currencies": list(CURRENCIES)}
    query = {"store_id": store["id"], "deleted": False}
    page = await newest_page(ctx, query, check_after(ctx.params), PAGE_MAX)
    products = await asyncio.gather(*(own_view(ctx, product) for product in page["items"]))
    public = {k: store[k] for k in ("id", "name", "description", "logo") if k in store}
    return {
        "store": public,
        "products": products,
        "next": page["next"],
        "currencies": list(CURRENCIES),
    }


async def view_store_save(ctx) -> dict:
    store = await listings.do_save_store(ctx, ctx.params)
    return {"store": {k: store.get(k) for k in ("id", "name", "description", "logo")}}


async def view_product_save(ctx) -> dict:
    product = await listings.do_save_product(ctx, ctx.params)
    return {
        "product": product_view(product, await product_stock(ctx, product), ctx.locale, owner=True)
    }


async def view_product_hide(ctx) -> dict:
    product = await listings.do_set_visible(ctx, ctx.params)
    return {"product_id": product["id"], "visible": product["visible"]}


def as_view(do):
    """The view handler answering ``do(ctx)``, a ``CatalogError`` as a ``ViewError``."""

    async def handler(ctx) -> dict:
        try:
            return await do(ctx)
        except CatalogError as exc:
            raise ViewError(exc.code, exc.message) from None

    handler.__name__ = getattr(do, "__name__", "view")
    return handler


# --- the assistant's tool -------------------------------------------------------------------


def amount_text(amount: int, currency: str) -> str:
    """Minor units as a plain decimal in major units, exact: 1250 USD → ``"12.50"``, 1250 JPY →
    ``"1250"`` (what a model reads without knowing the currency's minor digits)."""
    return format(Decimal(int(amount)).scaleb(-money.minor_digits(currency)), "f")


def lowest_price(product: dict) -> int:
    return min({v["price"] for v in product.get("variants") or []} or {product["price"]})


async def tool_search_products(ctx) -> dict:
    """Tool ``search_products {query (1-100 characters), limit? (1-5, default 5)}``, for the
    assistant: the products for sale matching ``query`` best (as ``/shop search`` finds them),
    ``[{id, title, price, currency, in_stock}]`` — ``price`` a decimal text in major units, the
    lowest when variants cost different amounts — and the best match's product card, the one
    ``/shop search`` posts: its Buy button is a person's tap, never the tool's. Only reads
    (``storage.find``/``storage.get``). No match: ``[]`` and no card."""
    query = " ".join(ctx.arguments["query"].split())
    found = await search_products(ctx, query, ctx.arguments.get("limit", SEARCH_RESULTS))
    if not found:
        return {"result": [], "card": None}
    stocks = await asyncio.gather(*(product_stock(ctx, product) for product in found))
    result = [
        {
            "id": product["id"],
            "title": product["title"],
            "price": amount_text(lowest_price(product), product["currency"]),
            "currency": product["currency"],
            "in_stock": sum(left.values()) > 0,
        }
        for product, left in zip(found, stocks, strict=True)
    ]
    return {"result": result, "card": product_card(found[0], stocks[0], ctx.locale)}


SUBCOMMANDS = {"search": search_command, "store": store_command}
ACTIONS = {"product.view": post_product, "product.share": post_product}
VIEWS = {
    name: as_view(do)
    for name, do in {
        "storefront": view_storefront,
        "product.get": view_product_get,
        "store.mine": view_store_mine,
        "store.save": view_store_save,
        "product.save": view_product_save,
        "product.hide": view_product_hide,
        "product.delete": lambda ctx: listings.do_delete_product(ctx, ctx.params),
        "stock.set": lambda ctx: listings.do_set_stock(ctx, ctx.params),
        "photo.upload": lambda ctx: listings.do_upload_photo(ctx, ctx.params),
        "demo.seed": demo.seed,
    }.items()
}
TOOLS = {"search_products": tool_search_products}
