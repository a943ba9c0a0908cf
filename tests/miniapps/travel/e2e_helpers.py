"""The travel app through the running platform: what its end-to-end test reads from sockets and
from the shared database, and the few things it moves there. The shop's helpers
(``tests.miniapps.shop.e2e_helpers``) send commands, press buttons, call the web view and top
wallets up; these add the travel app's cards, its stored documents, its payment sheets and
timers, and the stand-in for the clock.

The app reads the system clock (``clock.now_ms``) and a sandboxed process has no clock a test
could move. Where time must pass — a booking's deadline, the lease of a finishing run that was
cut short — the test moves the stored instant instead (``rewrite``), as the health app's
end-to-end test does; the timers that then fire, the app's handlers, cards and payments are the
platform's and the app's own.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from gateway.keys import MINIAPPS
from messaging.actions import service_chats
from miniapps.host.store.app_storage import doc_id, value_of
from tests.helpers import eventually
from tests.messaging.chat_helpers import app_cards
from tests.miniapps import timer_race
from tests.miniapps.shop.e2e_helpers import events_of, view

APP = "travel"


# --- people and the app in a chat -------------------------------------------------------------


async def make_admin(db, someone) -> None:
    """What ``python run.py create-admin`` does: the operator's step outside the API."""
    await db.users.update_one({"_id": someone.user_id}, {"$set": {"role": "admin"}})


async def configure(admin, values: dict[str, str]) -> None:
    """An administrator sets the travel app's settings (the admin API)."""
    status, body = await admin.api.request(
        "PUT", f"/api/v1/admin/miniapps/{APP}/config", json={"values": values}
    )
    assert status == 200, body


async def install(owner, cid: str) -> None:
    status, body = await owner.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
    assert status in (200, 201), body


async def consent(someone, *scopes: str) -> None:
    """``someone`` answered the host's consent sheets for the travel app beforehand."""
    for scope in scopes:
        answered = await someone.socket.call(
            "miniapp.consent", {"app_id": APP, "scope": scope, "granted": True}
        )
        assert answered["ok"], answered


def app_uid(node, someone) -> str:
    """``someone``'s per-app user id with the travel app (how the app names them)."""
    return node.app[MINIAPPS].identity.app_user_id(APP, someone.user_id)


async def call(someone, cid: str, name: str, params: dict | None = None) -> Any:
    """A travel web view call that must succeed: its result."""
    return await view(someone, cid, name, params, app=APP)


async def page_call(someone, cid: str, name: str, params: dict | None = None):
    """One web view call (a fresh launch token, then the call) → ``(status, body)``."""
    status, launch = await someone.api.post(f"/api/v1/conversations/{cid}/apps/{APP}/launch")
    assert status in (200, 201), launch
    return await someone.api.post(
        "/api/v1/webviews/call",
        json={"token": launch["token"], "name": name, "params": params or {}},
    )


# --- what people received ---------------------------------------------------------------------


def cards(someone, cid: str) -> list[dict]:
    """The travel app's cards in ``cid`` as ``someone`` received them, latest versions."""
    return app_cards(someone, cid, APP)


def titled(someone, cid: str, prefix: str) -> list[dict]:
    return [m for m in cards(someone, cid) if m["card"]["title"].startswith(prefix)]


def card_words(message: dict) -> str:
    """A card's title, text, fields and button labels as one text."""
    card = message["card"]
    parts = [card.get("title") or "", card.get("text") or ""]
    parts += [f"{f['label']}: {f['value']}" for f in card.get("fields") or []]
    parts += [b.get("label") or "" for b in card.get("buttons") or []]
    return "\n".join(parts)


def field(message: dict, prefix: str) -> str | None:
    """The value of the card's first field whose label starts with ``prefix``."""
    for item in message["card"].get("fields") or []:
        if item["label"].startswith(prefix):
            return item["value"]
    return None


def buttons(message: dict, action_id: str) -> list[dict]:
    return [b for b in message["card"].get("buttons") or [] if b.get("action_id") == action_id]


def app_texts(someone, cid: str) -> list[str]:
    """The travel app's text messages in ``cid`` that ``someone`` received."""
    return [
        d["message"]["text"]
        for d in someone.received()
        if d["message"]["conversation_id"] == cid
        and d["message"]["type"] == "text"
        and d["message"].get("sender_id") == f"app:{APP}"
    ]


def service_texts(someone) -> list[str]:
    """What the travel app told ``someone`` in their service chat with it (texts)."""
    chat = service_chats.service_chat_id(someone.user_id, APP)
    return [
        d["message"].get("text") or ""
        for d in someone.received()
        if d["message"]["conversation_id"] == chat
    ]


def sheets(someone, order_ref_prefix: str = "") -> list[dict]:
    """The travel app's wallet sheets ``someone`` was shown (``payment.confirm_required``),
    those whose ``order_ref`` starts with ``order_ref_prefix``."""
    return [
        data["payment"]
        for data in events_of(someone, "payment.confirm_required")
        if data["payment"].get("app_id") == APP
        and data["payment"]["order_ref"].startswith(order_ref_prefix)
    ]


async def wallet_balance(someone, currency: str) -> int:
    status, body = await someone.api.get("/api/v1/wallet")
    assert status == 200, body
    return next((b["amount"] for b in body["balances"] if b["currency"] == currency), 0)


# --- the database ------------------------------------------------------------------------------


async def stored(db, collection: str, key: str) -> dict | None:
    """A travel document, read straight from ``app_storage``."""
    doc = await db["app_storage"].find_one({"_id": doc_id(APP, collection, key)})
    return value_of(doc) if doc else None


async def stored_all(db, collection: str) -> dict[str, dict]:
    """Every document of the travel app's ``collection``, by key."""
    found = db["app_storage"].find({"app_id": APP, "collection": collection})
    return {doc["key"]: value_of(doc) async for doc in found}


async def payments_of(db, order_ref_prefix: str) -> list[dict]:
    """The wallet's payment orders of the travel app whose ``order_ref`` starts so."""
    found = db["payment_orders"].find(
        {"app_id": APP, "order_ref": {"$regex": f"^{order_ref_prefix}"}}
    )
    return [doc async for doc in found]


async def live_timer(db, key: str) -> dict | None:
    """The app's pending (or firing) timer ``key``."""
    return await db["app_timers"].find_one(
        {"_id": f"{APP}|{key}", "state": {"$in": ["pending", "firing"]}}
    )


async def fire_racing(nodes, db, key: str, copies: int = 3) -> None:
    """Fire the app's pending timer ``key`` now, ``copies`` + 1 times at once, half on each
    node (``tests.miniapps.timer_race``). A timer the app moves on its own meanwhile (a firing
    of its own, the next step set) is read again and raced then (a few tries)."""
    for tries in range(3, 0, -1):
        timer = await eventually(
            lambda: pending_timer(db, key), timeout=15, what=f"the timer {key} pending"
        )
        try:
            await timer_race.fire_racing(nodes, db, timer, copies)
        except AssertionError:  # its claim lost to the node that fired it, or it was moved:
            if tries == 1:  # nothing was fired by the race yet
                raise
            continue
        return


async def pending_timer(db, key: str) -> dict | None:
    timer = await live_timer(db, key)
    return timer if timer is not None and timer["state"] == "pending" else None


async def rewrite(db, collection: str, key: str, changes: dict[str, Any]) -> None:
    """Set fields of a stored travel document — the test's stand-in for the clock, used only
    on instants (epoch ms, 13 digits): the stored text keeps its length, so the app's storage
    usage stays exact. Conditional on the version read and moving it on, like the app's own
    writes (a conditional write of the app in flight then re-reads rather than undoes it)."""
    _id = doc_id(APP, collection, key)
    doc = await db["app_storage"].find_one({"_id": _id})
    assert doc is not None and not doc.get("counters"), (collection, key)
    value = json.loads(doc["value"])
    value.update(changes)
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    assert len(text) == len(doc["value"]), "only instants of the same length are moved"
    moved = await db["app_storage"].update_one(
        {"_id": _id, "version": doc["version"]}, {"$set": {"value": text}, "$inc": {"version": 1}}
    )
    assert moved.modified_count == 1


def days_ahead(days: int) -> str:
    """The date ``days`` from today (UTC), ``YYYY-MM-DD``."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).date().isoformat()
