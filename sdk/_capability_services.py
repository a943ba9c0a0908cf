"""The capabilities of services (issue 14 on), one tuple per area so each is added on its own
— timers, service storage, money, service chats and calls, app setup, web views, credentials —
and ``CAPABILITIES``: the core table of ``sdk._capability_table`` followed by these, with the
markdown table made from it. Import it all from ``sdk.capabilities``; it lives apart only to
keep each file short to read."""

from __future__ import annotations

import json
import re
from typing import Any

from sdk._capability_table import (
    _TABLE,
    AMOUNT,
    COLLECTION,
    CURRENCY_PATTERN,
    KEY,
    MESSAGE_ID_MAX,
    PAYMENT_DESCRIPTION_MAX,
    REF,
    REF_PATTERN,
    USER_ID_MAX,
    Capability,
    _capability,
    _params,
    _text,
)

# timers.*: an app's durable timers (``App.timer``), fired by the host at or after their time.
TIMER_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")  # declared in the manifest's timers
TIMER_KEY_PATTERN = REF_PATTERN  # 1-64 characters of [A-Za-z0-9_.:-]
TIMER_MAX_AHEAD_MS = 366 * 24 * 3600 * 1000  # how far ahead a timer may be set
TIMER_PAYLOAD_MAX_BYTES = 16 * 1024
TIMERS_PENDING_MAX = 10_000  # pending timers per app; past it: too_many_timers
TIMER_ERRORS = ("invalid_time", "too_many_timers", "unknown_timer")
TIMER_KEY = {
    "type": "string",
    "pattern": TIMER_KEY_PATTERN.pattern,
    "description": "1-64 characters of [A-Za-z0-9_.:-]",
}
_TIMERS: tuple[Capability, ...] = (
    _capability(
        "timers.schedule",
        "Have the timer `name` (declared in the manifest's `timers`) fire once, at or after "
        "`at` or in `delay_ms` (exactly one), with `payload`; scheduling an existing `key` "
        "again moves it → `{key, due_at}`.",
        {
            **_params(
                {
                    "name": {
                        "type": "string",
                        "pattern": TIMER_NAME_PATTERN.pattern,
                        "description": "a timer name declared in the manifest's timers",
                    }
                },
                {
                    "at": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "a time in epoch milliseconds, not past, at most 366 "
                        "days ahead",
                    },
                    "delay_ms": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "milliseconds from now, at most 366 days",
                    },
                    "payload": {
                        "type": "object",
                        "default": {},
                        "description": f"a JSON object of at most {TIMER_PAYLOAD_MAX_BYTES} "
                        "bytes, handed to the timer",
                    },
                    "key": {
                        **TIMER_KEY,
                        "description": "the timer's key, 1-64 characters of [A-Za-z0-9_.:-] "
                        "(default: a new one)",
                    },
                },
            ),
            "oneOf": [{"required": ["at"]}, {"required": ["delay_ms"]}],
        },
        errors=TIMER_ERRORS,
    ),
    _capability(
        "timers.cancel",
        "Cancel this app's pending timer `key` → `{cancelled}` (false: none was pending).",
        _params({"key": TIMER_KEY}),
    ),
)
STORAGE_COUNTER_LIMIT = 2**53  # storage.incr: counters, deltas and bounds stay within ±2^53
STORAGE_CURSOR_MAX = 8192  # characters of storage.find's ``after`` cursor
_COUNTER = {
    "type": "integer",
    "minimum": -STORAGE_COUNTER_LIMIT,
    "maximum": STORAGE_COUNTER_LIMIT,
    "description": "an integer within ±2^53",
}
_SERVICE_STORAGE: tuple[Capability, ...] = (
    _capability(
        "storage.update",
        "Change fields of the object under `key` (`set`, `unset`), only if its version is "
        "still `expected_version` when given → `{version}`.",
        _params(
            {"collection": COLLECTION, "key": KEY},
            {
                "set": {
                    "type": "object",
                    "maxProperties": 64,
                    "description": "an object {field: JSON value} of top-level fields to set",
                },
                "unset": {
                    "type": "array",
                    "description": "a list of top-level field names to remove",
                },
                "expected_version": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "the version read (storage.get); else conflict",
                },
                "upsert": {
                    "type": "boolean",
                    "default": False,
                    "description": "true to create the object when there is none",
                },
            },
        ),
        errors=("conflict", "not_found", "duplicate_value", "quota_exceeded"),
    ),
    _capability(
        "storage.incr",
        "Add `delta` to the integer `field` (0 when absent) of the object under `key` (created "
        "when none), atomically, only if the result stays within [`min`, `max`] → "
        "`{value, version}`.",
        _params(
            {
                "collection": COLLECTION,
                "key": KEY,
                "field": {
                    "type": "string",
                    "pattern": r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
                    "description": "1-64 characters of [A-Za-z0-9_], not starting with a digit",
                },
                "delta": _COUNTER,
            },
            {
                "min": {**_COUNTER, "default": 0},
                "max": _COUNTER,
            },
        ),
        errors=("limit_reached", "quota_exceeded"),
    ),
)
# Service money (issue 14): holds (``payments.request`` with ``capture: false``, then capture
# or void) and payouts from the app's merchant balance.
PAYMENT_ID = {"type": "string", "description": "a payment id of this app"}
CURRENCY = {
    "type": "string",
    "pattern": CURRENCY_PATTERN.pattern,
    "description": "an ISO 4217 code such as 'USD'",
}
_SERVICE_MONEY: tuple[Capability, ...] = (
    # ``payments.request`` again, with ``capture``: this entry replaces the one in ``_TABLE``
    # (same name, same place in ``CAPABILITIES``), so the older table stays untouched.
    _capability(
        "payments.request",
        "Ask the invoking user to pay; the outcome comes as a signed event → "
        "`{payment_id, status}`. With `capture: false` the money is only held until the app "
        "captures or voids it (`payment.authorized`).",
        _params(
            {
                "amount": AMOUNT,
                "currency": CURRENCY,
                "description": {
                    "type": "string",
                    "pattern": r"\S",
                    "description": f"a string of 1-{PAYMENT_DESCRIPTION_MAX} characters once "
                    "trimmed",
                },
                "order_ref": REF,
            },
            {
                "capture": {
                    "type": "boolean",
                    "default": True,
                    "description": "false: authorize a hold, captured or voided later "
                    "(voided by itself at its expiry)",
                },
            },
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
        "payments.capture",
        "Take `amount` (default: all) of an authorized hold of this app, the rest back to the "
        "user, less the platform's fee; once → `{payment_id, status, captured, fee, released}`.",
        _params({"payment_id": PAYMENT_ID}, {"amount": AMOUNT}),
        errors=(
            "not_found",
            "not_authorized",
            "capture_exceeds_hold",
            "amount_too_large",
            "payment_in_progress",
            "payments_unavailable",
        ),
    ),
    _capability(
        "payments.void",
        "Give an authorized hold of this app back to the user in full → "
        "`{payment_id, status, released}`.",
        _params({"payment_id": PAYMENT_ID}),
        errors=("not_found", "not_authorized", "payment_in_progress", "payments_unavailable"),
    ),
    _capability(
        "payments.payout",
        "Pay a user of this app (per-app id) from the app's merchant balance, never beyond it, "
        "once per `payout_ref` → `{payout_id, status, amount, fee, currency}`.",
        _params(
            {
                "user_id": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": USER_ID_MAX,
                    "description": f"a per-app user id of 1-{USER_ID_MAX} characters",
                },
                "amount": AMOUNT,
                "currency": CURRENCY,
                "payout_ref": REF,
            }
        ),
        errors=(
            "not_found",
            "insufficient_merchant_funds",
            "payout_ref_reused",
            "payout_in_progress",
            "amount_too_large",
            "unknown_currency",
            "payments_unavailable",
        ),
    ),
    _capability(
        "payments.request_transfer",
        "Ask one user of this app to pay another (per-app ids), e.g. their share of a bill; "
        "the payer confirms like a payment and the outcome comes as a signed "
        "`transfer_request.*` event → `{payment_id, status}`.",
        _params(
            {
                "from_user_id": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": USER_ID_MAX,
                    "description": f"the payer's per-app id, 1-{USER_ID_MAX} characters",
                },
                "to_user_id": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": USER_ID_MAX,
                    "description": f"the payee's per-app id, 1-{USER_ID_MAX} characters",
                },
                "amount": AMOUNT,
                "currency": CURRENCY,
                "transfer_ref": REF,
            },
            {
                "note": {
                    "type": "string",
                    "maxLength": PAYMENT_DESCRIPTION_MAX,
                    "description": f"text of at most {PAYMENT_DESCRIPTION_MAX} characters "
                    "shown to the payer",
                },
            },
        ),
        errors=(
            "not_found",
            "same_user",
            "transfer_ref_reused",
            "amount_too_large",
            "unknown_currency",
            "payments_unavailable",
        ),
        conversation=True,
    ),
)
# Service chats and calls (issue 14 items 4, 5).
CALL_MEDIA = ("audio", "video")
CALL_PARTICIPANTS_MAX = 32  # per-app user ids one ``calls.start`` may ring
CALL_TITLE_MAX = 100
CALL_CHAT_TITLE_MAX = 64  # an own chat's title (a conversation title's limit): cut to it
SUBSCRIPTION_STATUSES = ("granted", "declined", "asked")


def check_call_participants(value: Any) -> list[str] | None:
    """``calls.start``'s ``participant_ids``, checked (the schema subset has no ``items``):
    None, or a list of 1-``CALL_PARTICIPANTS_MAX`` distinct per-app user ids, returned
    without repeats. Raises ``sdk.errors.InvalidParams`` with the same message on both sides."""
    from sdk.errors import InvalidParams  # sdk.errors imports nothing of this module

    if value is None:
        return None
    ok = (
        isinstance(value, list)
        and 1 <= len(value) <= CALL_PARTICIPANTS_MAX
        and all(isinstance(v, str) and 1 <= len(v) <= USER_ID_MAX for v in value)
    )
    if not ok:
        raise InvalidParams(
            f"participant_ids must be a list of 1-{CALL_PARTICIPANTS_MAX} per-app user ids"
        )
    return list(dict.fromkeys(value))


def check_own_chat(params: dict[str, Any], invoker: str | None) -> list[str]:
    """``calls.start`` with ``own_chat``: its ``participant_ids`` checked against the invoking
    user's per-app id ``invoker`` (None: an invocation without a user) — 2-
    ``CALL_PARTICIPANTS_MAX`` distinct people, the invoker among them, and no
    ``conversation_id``. Returns them without repeats. Raises ``InvalidParams`` or
    ``invoker_not_included`` (an app rings people on someone's behalf, never strangers on
    nobody's), with the same message on both sides."""
    from sdk.errors import InvalidParams, host_error  # sdk.errors imports nothing of this module

    participant_ids = check_call_participants(params.get("participant_ids"))
    if params.get("conversation_id") is not None:
        raise InvalidParams("own_chat opens its own conversation: leave out conversation_id")
    if participant_ids is None or len(participant_ids) < 2:
        raise InvalidParams("own_chat needs participant_ids: at least two distinct people")
    if invoker is None:
        raise InvalidParams("own_chat needs an invocation by a user (this one has none)")
    if invoker not in participant_ids:
        raise host_error(
            "invoker_not_included", "own_chat participants must include the invoking user"
        )
    return participant_ids


_SERVICE_CHATS_AND_CALLS: tuple[Capability, ...] = (
    _capability(
        "notifications.request_subscription",
        "Ask the invoking user (a consent sheet) to receive this app's service messages → "
        "`{status}`: `granted` (already), `declined` (they said no before: not asked again) "
        "or `asked`; their answer comes later as a `subscription.granted` / "
        "`subscription.declined` event (when `events.accepts` has it).",
        _params({}),
        user=True,
    ),
    _capability(
        "calls.start",
        "Start a voice or video call in this conversation (or `conversation_id`, one that has "
        "this app) with the app as its origin: the participants' devices ring and each joins "
        "by answering — nobody is put in the call → `{call_id, conversation_id}`. With "
        "`own_chat`, for people who share no chat (a doctor and a patient): the call is in a "
        "group the app opens for exactly `participant_ids` (the invoking user among them) and "
        "reuses for the same people. The app then gets "
        "`call.started` (first person joined) and `call.ended` `{outcome, duration_seconds}` "
        "events (when `events.accepts` has them).",
        _params(
            {
                "media": {
                    "type": "string",
                    "enum": list(CALL_MEDIA),
                    "description": "audio or video",
                }
            },
            {
                "conversation_id": _text(MESSAGE_ID_MAX, "a conversation id"),
                "participant_ids": {
                    "type": "array",
                    "description": f"a list of 1-{CALL_PARTICIPANTS_MAX} per-app user ids, "
                    "members of the conversation, to ring (default: every member); with "
                    "`own_chat`, 2 or more, the invoking user among them",
                },
                "title": _text(CALL_TITLE_MAX, "a title shown with the ring"),
                "own_chat": {
                    "type": "boolean",
                    "description": "call in the app's own group of `participant_ids` (no "
                    "`conversation_id`), titled with `title` or the app's name",
                },
            },
        ),
        errors=(
            "not_a_member",
            "nobody_to_call",
            "user_busy",
            "call_in_progress",
            "invoker_not_included",
            "unknown_participant",
            "blocked",
        ),
    ),
)
# app.setup: what an administrator set up for the app (manifest ``config`` and ``roles``).
# Granted implicitly to a manifest that declares ``config`` or ``roles`` (sdk.manifest).
CONFIG_VALUE_MAX = 4000  # characters of one config value
_APP_SETUP: tuple[Capability, ...] = (
    _capability(
        "app.setup",
        "This app's configuration as an administrator set it (only the names the manifest "
        "declares in `config`, secrets included) and the invoking user's roles in this app "
        "(only those the manifest declares in `roles`) → `{config, roles}`; the runtime fills "
        "`ctx.config` and `ctx.roles` with it before each handler runs.",
        _params({}),
    ),
)
_WEB_VIEWS: tuple[Capability, ...] = ()
# Verifiable credentials (issue 16): Open Badges 3.0, signed by the platform (sdk.credentials).
_CREDENTIALS: tuple[Capability, ...] = (
    _capability(
        "credentials.issue",
        "Issue an Open Badges 3.0 credential to a user of this app (per-app id): the host "
        "builds the `OpenBadgeCredential`, signs it (EdDSA JWS, the platform's key) and keeps "
        "it verifiable at `url` → `{credential_id, url, jwt}`.",
        _params(
            {
                "subject_user_id": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": USER_ID_MAX,
                    "description": f"the earner's per-app id, 1-{USER_ID_MAX} characters",
                },
                "achievement": {
                    "type": "object",
                    "description": "an object {name (1-200), description (1-2000), id? (the "
                    "app's own, 1-200), criteria? (1-2000), image? (an image media id of this "
                    "app)}",
                },
            },
            {
                "evidence": {
                    "type": "array",
                    "description": "a list of 1-10 objects {id?, name?, description?, "
                    "narrative?} (strings of 1-2000 characters)",
                },
            },
        ),
        errors=("not_found",),
    ),
    _capability(
        "credentials.revoke",
        "Revoke a credential this app issued, with a reason the public verification shows "
        "→ `{revoked: true}` (again: the first revocation stays).",
        _params(
            {
                "credential_id": _text(MESSAGE_ID_MAX, "a credential id"),
                "reason": _text(500, "a reason"),
            }
        ),
        errors=("not_found",),
    ),
)

# Inbound webhooks (issue 19): a provider (Duffel, Stripe, GitHub …) calls the app back at a URL
# the host signs (``sdk.webhooks``); the app hears each delivery as the event ``webhook.received``.
# A webhook's name, declared in the manifest's ``webhooks``.
WEBHOOK_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
WEBHOOKS_MAX = 10  # webhook names one manifest may declare
WEBHOOK_EVENT = "webhook.received"  # the event every delivery is (manifest events.accepts)
WEBHOOK_PERMISSION = "webhooks.url"  # what declaring webhooks needs in the manifest's permissions
_WEBHOOKS: tuple[Capability, ...] = (
    _capability(
        "webhooks.url",
        "The address a provider (Duffel, Stripe, GitHub …) posts this app's webhook `name` "
        "(declared in the manifest's `webhooks`) to, bound to this conversation and user → "
        "`{url, path}`: `path` is `/api/v1/hooks/<token>` (signed by the host, the same for the "
        "same app, name, conversation and user, never expiring), `url` the platform's public "
        "address (`PUBLIC_URL`) and `path`. Each POST to it reaches the app, in that "
        "conversation as that user, as the event `webhook.received` `{name, body, headers, "
        "received_at, signature}`; the sender gets 200 once the handler returned, 502 when it "
        "failed (it retries: handle each delivery idempotently).",
        _params(
            {
                "name": {
                    "type": "string",
                    "pattern": WEBHOOK_NAME_PATTERN.pattern,
                    "description": "a webhook name declared in the manifest's webhooks",
                }
            }
        ),
        errors=("unknown_webhook",),
        conversation=True,
        user=True,
    ),
)

# Streaming messages (issue 20): a text from the app's bot that grows while it is written (a
# model's answer), then stops. The host buffers appends and sends members the whole text so far
# at most once per 300 ms (``miniapps.host.streams``); the limit is the whole text's.
STREAM_TEXT_MAX = 32 * 1024  # characters of a streamed message's whole text
STREAM_IDLE_MS = 10 * 60 * 1000  # a stream left unwritten this long is stopped by the host
STREAM_ERRORS = ("not_found", "not_streaming", "text_too_long")
STREAM_TEXT_TOO_LONG = f"a streamed message holds at most {STREAM_TEXT_MAX} characters"
STREAM_NOT_FOUND = "this app started no such streaming message in this conversation"
STREAM_NOT_STREAMING = "this message is no longer streaming (stopped)"
_STREAM_ID = _text(MESSAGE_ID_MAX, "a message id messages.stream_start answered")
_STREAMS: tuple[Capability, ...] = (
    _capability(
        "messages.stream_start",
        "Post a text from the app's bot that is still being written (`streaming: true`; "
        "`text` may be empty) → `{message_id}`; members get `message.new`. Grow it with "
        "`messages.stream_append`, end it with `messages.stream_stop` (the host stops one "
        "left unwritten for 10 minutes).",
        _params(
            {},
            {
                "text": {
                    "type": "string",
                    "default": "",
                    "description": f"the text so far, at most {STREAM_TEXT_MAX} characters",
                }
            },
        ),
        errors=("text_too_long",),
        conversation=True,
    ),
    _capability(
        "messages.stream_append",
        "Add `text` to a streaming message this app started in this conversation → `{}`. "
        "Members get the whole text so far as `message.stream` events, at most one every "
        "300 ms, never the same text twice.",
        _params(
            {
                "message_id": _STREAM_ID,
                "text": {
                    "type": "string",
                    "minLength": 1,
                    "description": "the text to add, 1 or more characters (the whole text "
                    f"stays within {STREAM_TEXT_MAX} characters)",
                },
            }
        ),
        errors=STREAM_ERRORS,
        conversation=True,
    ),
    _capability(
        "messages.stream_stop",
        "End a streaming message this app started in this conversation with its final "
        "`text` (default: what was streamed) → `{text}`; members get `message.updated` with "
        "`streaming: false`, always. An `ai.chat` streaming into it is cancelled.",
        _params(
            {"message_id": _STREAM_ID},
            {
                "text": {
                    "type": "string",
                    "description": f"the final text, at most {STREAM_TEXT_MAX} characters",
                }
            },
        ),
        errors=STREAM_ERRORS,
        conversation=True,
    ),
)

# The ai capability (issue 20): the platform's model, for every app, metered. A model answer
# takes longer than an invocation may (sdk.protocol.INTERACTIVE_DEADLINE), so it is
# asynchronous like a payment: ``ai.chat`` answers a request id at once, the host runs the
# completion in the background (its text growing in a chat message when asked) and the outcome
# reaches the app as the signed host event ``ai.completed``. What a params schema of the
# contract's subset cannot say (the shape of each message, part and tool) is ``check_ai_chat``,
# run by the host and the simulator alike, before anything else of the call.
AI_EVENT = "ai.completed"  # the outcome of every ai.chat (manifest events.accepts)
AI_EVENT_PREFIX = "ai."  # events only the host sends
AI_CHAT_PERMISSION = "ai.chat"
AI_ROLES = ("system", "user", "assistant", "tool")
AI_STATUSES = ("completed", "cancelled", "failed")
AI_MESSAGES_MAX = 100  # messages of one ai.chat
AI_CONTENT_MAX_BYTES = 32 * 1024  # the text of one message (UTF-8), its parts together
AI_PARTS_MAX = 32  # parts of one message's content
AI_IMAGES_MAX = 8  # image parts of one ai.chat, all messages together
AI_TOOLS_MAX = 32
AI_TOOL_CALLS_MAX = 32  # tool calls of one assistant message
AI_TOOL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's function names
AI_TOOL_CALL_ID_MAX = 128
AI_TOOL_DESCRIPTION_MAX = 1024
AI_TOOL_PARAMETERS_MAX_BYTES = 16 * 1024
AI_MAX_TOKENS = 4096
AI_DEFAULT_MAX_TOKENS = 1024
AI_RUNNING_MAX = 4  # requests of one app running at once in one conversation
AI_IMAGE_TOKENS = 800  # what one image counts for in the estimate of a request's tokens
AI_CHARS_PER_TOKEN = 4  # the estimate: characters / 4
MEDIA_ID_PATTERN = re.compile(r"^[0-9a-f]{24}$")
AI_NOT_CONFIGURED = (
    "the AI model is not configured on this server: set AI_BASE_URL and AI_MODEL, e.g. "
    "Ollama: AI_BASE_URL=http://127.0.0.1:11434/v1 AI_MODEL=llama3.1"
)
AI_VISION_UNSUPPORTED = "this server's model takes no images (AI_VISION is off): send text only"
AI_ERRORS = (
    "ai_not_configured",
    "ai_quota_exceeded",
    "vision_unsupported",
    "stream_not_found",
    "too_many_requests",
    "not_found",
)
_AI: tuple[Capability, ...] = (
    _capability(
        "ai.chat",
        "Ask the platform's model (any OpenAI-compatible server) for the next message of "
        "`messages`, in the background → `{request_id}` at once. The outcome comes as the "
        "signed event `ai.completed` (declare it in `events.accepts`): `{request_id, status "
        "(completed, cancelled or failed), message: {role, content, tool_calls: [{id, name, "
        "arguments}]}, finish_reason, usage: {prompt_tokens, completion_tokens}, error?: "
        "{code, message}, stream_to, timing: {first_token_ms, total_ms}}`. With `stream_to` "
        "the answer's text grows live in that message (a stream this app started with "
        "`messages.stream_start` in this conversation, still streaming). Image parts need a "
        "model that takes images (`AI_VISION`). Metered: tokens per app per day, per "
        "conversation per day, per user per hour; at most "
        f"{AI_RUNNING_MAX} running per app in a conversation.",
        _params(
            {
                "messages": {
                    "type": "array",
                    "description": f"a list of 1-{AI_MESSAGES_MAX} chat messages {{role "
                    "(system, user, assistant or tool), content: a text of at most "
                    f"{AI_CONTENT_MAX_BYTES // 1024} KiB or a list of parts {{type: text, "
                    "text} or {type: image, media_id} (user messages; an image of this "
                    "conversation or uploaded by this app), tool_calls? [{id, name, "
                    "arguments (JSON text)}] (assistant), tool_call_id (tool)}",
                }
            },
            {
                "tools": {
                    "type": "array",
                    "description": f"a list of at most {AI_TOOLS_MAX} functions the model "
                    "may call {name (1-64 of [A-Za-z0-9_-]), description?, parameters? (a "
                    "JSON Schema object)}",
                },
                "max_tokens": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": AI_MAX_TOKENS,
                    "default": AI_DEFAULT_MAX_TOKENS,
                    "description": f"the most tokens the answer may have, 1-{AI_MAX_TOKENS}",
                },
                "temperature": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 2,
                    "description": "the sampling temperature, from 0 to 2",
                },
                "stream_to": _text(
                    MESSAGE_ID_MAX,
                    "a message id this app started with messages.stream_start here",
                ),
            },
        ),
        errors=AI_ERRORS,
        conversation=True,
        user=True,
    ),
    _capability(
        "ai.cancel",
        "Stop one of this app's running `ai.chat` requests, from any node → `{cancelled}` "
        "(false: not running, or not this app's); its `ai.completed` then says `cancelled` "
        "with what was written so far, and its `stream_to` message is stopped, keeping that "
        "text. A `messages.stream_stop` of its `stream_to` cancels it too.",
        _params({"request_id": _text(MESSAGE_ID_MAX, "a request id ai.chat answered")}),
    ),
)


def _ai_refuse(where: str, what: str) -> Exception:
    from sdk.errors import InvalidParams  # sdk.errors imports nothing of this module

    return InvalidParams(f"{where}: {what}")


def _ai_text(value: Any, where: str) -> int:
    """The UTF-8 bytes of a text of a message (refused when it is not a string)."""
    if not isinstance(value, str):
        raise _ai_refuse(where, "must be a string")
    return len(value.encode("utf-8", "surrogatepass"))


def _ai_parts(parts: Any, role: str, where: str) -> tuple[list[dict[str, Any]], int, int]:
    """A message's content given as parts: the parts checked, their text bytes and images."""
    if not isinstance(parts, list) or not 1 <= len(parts) <= AI_PARTS_MAX:
        raise _ai_refuse(where, f"must be a text or a list of 1-{AI_PARTS_MAX} parts")
    clean: list[dict[str, Any]] = []
    size = images = 0
    for index, part in enumerate(parts):
        at = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and set(part) == {"type", "text"}:
            size += _ai_text(part["text"], f"{at}.text")
            clean.append({"type": "text", "text": part["text"]})
        elif kind == "image" and set(part) == {"type", "media_id"}:
            if role != "user":
                raise _ai_refuse(at, "images go in user messages only")
            media_id = part["media_id"]
            if not isinstance(media_id, str) or not MEDIA_ID_PATTERN.fullmatch(media_id):
                raise _ai_refuse(f"{at}.media_id", "must be a media id (24 hex digits)")
            images += 1
            clean.append({"type": "image", "media_id": media_id})
        else:
            raise _ai_refuse(
                at, 'must be {"type": "text", "text"} or {"type": "image", "media_id"}'
            )
    return clean, size, images


def _ai_tool_calls(value: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not 1 <= len(value) <= AI_TOOL_CALLS_MAX:
        raise _ai_refuse(where, f"must be a list of 1-{AI_TOOL_CALLS_MAX} tool calls")
    clean = []
    for index, tool_call in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(tool_call, dict) or set(tool_call) != {"id", "name", "arguments"}:
            raise _ai_refuse(at, "must be {id, name, arguments}, as ai.completed gives them")
        call_id, name, arguments = tool_call["id"], tool_call["name"], tool_call["arguments"]
        if not isinstance(call_id, str) or not 1 <= len(call_id) <= AI_TOOL_CALL_ID_MAX:
            raise _ai_refuse(f"{at}.id", f"must be a string of 1-{AI_TOOL_CALL_ID_MAX} characters")
        if not isinstance(name, str) or not AI_TOOL_NAME_PATTERN.fullmatch(name):
            raise _ai_refuse(f"{at}.name", "must be 1-64 characters of [A-Za-z0-9_-]")
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments, separators=(",", ":"))
        if _ai_text(arguments, f"{at}.arguments") > AI_CONTENT_MAX_BYTES:
            raise _ai_refuse(f"{at}.arguments", f"at most {AI_CONTENT_MAX_BYTES} bytes")
        clean.append({"id": call_id, "name": name, "arguments": arguments})
    return clean


def _ai_message(message: Any, where: str, call_ids: set[str]) -> tuple[dict[str, Any], int]:
    """One message checked and made canonical, and the images it holds; ``call_ids``: the
    assistant tool calls so far (a tool message answers one of them)."""
    if not isinstance(message, dict):
        raise _ai_refuse(where, "must be an object {role, content, …}")
    role = message.get("role")
    if role not in AI_ROLES:
        raise _ai_refuse(f"{where}.role", f"must be one of {', '.join(AI_ROLES)}")
    allowed = {"role", "content"} | {"assistant": {"tool_calls"}, "tool": {"tool_call_id"}}.get(
        role, set()
    )
    extra = sorted(set(message) - allowed)
    if extra:
        raise _ai_refuse(f"{where}.{extra[0]}", f"unknown field for a {role} message")
    clean: dict[str, Any] = {"role": role}
    content, images, size = message.get("content"), 0, 0
    tool_calls = message.get("tool_calls")
    if role == "assistant" and tool_calls is not None:
        clean["tool_calls"] = _ai_tool_calls(tool_calls, f"{where}.tool_calls")
        call_ids.update(tool_call["id"] for tool_call in clean["tool_calls"])
    if content is None and "tool_calls" in clean:
        clean["content"] = None
    elif isinstance(content, str):
        size = _ai_text(content, f"{where}.content")
        clean["content"] = content
    elif isinstance(content, list) and role != "tool":
        clean["content"], size, images = _ai_parts(content, role, f"{where}.content")
    else:
        what = "a text" if role == "tool" else "a text or a list of parts"
        raise _ai_refuse(f"{where}.content", f"must be {what}")
    if clean["content"] is not None and size > AI_CONTENT_MAX_BYTES:
        raise _ai_refuse(f"{where}.content", f"at most {AI_CONTENT_MAX_BYTES} bytes of text")
    if role == "tool":
        tool_call_id = message.get("tool_call_id")
        if not isinstance(tool_call_id, str) or tool_call_id not in call_ids:
            raise _ai_refuse(
                f"{where}.tool_call_id", "must be the id of a tool call of an earlier message"
            )
        clean["tool_call_id"] = tool_call_id
    return clean, images


def _ai_tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    if not isinstance(tools, list) or len(tools) > AI_TOOLS_MAX:
        raise _ai_refuse("tools", f"must be a list of at most {AI_TOOLS_MAX} functions")
    clean, names = [], set()
    for index, tool in enumerate(tools):
        at = f"tools[{index}]"
        if not isinstance(tool, dict) or "name" not in tool:
            raise _ai_refuse(at, "must be {name, description?, parameters?}")
        extra = sorted(set(tool) - {"name", "description", "parameters"})
        if extra:
            raise _ai_refuse(f"{at}.{extra[0]}", "unknown field (name, description, parameters)")
        name = tool["name"]
        if not isinstance(name, str) or not AI_TOOL_NAME_PATTERN.fullmatch(name):
            raise _ai_refuse(f"{at}.name", "must be 1-64 characters of [A-Za-z0-9_-]")
        if name in names:
            raise _ai_refuse(f"{at}.name", f"{name!r} is given twice")
        names.add(name)
        description = tool.get("description")
        if description is not None and (
            not isinstance(description, str) or len(description) > AI_TOOL_DESCRIPTION_MAX
        ):
            raise _ai_refuse(
                f"{at}.description",
                f"must be a text of at most {AI_TOOL_DESCRIPTION_MAX} characters",
            )
        parameters = tool.get("parameters")
        if parameters is None:
            parameters = {"type": "object", "properties": {}}
        if not isinstance(parameters, dict) or parameters.get("type") != "object":
            raise _ai_refuse(f"{at}.parameters", 'must be a JSON Schema {"type": "object", …}')
        try:
            size = len(json.dumps(parameters, allow_nan=False).encode())
        except (TypeError, ValueError):
            raise _ai_refuse(f"{at}.parameters", "must be JSON") from None
        if size > AI_TOOL_PARAMETERS_MAX_BYTES:
            raise _ai_refuse(f"{at}.parameters", f"at most {AI_TOOL_PARAMETERS_MAX_BYTES} bytes")
        entry: dict[str, Any] = {"name": name, "parameters": parameters}
        if description:
            entry["description"] = description
        clean.append(entry)
    return clean or None


def check_ai_chat(params: dict[str, Any]) -> dict[str, Any]:
    """``ai.chat``'s params (already through ``check_params``) checked to the last part, with the
    same message on both sides: ``InvalidParams`` naming the field (``messages[2].content[1]:
    images go in user messages only``). Returns them canonical: ``messages`` (each ``{role,
    content}`` + ``tool_calls`` with ``arguments`` as JSON text, or ``tool_call_id``),
    ``tools`` (None or ``[{name, description?, parameters}]``), ``max_tokens``,
    ``temperature``, ``stream_to``, and ``image_ids`` (the media ids of the image parts, in
    order)."""
    messages = params.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= AI_MESSAGES_MAX:
        raise _ai_refuse("messages", f"must be a list of 1-{AI_MESSAGES_MAX} messages")
    clean, call_ids, images = [], set(), 0
    for index, message in enumerate(messages):
        checked, count = _ai_message(message, f"messages[{index}]", call_ids)
        clean.append(checked)
        images += count
    if images > AI_IMAGES_MAX:
        raise _ai_refuse("messages", f"at most {AI_IMAGES_MAX} images in one request")
    image_ids = [
        part["media_id"]
        for message in clean
        if isinstance(message["content"], list)
        for part in message["content"]
        if part["type"] == "image"
    ]
    return {
        "messages": clean,
        "tools": _ai_tools(params.get("tools")),
        "max_tokens": params.get("max_tokens") or AI_DEFAULT_MAX_TOKENS,
        "temperature": params.get("temperature"),
        "stream_to": params.get("stream_to"),
        "image_ids": image_ids,
    }


def ai_prompt_chars(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
    """The characters a request sends the model: every text, tool call and tool spec."""
    chars = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(part["text"]) for part in content if part["type"] == "text")
        for tool_call in message.get("tool_calls") or []:
            chars += len(tool_call["name"]) + len(tool_call["arguments"])
    if tools:
        chars += len(json.dumps(tools, separators=(",", ":")))
    return chars


def ai_tokens(chars: int) -> int:
    """The tokens ``chars`` characters count for when the model reports none: chars / 4."""
    return -(-chars // AI_CHARS_PER_TOKEN)


def ai_estimate(request: dict[str, Any]) -> int:
    """The tokens a checked request (``check_ai_chat``) may cost at most, what the budgets are
    checked against before it starts: its prompt characters / 4, ``AI_IMAGE_TOKENS`` per
    image, plus ``max_tokens``."""
    prompt = ai_tokens(ai_prompt_chars(request["messages"], request["tools"]))
    return prompt + AI_IMAGE_TOKENS * len(request["image_ids"]) + request["max_tokens"]


# Privacy-mode routing, chat history and tools (issue 20, section C). An app hears only the
# messages addressed to it (``sdk.addressing``: ``message.received``); it reads a chat's history
# only once a group admin granted it ``messages.read_history`` there; and it may call the
# read-only tools the other apps of the chat declare (manifest ``tools``, ``@app.tool``).
HISTORY_LIMIT_MAX = 200  # messages one messages.history call answers at most
HISTORY_LIMIT_DEFAULT = 50
HISTORY_GRANT = "messages.read_history"  # the per-conversation grant messages.history needs
HISTORY_NOT_GRANTED = (
    "this chat has not let the app read its history: a group admin (in a direct chat, either "
    "person) grants it with PUT /api/v1/conversations/{conversation_id}/apps/{app_id}/grants/"
    "messages.read_history"
)
TOOL_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")  # a tool's name in the manifest
TOOLS_MAX = 16  # tools one manifest may declare
TOOL_DESCRIPTION_MAX = 1000
TOOL_PARAMETERS_MAX_BYTES = 8 * 1024  # a tool's parameters schema, compact JSON
TOOL_ARGUMENTS_MAX_BYTES = 16 * 1024  # the arguments of one apps.call_tool
TOOL_RESULT_MAX_BYTES = 64 * 1024  # what a tool answers as its result, compact JSON
# A ``tool`` invocation reads, never acts: these are the only capabilities it may call (the
# runtime's own ``app.setup`` included); anything else is ``permission_denied``, even when
# the manifest lists it. The one card a tool may answer is posted by the host, not the tool.
TOOL_CAPABILITIES = frozenset(
    {"storage.get", "storage.find", "http.fetch", "users.profile", "app.setup"}
)
APP_ID_PARAM = {
    "type": "string",
    "pattern": r"^[a-z][a-z0-9_-]{1,31}$",
    "description": "an app id (1-32 characters of [a-z0-9_-])",
}
_ROUTE: tuple[Capability, ...] = (
    _capability(
        "messages.history",
        "The conversation's messages, oldest first — only once a group admin (in a direct "
        "chat, either person; in a service chat, its person) granted this app "
        f"`{HISTORY_GRANT}` in this chat, else `history_not_granted` → `{{messages: [{{id, "
        "text, sender, sender_name, at}], from_seq, to_seq, has_more}`: the newest `limit` "
        "before `before` (a seq), or with `since_read` those after the invoking user's last "
        "read message (what they missed; the newest `limit` of them). `sender` is a per-app "
        "user id (`app:<id>` for an app's bot), `at` epoch ms; only what the invoking user "
        "can see (nothing before they joined, nothing recalled or deleted for them); "
        "`has_more`: older messages in range were left out.",
        _params(
            {},
            {
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": HISTORY_LIMIT_MAX,
                    "default": HISTORY_LIMIT_DEFAULT,
                    "description": f"an integer from 1 to {HISTORY_LIMIT_MAX}",
                },
                "before": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "a seq: only messages before it",
                },
                "since_read": {
                    "type": "boolean",
                    "default": False,
                    "description": "true: only what the invoking user has not read yet",
                },
            },
        ),
        errors=("history_not_granted",),
        conversation=True,
        user=True,
    ),
    _capability(
        "apps.tools",
        "The read-only tools of the other apps this conversation has (manifest `tools`) → "
        "`{tools: [{app_id, name, description, parameters}]}`.",
        _params({}),
        conversation=True,
    ),
    _capability(
        "apps.call_tool",
        "Invoke another app's read-only tool as the same user in the same conversation (the "
        "tool's own 3 s deadline; it may only read: storage.get/find, http.fetch, "
        "users.profile) → `{result, message_id}`: when the tool answered a card, the host "
        "posted it in the conversation as the *tool app's* card (its buttons go to that app, "
        "and only a person's tap does anything); `message_id` is null otherwise.",
        _params(
            {
                "app_id": APP_ID_PARAM,
                "name": {
                    "type": "string",
                    "pattern": TOOL_NAME_PATTERN.pattern,
                    "description": "a tool name (1-48 characters of [a-z0-9_])",
                },
            },
            {
                "arguments": {
                    "type": "object",
                    "default": {},
                    "description": "a JSON object valid against the tool's parameters, of at "
                    f"most {TOOL_ARGUMENTS_MAX_BYTES} bytes",
                },
            },
        ),
        errors=("unknown_tool", "app_not_installed", "tool_failed"),
        conversation=True,
        user=True,
    ),
)


CAPABILITIES: dict[str, Capability] = {
    capability.name: capability
    for capability in (
        *_TABLE,
        *_TIMERS,
        *_SERVICE_STORAGE,
        *_SERVICE_MONEY,
        *_SERVICE_CHATS_AND_CALLS,
        *_APP_SETUP,
        *_WEB_VIEWS,
        *_CREDENTIALS,
        *_WEBHOOKS,
        *_STREAMS,
        *_AI,
        *_ROUTE,
    )
}


def _param_cell(schema: dict[str, Any]) -> str:
    required = schema.get("required", [])
    cells = []
    for name, prop in schema["properties"].items():
        mark = "" if name in required else "?"
        default = prop.get("default")
        default = f"; default `{json.dumps(default)}`" if default is not None else ""
        cells.append(f"`{name}`{mark} ({prop['description']}{default})")
    if schema.get("oneOf"):
        cells.append(
            "exactly one of " + " or ".join(f"`{c['required'][0]}`" for c in schema["oneOf"])
        )
    return "; ".join(cells) or "—"


def markdown_table() -> str:
    """The capability table of PROTOCOL.md and docs/sdk.md, made from ``CAPABILITIES``
    (``python -m sdk.capabilities`` prints it): method, params (``?``: optional), what it does
    and answers, scope, errors beyond the common ones."""
    lines = [
        "| method | params (besides `call_id`) | does → result | scope | errors |",
        "|---|---|---|---|---|",
    ]
    for capability in CAPABILITIES.values():
        scope = f"`{capability.scope}`" if capability.scope else "—"
        errors = ", ".join(f"`{code}`" for code in capability.errors) or "—"
        lines.append(
            f"| `{capability.name}` | {_param_cell(capability.params)} | {capability.summary} "
            f"| {scope} | {errors} |"
        )
    return "\n".join(lines) + "\n"
