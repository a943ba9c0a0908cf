"""The courses app through the running platform: what its web view, its cards and its timers look
like to people on real HTTP and Socket.IO clients, and to a test reading the shared database.
The shop's helpers (``tests.miniapps.shop.e2e_helpers``) open web views, send commands and
press buttons; these add what the courses tests need on top."""

from __future__ import annotations

from typing import Any

from miniapps.host.store.app_storage import doc_id, value_of
from storage.mongo import now_ms
from tests.messaging.chat_helpers import app_cards
from tests.miniapps.shop.e2e_helpers import events_of, view

APP = "courses"


async def make_admin(db, person) -> None:
    """What ``python run.py create-admin`` does: the operator's step outside the API."""
    await db.users.update_one({"_id": person.user_id}, {"$set": {"role": "admin"}})


async def install(owner, cid: str) -> None:
    status, body = await owner.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
    assert status in (200, 201), body


async def consent(person, scope: str = "users.profile") -> None:
    """``person`` answers the host's consent sheet for the courses app beforehand (names on the
    cards come from ``users.profile``; unanswered, a capability would wait for the answer)."""
    answered = await person.socket.call(
        "miniapp.consent", {"app_id": APP, "scope": scope, "granted": True}
    )
    assert answered["ok"], answered


async def call(person, cid: str, name: str, params: dict | None = None) -> Any:
    """A courses web view call that must succeed: its result."""
    return await view(person, cid, name, params, app=APP)


async def refused(person, cid: str, name: str, params: dict | None = None) -> str:
    """A courses web view call the app must refuse: the error code it answered."""
    status, launch = await person.api.post(f"/api/v1/conversations/{cid}/apps/{APP}/launch")
    assert status in (200, 201), launch
    status, body = await person.api.post(
        "/api/v1/webviews/call",
        json={"token": launch["token"], "name": name, "params": params or {}},
    )
    assert status == 400, (name, status, body)
    return body["error"]["code"]


async def read_lessons(person, cid: str, course_id: str, lesson_ids: list[str]) -> list[dict]:
    """``person`` opens each lesson in the web view opened from ``cid`` (a first read: +10 XP)."""
    return [
        await call(person, cid, "lesson.get", {"course_id": course_id, "lesson_id": lesson_id})
        for lesson_id in lesson_ids
    ]


def cards(person, cid: str) -> list[dict]:
    """The courses app's cards in ``cid`` as ``person`` received them, latest versions."""
    return app_cards(person, cid, APP)


def titled(person, cid: str, prefix: str) -> list[dict]:
    """The app's cards in ``cid`` whose title (latest version) starts with ``prefix``."""
    return [m for m in cards(person, cid) if m["card"].get("title", "").startswith(prefix)]


def card_text(message: dict) -> str:
    """A card's title, text and fields as one text (what a person reads on it)."""
    card = message["card"]
    fields = [f"{f['label']}: {f['value']}" for f in card.get("fields", [])]
    return "\n".join([card.get("title", ""), card.get("text", ""), *fields])


def asked_to_pay(person) -> list[dict]:
    """The courses app's payment sheets ``person`` was shown (``payment.confirm_required``)."""
    return [
        data["payment"]
        for data in events_of(person, "payment.confirm_required")
        if data["payment"].get("app_id") == APP
    ]


async def stored(db, collection: str, key: str) -> tuple[dict | None, int]:
    """A courses document and its version, read straight from ``app_storage``."""
    doc = await db["app_storage"].find_one({"_id": doc_id(APP, collection, key)})
    return (value_of(doc), int(doc.get("version", 0))) if doc else (None, 0)


async def live_timers(db) -> list[dict]:
    """The courses app's pending or firing timers (``app_timers``)."""
    found = db["app_timers"].find({"app_id": APP, "state": {"$in": ["pending", "firing"]}})
    return [doc async for doc in found]


async def due_now(db, key: str) -> bool:
    """Move the app's pending timer ``key`` to now, so the nodes' scans fire it at once instead
    of at its time (a test's shortcut: what fires is the timer the app scheduled). False when
    there is no such pending timer (yet)."""
    now = now_ms()
    moved = await db["app_timers"].update_one(
        {"_id": f"{APP}|{key}", "state": "pending"}, {"$set": {"due_at": now, "run_at": now}}
    )
    return moved.modified_count == 1
