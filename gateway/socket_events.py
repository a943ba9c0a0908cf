"""Client -> server Socket.IO events: each validated, one call into the domain, always acked.

The ack is ``{"ok": true, ...}`` or ``{"ok": false, "error": {"code", "message"}}``; an event
with no handler gets ``unknown_event``. Each handler declares the domains it needs (``uses``,
default the messaging context). Documented in docs/realtime.md.
"""

from __future__ import annotations

# Calls declare their events on the same ``socket_api`` (kept in their own module).
from gateway import call_events  # noqa: F401
from gateway.commands import send_message
from gateway.keys import MESSAGING, MINIAPPS, WALLET
from gateway.schemas import obj, string
from gateway.socket_api import ID, socket_api
from gateway.validation import INT64_MAX
from messaging.actions import messages, reactions, read_state, sync
from messaging.context import Messaging
from miniapps.host.host import MiniappHost
from wallet.actions import payments
from wallet.context import Wallet

__all__ = ["socket_api"]

# The domain enforces MESSAGE_MAX_CHARS with its own error code; this only bounds the parse.
TEXT = string(1 << 20)
MESSAGE_REF = {"conversation_id": ID, "message_id": ID}


@socket_api.on(
    "message.send",
    summary="Send a message (text, or image/file/voice with media_ids); acked after it is durable",
    schema=obj(
        {
            "conversation_id": ID,
            "client_msg_id": ID,
            "type": {"enum": ["text", "image", "file", "voice"]},
            "text": TEXT,
            "media_ids": {"type": "array", "items": ID, "minItems": 1, "maxItems": 9},
            "reply_to": ID,
            "mentions": {"type": "array", "items": ID, "maxItems": 100},
            "catch_up_from": {
                "type": "integer",
                "minimum": 0,
                "maximum": INT64_MAX,
                "description": "with a slash command: the seq you had read up to when you "
                "opened this chat; the app catches you up from there (ctx.catch_up_from)",
            },
        },
        ["conversation_id", "client_msg_id"],
    ),
    uses=(MESSAGING, MINIAPPS),
)
async def send(ctx: Messaging, host: MiniappHost, user_id: str, data: dict) -> dict:
    """A slash command of one of the conversation's apps goes to that app (``routed_to``).
    Media messages (1-9 images as an album, or one file or voice note; ``text`` is the optional
    caption) are never commands."""
    if data.get("type", "text") != "text":
        return await messages.do_send(ctx, user_id, data)
    return await send_message(ctx, host, user_id, {"text": "", **data})


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
            },
            # The id of the newest notification this device has: the answer's
            # ``notifications`` are the newer ones (without it: the newest ones).
            "notifications_after": ID,
        },
        ["cursors"],
    ),
)
async def do_sync(ctx: Messaging, user_id: str, data: dict) -> dict:
    return await sync.do_sync(
        ctx, user_id, data["cursors"], notifications_after=data.get("notifications_after")
    )


@socket_api.on(
    "miniapp.action",
    summary="Press a button on a mini-program's card: one posted in the chat, or an ephemeral "
    "card shown to you alone (message_id: its ephemeral_id)",
    schema=obj(
        {**MESSAGE_REF, "action_id": string(64, 1), "value": string(256)},
        ["conversation_id", "message_id", "action_id"],
    ),
    uses=(MINIAPPS,),
)
async def miniapp_action(host: MiniappHost, user_id: str, data: dict) -> dict:
    app_id = await host.do_action(
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
    uses=(MINIAPPS,),
)
async def miniapp_consent(host: MiniappHost, user_id: str, data: dict) -> dict:
    await host.do_consent(user_id, data["app_id"], data["scope"], data["granted"])
    return {}


@socket_api.on(
    "payment.confirm",
    summary="Confirm a mini-program's payment request (payment.confirm_required): money moves",
    schema=obj({"payment_id": ID}, ["payment_id"]),
    uses=(WALLET,),
)
async def payment_confirm(wallet: Wallet, user_id: str, data: dict) -> dict:
    return {"payment": await payments.do_confirm(wallet, user_id, data["payment_id"])}


@socket_api.on(
    "payment.cancel",
    summary="Refuse a mini-program's payment request: nothing moves",
    schema=obj({"payment_id": ID}, ["payment_id"]),
    uses=(WALLET,),
)
async def payment_cancel(wallet: Wallet, user_id: str, data: dict) -> dict:
    return {"payment": await payments.do_cancel(wallet, user_id, data["payment_id"])}
