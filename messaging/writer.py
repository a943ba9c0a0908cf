"""Group commit of messages: gap-free seqs, exactly one stored message per client_msg_id.

Each conversation has a lane on this node: sends queue up while the previous batch is being
written, and the next batch takes them all. A batch costs three round trips whatever its size:

1. ``insert_many(ordered=True)`` with consecutive seqs. A seq is never *allocated* apart from the
   insert that uses it, so a crash cannot leave a hole: the next writer starts after the highest
   stored seq. If the insert stops at a duplicate, the failing document is either a retry of a
   stored message (the unique (sender, client_msg_id) index) — answered with the original — or
   another node took that seq (the unique (conversation, seq) index) — we re-read and go on.
2. ``find_one_and_update`` moves the conversation's ``last_seq`` and preview forward and returns
   its ``members_version``, so delivery uses the membership current at commit.
3. ``bulk_write`` moves each sender's ``last_read_seq`` to their own newest message.

Only then is each message acknowledged: nothing acked is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo.errors import BulkWriteError

from messaging.store.conversations import Conversations
from messaging.store.members import Members
from messaging.store.messages import Messages
from storage.mongo import now_ms

log = logging.getLogger(__name__)

MAX_BATCH = 500
MAX_CACHED_SEQS = 50_000
PREVIEW_CHARS = 120

# Called in commit order, once per batch, with the messages it stored and the conversation doc.
OnCommit = Callable[[str, list[dict[str, Any]], dict[str, Any]], Awaitable[None]]


@dataclass
class _Pending:
    draft: dict[str, Any]
    future: asyncio.Future[tuple[dict[str, Any], bool]]
    duplicates: list[asyncio.Future[tuple[dict[str, Any], bool]]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return self.draft["sender_id"], self.draft["client_msg_id"]


def preview_of(message: dict[str, Any]) -> dict[str, Any]:
    """The conversation list's preview of its last message."""
    return {
        "id": message["_id"],
        "seq": message["seq"],
        "sender_id": message["sender_id"],
        "type": message["type"],
        "text": (message.get("text") or "")[:PREVIEW_CHARS],
        "created_at": message["created_at"],
    }


class MessageWriter:
    def __init__(
        self,
        messages: Messages,
        conversations: Conversations,
        members: Members,
        on_commit: OnCommit,
    ) -> None:
        self._messages = messages
        self._conversations = conversations
        self._members = members
        self._on_commit = on_commit
        self._queues: dict[str, deque[_Pending]] = {}
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._next_seq: dict[str, int] = {}

    async def submit(self, draft: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Store a message; returns (message, created). A retry returns (original, False).

        ``draft`` has everything but ``seq``: _id, conversation_id, sender_id, client_msg_id, …
        """
        conversation_id = draft["conversation_id"]
        future: asyncio.Future[tuple[dict[str, Any], bool]] = (
            asyncio.get_running_loop().create_future()
        )
        self._queues.setdefault(conversation_id, deque()).append(_Pending(draft, future))
        if conversation_id not in self._lanes:
            self._lanes[conversation_id] = asyncio.create_task(self._run_lane(conversation_id))
        return await future

    async def close(self) -> None:
        """Let in-flight batches finish (their senders are waiting for the acks)."""
        if self._lanes:
            await asyncio.gather(*self._lanes.values(), return_exceptions=True)

    async def _run_lane(self, conversation_id: str) -> None:
        queue = self._queues[conversation_id]
        try:
            while queue:
                batch = [queue.popleft() for _ in range(min(len(queue), MAX_BATCH))]
                try:
                    await self._commit(conversation_id, batch)
                except Exception as exc:
                    # Forget the cached seq: the store is the truth after a failure.
                    self._next_seq.pop(conversation_id, None)
                    if len(batch) == 1:
                        log.exception("writing a message to %s failed", conversation_id)
                        _fail(batch, exc)
                        continue
                    # One bad message must not fail the others: write them one by one. What
                    # the batch already stored comes back as the original through its unique
                    # client_msg_id.
                    log.warning(
                        "a batch for %s failed (%s); retrying one by one", conversation_id, exc
                    )
                    for pending in batch:
                        try:
                            await self._commit(conversation_id, [pending])
                        except Exception as single:
                            self._next_seq.pop(conversation_id, None)
                            log.exception("writing a message to %s failed", conversation_id)
                            _fail([pending], single)
        finally:
            # No await separates the empty-queue check from here, so no submit can slip in.
            del self._lanes[conversation_id]
            del self._queues[conversation_id]
            _fail(list(queue), ConnectionAbortedError("the message writer stopped"))

    async def _commit(self, conversation_id: str, batch: list[_Pending]) -> None:
        # Two sends with the same key in one batch are one message.
        unique: dict[tuple[str, str], _Pending] = {}
        for pending in batch:
            first = unique.setdefault(pending.key, pending)
            if first is not pending:
                first.duplicates.append(pending.future)
        todo = list(unique.values())
        stored: list[_Pending] = []
        while todo:
            next_seq = await self._peek_next_seq(conversation_id)
            now = now_ms()
            docs = [
                {
                    **p.draft,
                    "seq": next_seq + i,
                    "created_at": now,
                    "updated_at_seq": 0,
                    "version": 1,
                    "recalled": False,
                    "edited_at": None,
                }
                for i, p in enumerate(todo)
            ]
            try:
                await self._messages.insert_in_order(docs)
                inserted, failed_at = len(docs), None
            except BulkWriteError as exc:
                inserted = exc.details.get("nInserted", 0)
                errors = exc.details.get("writeErrors") or [{"index": inserted}]
                failed_at = errors[0]["index"]
                if any(e.get("code") != 11000 for e in errors):
                    raise
            for pending, doc in zip(todo[:inserted], docs[:inserted], strict=True):
                pending.draft = doc
                stored.append(pending)
            self._next_seq[conversation_id] = next_seq + inserted
            if failed_at is None:
                break
            failed = todo[failed_at]
            original = await self._messages.get_by_client_msg_id(conversation_id, *failed.key)
            if original is not None:
                self._resolve(failed, original, created=False)
                todo = todo[failed_at + 1 :]
            else:
                # Another node used that seq: re-read where the conversation is.
                self._next_seq.pop(conversation_id, None)
                todo = todo[failed_at:]
        if not stored:
            return
        messages = [p.draft for p in stored]
        last = messages[-1]
        conversation = await self._conversations.advance(
            conversation_id, last["seq"], preview_of(last), last["created_at"]
        )
        newest_by_sender: dict[str, int] = {}
        for message in messages:
            if message["type"] != "system":
                newest_by_sender[message["sender_id"]] = message["seq"]
        await self._members.mark_read(
            [(conversation_id, sender, seq) for sender, seq in newest_by_sender.items()]
        )
        try:
            await self._on_commit(conversation_id, messages, conversation or {})
        except Exception:
            # Delivery is best effort (clients resync); the messages are stored, so ack them.
            log.exception("delivering messages of %s failed", conversation_id)
        for pending in stored:
            self._resolve(pending, pending.draft, created=True)

    def _resolve(self, pending: _Pending, message: dict[str, Any], *, created: bool) -> None:
        if not pending.future.done():
            pending.future.set_result((message, created))
        for duplicate in pending.duplicates:
            if not duplicate.done():
                duplicate.set_result((message, False))

    async def _peek_next_seq(self, conversation_id: str) -> int:
        cached = self._next_seq.get(conversation_id)
        if cached is not None:
            return cached
        if len(self._next_seq) > MAX_CACHED_SEQS:
            self._next_seq.clear()
        next_seq = await self._messages.get_max_seq(conversation_id) + 1
        self._next_seq[conversation_id] = next_seq
        return next_seq


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for pending in batch:
        for future in (pending.future, *pending.duplicates):
            if not future.done():
                future.set_exception(exc)
