"""Catalog: courses, their sections, enrolment — and the tables of ``lessons`` and ``demo``.

- Everyone: ``/course`` (a card of the published courses with an "Open courses" button opening
  the web view), ``/course mine`` (my courses and how far I am), ``/course progress <course>``;
  in the web view ``catalogue`` (published courses: cover, price in the reader's locale,
  enrolled?), ``course.get`` (sections, lessons, my progress), ``enrol``.
- Instructors (role ``instructor``): ``course.save``, ``section.save``, ``lesson.order``,
  ``course.mine_authored`` (their courses, published or not); lessons are in ``lessons``.
- Enrolment (collection ``enrolments``, key ``<learner>:<course>``, created once: a
  conditional write at version 0): a free course at once; a paid one through the wallet —
  ``request_payment(order_ref="en-<token>")``, the pending order kept in ``enrol_orders`` and
  ``PAYMENTS["en"]`` enrolling on ``payment.succeeded``; the learner's open order for a course
  (``enrol_open``, key ``<learner>:<course>``) is asked for again while its payment is pending
  or paid, so a retried enrol gets the same payment and cannot be charged twice — or through a
  shop order:
  ``shop.order_paid`` ``{order_id, product_id, course_id}`` arrives in the buyer's invocation,
  so ``ctx.user_id`` is the buyer's id in this app.

A refused input is a ``CatalogError``: commands answer it as an ephemeral text, views as a
``ViewError`` with the same code and message. Courses are ``courses`` documents:
``{id, title, description, cover, price, currency, instructor, sections: [{id, title, weight,
drop_lowest, lessons: [{id, kind, title}]}], published, created_at}``.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from decimal import Decimal
from typing import Any

import demo
import lessons
from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision, list_currencies

from sdk import Button, Card, Conflict, Field, HostError, NotFound, Reply, ViewError

log = logging.getLogger("courses.catalog")

INSTRUCTOR = "instructor"
COURSE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # as the shop's product course_id
SECTION_ID = re.compile(r"^s-[a-z0-9]{1,16}$")
TITLE_MAX = 100
DESCRIPTION_MAX = 2000
SECTIONS_MAX = 30
PRICE_MAX = 100_000_000  # minor units
CARD_COURSES = 8
LIST_MAX = 100  # courses a catalogue shows (one storage page)
RETRIES = 8  # conditional writes retried after a Conflict


class CatalogError(Exception):
    """Why an input is refused: a stable ``code`` and a ``message`` for the person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def now_ms() -> int:
    return int(time.time() * 1000)


# --- checks ---------------------------------------------------------------------------------


def check_instructor(ctx) -> None:
    if not ctx.has_role(INSTRUCTOR):
        raise CatalogError("not_instructor", "Only instructors can do this: ask an administrator.")


def check_text(params: dict, name: str, limit: int, *, required: bool) -> str:
    value = params.get(name)
    value = "" if value is None else value
    if not isinstance(value, str):
        raise CatalogError(f"invalid_{name}", f"{name} must be text.")
    value = value.strip()
    if required and not value:
        raise CatalogError(f"invalid_{name}", f"{name} is required.")
    if len(value) > limit:
        raise CatalogError(f"invalid_{name}", f"{name}: at most {limit} characters.")
    return value


def check_int(params: dict, name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CatalogError(f"invalid_{name}", f"{name}: a whole number from {low} to {high}.")
    return value


def check_course_id(value: Any) -> str:
    if not isinstance(value, str) or not COURSE_ID.fullmatch(value):
        raise CatalogError("unknown_course", "No such course.")
    return value


async def get_course(ctx, course_id: Any) -> dict[str, Any]:
    """The course ``course_id`` or ``CatalogError`` ``unknown_course``."""
    course = await ctx.storage_get("courses", check_course_id(course_id))
    if not course:
        raise CatalogError("unknown_course", "No such course.")
    return course


async def visible_course(ctx, course_id: Any) -> dict[str, Any]:
    """A course a learner may see: published, or one the invoking instructor wrote."""
    course = await get_course(ctx, course_id)
    if not course.get("published") and not (
        ctx.has_role(INSTRUCTOR) and course.get("instructor") == ctx.user_id
    ):
        raise CatalogError("unknown_course", "No such course.")
    return course


def all_lessons(course: dict[str, Any]) -> list[dict[str, Any]]:
    return [lesson for section in course.get("sections", []) for lesson in section["lessons"]]


def find_lesson(course: dict[str, Any], lesson_id: Any) -> dict[str, Any] | None:
    return next((x for x in all_lessons(course) if x["id"] == lesson_id), None)


def find_section(course: dict[str, Any], section_id: Any) -> dict[str, Any] | None:
    return next((s for s in course.get("sections", []) if s["id"] == section_id), None)


def _locale(locale: str | None) -> Locale:
    try:
        return Locale.parse((locale or "en").replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return Locale.parse("en")


def price_text(course: dict[str, Any], locale: str | None) -> str:
    """ "Free", or the price in the reader's locale (babel): ``$19.00``, ``19,00 $``."""
    if not course.get("price"):
        return "Free"
    currency = course["currency"]
    value = Decimal(int(course["price"])).scaleb(-get_currency_precision(currency))
    return format_currency(value, currency, locale=_locale(locale))


async def update_course(ctx, course_id: str, change) -> dict[str, Any]:
    """Apply ``change(course) -> dict of fields`` with a conditional write, retried on a
    Conflict; ``change`` raises ``CatalogError`` to refuse. Returns the course as written."""
    for _ in range(RETRIES):
        course, version = await ctx.storage_get_versioned("courses", course_id)
        if not course:
            raise CatalogError("unknown_course", "No such course.")
        fields = change(course)
        try:
            await ctx.storage_update("courses", course_id, fields, expected_version=version)
        except Conflict:
            continue
        return {**course, **fields}
    raise CatalogError("busy", "The course is being changed by someone else: try again.")


def own_course(ctx, course: dict[str, Any]) -> None:
    if course.get("instructor") != ctx.user_id:
        raise CatalogError("not_your_course", "Only the course's instructor can change it.")


# --- authoring ------------------------------------------------------------------------------


async def do_course_save(ctx) -> dict[str, Any]:
    """``course.save {course_id?, title, description?, cover?, price (minor units, 0 = free),
    currency, published}`` — a new course without ``course_id``."""
    check_instructor(ctx)
    p = ctx.params
    title = check_text(p, "title", TITLE_MAX, required=True)
    description = check_text(p, "description", DESCRIPTION_MAX, required=False)
    cover = p.get("cover") or None
    if cover is not None and not (isinstance(cover, str) and re.fullmatch(r"[0-9a-f]{24}", cover)):
        raise CatalogError("invalid_cover", "cover: the id of an image uploaded by this app.")
    price = check_int(p, "price", 0, 0, PRICE_MAX)
    currency = p.get("currency") or "USD"
    if not isinstance(currency, str) or currency not in list_currencies():
        raise CatalogError("invalid_currency", "currency: an ISO 4217 code such as USD.")
    published = p.get("published", False)
    if not isinstance(published, bool):
        raise CatalogError("invalid_published", "published: true or false.")
    fields = {
        "title": title,
        "description": description,
        "cover": cover,
        "price": price,
        "currency": currency,
        "published": published,
    }
    if p.get("course_id") is None:
        course_id = "c-" + secrets.token_hex(5)
        course = {
            "id": course_id,
            **fields,
            "instructor": ctx.user_id,
            "sections": [],
            "created_at": now_ms(),
        }
        await ctx.storage_update("courses", course_id, course, expected_version=0, upsert=True)
        return {"course": await course_json(ctx, course)}

    def change(course):
        own_course(ctx, course)
        return fields

    course = await update_course(ctx, check_course_id(p["course_id"]), change)
    return {"course": await course_json(ctx, course)}


async def do_section_save(ctx) -> dict[str, Any]:
    """``section.save {course_id, section_id?, title, weight ≥ 0, drop_lowest ≥ 0}``."""
    check_instructor(ctx)
    p = ctx.params
    course_id = check_course_id(p.get("course_id"))
    title = check_text(p, "title", TITLE_MAX, required=True)
    weight = p.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1000:
        raise CatalogError("invalid_weight", "weight: a number from 0 to 1000.")
    drop_lowest = check_int(p, "drop_lowest", 0, 0, 50)
    section_id = p.get("section_id")
    new_id = "s-" + secrets.token_hex(4)

    def change(course):
        own_course(ctx, course)
        sections = [dict(s) for s in course.get("sections", [])]
        if section_id is None:
            if len(sections) >= SECTIONS_MAX:
                raise CatalogError("too_many_sections", f"At most {SECTIONS_MAX} sections.")
            sections.append({"id": new_id, "title": title, "lessons": []})
            target = sections[-1]
        else:
            target = next((s for s in sections if s["id"] == section_id), None)
            if target is None:
                raise CatalogError("unknown_section", "No such section in this course.")
        target.update({"title": title, "weight": weight, "drop_lowest": drop_lowest})
        return {"sections": sections}

    course = await update_course(ctx, course_id, change)
    return {"course": await course_json(ctx, course)}


async def do_lesson_order(ctx) -> dict[str, Any]:
    """``lesson.order {course_id, order: {section_id: [lesson ids]}}``: every section of the
    course and every lesson exactly once (lessons may move between sections)."""
    check_instructor(ctx)
    course_id = check_course_id(ctx.params.get("course_id"))
    order = ctx.params.get("order")
    if not isinstance(order, dict):
        raise CatalogError("invalid_order", "order: {section id: [lesson ids]}.")

    def change(course):
        own_course(ctx, course)
        sections = course.get("sections", [])
        by_id = {x["id"]: x for x in all_lessons(course)}
        listed = [i for ids in order.values() if isinstance(ids, list) for i in ids]
        if (
            set(order) != {s["id"] for s in sections}
            or not all(isinstance(ids, list) for ids in order.values())
            or sorted(map(str, listed)) != sorted(by_id)
        ):
            raise CatalogError(
                "invalid_order", "order must list every section and every lesson exactly once."
            )
        return {
            "sections": [{**s, "lessons": [by_id[i] for i in order[s["id"]]]} for s in sections]
        }

    course = await update_course(ctx, course_id, change)
    return {"course": await course_json(ctx, course)}


async def do_authored(ctx) -> dict[str, Any]:
    """``course.authored``: the invoking instructor's courses, published or not."""
    check_instructor(ctx)
    page = await ctx.storage_page("courses", {"instructor": ctx.user_id}, limit=LIST_MAX)
    return {"courses": [await course_json(ctx, i["value"]) for i in page["items"]]}


# --- what learners see ----------------------------------------------------------------------


async def cover_url(ctx, course: dict[str, Any]) -> str | None:
    if not course.get("cover"):
        return None
    try:
        return await ctx.media_url(course["cover"], thumbnail=True)
    except HostError:
        return None


async def course_json(ctx, course: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": course["id"],
        "title": course["title"],
        "description": course.get("description", ""),
        "cover": course.get("cover"),
        "cover_url": await cover_url(ctx, course),
        "price": course.get("price", 0),
        "currency": course.get("currency", "USD"),
        "price_text": price_text(course, ctx.locale),
        "published": bool(course.get("published")),
        "mine": course.get("instructor") == ctx.user_id,
        "sections": course.get("sections", []),
    }


async def published_courses(ctx) -> list[dict[str, Any]]:
    page = await ctx.storage_page("courses", {"published": True}, limit=LIST_MAX)
    return sorted((i["value"] for i in page["items"]), key=lambda c: c.get("created_at", 0))


async def is_enrolled(ctx, learner: str, course_id: str) -> bool:
    return bool(await ctx.storage_get("enrolments", f"{learner}:{course_id}"))


async def do_catalogue(ctx) -> dict[str, Any]:
    """``catalogue``: the published courses, each with ``enrolled``."""
    courses = []
    for course in await published_courses(ctx):
        item = await course_json(ctx, course)
        item["enrolled"] = await is_enrolled(ctx, ctx.user_id, course["id"])
        del item["sections"]
        courses.append(item)
    return {"courses": courses, "instructor": ctx.has_role(INSTRUCTOR)}


async def do_course_get(ctx) -> dict[str, Any]:
    """``course.get {course_id}``: the course, its sections and lessons with my progress."""
    course = await visible_course(ctx, ctx.params.get("course_id"))
    item = await course_json(ctx, course)
    progress = await lessons.get_progress(ctx, ctx.user_id, course["id"])
    seen = set(progress.get("seen", []))
    item["enrolled"] = await is_enrolled(ctx, ctx.user_id, course["id"])
    item["sections"] = [
        {**s, "lessons": [{**x, "seen": x["id"] in seen} for x in s["lessons"]]}
        for s in course.get("sections", [])
    ]
    item["progress"] = progress_summary(course, progress)
    return {"course": item}


def progress_summary(course: dict[str, Any], progress: dict[str, Any]) -> dict[str, Any]:
    ids = [x["id"] for x in all_lessons(course)]
    seen = set(progress.get("seen", [])) & set(ids)
    return {
        "done": len(seen),
        "total": len(ids),
        "percent": round(100 * len(seen) / len(ids)) if ids else 0,
        "completed_at": progress.get("completed_at"),
    }


# --- enrolment ------------------------------------------------------------------------------


async def enrol_once(ctx, learner: str, course_id: str, via: str, ref: str | None = None) -> bool:
    """Enrol ``learner`` in ``course_id`` unless they are: a create-only write (version 0), so
    concurrent or repeated deliveries enrol once. True when this call enrolled."""
    doc = {"learner": learner, "course_id": course_id, "via": via, "ref": ref, "at": now_ms()}
    key = f"{learner}:{course_id}"
    try:
        await ctx.storage_update("enrolments", key, doc, expected_version=0, upsert=True)
    except Conflict:
        return False
    return True


async def do_enrol(ctx) -> dict[str, Any]:
    """``enrol {course_id}``: a free course at once (``{enrolled: true}``); a paid one asks the
    wallet (``{enrolled: false, payment: {payment_id, status}}``) and enrols on the payment."""
    course = await visible_course(ctx, ctx.params.get("course_id"))
    if await is_enrolled(ctx, ctx.user_id, course["id"]):
        return {"enrolled": True, "course_id": course["id"]}
    if not course.get("price"):
        await enrol_once(ctx, ctx.user_id, course["id"], "free")
        return {"enrolled": True, "course_id": course["id"]}
    payment = await request_enrol_payment(ctx, course)
    return {"enrolled": False, "course_id": course["id"], "payment": payment}


async def request_enrol_payment(ctx, course: dict[str, Any]) -> dict[str, Any]:
    """Ask the invoking learner to pay for ``course``, once per open order: while the open
    order's payment is pending (or already paid, its event on the way) a retried enrol — a
    double tap, an answer lost on the network — asks again with the same ``order_ref``, which
    the wallet answers with the same payment, so two sheets cannot both be paid. A cancelled or
    expired payment, or a price changed since, opens a new order. Concurrent enrols agree on one
    order: the open order is replaced only by a conditional write at the version read. The
    order is written before it is made the open one, so its payment always finds it."""
    learner, course_id = ctx.user_id, course["id"]
    amount, currency = course["price"], course["currency"]
    description = f"Course: {course['title']}"[:200]
    for _ in range(RETRIES):
        current, version = await ctx.storage_get_versioned("enrol_open", f"{learner}:{course_id}")
        if current and (current.get("amount"), current.get("currency")) == (amount, currency):
            payment = await ctx.request_payment(
                amount, currency, description, f"en-{current['token']}"
            )
            if payment["status"] in ("pending", "paid"):
                return payment
        token = secrets.token_hex(8)
        order = {
            "learner": learner,
            "course_id": course_id,
            "amount": amount,
            "currency": currency,
            "at": now_ms(),
        }
        await ctx.storage_put("enrol_orders", token, order)
        try:
            await ctx.storage_update(
                "enrol_open",
                f"{learner}:{course_id}",
                {"token": token, "amount": amount, "currency": currency},
                expected_version=version,
                upsert=version == 0,
            )
        except Conflict:  # another enrol opened an order meanwhile: that one is asked for
            await ctx.storage_delete("enrol_orders", token)
            continue
        return await ctx.request_payment(amount, currency, description, f"en-{token}")
    raise CatalogError("busy", "Too many changes at once: try again.")


async def on_enrol_payment(ctx, name: str, payment: dict[str, Any]) -> None:
    """``PAYMENTS["en"]``: ``payment.succeeded`` for a pending order enrols its learner once."""
    if name != "payment.succeeded":
        return
    token = str(payment["order_ref"]).split("-", 1)[1]
    order = await ctx.storage_get("enrol_orders", token)
    if (
        not order
        or payment.get("amount") != order["amount"]
        or payment.get("currency") != order["currency"]
        or payment.get("user_id") not in (None, order["learner"])
    ):
        log.warning("a payment for an unknown or different enrolment order was ignored")
        return
    learner, course_id = order["learner"], order["course_id"]
    if await enrol_once(ctx, learner, course_id, "paid", payment["payment_id"]):
        return
    enrolment = await ctx.storage_get("enrolments", f"{learner}:{course_id}") or {}
    if enrolment.get("ref") == payment["payment_id"]:
        return  # this payment's event again: it is the one that enrolled
    # Enrolled already (another order paid first: the price changed between two sheets, a shop
    # order): this payment bought nothing, so it goes back in full, once (refund_ref).
    await ctx.refund_payment(
        payment["payment_id"], payment["amount"], refund_ref=f"rf-{payment['payment_id']}"
    )
    log.info("payment %s: %s was already enrolled; refunded", payment["payment_id"], course_id)


async def on_shop_order_paid(ctx) -> None:
    """``shop.order_paid {order_id, product_id, course_id}``, in the buyer's invocation: enrol
    the buyer (``ctx.user_id``, their id in this app) once; an unknown course is ignored."""
    payload = ctx.payload if isinstance(ctx.payload, dict) else {}
    course_id = payload.get("course_id")
    if ctx.user_id is None or not isinstance(course_id, str) or not COURSE_ID.fullmatch(course_id):
        log.warning("a shop.order_paid event without a buyer or course was ignored")
        return
    if not await ctx.storage_get("courses", course_id):
        log.warning("shop.order_paid for an unknown course %r was ignored", course_id)
        return
    await enrol_once(ctx, ctx.user_id, course_id, "shop", str(payload.get("order_id"))[:64])


# --- commands -------------------------------------------------------------------------------


async def catalogue(ctx) -> Reply:
    """``/course``: a card listing the published courses, with an "Open courses" button."""
    courses = await published_courses(ctx)
    lines = [f"• {c['title']} — {price_text(c, ctx.locale)}" for c in courses[:CARD_COURSES]] or [
        "No courses yet."
    ]
    if len(courses) > CARD_COURSES:
        lines.append(f"…and {len(courses) - CARD_COURSES} more.")
    card = Card("Courses", text="\n".join(lines), buttons=[Button.webview("Open courses")])
    return Reply(card=card)


async def my_courses(ctx, args: list[str]) -> Reply:
    """``/course mine``: the courses I am enrolled in, with my progress (to me only)."""
    page = await ctx.storage_page("enrolments", {"learner": ctx.user_id}, limit=LIST_MAX)
    fields = []
    for item in page["items"]:
        course = await ctx.storage_get("courses", item["value"]["course_id"])
        if not course:
            continue
        summary = progress_summary(
            course, await lessons.get_progress(ctx, ctx.user_id, course["id"])
        )
        state = "completed ✓" if summary["completed_at"] else f"{summary['percent']} %"
        fields.append(
            Field(course["title"][:100], f"{summary['done']}/{summary['total']} lessons · {state}")
        )
    if not fields:
        return Reply(ephemeral="You are not enrolled in any course yet: /course shows them.")
    card = Card("My courses", fields=fields[:25], buttons=[Button.webview("Open courses")])
    return Reply(ephemeral=card)


async def course_progress(ctx, args: list[str]) -> Reply:
    """``/course progress <course id or title>``: my progress in one course (to me only)."""
    if not args:
        return Reply(ephemeral="Usage: /course progress <course>")
    wanted = " ".join(args).strip()
    course = None
    if COURSE_ID.fullmatch(wanted):
        course = await ctx.storage_get("courses", wanted)
    if not course:
        course = next(
            (c for c in await published_courses(ctx) if c["title"].lower() == wanted.lower()),
            None,
        )
    if not course or not await is_enrolled(ctx, ctx.user_id, course["id"]):
        return Reply(ephemeral=f"You are not enrolled in a course {wanted!r}.")
    progress = await lessons.get_progress(ctx, ctx.user_id, course["id"])
    summary = progress_summary(course, progress)
    seen = set(progress.get("seen", []))
    fields = [
        Field(
            s["title"][:100],
            ", ".join(("✓ " if x["id"] in seen else "· ") + x["title"] for x in s["lessons"])[:1000]
            or "—",
        )
        for s in course.get("sections", [])[:24]
    ]
    state = "Completed ✓" if summary["completed_at"] else f"{summary['percent']} % done"
    text = f"{summary['done']}/{summary['total']} lessons · {state}"
    card = Card(course["title"][:100], text=text, fields=fields)
    card.buttons.append(Button.webview("Continue", path=f"#course={course['id']}"))
    return Reply(ephemeral=card)


def as_view(do):
    """A view handler answering a ``CatalogError`` as a ``ViewError``."""

    async def handler(ctx):
        try:
            return await do(ctx)
        except CatalogError as exc:
            raise ViewError(exc.code, exc.message) from None
        except NotFound:
            raise ViewError("not_found", "Not found.") from None

    handler.__name__ = getattr(do, "__name__", "view")
    return handler


SUBCOMMANDS = {"mine": my_courses, "progress": course_progress}
ACTIONS: dict = {}
EVENTS = {"shop.order_paid": on_shop_order_paid}
TIMERS: dict = {}
VIEWS = {
    name: as_view(do)
    for name, do in {
        "catalogue": do_catalogue,
        "course.get": do_course_get,
        "course.save": do_course_save,
        "course.authored": do_authored,
        "section.save": do_section_save,
        "lesson.order": do_lesson_order,
        "enrol": do_enrol,
        **lessons.VIEWS,
        **demo.VIEWS,
    }.items()
}
PAYMENTS = {"en": on_enrol_payment}
