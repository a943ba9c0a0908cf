"""JSON Schemas shared by routes and published in the OpenAPI document."""

from __future__ import annotations

from typing import Any


def obj(properties: dict[str, Any], required: list[str] | None = None, *, extra=False) -> dict:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if not extra:
        schema["additionalProperties"] = False
    return schema


def string(max_length: int, min_length: int = 0, **kw: Any) -> dict:
    return {"type": "string", "minLength": min_length, "maxLength": max_length, **kw}


TIMESTAMP = {"type": "string", "format": "date-time"}

USER = obj(
    {
        "id": {"type": "string"},
        "username": {"type": "string"},
        "display_name": {"type": "string"},
        "bio": {"type": "string"},
        "avatar_url": {"type": ["string", "null"]},
        "created_at": TIMESTAMP,
        "email": {"type": "string", "description": "only in your own profile"},
        "locale": {
            "type": ["string", "null"],
            "description": "only in your own profile: BCP 47 tag, or null (apps get en)",
        },
        "time_zone": {
            "type": ["string", "null"],
            "description": "only in your own profile: IANA time zone name, or null (apps get UTC)",
        },
        "email_verified": {
            "type": "boolean",
            "description": "only in your own profile: the email was confirmed from a mailed link",
        },
        "mfa_enabled": {
            "type": "boolean",
            "description": "only in your own profile: sign-in needs an authenticator code",
        },
    },
    ["id", "username", "display_name", "bio", "avatar_url", "created_at"],
)

TOKENS = obj(
    {
        "access_token": {"type": "string", "description": "JWT; send as 'Authorization: Bearer'"},
        "refresh_token": {"type": "string", "description": "opaque; single use, rotated"},
        "token_type": {"const": "Bearer"},
        "expires_in": {"type": "integer", "description": "access token lifetime, seconds"},
        "session_id": {"type": "string"},
        "user": USER,
    },
    ["access_token", "refresh_token", "expires_in", "session_id", "user"],
)

SESSION = obj(
    {
        "id": {"type": "string"},
        "created_at": TIMESTAMP,
        "last_used_at": TIMESTAMP,
        "user_agent": {"type": "string"},
        "ip": {"type": "string"},
        "current": {"type": "boolean"},
    },
    ["id", "created_at", "last_used_at", "current"],
)

ERROR = obj(
    {
        "error": obj(
            {
                "code": {"type": "string", "description": "stable, machine-readable"},
                "message": {"type": "string", "description": "for people"},
                "details": {"description": "e.g. {field} for validation errors"},
            },
            ["code", "message"],
        )
    },
    ["error"],
)

MESSAGE = obj(
    {
        "id": {"type": "string"},
        "conversation_id": {"type": "string"},
        "seq": {"type": "integer", "description": "gap-free position in the conversation"},
        "sender_id": {"type": "string"},
        "client_msg_id": {"type": "string"},
        "type": {
            "type": "string",
            "description": "text, image, file, voice, system, card (a mini-program's), call, or "
            "a wallet card (transfer, red_packet)",
        },
        "text": {"type": "string", "description": "the text, or a media message's caption"},
        "media": {
            "type": "array",
            "items": {"type": "object"},
            "description": "image/file/voice messages: MEDIA objects with signed URLs",
        },
        "card": {"type": ["object", "null"]},
        "app_id": {"type": ["string", "null"]},
        "wallet": {"type": "object"},
        "call": {"type": "object"},
        "reply_to": {"type": ["object", "null"]},
        "mentions": {"type": "array", "items": {"type": "string"}},
        "mention_all": {"type": "boolean"},
        "created_at": TIMESTAMP,
        "edited_at": {"type": ["string", "null"], "format": "date-time"},
        "recalled": {"type": "boolean"},
        "moderated": {"type": "boolean", "description": "hidden by an administrator"},
        "streaming": {
            "type": "boolean",
            "description": "a mini-program's streamed text: true while it is being written "
            "(message.stream events grow it), then false with its final text",
        },
        "version": {"type": "integer"},
        "reactions": {"type": "array"},
        "system": {"type": "object"},
    },
    ["id", "conversation_id", "seq", "sender_id", "client_msg_id", "type", "text", "created_at"],
)

CONVERSATION = obj(
    {
        "id": {"type": "string"},
        "type": {"enum": ["direct", "group", "service"]},
        "title": {"type": "string"},
        "avatar_url": {"type": "string"},
        "app_id": {"type": "string", "description": "service chats: the mini-program"},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "last_seq": {"type": "integer"},
        "last_message": {"type": ["object", "null"]},
        "member_count": {"type": "integer"},
        "my_role": {"enum": ["owner", "admin", "member"]},
        "last_read_seq": {"type": "integer"},
        "joined_seq": {"type": "integer"},
        "unread_count": {"type": "integer"},
        "muted": {"type": "boolean"},
        "peer": USER,
        "members": {"type": "array"},
    },
    ["id", "type", "title", "last_seq", "unread_count", "my_role"],
)
