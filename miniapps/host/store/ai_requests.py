"""The ``ai_requests`` collection: one document per ``ai.chat`` request, from its start to its end
(``miniapps.host.ai``). It is what makes a request reachable from every gateway node: the runner
lives on the node that accepted the call, and ``ai.cancel`` — answered by whichever node the app's
call reached — sets ``cancel: true`` here, which the runner polls (``POLL_INTERVAL``). It also
counts the requests an app has running in a conversation (``AI_RUNNING_MAX``).

A document is written by ``insert_one`` (with its ``expires_at`` date, for the TTL index: never
``$set``, which nx-27017 turns into a string) and changed by ``$set`` of integers and strings
only. A request whose node died stays ``running`` in its document: the running count ignores
documents older than the longest a request may run, so such a leftover stops counting by itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "ai_requests"
KEEP_MS = 7 * 24 * 3600 * 1000  # a finished request's record is kept a week
INDEXES = [
    IndexModel(
        [("app_id", ASCENDING), ("conversation_id", ASCENDING), ("status", ASCENDING)],
        name="running",
    ),
    IndexModel("expires_at", name="expiry", expireAfterSeconds=0),
]


class AiRequests:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_request(self, request_id: str, fields: dict[str, Any], now: int) -> None:
        """Record a request as ``running`` (``fields``: app_id, user_id, conversation_id,
        stream_to, estimate, model …)."""
        await self.collection.insert_one(
            {
                "_id": request_id,
                **fields,
                "status": "running",
                "cancel": False,
                "created_at": now,
                "expires_at": datetime.fromtimestamp((now + KEEP_MS) / 1000, UTC),
            }
        )

    async def remove_request(self, request_id: str) -> None:
        await self.collection.delete_one({"_id": request_id})

    async def count_running(self, app_id: str, conversation_id: str, since: int) -> int:
        """The app's requests running in the conversation, started at or after ``since``."""
        return await self.collection.count_documents(
            {
                "app_id": app_id,
                "conversation_id": conversation_id,
                "status": "running",
                "created_at": {"$gte": since},
            }
        )

    async def get_request(self, request_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": request_id})

    async def set_cancel(self, request_id: str, app_id: str) -> bool:
        """Ask the runner of ``app_id``'s request to stop; False when the request is not that
        app's or is not running (finished, or unknown)."""
        result = await self.collection.update_one(
            {"_id": request_id, "app_id": app_id, "status": "running"},
            {"$set": {"cancel": True}},
        )
        return result.matched_count == 1

    async def is_cancelled(self, request_id: str) -> bool:
        doc = await self.collection.find_one({"_id": request_id}, {"cancel": 1})
        return bool(doc and doc.get("cancel"))

    async def finish(self, request_id: str, fields: dict[str, Any]) -> None:
        """The request's end: ``status`` (completed, cancelled, failed), ``finished_at``, the
        tokens it used, its error code."""
        await self.collection.update_one({"_id": request_id}, {"$set": fields})
