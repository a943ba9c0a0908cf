"""The capability contract (``sdk.capabilities``) on its own, and the simulator answering every
case of it; the same cases against the host are in tests/miniapps/test_capability_contract.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from sdk import App
from sdk.capabilities import (
    CAPABILITIES,
    COMMON_ERRORS,
    FIND_LIMIT_MAX,
    MAX_EVENT_DEPTH,
    SCOPES,
    Capability,
    check_emit,
    check_fetch_target,
    check_params,
    check_refund_terms,
    expand_reply,
    markdown_table,
)
from sdk.errors import (
    HostError,
    InvalidParams,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    UnknownMethod,
)
from sdk.manifest import SCHEMA_DIR, capabilities
from sdk.simulator import Simulator
from tests.sdk.capability_cases import (
    CARD,
    INVALID,
    PNG_UPLOAD,
    UNKNOWN_MEDIA,
    VALID,
    all_cases,
    resolve,
)

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = {
    "id": "contract",
    "name": "Contract",
    "version": "1.0.0",
    "permissions": capabilities(),
    "commands": [{"name": "contract", "description": "does nothing"}],
    "events": {"emits": ["contract.done"], "accepts": ["webhook.received", "ai.completed"]},
    "http": {"allowed_domains": ["127.0.0.1", "api.example.com"]},
    "timers": ["tick"],
    "webhooks": ["duffel", "stripe.events"],
}
URL = "https://api.example.com/rate"
OFFLINE = {
    "$me": None,
    "$card": "m-1",
    "$version": 0,
    "$url": URL,
    "$media": UNKNOWN_MEDIA,
    "$ephemeral": "e-1",
    "$stream": "m-2",
}


def _card_registry() -> Registry:
    card = json.loads((SCHEMA_DIR / "card.schema.json").read_text())
    return Registry().with_resource(card["$id"], Resource.from_contents(card))


def test_the_table_is_every_capability_of_the_manifest_schema():
    assert sorted(CAPABILITIES) == sorted(capabilities())
    assert len(CAPABILITIES) >= 17  # each capability in the manifest schema, none missing
    assert set(SCOPES) == {"users.profile", "notifications"}
    assert set(COMMON_ERRORS) == {
        "invalid_params",
        "unknown_method",
        "permission_denied",
        "rate_limited",
        "internal_error",
    }
    for name, capability in CAPABILITIES.items():
        assert isinstance(capability, Capability) and capability.name == name
        # A capability's group is the first part of its name (one module of the host each).
        assert capability.group == name.split(".")[0], name
        assert capability.summary and capability.scope in SCOPES | {None}
        assert not set(capability.errors) & set(COMMON_ERRORS), name
        Draft202012Validator.check_schema(capability.params)
        assert all("description" in p for p in capability.params["properties"].values()), name
    assert CAPABILITIES["users.profile"].scope == "users.profile"


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
def test_check_params_agrees_with_the_json_schema(name):
    """What the JSON Schema refuses, check_params refuses; what check_params accepts, the
    schema accepts (check_params adds what a schema cannot say: sizes, filters, URLs)."""
    validator = Draft202012Validator(CAPABILITIES[name].params, registry=_card_registry())
    deferred = name == "payments.refund"  # amount and refund_ref: after the payment is found
    for label, valid, params in all_cases(name):
        params = resolve(params, {**OFFLINE, "$me": "u-1"})
        try:
            check_params(name, params)
            accepted = True
        except HostError as exc:
            assert exc.code in ("invalid_params", "quota_exceeded", "permission_denied"), label
            accepted = False
        if valid:
            assert accepted, label
        if accepted:
            assert deferred or validator.is_valid(params), label
        elif not deferred:
            assert not valid, label


def test_check_params_normalises():
    assert check_params("storage.find", {"call_id": "c-1", "collection": "c"}) == {
        "collection": "c",
        "filter": {},
        "limit": FIND_LIMIT_MAX,
    }
    assert check_params("storage.find", {"collection": "c", "filter": None, "limit": None}) == {
        "collection": "c",
        "filter": {},
        "limit": FIND_LIMIT_MAX,
    }
    assert check_params("http.fetch", {"url": URL, "extra": 1}) == {
        "url": URL,
        "method": "GET",
        "headers": {},
        "body": None,
    }
    paid = {"amount": 1, "currency": "JPY", "description": "  " + "d" * 200 + " "}
    assert check_params("payments.request", {**paid, "order_ref": "o"})["description"] == "d" * 200
    assert check_params("messages.reply_ephemeral", {"card": CARD}) == {"card": CARD}
    first = check_params("storage.find", {"collection": "c"})
    first["filter"]["x"] = 1  # defaults are copies
    assert check_params("storage.find", {"collection": "c"})["filter"] == {}


def test_check_params_refusals_name_the_param():
    with pytest.raises(UnknownMethod):
        check_params("messages.teleport", {})
    with pytest.raises(InvalidParams, match="params must be an object"):
        check_params("messages.send_text", ["hi"])
    with pytest.raises(InvalidParams, match=": text must be a string of 1-4000 characters"):
        check_params("messages.send_text", {"text": " "})
    with pytest.raises(InvalidParams, match=": value is required"):
        check_params("storage.put", {"collection": "c", "key": "k"})
    with pytest.raises(InvalidParams, match=": collection must be 1-64 characters"):
        check_params("storage.get", {"collection": "c\n", "key": "k"})  # no trailing newline
    with pytest.raises(InvalidParams, match=": bad card: "):
        check_params("messages.send_card", {"card": {"text": "no title"}})
    with pytest.raises(QuotaExceeded, match="group state is limited"):
        check_params("group_state.set", {"state": {"x": "x" * 70_000}, "expected_version": 0})
    with pytest.raises(InvalidParams, match=r"filter\.n\.\$regex: operator"):
        check_params("storage.find", {"collection": "c", "filter": {"n": {"$regex": "a"}}})
    with pytest.raises(InvalidParams, match="url must be an http"):
        check_params("http.fetch", {"url": "http://[::1"})
    # payments.refund: the payment is looked at first, then these
    assert check_params("payments.refund", {"payment_id": 7, "amount": 0})["amount"] == 0
    with pytest.raises(InvalidParams, match=": amount must be a whole number"):
        check_refund_terms({"payment_id": "p", "amount": 0})
    assert check_refund_terms({"amount": 5}) == {"amount": 5, "refund_ref": None}


def test_a_reply_expands_to_capability_calls():
    reply = {
        "text": "hi",
        "card": CARD,
        "ephemeral": "psst",
        "update_card": {"message_id": "m-1", "card": CARD},
        "unknown": 1,
    }
    assert expand_reply(reply) == [
        ("messages.send_text", {"text": "hi"}),
        ("messages.send_card", {"card": CARD}),
        ("messages.reply_ephemeral", {"text": "psst"}),
        ("messages.update_card", {"message_id": "m-1", "card": CARD}),
    ]
    assert expand_reply({"ephemeral": CARD, "text": None}) == [
        ("messages.reply_ephemeral", {"card": CARD})
    ]
    for bad in (["hi"], {"update_card": "m-1"}, {"text": 5}, {"card": "x"}, {"ephemeral": 5}):
        with pytest.raises(InvalidParams):
            expand_reply(bad)


def test_emit_and_fetch_targets():
    check_emit(MANIFEST, "contract.done", MAX_EVENT_DEPTH - 1)
    with pytest.raises(RateLimited):
        check_emit(MANIFEST, "contract.done", MAX_EVENT_DEPTH)
    for name in ("contract.other", "payment.succeeded"):
        with pytest.raises(PermissionDenied):
            check_emit(MANIFEST, name, 0)
    target = check_fetch_target(MANIFEST, "https://API.example.com:8443/x?y=1")
    assert (target.scheme, target.host, target.port) == ("https", "api.example.com", 8443)
    assert check_fetch_target(MANIFEST, "http://127.0.0.1/").port == 80
    with pytest.raises(PermissionDenied):
        check_fetch_target(MANIFEST, "https://evil.example.org/")
    with pytest.raises(InvalidParams):
        check_fetch_target(MANIFEST, "file:///etc/passwd")


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
async def test_the_simulator_answers_every_case(name):
    """Valid cases succeed (payments.refund: not_found, there is no payment), invalid ones
    give an error code: the simulator applies the contract."""
    app = App("contract")
    app.command("contract")(lambda ctx: None)
    app.timer("tick")(lambda ctx: None)
    sim = Simulator(app, manifest=MANIFEST)
    sim.fake_http(URL, body="{}")
    alice = sim.user("alice")
    chat = sim.conversation(members=[alice, "bob"])
    _, card = await sim.call_capability(alice, chat, "messages.send_card", {"card": CARD})
    _, upload = await sim.call_capability(alice, chat, "media.upload", PNG_UPLOAD)
    _, shown = await sim.call_capability(alice, chat, "messages.reply_ephemeral", {"card": CARD})
    _, streaming = await sim.call_capability(alice, chat, "messages.stream_start", {})
    values = {
        **OFFLINE,
        "$me": alice.id,
        "$card": card["message_id"],
        "$media": upload["media_id"],
        "$ephemeral": shown["ephemeral_id"],
        "$stream": streaming["message_id"],
    }
    for label, valid, params in all_cases(name):
        outcome, answer = await sim.call_capability(alice, chat, name, resolve(params, values))
        if name in ("payments.refund", "payments.capture", "payments.void"):
            # there is no payment of this app to refund, capture or void
            assert (outcome, answer) == ("error", "not_found") or not valid, label
        elif name == "credentials.revoke":
            # no credential of this app to revoke (an issued one: tests/sdk/test_sim_credentials.py)
            assert (outcome, answer) == ("error", "not_found") or not valid, label
        elif name in ("payments.payout", "payments.request_transfer") and valid:
            # no merchant balance to pay out, no such user to ask
            assert outcome == "error", label
            assert answer in ("not_found", "insufficient_merchant_funds", "same_user"), label
        elif name == "ai.chat" and valid:
            # no model until one is set, as on a fresh server (answers: tests/sdk/test_sim_ai.py)
            assert (outcome, answer) == ("error", "ai_not_configured"), label
        elif name == "messages.history" and valid:
            # the chat never granted its history (granted: test_privacy_routing_simulator.py)
            assert (outcome, answer) == ("error", "history_not_granted"), label
        elif name == "apps.call_tool" and valid:
            # no other app in this chat (tools: tests/miniapps/test_app_tools_simulator.py)
            assert (outcome, answer) == ("error", "app_not_installed"), label
        elif valid:
            assert outcome == "ok", (label, answer)
        if not valid:
            assert outcome == "error", (label, answer)
            expected = set(COMMON_ERRORS) | set(CAPABILITIES[name].errors)
            assert answer in expected, (label, answer)
    assert sim.calls[-1]["method"] == name


async def test_call_capability_has_the_hosts_checks():
    app = App("contract")
    app.command("contract")(lambda ctx: None)
    app.timer("tick")(lambda ctx: None)
    manifest = {**MANIFEST, "permissions": ["messages.send_text", "users.profile"]}
    manifest["webhooks"] = []  # declared webhooks need the webhooks.url permission
    sim = Simulator(app, manifest=manifest, consent={"users.profile": False})
    alice = sim.user("alice")
    chat = sim.conversation(members=[alice])
    assert await sim.call_capability(alice, chat, "storage.get", {}) == (
        "error",
        "permission_denied",
    )
    assert await sim.call_capability(alice, chat, "nope.nope", {}) == ("error", "unknown_method")
    assert await sim.call_capability(alice, chat, "users.profile", {}) == ("error", "scope_denied")
    assert await sim.call_capability(None, None, "messages.send_text", {"text": "x"}) == (
        "error",
        "invalid_params",  # no conversation to post in
    )
    outcome, result = await sim.call_capability(alice, chat, "messages.send_text", {"text": "x"})
    assert outcome == "ok" and sim.messages(chat)[-1]["id"] == result["message_id"]


def test_every_capability_is_documented():
    protocol = (ROOT / "sdk" / "PROTOCOL.md").read_text()
    guide = (ROOT / "docs" / "sdk.md").read_text()
    for name, capability in CAPABILITIES.items():
        assert f"`{name}`" in protocol, name
        assert f"`{name}`" in guide, name
        for code in capability.errors:
            assert f"`{code}`" in protocol, (name, code)


def test_no_case_is_left_without_a_capability():
    assert set(VALID) == set(CAPABILITIES) and set(INVALID) <= set(CAPABILITIES)


def test_the_protocol_table_is_generated_from_the_contract():
    protocol = (ROOT / "sdk" / "PROTOCOL.md").read_text()
    begin = protocol.index("<!-- capabilities:begin")
    start = protocol.index("\n", begin) + 1
    end = protocol.index("<!-- capabilities:end -->")
    assert protocol[start:end] == markdown_table(), "run: python -m sdk.capabilities"
