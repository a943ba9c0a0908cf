"""Listings: the shop's stores, products and stock as data — keys, reads, the rules a
merchant's input must follow (``check_*``, raising ``CatalogError`` before anything is written)
and the merchant's writes (``do_*``). ``catalog`` shows them in chats and in the web view.

- ``stores``, key ``st-<digest of the owner>``: one per merchant by construction; ``name_key``
  (the casefolded name) is a unique index, so two stores never share a name.
- ``products``, key ``p-<token>``: title, description, photos (media ids the merchant uploaded,
  remembered in ``uploads``), currency and price in minor units, variants ``[{id, label,
  price}]``, team price/size, course id, ``visible``, ``deleted`` (soft), rating sums.
- ``stock``, key ``<product id>:<variant id or "-">``, field ``left``: set by the merchant with a
  conditional update on the document's version, taken and given back by checkouts with
  ``storage_incr`` (cart.py) — never read-then-write.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import re
import secrets
import time
from typing import Any

import money

from sdk import Conflict, HostError, NotFound

MERCHANT = "merchant"
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CNY", "CHF", "CAD", "AUD")  # all in the wallet's table
STORE_NAME_MAX = 60
STORE_DESCRIPTION_MAX = 500
TITLE_MAX = 120
DESCRIPTION_MAX = 2000
PRICE_MAX = 10**9  # minor units
STOCK_MAX = 100_000
VARIANTS_MAX = 20
VARIANT_LABEL_MAX = 40
PHOTOS_MAX = 6
PHOTO_MAX_BYTES = 512 * 1024  # the host's media.upload limit (a view's params: 64 KiB of JSON)
TEAM_SIZE_MIN, TEAM_SIZE_MAX = 2, 50
COURSE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MEDIA_ID = re.compile(r"^[0-9a-f]{24}$")
PRODUCT_ID = re.compile(r"^p-[0-9a-z-]{1,40}$")
VARIANT_ID = re.compile(r"^v[0-9]{1,4}$")


class CatalogError(Exception):
    """Why an input is refused: a stable ``code`` and a ``message`` for the person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def now_ms() -> int:
    return int(time.time() * 1000)


# --- keys and reads -------------------------------------------------------------------------


def store_id_of(owner: str) -> str:
    """The id of ``owner``'s store: derived from the owner, so a second store cannot exist (and
    the per-app id is not shown to buyers)."""
    return "st-" + hashlib.sha256(owner.encode()).hexdigest()[:16]


def stock_key(product_id: str, variant_id: str | None = None) -> str:
    """The ``stock`` document of a product (``"p-1:-"``) or one of its variants (``"p-1:v2"``)."""
    return f"{product_id}:{variant_id or '-'}"


def parse_item(value: str | None) -> tuple[str, str | None]:
    """A button value ``"p-xxx"`` or ``"p-xxx:v1"`` as ``(product_id, variant_id)``;
    ``CatalogError`` (``unknown_product``) for anything else."""
    product_id, _, variant_id = (value or "").partition(":")
    if not PRODUCT_ID.fullmatch(product_id) or (
        variant_id and not VARIANT_ID.fullmatch(variant_id)
    ):
        raise CatalogError("unknown_product", "That product does not exist.")
    return product_id, variant_id or None


async def get_store(ctx, store_id: str) -> dict | None:
    """The store ``store_id`` with its ``id``, or None."""
    store = await ctx.storage_get("stores", store_id)
    return {**store, "id": store_id} if store else None


async def get_product(ctx, product_id: str, *, include_hidden: bool = False) -> dict | None:
    """The product ``product_id`` with its ``id`` — None when there is none, it is deleted or
    (unless ``include_hidden``, for its merchant) hidden: buyers never see those."""
    if not isinstance(product_id, str) or not PRODUCT_ID.fullmatch(product_id):
        return None
    product = await ctx.storage_get("products", product_id)
    if not product or product.get("deleted"):
        return None
    if not product.get("visible") and not include_hidden:
        return None
    return {**product, "id": product_id}


async def product_stock(ctx, product: dict) -> dict[str, int]:
    """What is left: ``{"-": n}`` for a product without variants, else ``{variant id: n}``."""
    ids = [variant["id"] for variant in product.get("variants") or []] or ["-"]
    docs = await asyncio.gather(
        *(ctx.storage_get("stock", stock_key(product["id"], variant_id)) for variant_id in ids)
    )
    return {
        variant_id: int((doc or {}).get("left", 0))
        for variant_id, doc in zip(ids, docs, strict=True)
    }


def variant_of(product: dict, variant_id: str | None) -> dict | None:
    """The variant ``variant_id`` of ``product`` (None for none or an unknown one)."""
    return next((v for v in product.get("variants") or [] if v["id"] == variant_id), None)


# --- merchant input checks ------------------------------------------------------------------


def check_merchant(ctx) -> None:
    if not ctx.has_role(MERCHANT):
        raise CatalogError("not_a_merchant", "Only merchants can do this: ask an administrator.")


def check_text(params: dict, name: str, limit: int, *, required: bool, label: str) -> str:
    value = params.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise CatalogError(f"invalid_{name}", f"{label} must be text.")
    value = value.strip()
    if required and not value:
        raise CatalogError(f"invalid_{name}", f"{label} is empty.")
    if len(value) > limit:
        raise CatalogError(
            f"invalid_{name}", f"{label} is {len(value)} characters; at most {limit}."
        )
    return value


def check_amount(value: Any, currency: str, label: str) -> int:
    """A price: minor units (an integer) or what the merchant typed ("12.50")."""
    if isinstance(value, str):
        try:
            value = money.parse_price(value, currency)
        except ValueError as exc:
            raise CatalogError("invalid_price", f"{label}: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise CatalogError("invalid_price", f"{label} must be a number like 12.50.")
    if not 0 < value <= PRICE_MAX:
        top = money.format_price(PRICE_MAX, currency, "en")
        raise CatalogError("invalid_price", f"{label} must be more than 0 and at most {top}.")
    return value


def check_stock(value: Any, label: str = "Stock") -> int:
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 6:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= STOCK_MAX:
        raise CatalogError(
            "invalid_stock", f"{label} must be a whole number from 0 to {STOCK_MAX}."
        )
    return value


def check_variants(raw: Any, currency: str, base_price: int, old: list[dict], seq: int):
    """The variants as stored, the new ones' initial stock and the next variant number."""
    if raw is None:
        raw = []
    if not isinstance(raw, list) or len(raw) > VARIANTS_MAX:
        raise CatalogError("invalid_variants", f"A product has at most {VARIANTS_MAX} variants.")
    known = {variant["id"] for variant in old}
    variants, new_stock, labels = [], {}, set()
    for index, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise CatalogError("invalid_variants", f"Variant {index} is not a variant.")
        label = check_text(
            item, "label", VARIANT_LABEL_MAX, required=True, label=f"Variant {index}"
        )
        if label.casefold() in labels:
            raise CatalogError("invalid_variants", f"Two variants are called {label!r}.")
        labels.add(label.casefold())
        price = item.get("price")
        price = base_price if price in (None, "") else check_amount(price, currency, label)
        variant_id = item.get("id")
        if variant_id is None:
            seq += 1
            variant_id = f"v{seq}"
            new_stock[variant_id] = check_stock(item.get("stock", 0), f"Stock of {label}")
        elif not isinstance(variant_id, str) or variant_id not in known:
            raise CatalogError("invalid_variants", f"Variant {index} has an unknown id.")
        else:
            known.discard(variant_id)  # each existing variant once
        variants.append({"id": variant_id, "label": label, "price": price})
    return variants, new_stock, seq


async def check_photos(ctx, raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > PHOTOS_MAX:
        raise CatalogError("invalid_photos", f"A product has at most {PHOTOS_MAX} photos.")
    for media_id in raw:
        upload = None
        if isinstance(media_id, str) and MEDIA_ID.fullmatch(media_id):
            upload = await ctx.storage_get("uploads", media_id)
        if not upload or upload.get("owner") != ctx.user_id:
            raise CatalogError("invalid_photos", "A photo is not one you uploaded here.")
    if len(set(raw)) != len(raw):
        raise CatalogError("invalid_photos", "The same photo is there twice.")
    return list(raw)


async def check_product_input(ctx, params: dict, old: dict | None) -> tuple[dict, dict]:
    """The product fields to store and the initial stock of new stock documents
    (``{variant id or "-": n}``), from the page's ``params``; ``CatalogError`` otherwise."""
    title = check_text(params, "title", TITLE_MAX, required=True, label="The title")
    description = check_text(
        params, "description", DESCRIPTION_MAX, required=False, label="The description"
    )
    currency = params.get("currency", (old or {}).get("currency"))
    if currency not in CURRENCIES:
        raise CatalogError("invalid_currency", f"Currency must be one of {', '.join(CURRENCIES)}.")
    if old and currency != old["currency"]:
        raise CatalogError("invalid_currency", "A listed product keeps its currency.")
    price = check_amount(params.get("price"), currency, "The price")
    old_variants = (old or {}).get("variants") or []
    variants, new_stock, seq = check_variants(
        params.get("variants"),
        currency,
        price,
        old_variants,
        int((old or {}).get("variant_seq", 0)),
    )
    if not variants and (old is None or old_variants):
        new_stock["-"] = check_stock(params.get("stock", 0))
    team_price, team_size = params.get("team_price"), params.get("team_size")
    if team_price in (None, "") and team_size in (None, ""):
        team_price = team_size = None
    else:
        team_price = check_amount(team_price, currency, "The group-buy price")
        if team_price >= min(v["price"] for v in variants or [{"price": price}]):
            raise CatalogError(
                "invalid_team", "The group-buy price must be below the normal price."
            )
        if (
            isinstance(team_size, bool)
            or not isinstance(team_size, int)
            or not (TEAM_SIZE_MIN <= team_size <= TEAM_SIZE_MAX)
        ):
            raise CatalogError(
                "invalid_team", f"A team has {TEAM_SIZE_MIN} to {TEAM_SIZE_MAX} people."
            )
    course_id = params.get("course_id") or None
    if course_id is not None and (
        not isinstance(course_id, str) or not COURSE_ID.fullmatch(course_id)
    ):
        raise CatalogError("invalid_course", "A course id is lower-case letters, digits, - and _.")
    visible = params.get("visible", (old or {}).get("visible", True))
    if not isinstance(visible, bool):
        raise CatalogError("invalid_visible", "visible is true or false.")
    fields = {
        "title": title,
        "description": description,
        "currency": currency,
        "price": price,
        "variants": variants,
        "variant_seq": seq,
        "photos": await check_photos(ctx, params.get("photos", (old or {}).get("photos"))),
        "team_price": team_price,
        "team_size": team_size,
        "course_id": course_id,
        "visible": visible,
    }
    return fields, new_stock


async def own_product(ctx, product_id: Any) -> tuple[dict, int]:
    """The merchant's own (not deleted) product and its version; ``CatalogError`` otherwise."""
    if not isinstance(product_id, str) or not PRODUCT_ID.fullmatch(product_id):
        raise CatalogError("unknown_product", "That product does not exist.")
    product, version = await ctx.storage_get_versioned("products", product_id)
    if not product or product.get("deleted"):
        raise CatalogError("unknown_product", "That product does not exist.")
    if product.get("owner") != ctx.user_id:
        raise CatalogError("not_your_product", "That product is another merchant's.")
    return {**product, "id": product_id}, version


async def own_store(ctx) -> dict:
    store = await get_store(ctx, store_id_of(ctx.user_id))
    if store is None:
        raise CatalogError("no_store", "Open your store first.")
    return store


# --- merchant writes ------------------------------------------------------------------------


async def do_save_store(ctx, params: dict) -> dict:
    """Open the merchant's store, or edit it; a name another store has is refused."""
    check_merchant(ctx)
    name = check_text(params, "name", STORE_NAME_MAX, required=True, label="The store name")
    description = check_text(
        params, "description", STORE_DESCRIPTION_MAX, required=False, label="The description"
    )
    logo = params.get("logo") or None
    if logo is not None:
        [logo] = await check_photos(ctx, [logo])
    store_id = store_id_of(ctx.user_id)
    current, version = await ctx.storage_get_versioned("stores", store_id)
    fields = {"name": name, "name_key": name.casefold(), "description": description, "logo": logo}
    if current is None:
        fields.update(owner=ctx.user_id, created_at=now_ms())
    try:
        await ctx.storage_update(
            "stores", store_id, fields, expected_version=version, upsert=current is None
        )
    except Conflict:
        raise CatalogError("store_changed", "Your store changed meanwhile: try again.") from None
    except HostError as exc:
        if exc.code == "duplicate_value":
            raise CatalogError("store_name_taken", f"A store called {name!r} exists.") from None
        raise
    return {**(current or {}), **fields, "id": store_id}


async def create_stock(ctx, product_id: str, initial: dict[str, int]) -> None:
    """Stock documents for new stock keys, only where none exists yet."""
    for variant_id, left in initial.items():
        # Already there (a retried save): its count is the merchant's and the checkouts'.
        with contextlib.suppress(Conflict):
            await ctx.storage_update(
                "stock",
                stock_key(product_id, variant_id),
                {"left": left},
                expected_version=0,
                upsert=True,
            )


async def do_save_product(ctx, params: dict, *, new_id: str | None = None) -> dict:
    """Add a product (no ``product_id``; its id is ``new_id`` or a new one) or edit one of the
    merchant's (the stock of existing variants is not touched here: ``stock.set``)."""
    check_merchant(ctx)
    store = await own_store(ctx)
    product_id = params.get("product_id")
    old, version = (None, 0) if product_id is None else await own_product(ctx, product_id)
    fields, initial = await check_product_input(ctx, params, old)
    if old is None:
        product_id = new_id or "p-" + secrets.token_hex(6)
        fields.update(
            store_id=store["id"],
            owner=ctx.user_id,
            deleted=False,
            rating_sum=0,
            rating_count=0,
            created_at=now_ms(),
        )
    fields["updated_at"] = now_ms()
    await create_stock(ctx, product_id, initial)
    try:
        await ctx.storage_update(
            "products", product_id, fields, expected_version=version, upsert=old is None
        )
    except Conflict:
        raise CatalogError("product_changed", "The product changed meanwhile: reload it.") from None
    return {**(old or {}), **fields, "id": product_id}


async def do_set_visible(ctx, params: dict) -> dict:
    check_merchant(ctx)
    product, version = await own_product(ctx, params.get("product_id"))
    hidden = params.get("hidden")
    if not isinstance(hidden, bool):
        raise CatalogError("invalid_hidden", "hidden is true or false.")
    change = {"visible": not hidden, "updated_at": now_ms()}
    try:
        await ctx.storage_update("products", product["id"], change, expected_version=version)
    except Conflict:
        raise CatalogError("product_changed", "The product changed meanwhile: reload it.") from None
    return {**product, **change}


async def do_delete_product(ctx, params: dict) -> dict:
    """Soft delete: buyers no longer see it; orders keep their lines."""
    check_merchant(ctx)
    product, version = await own_product(ctx, params.get("product_id"))
    change = {"deleted": True, "visible": False, "updated_at": now_ms()}
    try:
        await ctx.storage_update("products", product["id"], change, expected_version=version)
    except Conflict:
        raise CatalogError("product_changed", "The product changed meanwhile: reload it.") from None
    return {"product_id": product["id"], "deleted": True}


async def do_set_stock(ctx, params: dict) -> dict:
    """Set what is left of a product or variant — a conditional write on the stock document's
    version (``expected_version`` from the page, else the one just read), so a checkout's
    reservation in between is never overwritten: the merchant sees the new count instead."""
    check_merchant(ctx)
    product, _ = await own_product(ctx, params.get("product_id"))
    variant_id = params.get("variant_id") or None
    if (variant_id is None) != (not product.get("variants")) or (
        variant_id is not None and variant_of(product, variant_id) is None
    ):
        raise CatalogError("unknown_variant", "Pick one of the product's variants.")
    left = check_stock(params.get("stock"))
    key = stock_key(product["id"], variant_id)
    _, version = await ctx.storage_get_versioned("stock", key)
    expected = params.get("expected_version")
    expected = version if expected is None else expected
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise CatalogError("invalid_version", "expected_version is a whole number.")
    try:
        new_version = await ctx.storage_update(
            "stock", key, {"left": left}, expected_version=expected, upsert=expected == 0
        )
    except (Conflict, NotFound):
        now = int((await ctx.storage_get("stock", key) or {}).get("left", 0))
        raise CatalogError(
            "stock_changed", f"The stock changed meanwhile (now {now} left): set it again."
        ) from None
    return {
        "product_id": product["id"],
        "variant_id": variant_id,
        "left": left,
        "version": new_version,
    }


PHOTO_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


def decode_photo(data: Any) -> tuple[bytes, str]:
    """A data URL or base64 text of a JPEG or PNG: its bytes and content type."""
    if not isinstance(data, str) or not data:
        raise CatalogError("invalid_photo", "Send the photo as a data URL or base64 text.")
    if data.startswith("data:"):
        data = data.partition(",")[2]
    if len(data) > (PHOTO_MAX_BYTES // 3 + 1) * 4:
        raise CatalogError("invalid_photo", f"A photo is at most {PHOTO_MAX_BYTES // 1024} KiB.")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise CatalogError("invalid_photo", "The photo is not valid base64.") from None
    if not raw or len(raw) > PHOTO_MAX_BYTES:
        raise CatalogError("invalid_photo", f"A photo is 1 byte to {PHOTO_MAX_BYTES // 1024} KiB.")
    for magic, content_type in PHOTO_TYPES.items():
        if raw.startswith(magic):
            return raw, content_type
    raise CatalogError("invalid_photo", "A photo is a JPEG or PNG image.")


async def do_upload_photo(ctx, params: dict) -> dict:
    """A merchant's photo to the host's media (re-encoded there without metadata); its id is
    remembered as theirs, so only they can put it on a product."""
    check_merchant(ctx)
    raw, content_type = decode_photo(params.get("data"))
    try:
        media_id = await ctx.upload_media(raw, content_type, kind="image")
    except HostError as exc:
        raise CatalogError(exc.code or "invalid_photo", str(exc)) from None
    await ctx.storage_put("uploads", media_id, {"owner": ctx.user_id, "at": now_ms()})
    return {"media_id": media_id}
