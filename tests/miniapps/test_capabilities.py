"""The host's capability checks end to end: real gateway, real Socket.IO clients, the test apps
of ``tests/miniapps/apps`` running as real sandboxed processes."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from gateway.keys import MINIAPPS
from miniapps.host.registry import discover
from sdk.capabilities import check_params
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, people

APPS_DIR = Path(__file__).resolve().parent / "apps"
_ids = itertools.count(1)


def _world_readable(folder: Path) -> None:
    """The sandbox runs apps as an unprivileged uid: it must be able to read them."""
    for root, _dirs, files in os.walk(folder):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(Path(root) / name, 0o644)


async def setup(gateway, count: int, app_ids: list[str]):
    host = gateway.app[MINIAPPS]
    _world_readable(APPS_DIR)
    apps, refused = discover(APPS_DIR)
    assert not refused, refused
    host.apps.update(apps)
    everyone = await people(str(gateway.make_url("")).rstrip("/"), count)
    cid = await group(everyone[0], everyone[1:], "Apps")
    for app_id in app_ids:
        status, body = await everyone[0].api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": app_id}
        )
        assert status == 201, body
    return host, everyone, cid


async def command(person, cid, text):
    ack = await person.socket.call(
        "message.send", {"conversation_id": cid, "client_msg_id": f"c{next(_ids)}", "text": text}
    )
    assert ack["ok"] and "routed_to" in ack, ack
    return ack


def texts_from(person, cid, prefix):
    return [t for t in person.texts(cid) if t.startswith(prefix)]


def events_of(person, name):
    return [d for n, d in person.socket.events if n == name]


async def test_permissions_consent_and_per_app_ids(gateway, api):
    host, (ann, bea), cid = await setup(gateway, 2, ["nosy", "profiler", "keeper"])
    try:
        # a capability not in the manifest: permission_denied, and the audit log shows it
        await command(ann, cid, "/nosy")
        got = await eventually(lambda: texts_from(bea, cid, "nosy:"))
        assert got == ["nosy: permission_denied permission_denied"]
        status, body = await ann.api.get("/api/v1/admin/miniapps/audit?app_id=nosy")
        assert status == 403 and body["error"]["code"] == "not_admin"
        await host.messaging.users.collection.update_one(
            {"_id": ann.user_id}, {"$set": {"role": "admin"}}
        )
        status, body = await ann.api.get("/api/v1/admin/miniapps/audit?app_id=nosy")
        assert status == 200, body
        calls = {(e["method"], e["ok"], e.get("error")) for e in body["entries"]}
        assert calls == {
            ("users.profile", False, "permission_denied"),
            ("messages.send_card", False, "permission_denied"),
            ("messages.send_text", True, None),
        }
        assert all(e["app_id"] == "nosy" and e["user_id"] == ann.user_id for e in body["entries"])

        # consent: asked the first time; granted → the profile, denied → scope_denied
        await command(ann, cid, "/whoami")
        asked = await eventually(lambda: events_of(ann, "miniapp.consent_required"))
        assert asked[0]["app_id"] == "profiler" and asked[0]["scope"] == "users.profile"
        answer = {"app_id": "profiler", "scope": "users.profile", "granted": True}
        assert (await ann.socket.call("miniapp.consent", answer))["ok"]
        ann_profile = (await eventually(lambda: texts_from(ann, cid, "profiler:")))[0]
        assert " name " in ann_profile and "error" not in ann_profile
        ann_profiler_id = ann_profile.split()[1]

        await command(bea, cid, "/whoami")
        await eventually(lambda: events_of(bea, "miniapp.consent_required"))
        answer = {"app_id": "profiler", "scope": "users.profile", "granted": False}
        assert (await bea.socket.call("miniapp.consent", answer))["ok"]
        await eventually(lambda: len(texts_from(ann, cid, "profiler:")) == 2)
        assert texts_from(ann, cid, "profiler:")[1].endswith("error scope_denied")
        assert not events_of(ann, "miniapp.consent_required")[1:]  # asked once only

        # revoking makes it ask again
        status, _ = await ann.api.delete("/api/v1/me/consents/profiler/users.profile")
        assert status in (200, 204)
        await command(ann, cid, "/whoami")
        await eventually(lambda: len(events_of(ann, "miniapp.consent_required")) == 2)
        answer = {"app_id": "profiler", "scope": "users.profile", "granted": True}
        assert (await ann.socket.call("miniapp.consent", answer))["ok"]
        await eventually(lambda: len(texts_from(ann, cid, "profiler:")) == 3)
        assert texts_from(ann, cid, "profiler:")[2] == ann_profile

        # per-app ids: stable per app, different between apps, never the platform id
        await command(ann, cid, "/me")
        ann_keeper_id = (await eventually(lambda: texts_from(ann, cid, "keeper:")))[0].split()[1]
        assert ann_keeper_id.startswith("u-") and ann_profiler_id.startswith("u-")
        assert ann_keeper_id != ann_profiler_id
        assert ann.user_id not in (ann_keeper_id, ann_profiler_id)
        bea_profiler_id = texts_from(ann, cid, "profiler:")[1].split()[1]
        assert bea_profiler_id not in (ann_profiler_id, bea.user_id)
    finally:
        await close_all([ann, bea])


async def test_crash_and_hang_do_not_stop_the_chat(gateway, api):
    host, everyone, cid = await setup(gateway, 3, ["crasher", "sleeper"])
    ann = everyone[0]
    try:
        await command(ann, cid, "/crash")
        await command(ann, cid, "/nap")
        errors = await eventually(
            lambda: (e := events_of(ann, "miniapp.ephemeral")) and len(e) >= 1 and e
        )
        assert errors[0]["app_id"] == "crasher" and errors[0]["error"]

        # the chat goes on while sleeper hangs
        await ann.send(cid, "still here")
        await eventually(lambda: all("still here" in p.texts(cid) for p in everyone))

        hung = await eventually(
            lambda: [e for e in events_of(ann, "miniapp.ephemeral") if e["app_id"] == "sleeper"],
            timeout=8.0,
        )
        assert hung[0]["error"] == "timeout"
        assert not [e for e in events_of(everyone[1], "miniapp.ephemeral")]  # invoker only

        # both are restarted: the next command works again
        for text, prefix in (("/hello", "crasher: hello"), ("/awake", "sleeper: awake")):
            for _ in range(40):
                await command(ann, cid, text)
                try:
                    await eventually(lambda p=prefix: texts_from(everyone[2], cid, p), 0.5)
                    break
                except AssertionError:
                    continue
            assert texts_from(everyone[2], cid, prefix)
        status = host.status()
        assert status["crasher"]["restarts"] >= 1 and status["sleeper"]["restarts"] >= 1
    finally:
        await close_all(everyone)


async def test_storage_notifications_and_events(gateway, api):
    host, (ann, bea), cid = await setup(gateway, 2, ["keeper", "notifier", "listener"])
    try:
        await command(ann, cid, "/keep")
        text = (await eventually(lambda: texts_from(bea, cid, "keeper:"), 15.0))[0]
        result = json.loads(text.removeprefix("keeper: "))
        assert result["get"] == {"name": "ann", "age": 31}
        assert result["missing"] is None
        assert result["adults"] == ["ann", "cy"]
        assert result["or"] == ["bob", "cy"]
        assert result["after_delete"] == ["ann", "bob"]
        for refused in ("where", "expr", "bad_op", "bad_collection"):
            assert result[refused] == "invalid_params", (refused, result)
        assert result["too_big"] == "quota_exceeded"
        assert result["quota"] == "quota_exceeded" and result["stored_blobs"] == 17
        assert result["overwrite"] == "ok"
        stored = await host.storage.collection.find_one({"_id": "keeper|people|ann"})
        assert stored["app_id"] == "keeper" and json.loads(stored["value"])["age"] == 31

        # notifications only to users who opted in; undeclared events are refused
        await command(ann, cid, "/ping")
        first = (await eventually(lambda: texts_from(bea, cid, "notifier:")))[0]
        assert first.endswith("scope_denied permission_denied")
        assert not events_of(ann, "miniapp.notification")
        answer = {"app_id": "notifier", "scope": "notifications", "granted": True}
        assert (await ann.socket.call("miniapp.consent", answer))["ok"]
        await command(ann, cid, "/ping")
        await eventually(lambda: len(texts_from(bea, cid, "notifier:")) == 2)
        assert texts_from(bea, cid, "notifier:")[1].endswith("ok permission_denied")
        note = await eventually(lambda: events_of(ann, "miniapp.notification"))
        assert note[0] == {"app_id": "notifier", "text": "ping from notifier"}
        assert not events_of(bea, "miniapp.notification")

        # events: the host delivers notifier.pinged to listener, with listener's own id
        heard = await eventually(lambda: len(texts_from(bea, cid, "listener:")) == 2 and True)
        assert heard
        notifier_id = first.split()[1]
        words = texts_from(bea, cid, "listener:")[0].split()
        assert words[3] == notifier_id and words[1].startswith("u-")
        assert words[1] not in (notifier_id, ann.user_id)
    finally:
        await close_all([ann, bea])


async def test_http_fetch_goes_only_to_allowed_domains(gateway, api, aiohttp_server):
    from aiohttp import web

    from miniapps.host import fetch

    async def hello(request):
        return web.Response(text=f"hello {request.query.get('x')}")

    async def echo(request):
        return web.Response(text="echo " + await request.text())

    site = web.Application()
    site.router.add_get("/hello", hello)
    site.router.add_post("/echo", echo)
    server = await aiohttp_server(site)
    _host, everyone, cid = await setup(gateway, 2, ["fetcher"])
    ann, bea = everyone
    try:
        await command(bea, cid, f"/fetch {server.port}")
        (reply,) = await eventually(lambda: texts_from(ann, cid, "fetcher:"))
        out = json.loads(reply.removeprefix("fetcher: "))
        assert out["allowed"] == {"status": 200, "body": "hello 1"}
        assert out["post"] == {"status": 200, "body": "echo ping"}
        assert out["other_host"] == "permission_denied"  # localhost is not in the allowlist
        assert out["not_http"] == "invalid_params"
        # in production an allowed name that resolves to an internal address is refused too
        manifest = {"http": {"allowed_domains": ["127.0.0.1"]}}
        with pytest.raises(fetch.FetchError) as info:
            await fetch.fetch(
                manifest,
                check_params("http.fetch", {"url": f"http://127.0.0.1:{server.port}/hello"}),
                allow_internal=False,
                resolver=gateway.app[MINIAPPS].resolver,
            )
        assert info.value.code == "permission_denied"
    finally:
        await close_all(everyone)


async def test_http_fetch_connects_only_to_the_checked_address(aiohttp_server):
    """DNS rebinding: the name is resolved and checked once; the connection goes there."""
    from aiohttp import web

    from miniapps.host import fetch

    async def hello(request):
        return web.Response(text="pinned")

    site = web.Application()
    site.router.add_get("/hello", hello)
    server = await aiohttp_server(site)
    lookups = []

    def counting_getaddrinfo(host, port, **kw):
        lookups.append(host)
        return socket.getaddrinfo("127.0.0.1", port, **kw)

    resolver = fetch.Resolver(getaddrinfo=counting_getaddrinfo)
    manifest = {"http": {"allowed_domains": ["api.example.test"]}}
    try:
        answer = await fetch.fetch(
            manifest,
            check_params("http.fetch", {"url": f"http://api.example.test:{server.port}/hello"}),
            allow_internal=True,
            resolver=resolver,
        )
    finally:
        resolver.close()
    assert answer["status"] == 200 and answer["body"] == "pinned"
    assert lookups == ["api.example.test"]  # resolved once, by the check, not again to connect


async def test_http_fetch_resolves_on_its_own_bounded_pool_with_a_deadline():
    """A name that never resolves costs its own call a timeout; a flood of them is refused
    at once; the loop's default executor (password hashing) stays free throughout."""
    from miniapps.host import fetch

    release = threading.Event()

    def hanging_getaddrinfo(host, port, **kw):
        release.wait(10)
        return socket.getaddrinfo("127.0.0.1", port, **kw)

    resolver = fetch.Resolver(
        timeout=0.2, threads=2, max_in_flight=3, getaddrinfo=hanging_getaddrinfo
    )
    manifest = {"http": {"allowed_domains": ["slow.example.test"]}}
    params = check_params("http.fetch", {"url": "http://slow.example.test/x"})
    try:
        outcomes = await asyncio.gather(
            *(
                fetch.fetch(manifest, params, allow_internal=True, resolver=resolver)
                for _ in range(6)
            ),
            return_exceptions=True,
        )
        codes = sorted(o.code for o in outcomes)
        assert codes == ["rate_limited"] * 3 + ["timeout"] * 3
        # the default executor answers while every resolver thread hangs
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, lambda: "free") == "free"
    finally:
        release.set()
        resolver.close()
    await eventually(lambda: resolver.in_flight == 0)
