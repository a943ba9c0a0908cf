"""The health app through the running platform: its web view's calls, its cards in a person's
service chat, and what a test reads (and, standing in for the clock, moves) in the shared
database. The shop's helpers (``tests.miniapps.shop.e2e_helpers``) send commands, press buttons
and top wallets up; these add what the health tests need on top.

The app reads the time from the system clock (``clock.now_ms``), and a sandboxed process has no
clock a test could move. So where a test needs time to pass — a 5-minute hold running out, a
visit 15 minutes away starting — it moves the stored instants instead (``rewrite``,
``bring_visit_to``): the hold's deadline into the past, the visit and its pending reminder
nearer. Everything else — the timers that fire, the app's handlers, the cards, the calls — is
the platform's and the app's own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from messaging.actions import service_chats
from miniapps.host.store.app_storage import doc_id, value_of
from storage.mongo import now_ms
from tests.messaging.chat_helpers import app_cards
from tests.miniapps.shop.e2e_helpers import events_of, view

APP = "health"
MINUTE = 60_000


async def make_admin(db, someone) -> None:
    """What ``python run.py create-admin`` does: the operator's step outside the API."""
    await db.users.update_one({"_id": someone.user_id}, {"$set": {"role": "admin"}})


async def install(owner, cid: str) -> None:
    status, body = await owner.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
    assert status in (200, 201), body


async def own_group(someone, title: str) -> str:
    """A group of ``someone`` alone, with the health app: where they open its web view."""
    status, body = await someone.api.post(
        "/api/v1/conversations", json={"type": "group", "title": title, "member_ids": []}
    )
    assert status == 201, body
    cid = body["conversation"]["id"]
    await install(someone, cid)
    return cid


async def consent(someone, scope: str = "notifications") -> None:
    """``someone`` answers the host's consent sheet for the health app beforehand (service
    messages: reminders and the appointment cards come that way)."""
    answered = await someone.socket.call(
        "miniapp.consent", {"app_id": APP, "scope": scope, "granted": True}
    )
    assert answered["ok"], answered


async def launch(someone, cid: str) -> str:
    """Open the health web view in ``cid``: its launch token."""
    status, body = await someone.api.post(f"/api/v1/conversations/{cid}/apps/{APP}/launch")
    assert status in (200, 201), body
    return body["token"]


async def page_call(someone, token: str, name: str, params: dict | None = None):
    """One call of the page opened with ``token`` (``Aetherial.call``): ``(status, body)``."""
    return await someone.api.post(
        "/api/v1/webviews/call", json={"token": token, "name": name, "params": params or {}}
    )


async def call(someone, cid: str, name: str, params: dict | None = None) -> Any:
    """A health web view call that must succeed: its result."""
    return await view(someone, cid, name, params, app=APP)


async def refused(someone, cid: str, name: str, params: dict | None = None) -> str:
    """A health web view call the app must refuse: its error code."""
    status, body = await page_call(someone, await launch(someone, cid), name, params)
    assert status == 400, (name, status, body)
    return body["error"]["code"]


def profile(zone: str, **changes: Any) -> dict[str, Any]:
    """A practice profile for ``practice.save``: a free video GP in ``zone``, 30-minute visits,
    every day 09:00-17:00 (``changes`` replace fields)."""
    return {
        "name": "Dr. Ines Costa",
        "specialties": ["general practice"],
        "languages": ["en", "pt"],
        "fee": {"amount": 0, "currency": "USD"},
        "zone": zone,
        "visit_minutes": 30,
        "visit_type": "video",
        "weekly": [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(7)],
        **changes,
    }


def utc_date(days_from_now: int) -> str:
    """The UTC date ``days_from_now`` days from today (a new account reads times in UTC)."""
    return (datetime.now(UTC) + timedelta(days=days_from_now)).date().isoformat()


def window_soon(zone_name: str, lead_minutes: int, length_minutes: int) -> dict[str, str] | None:
    """An exception day of hours in ``zone_name`` for today there, starting ``lead_minutes``
    from now (at a whole minute, later rather than earlier) and ``length_minutes`` long; None
    when that window would cross local midnight."""
    zone = ZoneInfo(zone_name)
    begin = datetime.now(zone) + timedelta(minutes=lead_minutes + 1)
    begin = begin.replace(second=0, microsecond=0)
    end = begin + timedelta(minutes=length_minutes)
    if end.date() != begin.date():
        return None
    return {
        "date": begin.date().isoformat(),
        "start": begin.strftime("%H:%M"),
        "end": end.strftime("%H:%M"),
    }


# --- what people received ------------------------------------------------------------------


def service_chat(someone) -> str:
    """``someone``'s service chat with the health app (its id is fixed by the pair)."""
    return service_chats.service_chat_id(someone.user_id, APP)


def cards(someone, cid: str) -> list[dict]:
    """The health app's cards in ``cid`` as ``someone`` received them, latest versions."""
    return app_cards(someone, cid, APP)


def with_text(someone, cid: str, words: str) -> list[dict]:
    """The app's cards in ``cid`` whose text contains ``words``."""
    return [m for m in cards(someone, cid) if words in (m["card"].get("text") or "")]


def action_ids(message: dict) -> list[str]:
    return [b["action_id"] for b in message["card"].get("buttons", []) if b.get("action_id")]


def field(message: dict, label: str) -> str | None:
    for item in message["card"].get("fields", []):
        if item["label"] == label:
            return item["value"]
    return None


def asked_to_pay(someone) -> list[dict]:
    """The health app's payment sheets ``someone`` was shown."""
    return [
        data["payment"]
        for data in events_of(someone, "payment.confirm_required")
        if data["payment"].get("app_id") == APP
    ]


# --- the database --------------------------------------------------------------------------


async def stored(db, collection: str, key: str) -> tuple[dict | None, int]:
    """A health document and its version, read straight from ``app_storage``."""
    doc = await db["app_storage"].find_one({"_id": doc_id(APP, collection, key)})
    return (value_of(doc), int(doc.get("version", 0))) if doc else (None, 0)


async def stored_all(db, collection: str) -> list[dict]:
    found = db["app_storage"].find({"app_id": APP, "collection": collection})
    return [value_of(doc) async for doc in found]


async def live_timer(db, key: str) -> dict | None:
    """The app's pending (or firing) timer ``key``."""
    return await db["app_timers"].find_one(
        {"_id": f"{APP}|{key}", "state": {"$in": ["pending", "firing"]}}
    )


async def rewrite(db, collection: str, key: str, changes: dict[str, Any]) -> None:
    """Set fields of a stored health document — the test's stand-in for the clock (see the
    module's doc), used only on instants (epoch ms, 13 digits): the stored text keeps its
    length, so the app's storage usage stays exact. A write like the app's own: conditional on
    the version read, and moving it on (a conditional write of the app in flight then re-reads
    it rather than undoing it)."""
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


async def expire_hold(db, appointment_id: str) -> int:
    """The 5-minute hold of ``appointment_id`` has run out: its deadline (on the appointment
    and on its slot) a second ago. Returns that deadline."""
    appointment, _ = await stored(db, "appointments", appointment_id)
    deadline = now_ms() - 1000
    await rewrite(db, "appointments", appointment_id, {"hold_until": deadline})
    slot = f"{appointment['practitioner']}:{appointment['start']}"
    await rewrite(db, "slots", slot, {"hold_until": deadline})
    return deadline


async def bring_visit_to(db, appointment_id: str, start: int) -> int:
    """The booked visit ``appointment_id`` starts at ``start`` now (as if the clock had moved
    on to it): its start and end, and its pending reminders (their time and the start they
    carry) move by the same amount. Returns that amount (ms, negative: earlier)."""
    appointment, _ = await stored(db, "appointments", appointment_id)
    delta = start - appointment["start"]
    await rewrite(
        db, "appointments", appointment_id, {"start": start, "end": appointment["end"] + delta}
    )
    for kind in ("rm24", "rm15"):
        timer = await live_timer(db, f"{kind}:{appointment_id}")
        if timer is None:
            continue
        payload = json.loads(timer["payload"])
        payload["start"] = start
        due = timer["due_at"] + delta
        moved = await db["app_timers"].update_one(
            {"_id": timer["_id"], "version": timer["version"], "state": "pending"},
            {
                "$set": {
                    "payload": json.dumps(payload, separators=(",", ":")),
                    "due_at": due,
                    "run_at": due,
                }
            },
        )
        assert moved.modified_count == 1, timer
    return delta
