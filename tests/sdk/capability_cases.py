"""Params cases for every capability of ``sdk.capabilities``: valid ones and invalid ones, some
written by hand, the rest generated from each capability's params schema (each required param
left out, each param of a wrong type, each limit crossed by one).

Shared by ``tests/sdk/test_capabilities.py`` (the contract alone) and
``tests/miniapps/test_capability_contract.py`` (the simulator against the host). A case may hold
placeholders that each side resolves against its own world before the call: ``"$card"`` (a card
the app posted in the conversation), ``"$version"`` (the group state's current version),
``"$me"`` (the invoker's per-app id), ``"$url"`` (a URL the app may fetch and that answers),
``"$media"`` (an image the app uploaded: ``PNG``).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from sdk._capability_services import STREAM_TEXT_MAX
from sdk.capabilities import (
    CAPABILITIES,
    EVENT_PAYLOAD_MAX_BYTES,
    HTTP_HEADERS_MAX,
    STATE_MAX_BYTES,
    STORAGE_VALUE_MAX_BYTES,
)
from sdk.media import MEDIA_UPLOAD_MAX_BYTES, encode_upload

PLACEHOLDERS = ("$card", "$version", "$me", "$url", "$media", "$ephemeral")


def png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (200, 30, 60)) -> bytes:
    """A small valid RGB PNG, made without Pillow."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = png()
PNG_UPLOAD = {"data": encode_upload(PNG), "content_type": "image/png", "name": "dot.png"}
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>'
UNKNOWN_MEDIA = "0123456789abcdef01234567"  # a media id nobody uploaded
CARD = {"title": "Lunch?", "text": "Vote", "buttons": [{"action_id": "vote", "label": "Pizza"}]}
# A filter far past every bound, yet small enough to travel on one protocol line.
WIDE_OR = {"$or": [{"n": i} for i in range(10_000)]}

VALID: dict[str, list[dict[str, Any]]] = {
    "messages.send_text": [{"text": "hello"}, {"text": "x" * 4000}],
    "messages.send_card": [{"card": CARD}, {"card": {"title": "Plain"}}],
    "messages.reply_ephemeral": [
        {"text": "only you"},
        {"card": {"title": "Only you"}},
        {"card": CARD},  # with buttons: kept for presses, answered {ephemeral_id}
    ],
    "messages.update_card": [
        {"message_id": "$card", "card": {"title": "v2"}},
        {"message_id": "$ephemeral", "card": {"title": "Only you, v2"}},
    ],
    "group_state.get": [{}],
    "group_state.set": [{"state": {"n": 1}, "expected_version": "$version"}],
    "users.profile": [{}],
    "storage.get": [{"collection": "c", "key": "k"}, {"collection": "c.2_x-y", "key": "none"}],
    "storage.put": [
        {"collection": "c", "key": "k", "value": {"n": 1}},
        {"collection": "c", "key": "null", "value": None},
        {"collection": "c", "key": "list", "value": [1, "two", {"three": 3}]},
    ],
    "storage.delete": [{"collection": "c", "key": "gone"}],
    "storage.find": [
        {"collection": "c"},
        {"collection": "c", "filter": None, "limit": None},
        {"collection": "c", "filter": {"n": {"$gte": 1}, "$or": [{"a": 1}, {"b": 2}]}, "limit": 5},
    ],
    "notifications.send": [{"user_id": "$me", "text": "hi"}],
    "events.emit": [{"name": "contract.done", "payload": {"order": "o-1"}}],
    "http.fetch": [
        {"url": "$url"},
        {"url": "$url", "method": "POST", "headers": {"X-Test": "1"}, "body": "hi"},
    ],
    "payments.request": [
        {"amount": 1250, "currency": "USD", "description": "A mug", "order_ref": "o-1"},
    ],
    "payments.refund": [{"payment_id": "pay-404", "amount": 100}],
    "media.upload": [
        PNG_UPLOAD,
        {"data": encode_upload(b"hello"), "content_type": "text/plain", "kind": "file"},
        {"data": encode_upload(b"just words"), "content_type": "text/plain", "name": None},
    ],
}
# A card showing the app's own upload, wherever a card goes.
VALID["messages.send_card"].append({"card": {"title": "Mug", "image": "$media"}})
VALID["messages.update_card"].append(
    {"message_id": "$card", "card": {"title": "v3", "image": "$media"}}
)
VALID["notifications.send"].append({"user_id": "$me", "card": {"title": "Mug", "image": "$media"}})
VALID["messages.reply_ephemeral"].append({"card": {"title": "Mug", "image": "$media"}})

INVALID: dict[str, list[dict[str, Any]]] = {
    "messages.send_text": [{"text": "   "}, {"text": "x" * 4001}],
    "messages.send_card": [
        {"card": {"title": "x", "buttons": [{"action_id": "bad id!", "label": "x"}]}},
        {"card": {"title": "x", "colour": "red"}},
        {"card": {"title": "x", "buttons": [{"action_id": "a", "label": "b"}] * 11}},
        {"card": {"title": "x", "image": UNKNOWN_MEDIA}},
        {"card": {"title": "x", "image": "0123456789ABCDEF01234567"}},
        {"card": {"title": "x", "image": "http://example.com/a.png"}},
    ],
    "messages.reply_ephemeral": [
        {},
        {"text": "a", "card": {"title": "b"}},
        {"card": "hi"},
        {"card": {"title": "x", "image": UNKNOWN_MEDIA}},
    ],
    "messages.update_card": [
        {"message_id": "m-does-not-exist", "card": {"title": "v2"}},
        {"message_id": "$card", "card": 5},
        {"message_id": "$card", "card": {"title": "x", "image": UNKNOWN_MEDIA}},
    ],
    "group_state.set": [
        {"state": {}, "expected_version": 987654},
        {"state": {"big": "x" * STATE_MAX_BYTES}, "expected_version": "$version"},
        {"state": {}, "expected_version": True},
    ],
    "storage.get": [{"collection": "bad name", "key": "k"}, {"collection": "a/b", "key": "k"}],
    "storage.put": [
        {"collection": "c", "key": "k", "value": "x" * STORAGE_VALUE_MAX_BYTES},
        {"collection": "c", "key": "k", "value": float("nan")},
        {"collection": "c", "key": "k"},
    ],
    "storage.find": [
        {"collection": "c", "filter": {"$where": "sleep(100)"}},
        {"collection": "c", "filter": {"n": {"$regex": "^(a+)+$"}}},
        {"collection": "c", "filter": {"n": {"$in": list(range(101))}}},
        {"collection": "c", "filter": WIDE_OR},
        {"collection": "c", "filter": []},
        {"collection": "c", "limit": 7.5},
    ],
    "notifications.send": [
        {"user_id": "u-nobody", "text": "hi"},
        {"user_id": "$me", "text": ""},
        {"user_id": "$me", "card": {"title": "x", "image": UNKNOWN_MEDIA}},
    ],
    "media.upload": [
        {"data": encode_upload(b"not an image"), "content_type": "image/png"},
        {"data": encode_upload(b"hello"), "content_type": "text/plain", "kind": "image"},
        {"data": encode_upload(SVG), "content_type": "image/svg+xml"},
        {"data": encode_upload(PNG[:40]), "content_type": "image/png"},
        {"data": encode_upload(b"hello"), "content_type": "audio/ogg"},
        {"data": encode_upload(b"hello"), "content_type": "text/plain", "kind": "voice"},
        {"data": "", "content_type": "image/png"},
        {"data": "not base64!", "content_type": "image/png"},
        {"data": encode_upload(PNG)[:-2], "content_type": "image/png"},  # bad padding
        {"data": encode_upload(b"x" * (MEDIA_UPLOAD_MAX_BYTES + 1)), "content_type": "text/plain"},
        {"data": encode_upload(b"x"), "content_type": "text/plain", "kind": "video"},
    ],
    "events.emit": [
        {"name": "other.thing", "payload": {}},
        {"name": "payment.succeeded", "payload": {}},
        {"name": "contract.done", "payload": [1]},
        {"name": "contract.done", "payload": {"x": "x" * EVENT_PAYLOAD_MAX_BYTES}},
    ],
    "http.fetch": [
        {"url": "ftp://127.0.0.1/file"},
        {"url": "https://evil.example.org/"},
        {"url": "not a url"},
        {"url": "$url", "method": "get"},
        {"url": "$url", "headers": {"X-Number": 1}},
        {"url": "$url", "headers": {f"X-{i}": "v" for i in range(HTTP_HEADERS_MAX + 1)}},
    ],
    "payments.request": [
        {"amount": 1250, "currency": "usd", "description": "A mug", "order_ref": "o-2"},
        {"amount": 1250, "currency": "USD", "description": "d" * 201, "order_ref": "o-2"},
        {"amount": 1250, "currency": "USD", "description": "A mug", "order_ref": "o 2"},
        {"amount": 12.5, "currency": "USD", "description": "A mug", "order_ref": "o-2"},
    ],
    "payments.refund": [
        {"payment_id": 7, "amount": 100},
        {"payment_id": "pay-404", "amount": 0},
        {"payment_id": "pay-404", "amount": 100, "refund_ref": "bad ref"},
    ],
}

# A value of each JSON type, to give a param one its schema does not allow.
_SAMPLES: dict[str, Any] = {
    "string": "text",
    "integer": 12345,
    "boolean": True,
    "array": [1],
    "object": {"a": 1},
    "null": None,
}


def _types(schema: dict) -> list[str]:
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if "integer" in types:
        types.append("number")
    return types


def generated_invalid(name: str) -> list[tuple[str, dict[str, Any]]]:
    """Invalid params derived from the schema of capability ``name``, each from its first valid
    case: ``(label, params)``."""
    schema = CAPABILITIES[name].params
    base = VALID[name][0]
    cases: list[tuple[str, dict[str, Any]]] = []
    for required in schema.get("required", []):
        cases.append((f"{required} missing", {k: v for k, v in base.items() if k != required}))
    for prop, rules in schema["properties"].items():

        def with_value(value: Any, prop: str = prop) -> dict[str, Any]:
            return {**base, prop: value}

        if "$ref" in rules:
            cases.append((f"{prop} not a card", with_value(12345)))
            continue
        if "type" not in rules:
            continue  # any JSON: no wrong type
        types = _types(rules)
        for kind, sample in _SAMPLES.items():
            if kind not in types and not (kind == "integer" and "number" in types):
                cases.append((f"{prop} of type {kind}", with_value(sample)))
                break
        if "maxLength" in rules:
            cases.append((f"{prop} too long", with_value("x" * (rules["maxLength"] + 1))))
        if rules.get("minLength", 0) > 0:
            cases.append((f"{prop} empty", with_value("")))
        if rules.get("pattern") == r"\S":
            cases.append((f"{prop} only spaces", with_value("   ")))
        if "minimum" in rules:
            cases.append((f"{prop} below minimum", with_value(rules["minimum"] - 1)))
        if "maximum" in rules:
            cases.append((f"{prop} above maximum", with_value(rules["maximum"] + 1)))
        if "enum" in rules:
            cases.append((f"{prop} not in enum", with_value("NOT-ONE-OF-THEM")))
        if "maxProperties" in rules:
            many = {f"k{i}": "v" for i in range(rules["maxProperties"] + 1)}
            cases.append((f"{prop} too many properties", with_value(many)))
    return cases


def all_cases(name: str) -> list[tuple[str, bool, dict[str, Any]]]:
    """Every case of capability ``name``: ``(label, valid, params)``."""
    cases = [(f"valid {i}", True, params) for i, params in enumerate(VALID[name])]
    cases += [(f"invalid {i}", False, params) for i, params in enumerate(INVALID.get(name, []))]
    cases += [(label, False, params) for label, params in generated_invalid(name)]
    return cases


def resolve(params: Any, values: dict[str, Any]) -> Any:
    """``params`` with each placeholder string replaced by ``values[placeholder]``."""
    if isinstance(params, dict):
        return {key: resolve(value, values) for key, value in params.items()}
    if isinstance(params, list):
        return [resolve(value, values) for value in params]
    if isinstance(params, str) and params in PLACEHOLDERS:
        return values[params]
    return params


# app.setup (issue 14: app configuration and roles): no params (refusals: call_id, permission).
VALID["app.setup"] = [{}]

# --- service storage (issue 14): storage.update, storage.incr, storage.find sort/after ------
# Cases run in order in one world: the valid ones first, so a document they create is there
# for the invalid ones. Sorting and unique fields need the manifest's storage.indexes: they
# are tested in tests/sdk/test_service_storage.py and tests/miniapps/test_service_storage.py.
VALID["storage.update"] = [
    {"collection": "c", "key": "doc", "set": {"n": 1}, "upsert": True, "expected_version": 0},
    {"collection": "c", "key": "doc", "set": {"m": 2}, "unset": ["n"]},
    {"collection": "c", "key": "doc", "set": {"n": 3}, "expected_version": 2},
]
INVALID["storage.update"] = [
    {"collection": "c", "key": "doc", "set": {"n": 4}, "expected_version": 987654},  # conflict
    {"collection": "c", "key": "missing", "set": {"n": 1}},  # not_found
    {"collection": "c", "key": "doc", "set": {"big": "x" * STORAGE_VALUE_MAX_BYTES}},
    {"collection": "c", "key": "doc", "set": {"n": 1}, "unset": ["n"]},
    {"collection": "c", "key": "doc", "unset": [7]},
    {"collection": "c", "key": "doc", "set": {"n": 1}, "expected_version": -1},
]
VALID["storage.incr"] = [
    {"collection": "c", "key": "stock", "field": "left", "delta": 2},
    {"collection": "c", "key": "stock", "field": "left", "delta": -1},
    {"collection": "c", "key": "stock", "field": "left", "delta": 5, "min": -3, "max": 6},
    {"collection": "c", "key": "stock", "field": "left", "delta": 0, "min": None, "max": None},
]
INVALID["storage.incr"] = [
    {"collection": "c", "key": "stock", "field": "left", "delta": -7},  # limit_reached
    {"collection": "c", "key": "stock", "field": "left", "delta": 1, "max": 6},
    {"collection": "c", "key": "stock", "field": "left", "delta": 1, "min": 5, "max": 4},
    {"collection": "c", "key": "stock", "field": "a.b", "delta": 1},
    {"collection": "c", "key": "stock", "field": "left", "delta": 1.5},
    {"collection": "c", "key": "stock", "field": "left", "delta": 2**53 + 1},
]
VALID["storage.find"] += [
    {"collection": "c", "sort": None, "after": None},
]
INVALID["storage.find"] += [
    {"collection": "c", "sort": {"field": "undeclared"}},
    {"collection": "c", "sort": {"field": "n", "order": "up"}},
    {"collection": "c", "sort": {"field": 3}},
    {"collection": "c", "after": "not-a-cursor"},
    {"collection": "c", "sort": {"field": "n"}, "after": "W251bGwsImFzYyIsbnVsbCwiayJd"},
]

# Service money (issue 14): holds and payouts. Neither side has a hold or a merchant balance
# here, so capture/void answer not_found and a payout insufficient_merchant_funds (the happy
# paths: tests/sdk/test_service_money.py, tests/miniapps/test_service_money.py).
VALID["payments.request"].append(
    {
        "amount": 900,
        "currency": "USD",
        "description": "A hold",
        "order_ref": "o-h",
        "capture": False,
    }
)
VALID["payments.capture"] = [{"payment_id": "pay-404"}, {"payment_id": "pay-404", "amount": 100}]
INVALID["payments.capture"] = [{"payment_id": 7}, {"payment_id": "pay-404", "amount": 0}]
VALID["payments.void"] = [{"payment_id": "pay-404"}]
INVALID["payments.void"] = [{"payment_id": None}]
VALID["payments.payout"] = [
    {"user_id": "$me", "amount": 100, "currency": "USD", "payout_ref": "po-1"},
    {"user_id": "u-nobody", "amount": 100, "currency": "USD", "payout_ref": "po-2"},
]
INVALID["payments.payout"] = [
    {"user_id": "$me", "amount": 100, "currency": "usd", "payout_ref": "po-3"},
    {"user_id": "$me", "amount": 100, "currency": "USD", "payout_ref": "bad ref"},
    {"user_id": "$me", "amount": 1.5, "currency": "USD", "payout_ref": "po-3"},
]

# --- timers (issue 14): timers.schedule, timers.cancel -------------------------------------
# The contract app declares the timer "tick"; every valid timer is an hour or more ahead, so
# none fires during the test. A time is in epoch ms: "at" cases are made at import.
import time as _time  # noqa: E402

from sdk._capability_services import TIMER_MAX_AHEAD_MS, TIMER_PAYLOAD_MAX_BYTES  # noqa: E402

_TIMERS_NOW = int(_time.time() * 1000)
VALID["timers.schedule"] = [
    {"name": "tick", "delay_ms": 3_600_000, "key": "contract-1"},
    {"name": "tick", "delay_ms": 3_600_000, "payload": {"order": 7}},
    {"name": "tick", "at": _TIMERS_NOW + 7_200_000, "key": "contract-2"},
    {"name": "tick", "delay_ms": 5_400_000, "key": "contract-1", "payload": None},  # moves it
]
INVALID["timers.schedule"] = [
    {"name": "undeclared", "delay_ms": 3_600_000},  # unknown_timer
    {"name": "tick", "at": 1},  # invalid_time: past
    {"name": "tick", "delay_ms": TIMER_MAX_AHEAD_MS + 1},  # invalid_time: too far
    {"name": "tick", "at": _TIMERS_NOW + TIMER_MAX_AHEAD_MS + 3_600_000},  # invalid_time
    {"name": "tick"},  # neither at nor delay_ms
    {"name": "tick", "at": _TIMERS_NOW + 7_200_000, "delay_ms": 5},  # both
    {"name": "tick", "delay_ms": 3_600_000, "key": "no spaces"},
    {"name": "tick", "delay_ms": 3_600_000, "payload": {"x": "y" * TIMER_PAYLOAD_MAX_BYTES}},
    {"name": "Tick", "delay_ms": 3_600_000},
]
VALID["timers.cancel"] = [{"key": "contract-2"}, {"key": "contract-2"}, {"key": "never-set"}]
INVALID["timers.cancel"] = [{"key": "no spaces"}, {"key": ""}]

# Service chats and calls (issue 14 items 4, 5). The contract app's user opted in on both sides,
# so a subscription request is "granted". Cases run in order in one world: the valid call rings
# the invoker only, the first invalid one meets it (call_in_progress); the others are refused
# before that check.
VALID["notifications.request_subscription"] = [{}]
VALID["calls.start"] = [{"media": "video", "participant_ids": ["$me"], "title": "Visit"}]
INVALID["calls.start"] = [
    {"media": "audio"},  # call_in_progress: the valid case's call is still ringing
    {"media": "hologram"},
    {"media": "audio", "participant_ids": []},
    {"media": "audio", "participant_ids": ["u-nobody"]},
    {"media": "audio", "participant_ids": "$me"},
    {"media": "audio", "conversation_id": "not-a-chat-of-this-app"},
    # own_chat (a call in the app's own chat): the people the app knows differ between the
    # worlds, so only refusals are compared (the calls: tests/miniapps/test_app_calls.py).
    {"media": "audio", "own_chat": True},
    {"media": "audio", "own_chat": True, "participant_ids": ["$me"]},
    {"media": "audio", "own_chat": True, "participant_ids": ["$me", "u-nobody"]},
    {"media": "audio", "own_chat": True, "participant_ids": ["u-nobody", "u-nobody-else"]},
    {
        "media": "audio",
        "own_chat": True,
        "participant_ids": ["$me", "u-nobody"],
        "conversation_id": "not-a-chat-of-this-app",
    },
]
# (A transfer request between two people the app knows: tests/miniapps/test_service_money.py.)
VALID["payments.request_transfer"] = [
    {
        "from_user_id": "u-nobody",
        "to_user_id": "$me",
        "amount": 500,
        "currency": "USD",
        "transfer_ref": "split-1",
    },
    {
        "from_user_id": "$me",
        "to_user_id": "$me",
        "amount": 500,
        "currency": "USD",
        "transfer_ref": "split-2",
        "note": "dinner",
    },
]
INVALID["payments.request_transfer"] = [
    {"from_user_id": "$me", "to_user_id": "$me", "amount": 5, "currency": "USD",
     "transfer_ref": "bad ref"},
    {"from_user_id": "$me", "to_user_id": "$me", "amount": 5, "currency": "USD",
     "transfer_ref": "split-3", "note": "n" * 201},
]  # fmt: skip

# media.url: a signed address of the app's own upload ("$media"); an id nobody uploaded is
# not_found (a user's or another app's media: tests/miniapps/test_media_url.py).
VALID["media.url"] = [
    {"media_id": "$media"},
    {"media_id": "$media", "thumbnail": True},
    {"media_id": "$media", "thumbnail": None},
]
INVALID["media.url"] = [
    {"media_id": UNKNOWN_MEDIA},  # not_found
    {"media_id": "0123456789ABCDEF01234567"},  # upper case: not a media id
    {"media_id": "../../etc/passwd"},
    {"media_id": "$media", "thumbnail": "yes"},
]

# credentials.* (issue 16): Open Badges 3.0 issued to the invoking user ("$me"); the achievement
# and evidence are checked by sdk.credentials on both sides (the schema subset has no nested
# properties). Revoking a credential the app did not issue is not_found (another app's:
# tests/miniapps/test_credentials.py).
BADGE = {"name": "Contract", "description": "Kept the contract"}
VALID["credentials.issue"] = [
    {"subject_user_id": "$me", "achievement": BADGE},
    {
        "subject_user_id": "$me",
        "achievement": {**BADGE, "id": "contract-1", "criteria": "Answer alike", "image": "$media"},
        "evidence": [{"name": "Run", "narrative": "Both sides answered"}],
    },
]
INVALID["credentials.issue"] = [
    {"subject_user_id": "u-nobody", "achievement": BADGE},  # not_found
    {"subject_user_id": "$me", "achievement": {**BADGE, "image": UNKNOWN_MEDIA}},  # not_found
    {"subject_user_id": "$me", "achievement": {"name": "No description"}},
    {"subject_user_id": "$me", "achievement": {**BADGE, "name": "n" * 201}},
    {"subject_user_id": "$me", "achievement": {**BADGE, "name": "   "}},
    {"subject_user_id": "$me", "achievement": {**BADGE, "colour": "gold"}},
    {"subject_user_id": "$me", "achievement": BADGE, "evidence": []},
    {"subject_user_id": "$me", "achievement": BADGE, "evidence": [{"url": "x"}]},
    {"subject_user_id": "$me", "achievement": BADGE, "evidence": [{}] * 11},
]
# Valid params, but no credential of that id (ids differ between the worlds: revoking an issued
# one is tested on each side on its own) → not_found on both.
VALID["credentials.revoke"] = [{"credential_id": UNKNOWN_MEDIA, "reason": "never issued"}]
INVALID["credentials.revoke"] = [
    {"credential_id": UNKNOWN_MEDIA, "reason": "r" * 501},
    {"credential_id": UNKNOWN_MEDIA, "reason": " "},
]

# webhooks.url (issue 19): the contract app declares the webhooks "duffel" and "stripe.events"
# (tests/miniapps/apps/contract); a URL is compared by its keys only (each side signs with its
# own key). Deliveries: tests/miniapps/test_webhooks_simulator.py and test_webhooks_e2e.py.
VALID["webhooks.url"] = [{"name": "duffel"}, {"name": "stripe.events"}, {"name": "duffel"}]
INVALID["webhooks.url"] = [
    {"name": "github"},  # unknown_webhook
    {"name": "Duffel"},
    {"name": "duffel\n"},
    {"name": "d" * 33},
    {"name": ""},
]

# Streaming messages (issue 20): "$stream" is a streaming message the app started in the
# conversation. Cases run in order in one world: the valid stop stops it, so the invalid cases
# after it meet a stopped stream (not_streaming). The throttled writes, the events and the stop
# from elsewhere: tests/miniapps/test_streams_e2e.py.
PLACEHOLDERS = (*PLACEHOLDERS, "$stream")
VALID["messages.stream_start"] = [{}, {"text": "Thinking…"}, {"text": ""}, {"text": None}]
INVALID["messages.stream_start"] = [{"text": "x" * (STREAM_TEXT_MAX + 1)}]  # text_too_long
VALID["messages.stream_append"] = [
    {"message_id": "$stream", "text": "more"},
    {"message_id": "$stream", "text": " "},
]
INVALID["messages.stream_append"] = [
    {"message_id": "m-does-not-exist", "text": "x"},  # not_found
    {"message_id": "$card", "text": "x"},  # this app's card: not a stream
    {"message_id": "$stream", "text": "x" * STREAM_TEXT_MAX},  # text_too_long (in all)
    {"message_id": "$stream", "text": ""},
]
VALID["messages.stream_stop"] = [{"message_id": "$stream", "text": "The end."}]
INVALID["messages.stream_stop"] = [
    {"message_id": "$stream"},  # not_streaming: stopped by the valid case
    {"message_id": "m-does-not-exist"},  # not_found
    {"message_id": "$stream", "text": "x" * (STREAM_TEXT_MAX + 1)},  # text_too_long
]

# Privacy mode, history and tools (issue 20, section C). The contract's chat never granted the
# app its history (history_not_granted on both sides) and has no other app (apps.tools: none;
# apps.call_tool: app_not_installed). The grant, real tools and their cards:
# tests/miniapps/test_privacy_routing_e2e.py, tests/miniapps/test_app_tools_e2e.py.
VALID["messages.history"] = [{}, {"limit": 10, "since_read": True}, {"before": 5, "limit": 200}]
INVALID["messages.history"] = [
    {"limit": 0},
    {"limit": 201},
    {"limit": 2.5},
    {"before": 0},
    {"since_read": "yes"},
]
VALID["apps.tools"] = [{}]
VALID["apps.call_tool"] = [
    {"app_id": "toolbox", "name": "lookup", "arguments": {"query": "mug"}},
    {"app_id": "toolbox", "name": "lookup"},
]
INVALID["apps.call_tool"] = [
    {"app_id": "contract", "name": "contract"},  # its own code is not a tool
    {"app_id": "Tool Box", "name": "lookup"},
    {"app_id": "toolbox", "name": "Look Up"},
    {"app_id": "toolbox", "name": "lookup", "arguments": ["mug"]},
]

# The platform's model (issue 20, section A). Neither world has a model configured (the
# platform's default), so every well-formed ai.chat answers ai_not_configured on both sides,
# after the same checks of each message, part and tool (invalid_params); ai.cancel of a request
# nobody made is {cancelled: false}. Answers, budgets, images, streaming and cancels:
# tests/miniapps/test_ai_capability.py (host, with the OpenAI-compatible stub) and
# tests/sdk/test_sim_ai.py (simulator).
_ASK = [{"role": "user", "content": "What is the capital of Portugal?"}]
_TOOL_ROUND = [
    {"role": "user", "content": "Price of BTC?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "name": "price", "arguments": '{"symbol": "BTC"}'}],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"price": 42}'},
]
VALID["ai.chat"] = [
    {"messages": _ASK},
    {
        "messages": [{"role": "system", "content": "Be brief."}, *_TOOL_ROUND],
        "tools": [{"name": "price", "description": "A price", "parameters": {"type": "object"}}],
        "max_tokens": 4096,
        "temperature": 0.2,
    },
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "tools": None},
]
INVALID["ai.chat"] = [
    {"messages": []},
    {"messages": [{"role": "robot", "content": "hi"}]},
    {"messages": [{"role": "user", "content": "hi", "colour": "red"}]},
    {"messages": [{"role": "user", "content": "x" * (32 * 1024 + 1)}]},
    {"messages": [{"role": "user", "content": 5}]},
    {"messages": [{"role": "assistant", "content": None}]},
    {"messages": [{"role": "tool", "tool_call_id": "call_9", "content": "orphan"}]},
    {"messages": [{"role": "system", "content": [{"type": "image", "media_id": UNKNOWN_MEDIA}]}]},
    {"messages": [{"role": "user", "content": [{"type": "image", "media_id": "../x"}]}]},
    {"messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]},
    {"messages": [{"role": "user", "content": "hi"}] * 101},
    {"messages": _ASK, "tools": [{"name": "bad name!"}]},
    {"messages": _ASK, "tools": [{"name": "a"}, {"name": "a"}]},
    {"messages": _ASK, "tools": [{"name": "a", "parameters": {"type": "string"}}]},
    {"messages": _ASK, "tools": [{"name": f"t{i}"} for i in range(33)]},
    {"messages": _ASK, "max_tokens": 4097},
    {"messages": _ASK, "temperature": 2.5},
    {"messages": _ASK, "stream_to": "m-does-not-exist"},  # well-formed: ai_not_configured
]
VALID["ai.cancel"] = [{"request_id": "0123456789abcdef01234567"}]
INVALID["ai.cancel"] = [{"request_id": ""}, {"request_id": 7}]
