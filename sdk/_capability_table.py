"""The core table of ``sdk.capabilities``: the named limits, the scopes, ``Capability`` and one
per app → host method of the messaging core (the services' are in ``sdk._capability_services``,
which assembles ``CAPABILITIES``). Import it all from ``sdk.capabilities``; it lives apart only
to keep each file short to read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

TEXT_MAX = 4000
STATE_MAX_BYTES = 64 * 1024
STORAGE_KEY_MAX = 256
STORAGE_VALUE_MAX_BYTES = 64 * 1024
STORAGE_QUOTA_BYTES = 1024 * 1024  # per app, keys and values together (manifest: quota_bytes)
STORAGE_QUOTA_MIN_BYTES = 64 * 1024  # the bounds of the manifest's storage.quota_bytes
STORAGE_QUOTA_MAX_BYTES = 1024 * 1024 * 1024
STORAGE_QUOTA_MESSAGE = "this app's storage is limited to {limit} bytes"  # host and simulator
FIND_LIMIT_MAX = 100
# Documents of a collection one ``storage.find`` call looks at in key order; past them it answers
# what it found with a ``next`` cursor that resumes the scan (sdk.filters.FindScan).
FIND_SCAN_MAX = 10_000
# Documents a sorted ``storage.find`` orders (it reads the whole collection): past them the
# call is refused (``collection_too_large``), never answered in a wrong order.
FIND_SORT_MAX = 20_000
EVENT_NAME_MAX = 96
EVENT_PAYLOAD_MAX_BYTES = 64 * 1024
MAX_EVENT_DEPTH = 4  # an event handler's events may cascade this far, then they are refused
URL_MAX = 2000
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
HTTP_HEADERS_MAX = 50
HTTP_BODY_MAX_BYTES = 1024 * 1024
COLLECTION_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MESSAGE_ID_MAX = 64
USER_ID_MAX = 64
PAYMENT_DESCRIPTION_MAX = 200
REF_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # order_ref, refund_ref
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
# media.upload: the decoded bytes of one upload. Base64 makes them 4/3 larger, so one upload
# stays well inside a protocol line (sdk.protocol.MAX_LINE_BYTES, 1 MiB) and a remote app's
# request body (the server's MAX_BODY_BYTES, 1 MiB by default).
MEDIA_UPLOAD_MAX_BYTES = 512 * 1024
MEDIA_UPLOADS_PER_MINUTE = 60  # per app, then rate_limited
MEDIA_KINDS = ("image", "file", "voice")
CONTENT_TYPE_MAX = 100
MEDIA_NAME_MAX = 200
# What media.upload may answer: the size and base64 checks (sdk.media.decode_upload), then the
# host's verification of the bytes (messaging/media_pipeline.py), which the simulator mirrors.
MEDIA_ERRORS = (
    "media_too_large",
    "empty_file",
    "not_an_image",
    "invalid_image",
    "image_too_large",
    "svg_not_allowed",
    "not_audio",
    "invalid_audio",
    "voice_too_long",
)

# What a user grants an app: data about them (users.profile, asked by the host the first time),
# or reaching them directly (notifications: opt-in, never asked by a call).
SCOPES: frozenset[str] = frozenset({"users.profile", "notifications"})

# Any capability may answer these: a bad or expired call_id or bad params, a method that does
# not exist or is not in the manifest, too many calls, a failure of the host.
COMMON_ERRORS: tuple[str, ...] = (
    "invalid_params",
    "unknown_method",
    "permission_denied",
    "rate_limited",
    "internal_error",
)


@dataclass(frozen=True)
class Capability:
    """One app → host method. ``name`` is also the manifest permission; ``params`` the JSON
    Schema of its params (``call_id`` excluded); ``scope`` the consent the invoking user must
    have granted (None: none); ``errors`` the codes it may answer beyond ``COMMON_ERRORS``;
    ``needs_conversation``/``needs_user``: an invocation without one is ``invalid_params``."""

    name: str
    group: str
    summary: str
    params: dict
    scope: str | None
    errors: tuple[str, ...]
    needs_conversation: bool
    needs_user: bool


def _text(max_length: int, what: str = "a string") -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": r"\S",
        "description": f"{what} of 1-{max_length} characters, not only spaces",
    }


def _params(required: dict[str, dict], optional: dict[str, dict] | None = None) -> dict:
    properties = dict(required)
    for name, schema in (optional or {}).items():
        # An optional param may be null: the same as leaving it out.
        if "type" in schema:
            schema = {**schema, "type": [schema["type"], "null"]}
        properties[name] = schema
    return {"type": "object", "properties": properties, "required": list(required)}


CARD = {
    "$ref": "https://aetherial.dev/schemas/card.schema.json",
    "description": "a card, see sdk/schemas/card.schema.json",
}
COLLECTION = {
    "type": "string",
    "pattern": COLLECTION_PATTERN.pattern,
    "description": "1-64 characters of [A-Za-z0-9_.-]",
}
KEY = _text(STORAGE_KEY_MAX)
AMOUNT = {
    "type": "integer",
    "minimum": 1,
    "description": "a whole number of minor units > 0",
}
REF = {
    "type": "string",
    "pattern": REF_PATTERN.pattern,
    "description": "1-64 characters of [A-Za-z0-9_.:-]",
}


def _capability(
    name: str,
    summary: str,
    params: dict,
    *,
    errors: tuple[str, ...] = (),
    scope: str | None = None,
    conversation: bool = False,
    user: bool = False,
) -> Capability:
    return Capability(
        name=name,
        group=name.split(".", 1)[0],
        summary=summary,
        params=params,
        scope=scope,
        errors=errors,
        needs_conversation=conversation,
        needs_user=user,
    )


_TABLE = (
    _capability(
        "messages.send_text",
        "Post a text into the conversation, from the app's bot → `{message_id}`.",
        _params({"text": _text(TEXT_MAX)}),
        conversation=True,
    ),
    _capability(
        "messages.send_card",
        "Post a card into the conversation → `{message_id}`.",
        _params({"card": CARD}),
        conversation=True,
    ),
    _capability(
        "messages.reply_ephemeral",
        "Show a text or a card (exactly one) to the invoking user only → `{}`; a card with "
        "buttons → `{ephemeral_id}`: its buttons can be pressed for an hour (the action's "
        "`message_id` is that id).",
        {
            **_params({}, {"text": _text(TEXT_MAX), "card": CARD}),
            "oneOf": [{"required": ["text"]}, {"required": ["card"]}],
        },
        user=True,
    ),
    _capability(
        "messages.update_card",
        "Replace a card this app posted in this conversation (or in `conversation_id`: another "
        "chat that has this app, or a user's service chat with it) → `{}`. An `ephemeral_id` "
        "(not expired) replaces that ephemeral card, shown again to its one reader.",
        _params(
            {"message_id": _text(MESSAGE_ID_MAX), "card": CARD},
            {"conversation_id": _text(MESSAGE_ID_MAX, "a conversation id")},
        ),
        errors=("not_found",),
        conversation=True,
    ),
    _capability(
        "group_state.get",
        "The conversation's shared document for this app → `{version, state}` (0, `{}`: none).",
        _params({}),
        conversation=True,
    ),
    _capability(
        "group_state.set",
        "Write the shared document if still at `expected_version` → `{version}`.",
        _params(
            {
                "state": {
                    "type": "object",
                    "description": f"a JSON object of at most {STATE_MAX_BYTES} bytes",
                },
                "expected_version": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "an integer >= 0",
                },
            }
        ),
        errors=("conflict", "quota_exceeded"),
        conversation=True,
    ),
    _capability(
        "users.profile",
        "The invoking user's `{id, display_name, avatar_url}` (id: per-app).",
        _params({}),
        errors=("scope_denied", "not_found"),
        scope="users.profile",
        user=True,
    ),
    _capability(
        "storage.get",
        "The value stored under `key` in `collection` → `{value, version}` (null, 0: none).",
        _params({"collection": COLLECTION, "key": KEY}),
    ),
    _capability(
        "storage.put",
        "Store a JSON value under `key` in `collection` → `{version}`.",
        _params(
            {
                "collection": COLLECTION,
                "key": KEY,
                "value": {
                    "description": f"any JSON value of at most {STORAGE_VALUE_MAX_BYTES} bytes"
                },
            }
        ),
        errors=("quota_exceeded",),
    ),
    _capability(
        "storage.delete",
        "Delete `key` from `collection` (deleting nothing is fine) → `{}`.",
        _params({"collection": COLLECTION, "key": KEY}),
    ),
    _capability(
        "storage.find",
        "Items whose value matches `filter`, sorted by `sort` (a declared index) or by key, "
        "after the cursor `after` → `{items: [{key, value, version}], next}`; `next` (null: "
        "no more) is the cursor of what follows. In key order one call looks at up to "
        f"{FIND_SCAN_MAX} documents, so a page may hold fewer than `limit` items, even none, "
        "and still have a `next`: follow it until null. Sorted, the collection may hold at "
        f"most {FIND_SORT_MAX} documents (else `collection_too_large`).",
        _params(
            {"collection": COLLECTION},
            {
                "filter": {
                    "type": "object",
                    "default": {},
                    "description": "a filter of the safe subset (PROTOCOL.md, sdk.filters)",
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": FIND_LIMIT_MAX,
                    "default": FIND_LIMIT_MAX,
                    "description": f"an integer from 1 to {FIND_LIMIT_MAX}",
                },
                "sort": {
                    "type": "object",
                    "maxProperties": 2,
                    "description": '{field, order: "asc"|"desc"}, field an index the manifest '
                    "declares (storage.indexes)",
                },
                "after": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 8192,
                    "description": "the cursor `next` of the previous page",
                },
            },
        ),
        errors=("collection_too_large",),
    ),
    _capability(
        "notifications.send",
        "A service message, a text or a card (exactly one), to a user of this app (per-app "
        "id) who opted in to `notifications`: it lands in their service chat with the app and "
        "their notification center → `{}`.",
        {
            **_params(
                {"user_id": _text(USER_ID_MAX, "a per-app user id")},
                {"text": _text(TEXT_MAX), "card": CARD},
            ),
            "oneOf": [{"required": ["text"]}, {"required": ["card"]}],
        },
        errors=("not_found", "scope_denied"),
    ),
    _capability(
        "events.emit",
        "Emit an event declared in `events.emits` to the apps that accept it → `{}`.",
        _params(
            {
                "name": _text(EVENT_NAME_MAX, "an event name"),
                "payload": {
                    "type": "object",
                    "description": f"a JSON object of at most {EVENT_PAYLOAD_MAX_BYTES} bytes",
                },
            }
        ),
    ),
    _capability(
        "http.fetch",
        "An HTTP request, made by the host, to a host in `http.allowed_domains` → "
        "`{status, headers, body}`.",
        _params(
            {
                "url": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": URL_MAX,
                    "description": f"an http(s) URL of at most {URL_MAX} characters",
                }
            },
            {
                "method": {
                    "type": "string",
                    "enum": list(HTTP_METHODS),
                    "default": "GET",
                    "description": f"one of {', '.join(HTTP_METHODS)}",
                },
                "headers": {
                    "type": "object",
                    "maxProperties": HTTP_HEADERS_MAX,
                    "additionalProperties": {"type": "string"},
                    "default": {},
                    "description": f"an object of at most {HTTP_HEADERS_MAX} string headers",
                },
                "body": {
                    "type": "string",
                    "default": None,
                    "description": f"text of at most {HTTP_BODY_MAX_BYTES} bytes",
                },
            },
        ),
        errors=("fetch_failed", "timeout", "quota_exceeded"),
    ),
    _capability(
        "payments.request",
        "Ask the invoking user to pay; the outcome comes as a signed event → "
        "`{payment_id, status}`.",
        _params(
            {
                "amount": AMOUNT,
                "currency": {
                    "type": "string",
                    "pattern": CURRENCY_PATTERN.pattern,
                    "description": "an ISO 4217 code such as 'USD'",
                },
                "description": {
                    "type": "string",
                    "pattern": r"\S",
                    "description": f"a string of 1-{PAYMENT_DESCRIPTION_MAX} characters once "
                    "trimmed",
                },
                "order_ref": REF,
            }
        ),
        errors=(
            "order_ref_reused",
            "amount_too_large",
            "unknown_currency",
            "payments_unavailable",
        ),
        user=True,
    ),
    _capability(
        "payments.refund",
        "Give back part or all of a paid payment of this app → `{refund_id, refunded_total}`.",
        _params(
            {
                "payment_id": {"type": "string", "description": "a payment id of this app"},
                "amount": AMOUNT,
            },
            {"refund_ref": REF},
        ),
        errors=(
            "not_found",
            "not_paid",
            "refund_exceeds_payment",
            "invalid_amount",
            "amount_too_large",
            "payments_unavailable",
        ),
    ),
    _capability(
        "media.upload",
        "Store a photo, file or voice note for this app, verified and cleaned like a user's "
        "upload → `{media_id}`; a card's `image` may then be that id (members see a signed "
        "URL).",
        _params(
            {
                "data": {
                    "type": "string",
                    "description": f"the bytes in standard base64, at most "
                    f"{MEDIA_UPLOAD_MAX_BYTES} bytes once decoded",
                },
                "content_type": _text(CONTENT_TYPE_MAX, "a MIME type"),
            },
            {
                "name": _text(MEDIA_NAME_MAX, "a file name"),
                "kind": {
                    "type": "string",
                    "enum": list(MEDIA_KINDS),
                    "description": "image, file or voice (default: what the bytes are)",
                },
            },
        ),
        errors=MEDIA_ERRORS,
    ),
    _capability(
        "media.url",
        "A freshly signed, short-lived address of a media this app uploaded (`media.upload`) "
        "→ `{url, expires_at}` (epoch ms). The URL is relative to the platform (`/media/…`), "
        "so the app's hosted web view may show it (`<img src>`, CSP `img-src 'self'`); it is "
        "its own permission until it expires (the host's `MEDIA_URL_TTL`, 1 h by default).",
        _params(
            {
                "media_id": {
                    "type": "string",
                    "pattern": r"^[0-9a-f]{24}$",
                    "description": "a media id this app's media.upload answered (24 hex digits)",
                }
            },
            {
                "thumbnail": {
                    "type": "boolean",
                    "default": False,
                    "description": "true: the image's 320 px WebP thumbnail (a media without "
                    "one: the original)",
                },
            },
        ),
        errors=("not_found",),
    ),
)
