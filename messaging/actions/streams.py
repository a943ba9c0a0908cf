"""Streaming messages: a text message from a mini-program's bot that grows while it is written
(a model's answer streamed into the chat), then stops.

The message is an ordinary ``text`` message with ``streaming: true`` (its text may start empty),
posted through the writer like any other, so members get ``message.new``. While it streams, each
write stores the whole text so far in the message document — so history and ``sync`` hand a
device that (re)connects mid-answer the current text — and sends members ``message.stream``
``{conversation_id, message_id, text, seq, version}``: ``seq`` counts the writes of this stream
(1, 2, …), ``version`` is the message's version after the write, ordered with every other copy
of the message. The stop writes the final text with ``streaming: false`` and sends
``message.updated``, like any change; only then is the text indexed for search.

When and how often to write is the caller's (``miniapps.host.streams.Streams`` buffers appends
and writes at most once per 300 ms); these actions only keep each write and the stop correct:
a write applies only while the message still streams, is not recalled, and is at the
``stream_seq`` the writer last saw (``Messages.set_stream_text``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from messaging.actions.cards import bot_id
from messaging.actions.messages import broadcast_update
from messaging.context import Messaging
from messaging.events import event
from messaging.views import message_view
from messaging.writer import PREVIEW_CHARS
from storage.mongo import new_id


@dataclass(frozen=True)
class StreamWrite:
    """What became of one write: ``written`` or not, and the message as it now is (None: it is
    gone)."""

    written: bool
    message: dict[str, Any] | None

    @property
    def still_streaming(self) -> bool:
        """Not written because another writer came in between: the stream goes on from its
        text (``message["text"]`` at ``message["stream_seq"]``)."""
        message = self.message
        return message is not None and bool(message.get("streaming")) and not message["recalled"]


async def do_start(
    ctx: Messaging, conversation_id: str, app_id: str, text: str, *, message_id: str | None = None
) -> dict[str, Any]:
    """Post the streaming message (``message.new`` to members); returns its view."""
    message_id = message_id or new_id()
    message, _ = await ctx.writer.submit(
        {
            "_id": message_id,
            "conversation_id": conversation_id,
            "sender_id": bot_id(app_id),
            "client_msg_id": f"stream:{message_id}",
            "type": "text",
            "text": text,
            "app_id": app_id,
            "streaming": True,
            "stream_seq": 0,
        }
    )
    return message_view(message)


async def do_write(
    ctx: Messaging, conversation_id: str, message_id: str, stream_seq: int, text: str
) -> StreamWrite:
    """Store ``text`` (the whole text so far) if the message is still at ``stream_seq``, then
    send members ``message.stream``."""
    membership = await ctx.membership.get(conversation_id)
    if membership is None:
        return StreamWrite(False, None)
    # Stamped like an edit, so sync hands a device that holds the message its current text.
    stamp = await ctx.conversations.note_change(conversation_id)
    written = await ctx.messages.set_stream_text(
        conversation_id, message_id, stream_seq, text, stamp
    )
    if written is None:
        return StreamWrite(False, await ctx.messages.get_message(conversation_id, message_id))
    await ctx.events.emit(
        event(
            "message.stream",
            {"users": membership.member_ids},
            {
                "conversation_id": conversation_id,
                "message_id": message_id,
                "text": text,
                "seq": written["stream_seq"],
                "version": written["version"],
            },
        )
    )
    return StreamWrite(True, written)


async def do_stop(
    ctx: Messaging, conversation_id: str, message_id: str, text: str | None
) -> dict[str, Any] | None:
    """Stop the stream with its final ``text`` (None: the text as last written), deliver
    ``message.updated`` to members and show the final text in the conversation's preview;
    returns the view, or None when the message was not streaming (stopped already)."""
    stamp = await ctx.conversations.note_change(conversation_id)
    done = await ctx.messages.finish_stream(conversation_id, message_id, text, stamp)
    if done is None:
        return None
    if not done["recalled"]:
        await ctx.conversations.set_preview_text(
            conversation_id, message_id, done["text"][:PREVIEW_CHARS]
        )
    membership = await ctx.membership.get(conversation_id)
    if membership is None:  # the conversation is gone: nobody to tell
        return message_view(done)
    return await broadcast_update(ctx, membership, done)


async def get_stream_message(
    ctx: Messaging, conversation_id: str, message_id: str
) -> dict[str, Any] | None:
    """The message ``message_id`` of ``conversation_id`` if it is (or was) a streaming one."""
    message = await ctx.messages.get_message(conversation_id, message_id)
    if message is None or "streaming" not in message:
        return None
    return message
