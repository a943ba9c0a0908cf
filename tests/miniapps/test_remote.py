"""Remote mini-programs end to end: a real aiohttp server plays the remote app (verifying every
request it gets and calling capabilities back, signed), registered by an admin and installed in
a group; the signed callback endpoint's refusals; web-view launch tokens."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import aiohttp
import pytest
from aiohttp import web

from gateway.keys import MINIAPPS
from miniapps.host.registry import AppEntry
from miniapps.host.remote import RemoteApp, RemoteBadResponse, RemoteUnreachable
from sdk.errors import SignatureError
from sdk.signing import NonceCache, sign_request, verify_launch_token, verify_request
from tests.messaging.chat_helpers import close_all, group, people

APP_ID = "remote-app"
_ids = itertools.count(1)
WEBVIEW = "https://apps.example/remote"


def manifest(app_id: str = APP_ID, **extra) -> dict:
    return {
        "id": app_id,
        "name": "Remote",
        "version": "1.0.0",
        "permissions": ["messages.send_card"],
        "commands": [{"name": "remote_cmd", "description": "Answer from afar"}],
        "webview": {"entry": WEBVIEW},
        **extra,
    }


async def command(person, cid: str, text: str) -> dict:
    ack = await person.socket.call(
        "message.send", {"conversation_id": cid, "client_msg_id": f"r{next(_ids)}", "text": text}
    )
    assert ack["ok"] and "routed_to" in ack, ack
    return ack


async def wait_for(predicate, timeout: float = 10.0):
    for _ in range(int(timeout / 0.02)):
        result = predicate()
        if result:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def cards_of(person, cid: str) -> list[dict]:
    return [
        d["message"]
        for d in person.received()
        if d["message"]["conversation_id"] == cid and d["message"]["type"] == "card"
    ]


class RemoteServer:
    """The remote app: verifies each request with its own nonce cache; a ``command`` makes it
    post a card through the host's signed callback endpoint before answering ``{}``."""

    def __init__(self, gateway_url: str) -> None:
        self.gateway_url = gateway_url
        self.secret: str | None = None
        self.nonces = NonceCache()
        self.handled: list[dict] = []
        self.rejected: list[str] = []
        self.callbacks: list[tuple[int, dict]] = []

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            verify_request(self.secret, request.headers, raw, nonce_cache=self.nonces)
        except SignatureError as exc:
            self.rejected.append(exc.code)
            return web.json_response({"error": exc.code}, status=401)
        message = json.loads(raw)
        self.handled.append(message)
        if message["method"] == "command":
            call_id = message["params"]["context"]["call_id"]
            words = " ".join(message["params"]["args"]) or "hello"
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": "a1",
                    "method": "messages.send_card",
                    "params": {"call_id": call_id, "card": {"title": f"remote: {words}"}},
                }
            ).encode()
            headers = sign_request(self.secret, body, app_id=APP_ID)
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    f"{self.gateway_url}/api/v1/miniapps/rpc", data=body, headers=headers
                ) as response,
            ):
                self.callbacks.append((response.status, await response.json()))
        return web.json_response({"jsonrpc": "2.0", "id": message["id"], "result": {}})


async def start_remote(aiohttp_server, gateway) -> tuple[RemoteServer, str]:
    remote = RemoteServer(str(gateway.make_url("")).rstrip("/"))
    app = web.Application()
    app.router.add_post("/rpc", remote.handle)
    server = await aiohttp_server(app)
    return remote, str(server.make_url("/rpc"))


async def make_admin(gateway, person) -> None:
    await gateway.app[MINIAPPS].messaging.users.collection.update_one(
        {"_id": person.user_id}, {"$set": {"role": "admin"}}
    )


async def register(admin, endpoint: str, app_manifest: dict | None = None) -> tuple[int, dict]:
    return await admin.api.post(
        "/api/v1/admin/miniapps/remote",
        json={"manifest": app_manifest or manifest(), "endpoint": endpoint},
    )


async def test_remote_app_answers_a_command_through_the_signed_callback(gateway, aiohttp_server):
    remote, endpoint = await start_remote(aiohttp_server, gateway)
    host = gateway.app[MINIAPPS]
    everyone = await people(str(gateway.make_url("")).rstrip("/"), 3)
    ann, bea, cy = everyone
    try:
        # admins only; a bad manifest names its field; ids of hosted apps are taken
        status, body = await register(ann, endpoint)
        assert status == 403 and body["error"]["code"] == "not_admin"
        await make_admin(gateway, ann)
        status, body = await register(ann, endpoint, manifest(version="one"))
        assert status == 400 and body["error"]["code"] == "invalid_manifest"
        assert body["error"]["message"].startswith("version")
        assert body["error"]["details"]["field"] == "version"
        status, body = await register(ann, endpoint, manifest("poll"))
        assert status == 409 and body["error"]["code"] == "app_exists"
        status, body = await register(ann, "ftp://127.0.0.1/rpc")
        assert status == 400 and body["error"]["details"]["field"] == "endpoint"

        status, body = await register(ann, endpoint)
        assert status == 201, body
        assert body["app"]["id"] == APP_ID and body["app"]["kind"] == "remote"
        assert len(body["secret"]) == 64
        remote.secret = body["secret"]
        status, again = await register(ann, endpoint)
        assert status == 409 and again["error"]["code"] == "app_exists"
        stored = await host.remote.store.get_app(APP_ID)
        assert stored["endpoint"] == endpoint and stored["secret"] == remote.secret

        status, catalogue = await bea.api.get("/api/v1/miniapps")
        kinds = {a["id"]: a["kind"] for a in catalogue["miniapps"]}
        assert kinds[APP_ID] == "remote" and kinds["poll"] == "hosted"

        cid = await group(ann, [bea, cy], "Remote")
        status, body = await ann.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": APP_ID}
        )
        assert status == 201, body

        await command(bea, cid, "/remote_cmd from afar")
        await wait_for(lambda: all(cards_of(p, cid) for p in everyone))
        card = cards_of(cy, cid)[0]
        assert card["app_id"] == APP_ID and card["card"]["title"] == "remote: from afar"
        # The remote records its callback's answer after the card has already been delivered.
        await wait_for(lambda: remote.callbacks)
        assert remote.callbacks[0][0] == 200 and "message_id" in remote.callbacks[0][1]["result"]
        context = remote.handled[0]["params"]["context"]
        assert (
            context["user"]["id"] == host.identity.app_user_id(APP_ID, bea.user_id) != bea.user_id
        )
        assert not remote.rejected

        # the app refuses a host request whose signature is broken (wrong secret)
        async with aiohttp.ClientSession() as session:
            forged = RemoteApp(APP_ID, endpoint, "f" * 64, session)
            with pytest.raises(RemoteBadResponse) as caught:
                await forged.call("ping", {})
        assert caught.value.details["status"] == 401 and remote.rejected == ["bad_signature"]
        assert len(remote.handled) == 1

        # registered apps are loaded again at start-up
        del host.apps[APP_ID]
        await host.remote.load()
        assert host.apps[APP_ID].kind == "remote" and host.apps[APP_ID].folder is None
    finally:
        await close_all(everyone)


async def test_rpc_refuses_bad_expired_and_replayed_signatures(gateway, aiohttp_server):
    _remote, endpoint = await start_remote(aiohttp_server, gateway)
    host = gateway.app[MINIAPPS]
    base = str(gateway.make_url("")).rstrip("/")
    ann, bea = await people(base, 2)
    try:
        await make_admin(gateway, ann)
        status, body = await register(ann, endpoint)
        assert status == 201, body
        secret = body["secret"]
        cid = await group(ann, [bea], "Rpc")
        status, body = await ann.api.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": APP_ID}
        )
        assert status == 201, body
        # a live invocation, so an accepted request would really post
        app_user_id = host.identity.app_user_id(APP_ID, ann.user_id)
        context = {
            "call_id": await host.calls.open(APP_ID, ann.user_id, app_user_id, cid, 0, remote=True)
        }

        def request_body(title: str) -> bytes:
            return json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": "a1",
                    "method": "messages.send_card",
                    "params": {"call_id": context["call_id"], "card": {"title": title}},
                }
            ).encode()

        async def post(body: bytes, headers: dict) -> tuple[int, dict]:
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{base}/api/v1/miniapps/rpc", data=body, headers=headers) as response,
            ):
                return response.status, await response.json()

        async def refused(body: bytes, headers: dict, code: str) -> None:
            status, answer = await post(body, headers)
            assert status == 401 and answer["error"]["code"] == code, answer

        genuine = request_body("genuine")
        await refused(
            request_body("tampered"), sign_request(secret, genuine, app_id=APP_ID), "bad_signature"
        )
        await refused(genuine, sign_request("0" * 64, genuine, app_id=APP_ID), "bad_signature")
        await refused(genuine, sign_request(secret, genuine, app_id="poll"), "bad_signature")
        await refused(genuine, sign_request(secret, genuine, app_id="nobody"), "bad_signature")
        await refused(genuine, {"X-Aetherial-App": APP_ID}, "bad_signature")
        stale = sign_request(secret, genuine, app_id=APP_ID, timestamp=int(time.time()) - 600)
        await refused(genuine, stale, "expired")
        assert not await host.messaging.messages.collection.count_documents({"type": "card"})

        headers = sign_request(secret, genuine, app_id=APP_ID)
        status, answer = await post(genuine, headers)
        assert status == 200 and "message_id" in answer["result"], answer
        await refused(genuine, headers, "replayed")
        posted = await host.messaging.messages.collection.count_documents({"type": "card"})
        assert posted == 1

        # a genuine request the host refuses answers a JSON-RPC error
        denied = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": "a2",
                "method": "messages.send_text",
                "params": {"call_id": context["call_id"], "text": "hi"},
            }
        ).encode()
        status, answer = await post(denied, sign_request(secret, denied, app_id=APP_ID))
        assert status == 200 and answer["id"] == "a2"
        assert answer["error"]["code"] == -32000
        assert answer["error"]["data"]["code"] == "permission_denied"
    finally:
        await close_all([ann, bea])


async def test_launch_tokens(gateway, aiohttp_server):
    _remote, endpoint = await start_remote(aiohttp_server, gateway)
    host = gateway.app[MINIAPPS]
    ann, bea, cy = await people(str(gateway.make_url("")).rstrip("/"), 3)
    try:
        await make_admin(gateway, ann)
        status, body = await register(ann, endpoint)
        secret = body["secret"]
        # a hosted app with a web view, and one without
        hosted = manifest("webby")
        host.apps["webby"] = AppEntry("webby", host.apps["poll"].folder, hosted)
        cid = await group(ann, [bea], "Launch")
        for app_id in (APP_ID, "webby", "poll"):
            status, body = await ann.api.post(
                f"/api/v1/conversations/{cid}/apps", json={"app_id": app_id}
            )
            assert status == 201, body

        status, body = await bea.api.post(f"/api/v1/conversations/{cid}/apps/{APP_ID}/launch")
        assert status == 200, body
        assert body["url"] == f"{WEBVIEW}?token={body['token']}"
        payload = verify_launch_token(body["token"], secret)
        assert payload["app_id"] == APP_ID and payload["conversation_id"] == cid
        assert payload["user_id"] == host.identity.app_user_id(APP_ID, bea.user_id) != bea.user_id
        assert time.time() + 290 < payload["exp"] <= time.time() + 301
        with pytest.raises(SignatureError) as caught:
            verify_launch_token(body["token"], secret, now=payload["exp"])
        assert caught.value.code == "expired"
        with pytest.raises(SignatureError) as caught:
            verify_launch_token(body["token"], "0" * 64)
        assert caught.value.code == "bad_signature"

        status, body = await bea.api.post(f"/api/v1/conversations/{cid}/apps/webby/launch")
        assert status == 200, body
        payload = verify_launch_token(body["token"], host.identity.hosted_secret("webby"))
        assert payload["user_id"] == host.identity.app_user_id("webby", bea.user_id)
        assert payload["user_id"] != host.identity.app_user_id(APP_ID, bea.user_id)

        status, body = await bea.api.post(f"/api/v1/conversations/{cid}/apps/poll/launch")
        assert status == 400 and body["error"]["code"] == "no_webview"
        status, body = await cy.api.post(f"/api/v1/conversations/{cid}/apps/{APP_ID}/launch")
        assert status == 403 and body["error"]["code"] == "not_a_member"
    finally:
        host.apps.pop("webby", None)
        await close_all([ann, bea, cy])


async def test_remote_transport_errors(aiohttp_server):
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/slow", slow)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        client = RemoteApp(APP_ID, str(server.make_url("/slow")), "s" * 64, session, timeout=0.2)
        with pytest.raises(Exception) as caught:
            await client.call("ping", {})
        assert caught.value.code == "timeout"
        closed = RemoteApp(APP_ID, "http://127.0.0.1:9/rpc", "s" * 64, session)
        with pytest.raises(RemoteUnreachable):
            await closed.call("ping", {})
