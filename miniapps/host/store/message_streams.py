"""The ``message_streams`` collection: the streaming messages still open (``messages.stream_*``,
``miniapps.host.streams``), one small document per stream — which app started it in which
conversation, and when it was last written to. The text itself lives in the message document.

A stream's row is added before its message is posted and removed when it stops, so "no row"
means "not streaming" (``Streams.is_stopped``) on every node. ``touched_at`` (epoch ms) moves
forward as the stream is written; every node sweeps the rows left idle past the idle timeout
(``get_idle``) and stops their streams, the stop itself being conditional on the message, so
one node does each.
"""

from __future__ import annotations

from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "message_streams"
INDEXES = [IndexModel("touched_at", name="idle")]


class MessageStreams:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def add_stream(
        self, message_id: str, conversation_id: str, app_id: str, now: int
    ) -> None:
        await self.collection.insert_one(
            {
                "_id": message_id,
                "conversation_id": conversation_id,
                "app_id": app_id,
                "created_at": now,
                "touched_at": now,
            }
        )

    async def get_stream(self, message_id: str) -> dict[str, Any] | None:
        """The open stream ``message_id``, else None (stopped, or never a stream)."""
        return await self.collection.find_one({"_id": message_id})

    async def touch_stream(self, message_id: str, now: int) -> None:
        await self.collection.update_one({"_id": message_id}, {"$max": {"touched_at": now}})

    async def remove_stream(self, message_id: str) -> None:
        await self.collection.delete_one({"_id": message_id})

    async def get_idle(self, touched_before: int, limit: int) -> list[dict[str, Any]]:
        """Open streams last written to before ``touched_before``, the longest idle first."""
        found = self.collection.find({"touched_at": {"$lt": touched_before}}).sort("touched_at", 1)
        return await found.limit(limit).to_list(length=limit)
