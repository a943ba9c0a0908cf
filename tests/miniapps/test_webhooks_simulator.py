"""Inbound webhooks in the simulator: ``webhooks.url`` answers a signed, stateless URL bound to
the app, the name, the chat and the person, and ``sim.post_webhook`` delivers to it as the host's
``POST /api/v1/hooks/{token}`` does — 200 once the ``webhook.received`` handler returned, 404
for a token that is not genuine, 410 when the name is no longer declared or the app left the
chat, 413 past 256 KiB, 400 for a body that is not UTF-8, 502 when the handler raised or timed
out. The same rules through the real gateway: test_webhooks_e2e.py."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sdk import App, ManifestError, validate_manifest
from sdk.signing import verify_event
from sdk.simulator import Simulator
from sdk.webhooks import WEBHOOK_BODY_MAX_BYTES, WEBHOOK_HEADERS_MAX, token_of

HOOKS_APP = Path(__file__).resolve().parent / "apps" / "hooks"
MANIFEST: dict[str, Any] = {
    "id": "catcher",
    "name": "Catcher",
    "version": "1.0.0",
    "permissions": ["messages.send_text", "webhooks.url"],
    "commands": [{"name": "hook", "description": "its URL"}],
    "webhooks": ["duffel", "stripe.events"],
    "events": {"emits": [], "accepts": ["webhook.received"]},
}


def catcher(**sim_options: Any) -> tuple[Simulator, list[dict[str, Any]]]:
    """A simulator of an app that keeps every delivery it handled (``ctx`` fields included) and
    answers ``/hook <name>`` with that webhook's URL."""
    app = App("catcher")
    seen: list[dict[str, Any]] = []
    stuck = asyncio.Event()

    @app.command("hook")
    async def hook(ctx):
        return {"text": await ctx.webhook_url(ctx.args[0] if ctx.args else "duffel")}

    @app.event("webhook.received")
    async def received(ctx):
        if ctx.payload["body"] == "hang":
            await stuck.wait()  # never set: the delivery runs into its deadline
        seen.append({"payload": ctx.payload, "user_id": ctx.user_id, "chat": ctx.conversation_id})

    return Simulator(app, manifest=MANIFEST, **sim_options), seen


async def test_the_url_is_signed_stateless_and_bound_to_chat_and_person():
    sim = Simulator(HOOKS_APP)
    alice, bob = sim.user("alice"), sim.user("bob")
    chat, other = sim.conversation([alice, bob]), sim.conversation([alice])
    reply = await sim.command(alice, chat, "/hook")
    url = reply["text"].removeprefix("hooks: ")
    assert url.startswith("https://aetherial.test/api/v1/hooks/")
    # deterministic: the same app, name, chat and person give the same URL
    assert (await sim.command(alice, chat, "/hook"))["text"] == reply["text"]
    outcome, answer = await sim.call_capability(alice, chat, "webhooks.url", {"name": "duffel"})
    assert outcome == "ok" and answer["url"] == url and url.endswith(answer["path"])
    assert answer["path"].startswith("/api/v1/hooks/")
    # another person or another chat: another URL
    assert (await sim.command(bob, chat, "/hook"))["text"] != reply["text"]
    assert (await sim.command(alice, other, "/hook"))["text"] != reply["text"]
    sim.public_url = "https://chat.example.com/"
    assert (await sim.command(alice, chat, "/hook"))["text"] == (
        "hooks: https://chat.example.com" + answer["path"]
    )


async def test_a_delivery_reaches_the_handler_in_the_chat_as_the_person():
    sim = Simulator(HOOKS_APP)
    alice, bob = sim.user("alice"), sim.user("bob")
    chat = sim.conversation([alice, bob])
    url = (await sim.command(alice, chat, "/hook"))["text"].removeprefix("hooks: ")
    headers = {"Content-Type": "application/json", "X-Duffel-Signature": "t=1,v1=ab"}
    assert await sim.post_webhook(url, '{"type": "order.updated"}', headers) == 200
    assert sim.messages(chat)[-1]["text"] == (
        f'hooked duffel: {{"type": "order.updated"}} (by {alice.id}, provider t=1,v1=ab, '
        "signed True)"
    )
    # the path alone works too, and again (at least once: the app sees each delivery)
    assert await sim.post_webhook(token_path(url), "again") == 200
    assert sim.messages(chat)[-1]["text"].startswith("hooked duffel: again")
    assert [d["status"] for d in sim.webhook_deliveries] == [200, 200]


def token_path(url: str) -> str:
    return "/api/v1/hooks/" + str(token_of(url))


async def test_the_payload_headers_and_signature():
    sim, seen = catcher()
    alice = sim.user("alice")
    chat = sim.conversation([alice, "bob"])
    url = (await sim.command(alice, chat, "/hook stripe.events"))["text"]
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Stripe/1.0",
        "Stripe-Signature": "t=1,v1=cd",
        "Cookie": "session=secret",
        "Authorization": "Bearer x",
        "Accept": "*/*",
        **{f"X-Extra-{n:02d}": str(n) for n in range(30)},
    }
    assert await sim.post_webhook(url, "évènement ✓", headers) == 200
    (delivery,) = seen
    payload = delivery["payload"]
    assert delivery["user_id"] == alice.id and delivery["chat"] == chat.id
    assert payload["name"] == "stripe.events" and payload["body"] == "évènement ✓"
    assert payload["received_at"] == sim.now
    kept = payload["headers"]
    assert len(kept) == WEBHOOK_HEADERS_MAX
    assert kept["content-type"] == "application/json" and kept["user-agent"] == "Stripe/1.0"
    assert kept["stripe-signature"] == "t=1,v1=cd"
    assert not {"cookie", "authorization", "accept"} & set(kept)
    assert list(kept)[3:] == [f"x-extra-{n:02d}" for n in range(WEBHOOK_HEADERS_MAX - 3)]
    # the host's signature, with the app's secret, as on every host event
    assert verify_event(sim.secret, payload)
    assert not verify_event(sim.secret, {**payload, "body": "altered"})


async def test_a_token_that_is_not_genuine_is_not_found():
    sim, seen = catcher()
    alice = sim.user("alice")
    chat, other = sim.conversation([alice]), sim.conversation([alice])
    url = (await sim.command(alice, chat, "/hook"))["text"]
    token = str(token_of(url))
    payload_part, mac_part = token.split(".")
    # the same signature on another chat's binding
    parts = json.loads(base64.urlsafe_b64decode(payload_part + "=" * (-len(payload_part) % 4)))
    parts[2] = other.id
    moved = base64.urlsafe_b64encode(json.dumps(parts, separators=(",", ":")).encode())
    forged = [
        f"/api/v1/hooks/{moved.decode().rstrip('=')}.{mac_part}",
        f"/api/v1/hooks/{payload_part}.{mac_part[:-2]}AA",
        "/api/v1/hooks/abc.def",
        "/api/v1/hooks/not-a-token",
        "/api/v1/hooks/",
        "https://aetherial.test/api/v1/other/" + token,
        "",
    ]
    for path in forged:
        assert await sim.post_webhook(path, "x") == 404, path
    # a genuine token of another platform (another key) is not ours
    elsewhere, _ = catcher(secret="another-platform-secret")
    far = elsewhere.user("alice")
    far_url = (await elsewhere.command(far, elsewhere.conversation([far]), "/hook"))["text"]
    assert await sim.post_webhook(far_url, "x") == 404
    assert seen == [] and {d["code"] for d in sim.webhook_deliveries} == {"not_found"}


async def test_an_undeclared_name_is_refused_and_a_dropped_one_is_gone():
    sim, seen = catcher()
    alice = sim.user("alice")
    chat = sim.conversation([alice])
    for name, code in (
        ("github", "unknown_webhook"),
        ("Bad Name", "invalid_params"),
        ("", "invalid_params"),
    ):
        outcome = await sim.call_capability(alice, chat, "webhooks.url", {"name": name})
        assert outcome == ("error", code), name
    assert await sim.call_capability(alice, chat, "webhooks.url", {}) == (
        "error",
        "invalid_params",
    )
    url = (await sim.command(alice, chat, "/hook"))["text"]
    # a new version of the app no longer declares "duffel": its URLs are gone
    sim.manifest["webhooks"].remove("duffel")
    assert await sim.post_webhook(url, "late") == 410
    assert sim.webhook_deliveries[-1] == {"name": "duffel", "status": 410, "code": "gone"}
    assert seen == []


async def test_a_url_is_gone_once_the_app_left_the_chat():
    sim, seen = catcher()
    alice = sim.user("alice")
    chat, other = sim.conversation([alice]), sim.conversation([alice])
    url = (await sim.command(alice, chat, "/hook"))["text"]
    other_url = (await sim.command(alice, other, "/hook"))["text"]
    sim.remove_app(chat)
    assert await sim.post_webhook(url, "x") == 410
    assert await sim.post_webhook(other_url, "x") == 200
    assert [d["chat"] for d in seen] == [other.id]


async def test_without_the_permission_the_url_is_refused():
    app = App("catcher")
    manifest = {
        **copy.deepcopy(MANIFEST),
        "webhooks": [],
        "permissions": ["messages.send_text"],
        "commands": [],
    }
    sim = Simulator(app, manifest=manifest)
    alice = sim.user("alice")
    chat = sim.conversation([alice])
    outcome = await sim.call_capability(alice, chat, "webhooks.url", {"name": "duffel"})
    assert outcome == ("error", "permission_denied")
    # an invocation without a chat or a person cannot bind a URL
    sim, _ = catcher()
    assert await sim.call_capability(None, None, "webhooks.url", {"name": "duffel"}) == (
        "error",
        "invalid_params",
    )


async def test_a_failing_or_hanging_handler_is_502_and_the_sender_retries():
    sim = Simulator(HOOKS_APP)
    alice = sim.user("alice")
    chat = sim.conversation([alice])
    url = (await sim.command(alice, chat, "/hook"))["text"].removeprefix("hooks: ")
    assert await sim.post_webhook(url, "fail") == 502
    assert sim.webhook_deliveries[-1] == {"name": "duffel", "status": 502, "code": "app_failed"}
    assert await sim.post_webhook(url, "retried") == 200  # the provider's retry gets through
    assert sim.messages(chat)[-1]["text"].startswith("hooked duffel: retried")
    hanging, seen = catcher(deadline=0.05)
    bob = hanging.user("bob")
    bob_chat = hanging.conversation([bob])
    hanging_url = (await hanging.command(bob, bob_chat, "/hook"))["text"]
    assert await hanging.post_webhook(hanging_url, "hang") == 502
    assert seen == []


async def test_body_limits():
    sim, seen = catcher()
    alice = sim.user("alice")
    chat = sim.conversation([alice])
    url = (await sim.command(alice, chat, "/hook"))["text"]
    assert await sim.post_webhook(url, "a" * WEBHOOK_BODY_MAX_BYTES) == 200
    assert await sim.post_webhook(url, "a" * (WEBHOOK_BODY_MAX_BYTES + 1)) == 413
    assert await sim.post_webhook(url, "é" * (WEBHOOK_BODY_MAX_BYTES // 2 + 1)) == 413  # bytes
    assert await sim.post_webhook(url, b"\xff\xfe not utf-8") == 400
    assert await sim.post_webhook(url, b"caf\xc3") == 400  # cut mid-character
    # valid UTF-8 that grows six-fold once escaped in JSON: past the event's bound
    assert await sim.post_webhook(url, "\x01" * WEBHOOK_BODY_MAX_BYTES) == 413
    assert await sim.post_webhook(url, "") == 200  # an empty body is a delivery too
    assert [len(d["payload"]["body"]) for d in seen] == [WEBHOOK_BODY_MAX_BYTES, 0]
    codes = [d["code"] for d in sim.webhook_deliveries]
    assert codes == [None, "payload_too_large", "payload_too_large", "invalid_body",
                     "invalid_body", "payload_too_large", None]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"permissions": []}, "webhooks: declaring webhooks needs the 'webhooks.url' permission"),
        ({"events": {"accepts": []}}, "events.accepts: webhooks are delivered as the event"),
        ({"webhooks": ["Duffel"]}, "webhooks[0]: 'Duffel' does not match"),
        ({"webhooks": ["duffel\n"]}, "webhooks[0]: 'duffel\\n' is not 1-32 characters"),
        ({"webhooks": ["d" * 33]}, "webhooks[0]:"),
        ({"webhooks": ["duffel", "duffel"]}, "webhooks: ['duffel', 'duffel'] has non-unique"),
        ({"webhooks": [f"h{n}" for n in range(11)]}, "webhooks: ["),
        ({"webhooks": "duffel"}, "webhooks: 'duffel' is not of type 'array'"),
    ],
)
def test_a_bad_webhooks_manifest_is_refused(changes, expected):
    manifest = {**copy.deepcopy(MANIFEST), **changes}
    with pytest.raises(ManifestError) as refused:
        validate_manifest(manifest)
    assert expected in str(refused.value)


def test_only_the_host_sends_webhook_events():
    manifest = {
        **copy.deepcopy(MANIFEST),
        "id": "webhook",
        "events": {"emits": ["webhook.received"], "accepts": ["webhook.received"]},
    }
    with pytest.raises(ManifestError, match=r"webhook\.\* events come only from the host"):
        validate_manifest(manifest)
    assert validate_manifest({**MANIFEST, "webhooks": []})["webhooks"] == []
    plain = {k: v for k, v in MANIFEST.items() if k != "webhooks"}
    assert validate_manifest({**plain, "permissions": []})["webhooks"] == []
