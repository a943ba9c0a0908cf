"""The capabilities of services (issue 14 on), one tuple per area so each is added on its own
— timers, service storage, money, service chats and calls, app setup, web views, credentials —
and ``CAPABILITIES``: the core table of ``sdk._capability_table`` followed by these, with the
markdown table made from it. Import it all from ``sdk.capabilities``; it lives apart only to
keep each file short to read."""

from __future__ import annotations

import json
import re
from typing import Any

from sdk._capability_ai import (
    _AI,
    _ROUTE,
    _STREAMS,
)
from sdk._capability_ai import (  # re-exported: the contract's names live here too
    AI_CHAT_PERMISSION as AI_CHAT_PERMISSION,
)
from sdk._capability_ai import (
    AI_DEFAULT_MAX_TOKENS as AI_DEFAULT_MAX_TOKENS,
)
from sdk._capability_ai import (
    AI_EVENT as AI_EVENT,
)
from sdk._capability_ai import (
    AI_EVENT_PREFIX as AI_EVENT_PREFIX,
)
from sdk._capability_ai import (
    AI_IMAGE_TOKENS as AI_IMAGE_TOKENS,
)
from sdk._capability_ai import (
    AI_NOT_CONFIGURED as AI_NOT_CONFIGURED,
)
from sdk._capability_ai import (
    AI_RUNNING_MAX as AI_RUNNING_MAX,
)
from sdk._capability_ai import (
    AI_VISION_UNSUPPORTED as AI_VISION_UNSUPPORTED,
)
from sdk._capability_ai import (
    HISTORY_GRANT as HISTORY_GRANT,
)
from sdk._capability_ai import (
    HISTORY_NOT_GRANTED as HISTORY_NOT_GRANTED,
)
from sdk._capability_ai import (
    STREAM_IDLE_MS as STREAM_IDLE_MS,
)
from sdk._capability_ai import (
    STREAM_NOT_FOUND as STREAM_NOT_FOUND,
)
from sdk._capability_ai import (
    STREAM_NOT_STREAMING as STREAM_NOT_STREAMING,
)
from sdk._capability_ai import (
    STREAM_TEXT_MAX as STREAM_TEXT_MAX,
)
from sdk._capability_ai import (
    STREAM_TEXT_TOO_LONG as STREAM_TEXT_TOO_LONG,
)
from sdk._capability_ai import (
    TOOL_ARGUMENTS_MAX_BYTES as TOOL_ARGUMENTS_MAX_BYTES,
)
from sdk._capability_ai import (
    TOOL_CAPABILITIES as TOOL_CAPABILITIES,
)
from sdk._capability_ai import (
    TOOL_PARAMETERS_MAX_BYTES as TOOL_PARAMETERS_MAX_BYTES,
)
from sdk._capability_ai import (
    TOOL_RESULT_MAX_BYTES as TOOL_RESULT_MAX_BYTES,
)
from sdk._capability_ai import (
    ai_estimate as ai_estimate,
)
from sdk._capability_ai import (
    ai_prompt_chars as ai_prompt_chars,
)
from sdk._capability_ai import (
    ai_tokens as ai_tokens,
)
from sdk._capability_ai import (
    check_ai_chat as check_ai_chat,
)
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
