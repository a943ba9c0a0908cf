"""The capability contract: what each app → host capability takes, its limits, the consent scope
it needs and the errors it may answer — written once, here, and used by both the host and the
simulator, so the simulator is a faithful host by construction (a test walks this table against
both). The host and the simulator keep only the *effects*.

A capability call is answered in this order, by the host and the simulator alike:

1. the ``call_id`` names a live invocation of this app (else ``invalid_params``);
2. the method is a capability (``unknown_method``) in the manifest's ``permissions``
   (``permission_denied``);
3. ``check_params``: the params satisfy ``Capability.params`` (``invalid_params``, or
   ``quota_exceeded`` for sizes), returned normalised with defaults filled;
4. the invocation has the conversation or user the capability needs (``invalid_params``);
5. the user granted ``Capability.scope`` (``scope_denied``);
6. the effect, with its own errors (``Capability.errors``): ``check_emit`` and
   ``check_fetch_target`` are the manifest checks of ``events.emit`` and ``http.fetch``.

Params schemas are a JSON Schema (draft 2020-12) subset: ``type``, ``properties``,
``required``, ``oneOf`` of ``required``, ``minLength``/``maxLength``/``pattern`` (searched,
as JSON Schema does), ``minimum``/``maximum``, ``enum``, ``maxProperties``,
``additionalProperties``, ``default`` and ``$ref`` to the card schema. An optional param given
as ``null`` counts as absent. Each property's ``description`` completes the refusal:
``"text must be a string of 1-4000 characters, not only spaces"``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Collection
from functools import cache
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from sdk._capability_services import CAPABILITIES, markdown_table
from sdk._capability_table import (
    COLLECTION_PATTERN,
    COMMON_ERRORS,
    EVENT_NAME_MAX,
    EVENT_PAYLOAD_MAX_BYTES,
    FIND_LIMIT_MAX,
    FIND_SCAN_MAX,
    FIND_SORT_MAX,
    HTTP_BODY_MAX_BYTES,
    HTTP_HEADERS_MAX,
    HTTP_METHODS,
    MAX_EVENT_DEPTH,
    MESSAGE_ID_MAX,
    PAYMENT_DESCRIPTION_MAX,
    REF_PATTERN,
    SCOPES,
    STATE_MAX_BYTES,
    STORAGE_KEY_MAX,
    STORAGE_QUOTA_BYTES,
    STORAGE_VALUE_MAX_BYTES,
    TEXT_MAX,
    URL_MAX,
    USER_ID_MAX,
    Capability,
)
from sdk.errors import (
    CardError,
    InvalidParams,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    UnknownMethod,
)
from sdk.filters import FilterError, validate_filter
from sdk.manifest import PAYMENT_EVENT_PREFIX, validate_card

__all__ = [
    "CAPABILITIES",
    "COLLECTION_PATTERN",
    "COMMON_ERRORS",
    "EVENT_NAME_MAX",
    "EVENT_PAYLOAD_MAX_BYTES",
    "FIND_LIMIT_MAX",
    "FIND_SCAN_MAX",
    "FIND_SORT_MAX",
    "HTTP_BODY_MAX_BYTES",
    "HTTP_HEADERS_MAX",
    "HTTP_METHODS",
    "MAX_EVENT_DEPTH",
    "MESSAGE_ID_MAX",
    "PAYMENT_DESCRIPTION_MAX",
    "REF_PATTERN",
    "SCOPES",
    "STATE_MAX_BYTES",
    "STORAGE_KEY_MAX",
    "STORAGE_QUOTA_BYTES",
    "STORAGE_VALUE_MAX_BYTES",
    "TEXT_MAX",
    "URL_MAX",
    "USER_ID_MAX",
    "Capability",
    "FetchTarget",
    "check_call",
    "check_emit",
    "check_fetch_target",
    "check_params",
    "check_refund_terms",
    "expand_reply",
    "json_size",
    "markdown_table",
]

# payments.refund answers not_found and not_paid before it looks at the amount (PROTOCOL.md):
# those params are checked by ``check_refund_terms`` once the effect found a paid payment.
_DEFERRED = {"payments.refund": frozenset({"payment_id", "amount", "refund_ref"})}
_TYPES: dict[str, Any] = {
    "string": str,
    "object": dict,
    "array": list,
    "boolean": bool,
    "null": type(None),
}


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON, the measure of every size limit; ``ValueError`` or
    ``TypeError`` when it is not JSON (NaN and infinities are not)."""
    return len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    # JSON Schema patterns are ECMA-262: a final ``$`` matches only at the very end, never
    # before a trailing newline as Python's does.
    return re.compile(re.sub(r"(?<!\\)\$$", r"\\Z", pattern))


def _has_type(value: Any, types: list[str]) -> bool:
    for name in types:
        if name == "integer" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if name == "number" and isinstance(value, int | float) and not isinstance(value, bool):
            return True
        if name in _TYPES and isinstance(value, _TYPES[name]):
            return True
    return False


def _valid(value: Any, schema: dict[str, Any]) -> bool:
    """Whether ``value`` satisfies one property's schema (the subset of the module docstring;
    cards are checked by the caller)."""
    types = schema.get("type")
    if types is not None and not _has_type(value, [types] if isinstance(types, str) else types):
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            return False
        if "pattern" in schema and not _regex(schema["pattern"]).search(value):
            return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return False
        if "maximum" in schema and value > schema["maximum"]:
            return False
    if isinstance(value, dict):
        if len(value) > schema.get("maxProperties", len(value)):
            return False
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not all(_valid(v, extra) for v in value.values()):
            return False
    return True


def _check_property(name: str, schema: dict[str, Any], value: Any) -> Any:
    if "$ref" in schema:  # the card schema: validate_card names the field at fault
        try:
            return validate_card(value)
        except CardError as exc:
            raise InvalidParams(f"bad card: {exc}") from None
    if not _valid(value, schema):
        raise InvalidParams(f"{name} must be {schema['description']}")
    return value


def _check_schema(
    schema: dict[str, Any], params: dict[str, Any], skip: frozenset[str] = frozenset()
) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    required = schema.get("required", [])
    for name, prop in schema["properties"].items():
        value = params.get(name)
        if name in skip:
            clean[name] = value
        elif name in params and (value is not None or name in required):
            clean[name] = _check_property(name, prop, value)
        elif name in required:
            raise InvalidParams(f"{name} is required")
        elif "default" in prop:
            clean[name] = copy.deepcopy(prop["default"])
    choices = schema.get("oneOf")
    if choices and sum(all(k in clean for k in c["required"]) for c in choices) != 1:
        names = " or ".join(c["required"][0] for c in choices)
        raise InvalidParams(f"give {names}, exactly one of them")
    return clean


def check_params(name: str, params: object) -> dict:
    """Validate a call's params against the contract and return them normalised: only the
    capability's params (``call_id`` and unknown keys dropped), defaults filled
    (``storage.find`` ``filter={}`` ``limit=FIND_LIMIT_MAX``; ``http.fetch`` ``method="GET"``
    ``headers={}`` ``body=None``), cards validated with ``sdk.manifest.validate_card``, the
    ``storage.find`` filter with ``sdk.filters.validate_filter``, sizes measured as compact
    JSON, a payment's description trimmed.

    Raises ``UnknownMethod`` for an unknown ``name``, ``InvalidParams``, ``QuotaExceeded``
    (``group_state.set`` state, ``storage.put`` value over their limits) or
    ``PermissionDenied`` — with the same message in the host and the simulator. Does not check
    permissions, consent, the call id, quotas that need stored state, or anything needing I/O.
    """
    capability = CAPABILITIES.get(name)
    if capability is None:
        raise UnknownMethod(f"no capability {name!r}")
    if not isinstance(params, dict):
        raise InvalidParams("params must be an object")
    clean = _check_schema(capability.params, params, _DEFERRED.get(name, frozenset()))
    extra = _EXTRA_CHECKS.get(name)
    if extra is not None:
        extra(clean)
    return clean


def check_call(
    method: str, permissions: Collection[str], params: object
) -> tuple[Capability, dict]:
    """Steps 2 and 3 of a call (module docstring), with the messages both sides give:
    ``UnknownMethod`` unless ``method`` is a capability, ``PermissionDenied`` unless it is in
    ``permissions`` (the manifest's), then ``check_params``. Returns the capability and the
    normalised params."""
    capability = CAPABILITIES.get(method)
    if capability is None:
        raise UnknownMethod(f"no capability {method!r}")
    if method not in permissions:
        raise PermissionDenied(f"{method} is not in this app's manifest permissions")
    return capability, check_params(method, params)


def check_refund_terms(params: dict) -> dict:
    """``payments.refund``'s ``amount`` and ``refund_ref``, checked (``InvalidParams``) once the
    payment was found and is paid — PROTOCOL.md's order of checks: ``not_found``,
    ``not_paid``, then these. Returns ``{"amount", "refund_ref"}`` (``refund_ref`` None when
    not given)."""
    schema = CAPABILITIES["payments.refund"].params
    amount = _check_property("amount", schema["properties"]["amount"], params.get("amount"))
    refund_ref = params.get("refund_ref")
    if refund_ref is not None:
        refund_ref = _check_property("refund_ref", schema["properties"]["refund_ref"], refund_ref)
    return {"amount": amount, "refund_ref": refund_ref}


def _check_state(params: dict) -> None:
    if json_size(params["state"]) > STATE_MAX_BYTES:
        raise QuotaExceeded(f"group state is limited to {STATE_MAX_BYTES} bytes")


def _check_value(params: dict) -> None:
    try:
        size = json_size(params["value"])
    except (TypeError, ValueError):
        raise InvalidParams("value must be JSON") from None
    if size > STORAGE_VALUE_MAX_BYTES:
        raise QuotaExceeded(f"a stored value is limited to {STORAGE_VALUE_MAX_BYTES} bytes")


def _check_filter(params: dict) -> None:
    try:
        validate_filter(params["filter"])
    except FilterError as exc:
        raise InvalidParams(str(exc)) from None


def _check_payload(params: dict) -> None:
    if json_size(params["payload"]) > EVENT_PAYLOAD_MAX_BYTES:
        raise InvalidParams(f"payload is limited to {EVENT_PAYLOAD_MAX_BYTES} bytes")


def _check_fetch(params: dict) -> None:
    _parse_url(params["url"])
    body = params["body"]
    if body is not None and len(body.encode("utf-8", "surrogatepass")) > HTTP_BODY_MAX_BYTES:
        raise InvalidParams(f"body must be text of at most {HTTP_BODY_MAX_BYTES} bytes")


def _trim_description(params: dict) -> None:
    description = params["description"].strip()
    if len(description) > PAYMENT_DESCRIPTION_MAX:
        schema = CAPABILITIES["payments.request"].params["properties"]["description"]
        raise InvalidParams(f"description must be {schema['description']}")
    params["description"] = description


_EXTRA_CHECKS = {
    "group_state.set": _check_state,
    "storage.put": _check_value,
    "storage.find": _check_filter,
    "events.emit": _check_payload,
    "http.fetch": _check_fetch,
    "payments.request": _trim_description,
}

# A Reply's parts, in the order they are applied: key -> capability.
_REPLY_PARTS = (
    ("text", "messages.send_text"),
    ("card", "messages.send_card"),
    ("ephemeral", "messages.reply_ephemeral"),
    ("update_card", "messages.update_card"),
)


def expand_reply(reply: object) -> list[tuple[str, dict]]:
    """The capability calls a Reply (``{text, card, ephemeral, update_card}``) stands for, in
    the order they are made: ``[("messages.send_text", {"text": …}), …]`` (without
    ``call_id``; each is then checked like any call, with its permission). Parts that are
    absent or null are skipped, other keys ignored. ``InvalidParams`` when ``reply`` is not
    an object or a part has the wrong type."""
    if not isinstance(reply, dict):
        raise InvalidParams("a reply must be an object")
    calls: list[tuple[str, dict]] = []
    for key, method in _REPLY_PARTS:
        value = reply.get(key)
        if value is None:
            continue
        if key == "text" and not isinstance(value, str):
            raise InvalidParams("reply.text must be a string")
        if key in ("card", "update_card") and not isinstance(value, dict):
            raise InvalidParams(f"reply.{key} must be an object")
        if key == "ephemeral":  # a text, or a card
            if not isinstance(value, str | dict):
                raise InvalidParams("reply.ephemeral must be a string or a card")
            params = {"text": value} if isinstance(value, str) else {"card": value}
        elif key == "update_card":
            params = dict(value)
        else:
            params = {key: value}
        calls.append((method, params))
    return calls


def check_emit(manifest: dict, name: str, depth: int) -> None:
    """May an invocation ``depth`` hops away from a user's action emit the event ``name``?
    ``PermissionDenied`` for ``payment.*`` (only the host sends those) or a name not in the
    manifest's ``events.emits``; ``RateLimited`` from ``MAX_EVENT_DEPTH`` hops on (events may
    not cascade forever)."""
    if name.startswith(PAYMENT_EVENT_PREFIX):
        raise PermissionDenied("payment.* events come only from the host")
    if name not in (manifest.get("events") or {}).get("emits", []):
        raise PermissionDenied(f"{name!r} is not declared in events.emits")
    if depth >= MAX_EVENT_DEPTH:
        raise RateLimited("events may not cascade this deep")


class FetchTarget(NamedTuple):
    """Where an ``http.fetch`` goes: the URL, its scheme, host name (lower case) and port."""

    url: str
    scheme: str
    host: str
    port: int


def _parse_url(url: str) -> FetchTarget:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidParams("url must be an http(s) URL") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidParams("url must be an http(s) URL")
    return FetchTarget(url, parts.scheme, host, port or (443 if parts.scheme == "https" else 80))


def check_fetch_target(manifest: dict, url: str) -> FetchTarget:
    """Where ``url`` goes, if this app may go there: ``InvalidParams`` unless it is an
    http(s) URL with a host name, ``PermissionDenied`` unless that name is listed exactly in
    the manifest's ``http.allowed_domains``. (The host then also refuses names that resolve to
    internal addresses, in production.)"""
    target = _parse_url(url)
    if target.host not in (manifest.get("http") or {}).get("allowed_domains", []):
        raise PermissionDenied(f"{target.host} is not in this app's http.allowed_domains")
    return target


if __name__ == "__main__":
    print(markdown_table(), end="")
