"""The ``app_timers`` collection: each mini-program's pending timers, one document per (app,
key), id ``<app>|<key>``.

A document is ``pending`` until it is due, then ``firing`` while one node runs it: that node
claimed it with a conditional update (``pending`` and due, or ``firing`` with an expired lease →
``firing`` with a fresh ``token`` and ``lease_until``), so of all the nodes scanning at once
exactly one wins. The firing ends with a write conditional on that token: done removes the
document, a failure puts it back to ``pending`` later. ``version`` grows with every schedule of
the key, and every claim changes ``token``, so a slow firing of an old version, or one whose
lease expired and was taken over, changes nothing.

``due_at`` is the time the app asked for (what the app is told); ``run_at`` the next time to
try, ``due_at`` at first and later after a failed firing.

The payload is stored as JSON text (the platform never interprets it, and an app's keys may
hold characters MongoDB field names may not).
"""

from __future__ import annotations

import json
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "app_timers"
INDEXES = [
    IndexModel([("state", 1), ("run_at", 1)], name="state_run_at"),
    IndexModel([("state", 1), ("lease_until", 1)], name="state_lease"),
    IndexModel([("app_id", 1), ("state", 1)], name="app_state"),
]
LIVE = ("pending", "firing")


def doc_id(app_id: str, key: str) -> str:
    return f"{app_id}|{key}"


class AppTimers:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def count_live(self, app_id: str) -> int:
        return await self.collection.count_documents({"app_id": app_id, "state": {"$in": LIVE}})

    async def has_live(self, app_id: str, key: str) -> bool:
        found = await self.collection.find_one(
            {"_id": doc_id(app_id, key), "state": {"$in": LIVE}}, {"_id": 1}
        )
        return found is not None

    async def put_timer(
        self,
        app_id: str,
        key: str,
        *,
        name: str,
        due_at: int,
        payload: dict[str, Any],
        user_id: str,
        conversation_id: str,
        now: int,
    ) -> int:
        """Schedule (or move) the timer ``key``: pending at ``due_at``, a new version; returns
        that version. A firing of an earlier version in flight can no longer finish it."""
        doc = await self.collection.find_one_and_update(
            {"_id": doc_id(app_id, key)},
            {
                "$set": {
                    "app_id": app_id,
                    "key": key,
                    "name": name,
                    "due_at": due_at,
                    "payload": json.dumps(payload, separators=(",", ":")),
                    "user_id": user_id,
                    "conversation_id": conversation_id,
                    "state": "pending",
                    "token": "",
                    "run_at": due_at,
                    "lease_until": 0,
                    "attempts": 0,
                    "scheduled_at": now,
                },
                "$inc": {"version": 1},
            },
            upsert=True,
            return_document=True,
            projection={"version": 1},
        )
        return int(doc["version"])

    async def remove_timer(self, app_id: str, key: str) -> bool:
        """Cancel: True when a pending (or firing) timer was removed."""
        result = await self.collection.delete_one(
            {"_id": doc_id(app_id, key), "state": {"$in": LIVE}}
        )
        return result.deleted_count == 1

    async def get_due(self, app_ids: list[str], now: int, limit: int) -> list[dict[str, Any]]:
        """Timers of these apps to claim: pending and due, or firing with an expired lease
        (its node died or hung), earliest first."""
        found = (
            self.collection.find(
                {
                    "app_id": {"$in": app_ids},
                    "$or": [
                        {"state": "pending", "run_at": {"$lte": now}},
                        {"state": "firing", "lease_until": {"$lte": now}},
                    ],
                }
            )
            .sort("run_at", 1)
            .limit(limit)
        )
        return [doc async for doc in found]

    async def claim(self, doc: dict[str, Any], token: str, lease_until: int) -> bool:
        """Take ``doc`` (as ``get_due`` read it) for firing, if nobody changed it since: the
        condition on its version, state and token lets one claimer win."""
        result = await self.collection.update_one(
            {
                "_id": doc["_id"],
                "version": doc["version"],
                "state": doc["state"],
                "token": doc["token"],
            },
            {
                "$set": {"state": "firing", "token": token, "lease_until": lease_until},
                "$inc": {"attempts": 1},
            },
        )
        return result.modified_count == 1

    async def finish(self, doc_key: str, version: int, token: str) -> bool:
        """The firing under ``token`` succeeded: the timer is done (removed), unless it was moved
        or taken over meanwhile."""
        result = await self.collection.delete_one(
            {"_id": doc_key, "version": version, "token": token, "state": "firing"}
        )
        return result.deleted_count == 1

    async def retry_later(
        self, doc_key: str, version: int, token: str, run_at: int, *, attempted: bool = True
    ) -> bool:
        """The firing under ``token`` failed: pending again, tried from ``run_at``. Not
        ``attempted`` (the app never got it: not running, too busy): the attempt is not
        counted."""
        update: dict[str, Any] = {
            "$set": {"state": "pending", "token": "", "run_at": run_at, "lease_until": 0}
        }
        if not attempted:
            update["$inc"] = {"attempts": -1}
        result = await self.collection.update_one(
            {"_id": doc_key, "version": version, "token": token, "state": "firing"}, update
        )
        return result.modified_count == 1
