"""Group commit of messages: gap-free seqs, exactly one stored message per client_msg_id.

One lane per node takes every queued send, from every conversation, as one batch; sends queue
while the previous batch is written. A batch costs two round trips on the ack path whatever its
size or how many conversations it spans:

1. ``insert_many(ordered=True)`` with consecutive seqs per conversation. A seq is never
   *allocated* apart from the insert that uses it, so a crash cannot leave a hole: the next writer
   starts after the highest stored seq. If the insert stops at a duplicate, the failing document
   is either a retry of a stored message (the unique (sender, client_msg_id) index) — answered
   with the original — or another node took that seq (the unique (conversation, seq) index) — we
   re-read where that conversation is. Being ordered, the insert stored a prefix of each
   conversation's documents, so the rest are simply written again from the first unused seq.
2. ``bulk_write`` moves each conversation's ``last_seq`` and preview forward, on condition that
   its ``members_version`` is the one this node's member cache holds. When every update matched,
   delivery uses the cache; otherwise (membership changed, possibly on another node) the changed
   conversations are read back one by one and their member lists reloaded, so a message committed
   after a removal never reaches the removed member.

Only then is each message acknowledged: nothing acked is lost. Moving each sender's
``last_read_seq`` to their own newest message is off the ack path: it is coalesced and flushed
right after (a crash in between leaves your own last messages counted as unread, nothing more).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo.errors import BulkWriteError

from messaging.membership import Membership, MembershipCache
from messaging.store.conversations import Conversations
from messaging.store.members import Members
from messaging.store.messages import Messages
from storage.errors import AppError
from storage.metrics import Metrics
from storage.mongo import now_ms

log = logging.getLogger(__name__)

MAX_BATCH = 1000
MAX_QUEUED = 20_000  # past this the node answers "overloaded" instead of queueing without end
MAX_CACHED_SEQS = 50_000
PREVIEW_CHARS = 120

# Called in commit order, once per conversation of a batch, with its stored messages and the
# membership current at commit.
OnCommit = Callable[[str, list[dict[str, Any]], Membership], Awaitable[None]]
Result = tuple[dict[str, Any], bool]


@dataclass
class _Pending:
    draft: dict[str, Any]
    future: asyncio.Future[Result]
    duplicates: list[asyncio.Future[Result]] = field(default_factory=list)

    @property
    def conversation_id(self) -> str:
        return self.draft["conversation_id"]

    @property
    def key(self) -> tuple[str, str, str]:
        return self.conversation_id, self.draft["sender_id"], self.draft["client_msg_id"]


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
    metrics: Metrics  # set by ``Messaging.build``: batch sizes, messages stored

    def __init__(
        self,
        messages: Messages,
        conversations: Conversations,
        members: Members,
        membership: MembershipCache,
        on_commit: OnCommit,
    ) -> None:
        self._messages = messages
        self._conversations = conversations
        self._members = members
        self._membership = membership
        self._on_commit = on_commit
        self._queue: deque[_Pending] = deque()
        self._lane: asyncio.Task[None] | None = None
        self._next_seq: dict[str, int] = {}
        self._read_marks: dict[tuple[str, str], int] = {}

    async def submit(self, draft: dict[str, Any]) -> Result:
        """Store a message; returns (message, created). A retry returns (original, False).

        ``draft`` has everything but ``seq``: _id, conversation_id, sender_id, client_msg_id, …
        """
        if len(self._queue) >= MAX_QUEUED:
            raise AppError(
                "overloaded", "the server is busy; retry with the same client_msg_id", status=503
            )
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(draft, future))
        if self._lane is None:
            self._lane = asyncio.create_task(self._run_lane())
        return await future

    async def close(self) -> None:
        """Let the in-flight batch finish (its senders are waiting for the acks)."""
        if self._lane is not None:
            await asyncio.gather(self._lane, return_exceptions=True)
        await self._flush_read_marks()

    async def _run_lane(self) -> None:
        try:
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
                self.metrics.writer_batch(len(batch))
                await self._commit_isolated(batch)
                await self._flush_read_marks()
        finally:
            # No await separates the empty-queue check from here, so no submit can slip in.
            self._lane = None
            _fail(list(self._queue), ConnectionAbortedError("the message writer stopped"))
            self._queue.clear()

    async def _commit_isolated(self, batch: list[_Pending]) -> None:
        try:
            await self._commit(batch)
            return
        except Exception as exc:
            # Forget cached seqs: the store is the truth after a failure.
            self._next_seq.clear()
            if len(batch) == 1:
                log.exception("writing a message failed")
                _fail(batch, exc)
                return
            log.warning("a batch of %d failed (%s); retrying one by one", len(batch), exc)
        # One bad message must not fail the others. What the batch already stored comes back as
        # the original through its unique client_msg_id.
        for pending in batch:
            try:
                await self._commit([pending])
            except Exception as exc:
                self._next_seq.clear()
                log.exception("writing a message failed")
                _fail([pending], exc)

    async def _commit(self, batch: list[_Pending]) -> None:
        # Two sends with the same key in one batch are one message.
        unique: dict[tuple[str, str, str], _Pending] = {}
        for pending in batch:
            first = unique.setdefault(pending.key, pending)
            if first is not pending:
                first.duplicates.append(pending.future)
        stored = await self._insert(list(unique.values()))
        if not stored:
            return
        self.metrics.messages_sent(len(stored))
        by_conversation: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for pending in stored:
            by_conversation[pending.conversation_id].append(pending.draft)
        memberships = await self._advance(by_conversation)
        for conversation_id, messages in by_conversation.items():
            membership = memberships.get(conversation_id)
            if membership is None:
                continue
            try:
                await self._on_commit(conversation_id, messages, membership)
            except Exception:
                # Delivery is best effort (clients resync); the messages are stored: ack them.
                log.exception("delivering messages of %s failed", conversation_id)
            for message in messages:
                if message["type"] != "system":
                    key = (conversation_id, message["sender_id"])
                    self._read_marks[key] = max(self._read_marks.get(key, 0), message["seq"])
        for pending in stored:
            _resolve(pending, pending.draft, created=True)

    async def _insert(self, todo: list[_Pending]) -> list[_Pending]:
        """Insert with consecutive seqs per conversation; returns what was stored, in order."""
        stored: list[_Pending] = []
        while todo:
            starts = {c: await self._peek_next_seq(c) for c in {p.conversation_id for p in todo}}
            assigned = dict(starts)
            now = now_ms()
            docs = []
            for pending in todo:
                seq = assigned[pending.conversation_id]
                assigned[pending.conversation_id] = seq + 1
                docs.append(
                    {
                        **pending.draft,
                        "seq": seq,
                        "created_at": now,
                        "updated_at_seq": 0,
                        "version": 1,
                        "recalled": False,
                        "edited_at": None,
                    }
                )
            try:
                await self._messages.insert_in_order(docs)
                inserted, failed_at = len(docs), None
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors") or []
                if not errors or any(e.get("code") != 11000 for e in errors):
                    raise
                inserted, failed_at = exc.details.get("nInserted", 0), errors[0]["index"]
            # Ordered: each conversation's stored documents are a prefix of its documents here.
            for pending, doc in zip(todo[:inserted], docs[:inserted], strict=True):
                pending.draft = doc
                stored.append(pending)
                self._next_seq[pending.conversation_id] = doc["seq"] + 1
            if failed_at is None:
                break
            # Conversations with nothing stored this round start again where they started.
            for conversation_id, start in starts.items():
                self._next_seq.setdefault(conversation_id, start)
            failed = todo[failed_at]
            original = await self._messages.get_by_client_msg_id(*failed.key)
            if original is not None:
                _resolve(failed, original, created=False)
                todo = todo[failed_at + 1 :]
            else:
                # Another node used that seq: re-read where the conversation is.
                self._next_seq.pop(failed.conversation_id, None)
                todo = todo[failed_at:]
        return stored

    async def _advance(self, by_conversation: dict[str, list[dict]]) -> dict[str, Membership]:
        """Move each conversation forward; return the membership to deliver with."""
        cached: dict[str, Membership | None] = {
            c: await self._membership.get(c) for c in by_conversation
        }
        updates = []
        for conversation_id, messages in by_conversation.items():
            last = messages[-1]
            membership = cached[conversation_id]
            updates.append(
                (
                    conversation_id,
                    last["seq"],
                    preview_of(last),
                    last["created_at"],
                    membership.version if membership else -1,
                )
            )
        if await self._conversations.advance_many(updates):
            return {c: m for c, m in cached.items() if m is not None}
        # Some condition failed: a membership changed or another node moved further. Look again.
        current: dict[str, Membership] = {}
        for conversation_id, seq, preview, at, _ in updates:
            conversation = await self._conversations.advance(conversation_id, seq, preview, at)
            membership = await self._membership.ensure_version(
                conversation_id, (conversation or {}).get("members_version", 0)
            )
            if membership is not None:
                current[conversation_id] = membership
        return current

    async def _flush_read_marks(self) -> None:
        marks, self._read_marks = self._read_marks, {}
        if not marks:
            return
        try:
            await self._members.mark_read([(c, u, seq) for (c, u), seq in marks.items()])
        except Exception:
            log.exception("moving senders' read positions failed")

    async def _peek_next_seq(self, conversation_id: str) -> int:
        cached = self._next_seq.get(conversation_id)
        if cached is not None:
            return cached
        if len(self._next_seq) > MAX_CACHED_SEQS:
            self._next_seq.clear()
        next_seq = await self._messages.get_max_seq(conversation_id) + 1
        self._next_seq[conversation_id] = next_seq
        return next_seq


def _resolve(pending: _Pending, message: dict[str, Any], *, created: bool) -> None:
    if not pending.future.done():
        pending.future.set_result((message, created))
    for duplicate in pending.duplicates:
        if not duplicate.done():
            duplicate.set_result((message, False))


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for pending in batch:
        for future in (pending.future, *pending.duplicates):
            if not future.done():
                future.set_exception(exc)
