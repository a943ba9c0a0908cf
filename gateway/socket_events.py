"""Client -> server Socket.IO events: each validated, one call into the domain, always acked.

The ack is ``{"ok": true, ...}`` or ``{"ok": false, "error": {"code", "message"}}``; an event
with no handler gets ``unknown_event``. Documented in docs/realtime.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway.schemas import obj, string
from gateway.validation import Validator
from messaging.actions import messages, reactions, read_state, sync
from messaging.context import Messaging
from storage.errors import AppError

ID = string(64, 1)
# The domain enforces MESSAGE_MAX_CHARS with its own error code; this only bounds the parse.
TEXT = string(1 << 20)

Handler = Callable[[Messaging, str, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class SocketEvent:
    name: str
    summary: str
    schema: dict[str, Any]
    validator: Validator
    handler: Handler
    # The handler also takes the socket's session id (events that act for one device: calls).
    device: bool = False


class SocketApi:
    def __init__(self) -> None:
        self.events: dict[str, SocketEvent] = {}

    def on(self, name: str, *, summary: str, schema: dict[str, Any], device: bool = False):
        def decorator(handler: Handler) -> Handler:
            self.events[name] = SocketEvent(
                name, summary, schema, Validator(schema), handler, device
            )
            return handler

        return decorator


socket_api = SocketApi()
MESSAGE_REF = {"conversation_id": ID, "message_id": ID}


@socket_api.on(
    "message.send",
    summary="Send a text message; acked after it is durable",
    schema=obj(
        {
            "conversation_id": ID,
            "client_msg_id": ID,
            "type": {"const": "text"},
            "text": TEXT,
            "reply_to": ID,
            "mentions": {"type": "array", "items": ID, "maxItems": 100},
        },
        ["conversation_id", "client_msg_id", "text"],
    ),
)
async def send(ctx: Messaging, user_id: str, data: dict) -> dict:
    return await messages.do_send(ctx, user_id, data)


@socket_api.on(
    "message.edit",
    summary="Edit your text message",
    schema=obj({**MESSAGE_REF, "text": TEXT}, ["conversation_id", "message_id", "text"]),
)
async def edit(ctx: Messaging, user_id: str, data: dict) -> dict:
    message = await messages.do_edit(
        ctx, user_id, data["conversation_id"], data["message_id"], data["text"]
    )
    return {"message": message}


@socket_api.on(
    "message.recall",
    summary="Recall a message for everyone (tombstone stays)",
    schema=obj(MESSAGE_REF, ["conversation_id", "message_id"]),
)
async def recall(ctx: Messaging, user_id: str, data: dict) -> dict:
    return {
        "message": await messages.do_recall(
            ctx, user_id, data["conversation_id"], data["message_id"]
        )
    }


@socket_api.on(
    "message.delete",
    summary="Delete a message for yourself only",
    schema=obj(MESSAGE_REF, ["conversation_id", "message_id"]),
)
async def delete_for_me(ctx: Messaging, user_id: str, data: dict) -> dict:
    await messages.do_delete_for_me(ctx, user_id, data["conversation_id"], data["message_id"])
    return {}


REACTION = obj({**MESSAGE_REF, "emoji": string(64, 1)}, ["conversation_id", "message_id", "emoji"])


@socket_api.on("reaction.add", summary="React to a message", schema=REACTION)
async def react(ctx: Messaging, user_id: str, data: dict) -> dict:
    message = await reactions.do_react(
        ctx, user_id, data["conversation_id"], data["message_id"], data["emoji"], add=True
    )
    return {"message": message}


@socket_api.on("reaction.remove", summary="Take a reaction back", schema=REACTION)
async def unreact(ctx: Messaging, user_id: str, data: dict) -> dict:
    message = await reactions.do_react(
        ctx, user_id, data["conversation_id"], data["message_id"], data["emoji"], add=False
    )
    return {"message": message}


@socket_api.on(
    "conversation.read",
    summary="Mark read up to a seq",
    schema=obj(
        {"conversation_id": ID, "seq": {"type": "integer", "minimum": 0}},
        ["conversation_id", "seq"],
    ),
)
async def mark_read(ctx: Messaging, user_id: str, data: dict) -> dict:
    return await read_state.do_mark_read(ctx, user_id, data["conversation_id"], data["seq"])


@socket_api.on(
    "typing",
    summary="Tell the others you are typing (or stopped)",
    schema=obj(
        {"conversation_id": ID, "typing": {"type": "boolean"}}, ["conversation_id", "typing"]
    ),
)
async def typing(ctx: Messaging, user_id: str, data: dict) -> dict:
    sent = await read_state.do_typing(ctx, user_id, data["conversation_id"], data["typing"])
    return {"sent": sent}


@socket_api.on(
    "sync",
    summary="Get what this device missed since its last seen seq per conversation",
    schema=obj(
        {
            "cursors": {
                "type": "object",
                "additionalProperties": {"type": "integer", "minimum": 0},
                "maxProperties": 10000,
            }
        },
        ["cursors"],
    ),
)
async def do_sync(ctx: Messaging, user_id: str, data: dict) -> dict:
    return await sync.do_sync(ctx, user_id, data["cursors"])


@socket_api.on(
    "miniapp.action",
    summary="Press a button on a mini-program's card",
    schema=obj(
        {**MESSAGE_REF, "action_id": string(64, 1), "value": string(256)},
        ["conversation_id", "message_id", "action_id"],
    ),
)
async def miniapp_action(ctx: Messaging, user_id: str, data: dict) -> dict:
    if ctx.miniapps is None:
        raise AppError("miniapps_unavailable", "mini-programs are not running on this server")
    app_id = await ctx.miniapps.do_action(
        user_id,
        data["conversation_id"],
        data["message_id"],
        data["action_id"],
        data.get("value"),
    )
    return {"routed_to": {"app_id": app_id}}


@socket_api.on(
    "miniapp.consent",
    summary="Answer a miniapp.consent_required question",
    schema=obj(
        {"app_id": string(64, 1), "scope": string(64, 1), "granted": {"type": "boolean"}},
        ["app_id", "scope", "granted"],
    ),
)
async def miniapp_consent(ctx: Messaging, user_id: str, data: dict) -> dict:
    if ctx.miniapps is None:
        raise AppError("miniapps_unavailable", "mini-programs are not running on this server")
    await ctx.miniapps.do_consent(user_id, data["app_id"], data["scope"], data["granted"])
    return {}


def _wallet(ctx: Messaging):
    if ctx.wallet is None:
        raise AppError("wallet_unavailable", "the wallet is not running on this server")
    return ctx.wallet


@socket_api.on(
    "payment.confirm",
    summary="Confirm a mini-program's payment request (payment.confirm_required): money moves",
    schema=obj({"payment_id": ID}, ["payment_id"]),
)
async def payment_confirm(ctx: Messaging, user_id: str, data: dict) -> dict:
    from wallet.actions import payments

    return {"payment": await payments.do_confirm(_wallet(ctx), user_id, data["payment_id"])}


@socket_api.on(
    "payment.cancel",
    summary="Refuse a mini-program's payment request: nothing moves",
    schema=obj({"payment_id": ID}, ["payment_id"]),
)
async def payment_cancel(ctx: Messaging, user_id: str, data: dict) -> dict:
    from wallet.actions import payments

    return {"payment": await payments.do_cancel(_wallet(ctx), user_id, data["payment_id"])}


# Calls register their events on the same ``socket_api`` (kept in their own module).
from gateway import call_events  # noqa: E402, F401
