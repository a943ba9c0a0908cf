"""Inbound webhooks through the platform: a real gateway, the ``hooks`` test app
(tests/miniapps/apps/hooks) running as a real sandboxed process, real Socket.IO and HTTP
clients. The app answers ``/hook`` with its URL (under PUBLIC_URL); a provider's POST to it is
delivered at once to the app, which posts the body into the chat; the sender's answer says
what became of it (200, 404, 410, 413, 400, 502). A manifest declaring webhooks without the
permission or without accepting ``webhook.received`` is refused."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import aiohttp
import pytest

from gateway.keys import MINIAPPS
from miniapps.host.capabilities import webhooks
from miniapps.host.registry import discover
from sdk.webhooks import WEBHOOK_BODY_MAX_BYTES
from tests.conftest import base_url, make_config
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, people
from tests.miniapps.conftest import APPS_DIR
from tests.miniapps.test_remote import make_admin

APP = "hooks"
PUBLIC_URL = "https://chat.example.com"


@pytest.fixture
async def server(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    from gateway.app import create_app

    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", public_url=PUBLIC_URL)
    server = await aiohttp_server(create_app(config))
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    server.app[MINIAPPS].apps[APP] = apps[APP]
    return server


async def post(base: str, path: str, body: bytes | str, headers: dict | None = None):
    """A provider's POST: no login, any body. Returns (status, JSON answer)."""
    data = body.encode() if isinstance(body, str) else body
    async with (
        aiohttp.ClientSession() as session,
        session.post(base + path, data=data, headers=headers or {}) as response,
    ):
        return response.status, await response.json()


def hooked(person, cid: str) -> list[str]:
    return [t for t in person.texts(cid) if t.startswith("hooked ")]


async def webhook_path(person, cid: str, count: int = 1) -> str:
    """``/hook`` in the chat; the URL the app answered (the ``count``-th such answer), checked
    to be under PUBLIC_URL, as a path on the gateway under test."""
    ack = await person.socket.call(
        "message.send", {"conversation_id": cid, "client_msg_id": f"hook-{count}", "text": "/hook"}
    )
    assert ack == {"ok": True, "routed_to": {"app_id": APP}}, ack
    answers = await eventually(
        lambda: [t for t in person.texts(cid) if t.startswith("hooks: ")][count - 1 :],
        what="the app's URL",
    )
    url = answers[0].removeprefix("hooks: ")
    assert url.startswith(PUBLIC_URL + "/api/v1/hooks/"), url
    return urlsplit(url).path


async def test_a_provider_post_reaches_the_chat(server):
    base = base_url(server)
    ann, bea = await people(base, 2)
    try:
        cid = await group(ann, [bea], "Trip")
        status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
        assert status == 201, body
        path = await webhook_path(ann, cid)
        assert await webhook_path(ann, cid, 2) == path  # stateless and deterministic
        headers = {
            "Content-Type": "application/json",
            "X-Duffel-Signature": "t=1,v1=ab",
            "Cookie": "not for the app",
        }
        assert await post(base, path, '{"type": "order.updated"}', headers) == (200, {"ok": True})
        (text,) = await eventually(lambda: hooked(bea, cid), what="the delivery in the chat")
        ann_app_id = server.app[MINIAPPS].identity.app_user_id(APP, ann.user_id)
        assert text == (
            f'hooked duffel: {{"type": "order.updated"}} (by {ann_app_id}, provider t=1,v1=ab, '
            "signed True)"
        )
        message = next(d["message"] for d in bea.received() if d["message"].get("text") == text)
        assert message["sender_id"] == f"app:{APP}"
        # The answer came after the handler ran: its text was already stored.
        assert await post(base, path, "second") == (200, {"ok": True})
        stored = (
            await server.app[MINIAPPS]
            .messaging.db["messages"]
            .find_one({"conversation_id": cid, "text": {"$regex": "^hooked duffel: second"}})
        )
        assert stored is not None
    finally:
        await close_all([ann, bea])


async def test_refusals_and_failures(server):
    base = base_url(server)
    host = server.app[MINIAPPS]
    (ann,) = await people(base, 1)
    try:
        cid = await group(ann, [], "Solo")
        status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
        assert status == 201, body
        path = await webhook_path(ann, cid)
        token = path.rsplit("/", 1)[1]
        payload_part, mac_part = token.split(".")
        flipped = mac_part[:-1] + ("A" if mac_part[-1] != "A" else "B")
        for forged in (f"{payload_part}.{flipped}", "abc.def", "nothing", payload_part + "."):
            status, answer = await post(base, f"/api/v1/hooks/{forged}", "x")
            assert (status, answer["error"]["code"]) == (404, "not_found"), forged
        status, answer = await post(base, path, "a" * (WEBHOOK_BODY_MAX_BYTES + 1))
        assert (status, answer["error"]["code"]) == (413, "payload_too_large")
        status, answer = await post(base, path, b"\xff\xfe not text")
        assert (status, answer["error"]["code"]) == (400, "invalid_body")
        status, answer = await post(base, path, "fail")
        assert (status, answer["error"]["code"]) == (502, "app_failed")
        # the provider's retry of an ordinary event goes through
        assert await post(base, path, "retried") == (200, {"ok": True})
        await eventually(lambda: hooked(ann, cid), what="the retried delivery")
        # a new version of the app no longer declares the webhook: gone
        entry = host.apps[APP]
        entry.manifest["webhooks"].remove("duffel")
        try:
            status, answer = await post(base, path, "undeclared")
            assert (status, answer["error"]["code"]) == (410, "gone")
        finally:
            entry.manifest["webhooks"].append("duffel")
        # the app is removed from the chat: gone
        status, _ = await ann.api.delete(f"/api/v1/conversations/{cid}/apps/{APP}")
        assert status == 204
        status, answer = await post(base, path, "after removal")
        assert (status, answer["error"]["code"]) == (410, "gone")
        assert [t.split(" (")[0] for t in hooked(ann, cid)] == ["hooked duffel: retried"]
    finally:
        await close_all([ann])


def hooks_manifest(**changes) -> dict:
    manifest = json.loads((APPS_DIR / APP / "manifest.json").read_text())
    manifest.update(id="remote-hooks", **changes)
    manifest.pop("entry")
    return manifest


async def test_a_bad_webhooks_manifest_is_refused(server, tmp_path):
    base = base_url(server)
    (admin,) = await people(base, 1)
    try:
        await make_admin(server, admin)
        bad = {
            "without the permission": (
                hooks_manifest(permissions=["messages.send_text"]),
                "webhooks: declaring webhooks needs the 'webhooks.url' permission",
            ),
            "without accepting webhook.received": (
                hooks_manifest(events={"emits": [], "accepts": []}),
                "events.accepts: webhooks are delivered as the event 'webhook.received'",
            ),
        }
        for label, (manifest, message) in bad.items():
            status, body = await admin.api.post(
                "/api/v1/admin/miniapps/remote",
                json={"manifest": manifest, "endpoint": "http://127.0.0.1:9/rpc"},
            )
            assert status == 400 and body["error"]["code"] == "invalid_manifest", label
            assert message in body["error"]["message"], label
        good = hooks_manifest()
        status, body = await admin.api.post(
            "/api/v1/admin/miniapps/remote",
            json={"manifest": good, "endpoint": "http://127.0.0.1:9/rpc"},
        )
        assert status == 201, body
    finally:
        await close_all([admin])
    # a hosted app's folder with such a manifest is refused at discovery
    folder = tmp_path / "apps" / "hooks"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text((APPS_DIR / APP / "app.py").read_text())
    manifest = json.loads((APPS_DIR / APP / "manifest.json").read_text())
    manifest["events"]["accepts"] = []
    (folder / "manifest.json").write_text(json.dumps(manifest))
    apps, refused = discover(tmp_path / "apps")
    assert "hooks" not in apps and "webhook.received" in refused["hooks"]


async def test_the_rate_per_app_and_an_admins_switch(server, monkeypatch):
    """Past the app's rate: 429 with Retry-After; switched off by an admin: 503 (both tell the
    provider to retry later), and on again it is delivered."""
    base = base_url(server)
    host = server.app[MINIAPPS]
    (ann,) = await people(base, 1)
    try:
        cid = await group(ann, [], "Solo")
        status, body = await ann.api.post(f"/api/v1/conversations/{cid}/apps", json={"app_id": APP})
        assert status == 201, body
        path = await webhook_path(ann, cid)
        assert await host.set_enabled(APP, False, ann.user_id, "maintenance")
        status, answer = await post(base, path, "while off")
        assert (status, answer["error"]["code"]) == (503, "app_disabled")
        assert await host.set_enabled(APP, True, ann.user_id, "back")
        monkeypatch.setattr(webhooks, "WEBHOOK_RATE_MAX", 1)
        assert await post(base, path, "within the rate") == (200, {"ok": True})
        async with (
            aiohttp.ClientSession() as session,
            session.post(base + path, data=b"past the rate") as response,
        ):
            assert response.status == 429 and int(response.headers["Retry-After"]) > 0
            assert (await response.json())["error"]["code"] == "rate_limited"
        texts = await eventually(lambda: hooked(ann, cid), what="the delivery within the rate")
        assert [t.split(" (")[0] for t in texts] == ["hooked duffel: within the rate"]
    finally:
        await close_all([ann])
