"""The ``messages`` collection: one document per message, ordered by a gap-free ``seq`` per chat.

Unique (conversation_id, seq) makes a seq impossible to use twice; unique (conversation_id,
sender_id, client_msg_id) makes a retried send impossible to store twice. ``updated_at_seq`` is
the conversation's ``last_seq`` when the message last changed (edit, recall, reaction; 0 when
never), so sync finds the changes a client with cursor C has not seen: ``seq <= C`` and
``updated_at_seq >= C`` (less a small margin, see ``messaging.actions.sync``).

``search_text`` holds the message's search tokens (``messaging.search_terms``), written here on
insert and whenever ``text`` changes (an edit; a recall or an admin hide empties it), under a text
index with ``default_language: "none"``. Reads leave it out (``WITHOUT_TERMS``): it is only for
the index. Messages stored before it existed get it from ``get_unindexed``/``set_search_text``
(the gateway's background backfill, ``messaging.actions.search.do_backfill``).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, TEXT, IndexModel, ReturnDocument
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from messaging.search_terms import index_text

COLLECTION = "messages"
INDEXES = [
    IndexModel([("conversation_id", ASCENDING), ("seq", ASCENDING)], unique=True, name="conv_seq"),
    IndexModel(
        [("conversation_id", ASCENDING), ("sender_id", ASCENDING), ("client_msg_id", ASCENDING)],
        unique=True,
        name="conv_sender_client_id",
    ),
    IndexModel(
        [("conversation_id", ASCENDING), ("updated_at_seq", ASCENDING)], name="conv_changes"
    ),
]
# Not in INDEXES: nx-27017 fails to create an existing text index again (MongoDB: a no-op), so
# ``ensure_search_index`` creates it and tolerates that. "none": no stop words, no stemming; the
# tokens are ours (see messaging.search_terms).
SEARCH_INDEX = IndexModel([("search_text", TEXT)], name="search_text", default_language="none")
# Reads leave the search tokens out: they can be twice the size of the text.
WITHOUT_TERMS = {"search_text": 0}
# Search results, newest first; (created_at, conversation_id, seq) is unique and totally ordered.
SEARCH_ORDER = [("created_at", DESCENDING), ("conversation_id", DESCENDING), ("seq", DESCENDING)]


def search_text_of(message: dict[str, Any]) -> str:
    """What a stored message is found by: system messages (joins, renames) by nothing, nor a
    streaming message until it stops (only its final text is indexed, ``finish_stream``)."""
    if message.get("type") == "system" or message.get("recalled"):
        return ""
    if message.get("streaming"):
        return ""
    return index_text(message.get("text") or "")


class Messages:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[COLLECTION]

    async def insert_in_order(self, messages: list[dict[str, Any]]) -> None:
        """Insert in order; stops at the first failure (raises ``BulkWriteError``).

        The stored documents carry ``search_text`` too; the given dicts are left as they are."""
        await self.collection.insert_many(
            [{**message, "search_text": search_text_of(message)} for message in messages],
            ordered=True,
        )

    async def get_by_client_msg_id(
        self, conversation_id: str, sender_id: str, client_msg_id: str
    ) -> dict[str, Any] | None:
        return await self.collection.find_one(
            {
                "conversation_id": conversation_id,
                "sender_id": sender_id,
                "client_msg_id": client_msg_id,
            },
            WITHOUT_TERMS,
        )

    async def get_max_seq(self, conversation_id: str) -> int:
        last = await self.collection.find_one(
            {"conversation_id": conversation_id}, {"seq": 1}, sort=[("seq", DESCENDING)]
        )
        return last["seq"] if last else 0

    async def get_message(self, conversation_id: str, message_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one(
            {"_id": message_id, "conversation_id": conversation_id}, WITHOUT_TERMS
        )

    async def get_page(
        self,
        conversation_id: str,
        *,
        after: int,
        before: int | None = None,
        limit: int,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Messages with after < seq < before, oldest first unless ``newest_first``."""
        seq: dict[str, int] = {"$gt": after}
        if before is not None:
            seq["$lt"] = before
        query = {"conversation_id": conversation_id, "seq": seq}
        cursor = self.collection.find(query, WITHOUT_TERMS).sort(
            "seq", DESCENDING if newest_first else ASCENDING
        )
        return await cursor.limit(limit).to_list(length=limit)

    async def count_after(self, conversation_id: str, after: int) -> int:
        return await self.collection.count_documents(
            {"conversation_id": conversation_id, "seq": {"$gt": after}}
        )

    async def get_changed_since(
        self, conversation_id: str, since: int, *, up_to: int, visible_after: int, limit: int
    ) -> list[dict[str, Any]]:
        """Messages with visible_after < seq <= up_to stamped as changed at ``since`` or later."""
        query = {
            "conversation_id": conversation_id,
            "updated_at_seq": {"$gte": since},
            "seq": {"$lte": up_to, "$gt": visible_after},
        }
        found = self.collection.find(query, WITHOUT_TERMS).sort("seq", ASCENDING)
        return await found.limit(limit).to_list(length=limit)

    async def update_message(
        self,
        conversation_id: str,
        message_id: str,
        condition: dict[str, Any],
        changes: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Apply ``changes`` when ``condition`` still holds; bump the version; return the doc.

        A change of ``text`` re-indexes the message for search (an emptied text: found by
        nothing)."""
        if "text" in changes:
            recalled = changes.get("recalled")
            changes = {
                **changes,
                "search_text": "" if recalled else index_text(changes["text"] or ""),
            }
        return await self.collection.find_one_and_update(
            {"_id": message_id, "conversation_id": conversation_id, **condition},
            {"$set": changes, "$inc": {"version": 1}},
            projection=WITHOUT_TERMS,
            return_document=ReturnDocument.AFTER,
        )

    # --- streaming messages (messaging.actions.streams) ------------------------------------------

    async def set_stream_text(
        self, conversation_id: str, message_id: str, stream_seq: int, text: str, stamp: int
    ) -> dict[str, Any] | None:
        """Write a streaming message's whole text so far, only while it is still streaming, not
        recalled, and still at ``stream_seq`` (the number of such writes: no other writer came
        in between); moves ``stream_seq`` and ``version`` on by one, returns the document, or
        None when a condition failed. The text is not indexed for search (the final one is)."""
        return await self.collection.find_one_and_update(
            {
                "_id": message_id,
                "conversation_id": conversation_id,
                "streaming": True,
                "recalled": False,
                "stream_seq": stream_seq,
            },
            {
                "$set": {"text": text, "stream_seq": stream_seq + 1, "updated_at_seq": stamp},
                "$inc": {"version": 1},
            },
            projection=WITHOUT_TERMS,
            return_document=ReturnDocument.AFTER,
        )

    async def finish_stream(
        self, conversation_id: str, message_id: str, text: str | None, stamp: int
    ) -> dict[str, Any] | None:
        """Stop a streaming message (``streaming: false``) with its final ``text`` (None: the
        text as last written) and index that text for search; None when it was not streaming.
        A message recalled or hidden meanwhile stops with its text left blank."""
        condition = {"_id": message_id, "conversation_id": conversation_id, "streaming": True}
        changes: dict[str, Any] = {"streaming": False, "updated_at_seq": stamp}
        done = None
        if text is not None:
            done = await self.collection.find_one_and_update(
                {**condition, "recalled": False},
                {"$set": {**changes, "text": text}, "$inc": {"version": 1}},
                projection=WITHOUT_TERMS,
                return_document=ReturnDocument.AFTER,
            )
        if done is None:
            done = await self.collection.find_one_and_update(
                condition,
                {"$set": changes, "$inc": {"version": 1}},
                projection=WITHOUT_TERMS,
                return_document=ReturnDocument.AFTER,
            )
        if done is not None:
            # Conditional on the version: a later change (an edit, a recall) indexes itself.
            await self.collection.update_one(
                {"_id": message_id, "version": done["version"]},
                {"$set": {"search_text": search_text_of(done)}},
            )
        return done

    # --- search ---------------------------------------------------------------------------------

    async def ensure_search_index(self) -> None:
        """Create the text index unless it exists (once per start; see ``SEARCH_INDEX``)."""
        try:
            await self.collection.create_indexes([SEARCH_INDEX])
        except OperationFailure as exc:
            # It exists when a $text query runs (without a text index MongoDB refuses it).
            try:
                await self.collection.find_one({"$text": {"$search": '"x"'}}, {"_id": 1})
            except OperationFailure:
                raise exc from None

    def search(
        self,
        conversation_ids: list[str],
        tokens: list[str],
        *,
        after_seq: int = 0,
        created_at_most: int | None = None,
        batch_size: int = 100,
    ) -> AsyncCursor:
        """Messages of these conversations indexed under every token, newest first
        (``SEARCH_ORDER``); ``after_seq`` only with one conversation.

        Each token is a quoted phrase: MongoDB requires every phrase of ``$search`` (a bare
        word list would be OR). Never combined with ``$or`` or an ``_id`` condition, which
        nx-27017 answers wrongly next to ``$text`` (tests/storage/test_mongo_conformance.py).
        """
        query: dict[str, Any] = {"$text": {"$search": " ".join(f'"{t}"' for t in tokens)}}
        if len(conversation_ids) == 1:
            query["conversation_id"] = conversation_ids[0]
            if after_seq:
                query["seq"] = {"$gt": after_seq}
        else:
            query["conversation_id"] = {"$in": conversation_ids}
        if created_at_most is not None:
            query["created_at"] = {"$lte": created_at_most}
        cursor = self.collection.find(query, WITHOUT_TERMS).sort(SEARCH_ORDER)
        return cursor.batch_size(batch_size)

    async def get_unindexed(self, limit: int) -> list[dict[str, Any]]:
        """Messages stored before search existed (no ``search_text`` yet)."""
        found = self.collection.find(
            {"search_text": {"$exists": False}},
            {"_id": 1, "conversation_id": 1, "type": 1, "text": 1, "recalled": 1},
        )
        return await found.limit(limit).to_list(length=limit)

    async def set_search_text(self, message: dict[str, Any]) -> bool:
        """Index an old message, unless it changed meanwhile (an edit indexes it itself)."""
        result = await self.collection.update_one(
            {
                "_id": message["_id"],
                "text": message.get("text"),
                "search_text": {"$exists": False},
            },
            {"$set": {"search_text": search_text_of(message)}},
        )
        return result.modified_count == 1

    async def get_sent_page(
        self, conversation_id: str, sender_id: str, *, after: int, limit: int
    ) -> list[dict[str, Any]]:
        """Messages ``sender_id`` sent in the conversation with seq > ``after``, oldest first
        (the data export pages through a person's own messages)."""
        query = {"conversation_id": conversation_id, "sender_id": sender_id, "seq": {"$gt": after}}
        cursor = self.collection.find(query, WITHOUT_TERMS).sort("seq", ASCENDING)
        return await cursor.limit(limit).to_list(length=limit)
