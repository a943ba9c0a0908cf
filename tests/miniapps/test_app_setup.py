"""App setup through a running gateway (issue 14 items 6, 7, 9): an admin sets an app's
settings (a secret one is write-only) and grants people roles declared in its manifest; the
sandboxed ``fxdesk`` test app sees them as ``ctx.config`` and ``ctx.roles`` from its next
invocation — never in its environment, never in logs or the audit. An app whose
``requirements`` are missing is listed disabled with the reason, and ``/readyz`` says so
without failing the node."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from miniapps.host.registry import discover
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all
from tests.miniapps.test_capabilities import command, setup, texts_from

SETUP_APPS = Path(__file__).resolve().parent / "setup_apps"
SECRET = "sk-live-0123456789abcdef"
CONFIG = "/api/v1/admin/miniapps/fxdesk/config"
ROLE = "/api/v1/admin/miniapps/fxdesk/roles/{role}/users/{user}"


async def fx(person, cid, count: int) -> str:
    """Run /fx and return the app's ``count``-th reply in the chat."""
    await command(person, cid, "/fx")
    replies = await eventually(lambda: len(texts_from(person, cid, "key=")) >= count and 1)
    assert replies
    return texts_from(person, cid, "key=")[count - 1]


async def test_admin_config_and_roles_reach_the_sandboxed_app(gateway, caplog):
    caplog.set_level(logging.INFO)  # (the driver's DEBUG command log echoes documents)
    host, (ann, bea), cid = await setup(gateway, 2, ["fxdesk"])
    try:
        assert await fx(bea, cid, 1) == "key=None url=None roles=- merchant=False env_leak=False"

        # Only admins see or change an app's setup.
        status, body = await bea.api.get(CONFIG)
        assert status == 403 and body["error"]["code"] == "not_admin"
        await host.messaging.users.collection.update_one(
            {"_id": ann.user_id}, {"$set": {"role": "admin"}}
        )
        status, body = await ann.api.get(CONFIG)
        assert status == 200, body
        assert body["config"] == [
            {
                "name": "api_key",
                "secret": True,
                "description": "The price feed's API key",
                "set": False,
            },
            {
                "name": "feed_url",
                "secret": False,
                "description": "The price feed's address",
                "set": False,
                "value": None,
            },
        ]

        # Bad input changes nothing: an undeclared name, a value that is not a string.
        for values, code in (
            ({"api_key": SECRET, "other": "x"}, "unknown_setting"),
            ({"api_key": SECRET, "feed_url": 42}, "invalid_field"),
            ({"api_key": "   "}, "invalid_field"),
        ):
            status, body = await ann.api.request("PUT", CONFIG, json={"values": values})
            assert status == 400 and body["error"]["code"] == code, body
        assert not any(s["set"] for s in (await ann.api.get(CONFIG))[1]["config"])

        # Set: the secret is write-only, the plain one readable.
        values = {"api_key": SECRET, "feed_url": "https://feed.example"}
        status, body = await ann.api.request("PUT", CONFIG, json={"values": values})
        assert status == 200, body
        key, url = body["config"]
        assert key["set"] is True and "value" not in key
        assert url == {**url, "set": True, "value": "https://feed.example"}
        assert SECRET not in json.dumps(await ann.api.get(CONFIG))

        # The app sees them at its next invocation; its environment does not hold the key.
        reply = await fx(bea, cid, 2)
        assert (
            reply == f"key={SECRET} url=https://feed.example roles=- merchant=False env_leak=False"
        )

        # Roles: only declared ones, only existing people; granting twice is harmless.
        status, body = await ann.api.post(ROLE.format(role="emperor", user=bea.user_id))
        assert status == 404 and body["error"]["code"] == "unknown_role"
        status, body = await ann.api.post(ROLE.format(role="merchant", user="nobody"))
        assert status == 404 and body["error"]["code"] == "user_not_found"
        status, body = await ann.api.post(ROLE.format(role="merchant", user=bea.user_id))
        assert status == 200, body
        merchant = next(r for r in body["roles"] if r["name"] == "merchant")
        assert [u["id"] for u in merchant["users"]] == [bea.user_id]
        assert await fx(bea, cid, 3) == (
            f"key={SECRET} url=https://feed.example roles=merchant merchant=True env_leak=False"
        )
        # Ann (the admin) has no role in the app: roles are per person.
        assert (await fx(ann, cid, 4)).endswith("roles=- merchant=False env_leak=False")

        # Revoke: gone at the next invocation; revoking again is role_not_granted.
        status, _ = await ann.api.delete(ROLE.format(role="merchant", user=bea.user_id))
        assert status == 204
        status, body = await ann.api.delete(ROLE.format(role="merchant", user=bea.user_id))
        assert status == 404 and body["error"]["code"] == "role_not_granted"
        # Clearing a setting with null.
        status, body = await ann.api.request("PUT", CONFIG, json={"values": {"api_key": None}})
        assert status == 200 and body["config"][0]["set"] is False
        assert await fx(bea, cid, 5) == (
            "key=None url=https://feed.example roles=- merchant=False env_leak=False"
        )

        # The admin audit names what changed, never a value; no log line holds the secret.
        status, body = await ann.api.get("/api/v1/admin/audit?limit=50")
        assert status == 200, body
        actions = [e["action"] for e in body["entries"] if e["action"].startswith("miniapp.")]
        assert actions[:4] == [
            "miniapp.config",
            "miniapp.role_revoke",
            "miniapp.role_grant",
            "miniapp.config",
        ]
        assert SECRET not in json.dumps(body)
        assert SECRET not in caplog.text
    finally:
        await close_all([ann, bea])


async def test_concurrent_grants_of_one_role_record_one_grant(gateway):
    host, (ann, bea), _cid = await setup(gateway, 2, [])
    try:
        await host.messaging.users.collection.update_one(
            {"_id": ann.user_id}, {"$set": {"role": "admin"}}
        )
        url = ROLE.format(role="auditor", user=bea.user_id)
        answers = await asyncio.gather(*(ann.api.post(url) for _ in range(12)))
        assert {status for status, _ in answers} == {200}
        status, body = await ann.api.get("/api/v1/admin/miniapps/fxdesk/roles")
        auditor = next(r for r in body["roles"] if r["name"] == "auditor")
        assert [u["id"] for u in auditor["users"]] == [bea.user_id]
        status, body = await ann.api.get("/api/v1/admin/audit?action=miniapp.role_grant")
        assert status == 200 and len(body["entries"]) == 1, body
    finally:
        await close_all([ann, bea])


async def test_a_missing_requirement_disables_the_app_with_its_reason(gateway, api):
    host, (ann,), cid = await setup(gateway, 1, [])
    apps, refused = discover(SETUP_APPS)
    assert not refused, refused
    host.apps.update(apps)
    try:
        status, body = await ann.api.get("/api/v1/miniapps")
        assert status == 200, body
        listed = {a["id"]: a for a in body["miniapps"]}
        reason = "missing_requirement: definitely-not-a-real-package-aeth>=1"
        assert listed["needy"]["enabled"] is False and listed["needy"]["unavailable"] == reason
        assert listed["satisfied"]["enabled"] is True
        assert listed["satisfied"]["unavailable"] is None

        status, body = await ann.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": "needy"}
        )
        assert status == 503 and body["error"]["code"] == "app_unavailable", body
        assert reason in body["error"]["message"]

        # Degraded, not failing: the node still serves everything else.
        status, body = await ann.api.get("/readyz")
        assert status == 200, body
        assert body["checks"]["miniapps"] == f"degraded: needy: {reason}"
    finally:
        for app_id in apps:
            host.apps.pop(app_id, None)
        await close_all([ann])
