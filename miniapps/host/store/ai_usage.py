"""The ``ai_usage`` collection: the model tokens used, counted per (app, UTC day), (conversation,
UTC day) and (user, UTC hour) — one keyed document each, ``_id`` ``"<kind>|<key>|<period>"``
(``kind``: app, conversation, user; ``period``: ``2025-06-01`` or ``2025-06-01T13``), with
``prompt_tokens``, ``completion_tokens``, ``total_tokens`` and ``requests``.

Counted by ``$inc`` on the one document, so a budget check reads one document per budget, and
concurrent requests on several nodes add up exactly. The document is created by ``insert_one``
(so its ``expires_at`` stays a date for the TTL index; nx-27017 turns a date written by ``$set``
or ``$setOnInsert`` into a string) the first time its period has usage; a concurrent creation
loses on the unique ``_id`` and adds with ``$inc`` instead. ``day`` (the UTC day of the period)
is what an administrator reads a day's usage by.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

COLLECTION = "ai_usage"
INDEXES = [
    IndexModel([("day", ASCENDING), ("kind", ASCENDING)], name="day"),
    IndexModel("expires_at", name="expiry", expireAfterSeconds=0),
]
COUNTERS = ("prompt_tokens", "completion_tokens", "total_tokens", "requests")


def usage_id(kind: str, key: str, period: str) -> str:
    return f"{kind}|{key}|{period}"


class AiUsage:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def get_total(self, kind: str, key: str, period: str) -> int:
        """The tokens counted for ``key`` in ``period`` (0: none yet)."""
        doc = await self.collection.find_one({"_id": usage_id(kind, key, period)})
        return int(doc.get("total_tokens", 0)) if doc else 0

    async def add_usage(
        self,
        kind: str,
        key: str,
        period: str,
        day: str,
        counts: dict[str, int],
        expires_at: int,
    ) -> None:
        """Add ``counts`` (of ``COUNTERS``) to the document of ``key`` in ``period``, made the
        first time (kept until ``expires_at``, epoch ms)."""
        doc_id = usage_id(kind, key, period)
        increments = {name: int(counts.get(name, 0)) for name in COUNTERS}
        result = await self.collection.update_one({"_id": doc_id}, {"$inc": increments})
        if result.matched_count == 1:
            return
        with contextlib.suppress(DuplicateKeyError):
            await self.collection.insert_one(
                {
                    "_id": doc_id,
                    "kind": kind,
                    "key": key,
                    "period": period,
                    "day": day,
                    **increments,
                    "expires_at": datetime.fromtimestamp(expires_at / 1000, UTC),
                }
            )
            return
        # Another request made it first, between our two writes: add to it.
        await self.collection.update_one({"_id": doc_id}, {"$inc": increments})

    async def get_day(self, day: str) -> list[dict[str, Any]]:
        """Every counter document of the UTC day ``day`` (``YYYY-MM-DD``)."""
        return [doc async for doc in self.collection.find({"day": day})]
