"""Notifications derived from the domain events the actions already emit.

``Notifier`` is the messaging context's event sink: it hands every event to the real sink (the
sockets) unchanged, and turns the ones that concern somebody personally into notifications —
``message.new`` with mentions or a reply (mention, reply), ``contact.request`` (friend_request),
``call.ended`` as missed (missed_call), ``payment.updated`` with an outcome (payment_result).
One generic place instead of a call in every writer path.

Durability trade-off: an event is emitted only after its write is durable, and the notification
is derived from it after that, in the background (so a slow push hook never holds up message
delivery). A crash between the two loses the notification, never the message or the money; the
(user, source) unique index makes a re-derived one (a replayed hook) land once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from messaging.actions import notifications
from messaging.context import Messaging
from messaging.events import Event, EventSink

log = logging.getLogger(__name__)

PAYMENT_OUTCOMES = {"paid": "paid", "cancelled": "cancelled", "expired": "expired"}
PREVIEW = {"image": "[photo]", "file": "[file]", "voice": "[voice message]", "card": "[card]"}


def _may_concern_someone(payload: dict[str, Any]) -> bool:
    """Whether a ``message.new`` could notify anyone (a mention or a reply): checked before a
    task is started for it, on the delivery path of every message."""
    message = payload["message"]
    return bool(message.get("mentions") or message.get("mention_all") or message.get("reply_to"))


class Notifier:
    def __init__(self, inner: EventSink) -> None:
        self.inner = inner
        self.ctx: Messaging | None = None
        self._pending: set[asyncio.Task] = set()
        self._derive = {
            "message.new": self._message,
            "contact.request": self._contact_request,
            "call.ended": self._call_ended,
            "payment.updated": self._payment,
        }

    def attach(self, ctx: Messaging) -> None:
        self.ctx = ctx

    async def emit(self, event: Event) -> None:
        await self.inner.emit(event)
        derive = self._derive.get(event["type"])
        if derive is None or self.ctx is None:
            return
        if event["type"] == "message.new" and not _may_concern_someone(event["payload"]):
            return  # most messages mention nobody and reply to nothing: no task for them
        task = asyncio.create_task(self._run(derive, event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Let the notifications being derived finish (a clean shutdown loses none)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _run(self, derive, event: Event) -> None:
        try:
            drafts = await derive(self.ctx, event["audience"], event["payload"])
            if drafts:
                await notifications.do_notify_many(self.ctx, drafts)
        except Exception:
            log.exception("deriving notifications from %s failed", event["type"])

    # --- sources ------------------------------------------------------------------------------

    @staticmethod
    async def _message(ctx: Messaging, audience: dict, payload: dict) -> list[dict[str, Any]]:
        message = payload["message"]
        sender = message["sender_id"]
        if message["type"] in {"system", "call"} or sender.startswith("app:"):
            return []
        members = set(audience.get("users") or [])
        mentioned = set(message.get("mentions") or [])
        if message.get("mention_all"):
            mentioned |= members
        mentioned = {u for u in mentioned if u in members and u != sender}
        replied = (message.get("reply_to") or {}).get("sender_id")
        if replied not in members or replied == sender or replied in mentioned:
            replied = None
        if not mentioned and not replied:
            return []
        conversation_id = message["conversation_id"]
        user = await ctx.users.get_user(sender)
        name = (user or {}).get("display_name") or (user or {}).get("username") or "Someone"
        conversation = await ctx.conversations.get_conversation(conversation_id)
        where = f" in {conversation['title']}" if conversation and conversation.get("title") else ""
        body = message.get("text") or PREVIEW.get(message["type"], "")
        muted = await notifications.muted_in(ctx, conversation_id)
        common = {
            "body": body,
            "source": f"msg:{message['id']}",
            "conversation_id": conversation_id,
            "seq": message["seq"],
            "actor_id": sender,
        }
        drafts = [
            notifications.draft(
                u, "mention", title=f"{name} mentioned you{where}", silent=u in muted, **common
            )
            for u in sorted(mentioned)
        ]
        if replied:
            drafts.append(
                notifications.draft(
                    replied,
                    "reply",
                    title=f"{name} replied to you{where}",
                    silent=replied in muted,
                    **common,
                )
            )
        return drafts

    @staticmethod
    async def _contact_request(ctx: Messaging, audience: dict, payload: dict) -> list[dict]:
        request = payload["request"]
        requester = request["from"]
        name = requester.get("display_name") or requester.get("username") or "Someone"
        return [
            notifications.draft(
                audience["user"],
                "friend_request",
                title=f"{name} wants to be your friend",
                body=request.get("message") or "",
                source=f"contact:{requester['id']}:{request['created_at']}",
                actor_id=requester["id"],
            )
        ]

    @staticmethod
    async def _call_ended(ctx: Messaging, audience: dict, payload: dict) -> list[dict]:
        call = payload["call"]
        if call.get("outcome") != "missed":
            return []
        caller = call["caller_id"]
        user = await ctx.users.get_user(caller)
        name = (user or {}).get("display_name") or (user or {}).get("username") or "Someone"
        what = "video call" if call.get("media") == "video" else "call"
        muted = await notifications.muted_in(ctx, call["conversation_id"])
        return [
            notifications.draft(
                u,
                "missed_call",
                title=f"Missed {what} from {name}",
                source=f"call:{call['id']}",
                silent=u in muted,
                conversation_id=call["conversation_id"],
                actor_id=caller,
            )
            for u in audience.get("users") or []
            if u != caller
        ]

    @staticmethod
    async def _payment(ctx: Messaging, audience: dict, payload: dict) -> list[dict]:
        payment = payload["payment"]
        outcome = PAYMENT_OUTCOMES.get(payment["status"])
        if outcome is None:
            return []
        refunded = payment.get("refunded") or 0
        if refunded:
            outcome = "refunded" if refunded >= payment["amount"] else "partly refunded"
        amount = format_money(payment["amount"], payment["currency"], payment.get("exponent", 2))
        return [
            notifications.draft(
                audience["user"],
                "payment_result",
                title=f"Payment to {payment['app_name']}: {outcome}",
                body=f"{amount} · {payment['description']}",
                source=f"payment:{payment['id']}:{payment['status']}:{refunded}",
                app_id=payment["app_id"],
                conversation_id=payment.get("conversation_id") or None,
            )
        ]


def format_money(amount: int, currency: str, exponent: int) -> str:
    if exponent <= 0:
        return f"{amount} {currency}"
    whole, minor = divmod(amount, 10**exponent)
    return f"{whole}.{minor:0{exponent}d} {currency}"
