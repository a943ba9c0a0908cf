"""Web Push (messaging/actions/push.py, messaging/webpush.py, gateway/routes/push.py).

The push service is a local aiohttp stub that does what a browser vendor's does with our request:
it checks the VAPID ``Authorization: vapid t=<JWT>, k=<key>`` header (ES256 signature with the
``k`` key, ``aud`` = its origin, ``exp`` within 24 h, ``sub`` present) and then, playing the
browser, decrypts the ``aes128gcm`` body with the subscription's private key and auth secret
(``http_ece``), which the test generated like a browser does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway import keys
from gateway.app import create_app
from messaging.actions import push
from messaging.webpush import load_vapid_key, public_key_b64
from storage.config import Config
from storage.errors import ConfigError
from storage.mongo import new_id
from tests.conftest import make_config
from tests.helpers import ApiClient, eventually


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """What a browser keeps for one push subscription: its P-256 key pair and auth secret."""

    token: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def keys(self) -> dict[str, str]:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}


class PushServiceStub:
    """A push service: verifies VAPID, decrypts like the browser, records what arrived.
    ``answers[token]``: statuses to give, in order, before accepting (201)."""

    def __init__(self) -> None:
        self.browsers: dict[str, Browser] = {}
        self.received: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.answers: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.requests: dict[str, int] = {}
        self.expected_key: str | None = None
        self.base = ""
        self.app = web.Application()
        self.app.router.add_post("/push/{token}", self.handle)

    def browser(self) -> Browser:
        browser = Browser(new_id())
        self.browsers[browser.token] = browser
        return browser

    def endpoint(self, browser: Browser) -> str:
        return f"{self.base}/push/{browser.token}"

    def payloads(self, browser: Browser | None = None) -> list[dict[str, Any]]:
        return [
            r["payload"] for r in self.received if browser is None or r["token"] == browser.token
        ]

    def refuse(self, why: str) -> web.Response:
        self.refused.append(why)
        return web.Response(status=401, text=why)

    async def handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        self.requests[token] = self.requests.get(token, 0) + 1
        scheme, _, params = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "vapid":
            return self.refuse(f"not a vapid Authorization: {scheme!r}")
        parts = dict(p.strip().split("=", 1) for p in params.split(","))
        if self.expected_key is not None and parts.get("k") != self.expected_key:
            return self.refuse("k is not the server's VAPID public key")
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), unb64url(parts["k"])
        )
        try:
            claims = jwt.decode(
                parts["t"],
                public_key,
                algorithms=["ES256"],
                audience=self.base,
                options={"require": ["exp", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            return self.refuse(f"bad VAPID JWT: {exc}")
        if claims["exp"] > time.time() + 24 * 3600:
            return self.refuse("exp more than 24 h ahead")
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            return self.refuse("sub is not a contact URL")
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return web.Response(status=400, text="expected Content-Encoding: aes128gcm")
        if not request.headers.get("TTL", "").isdigit():
            return web.Response(status=400, text="TTL header required")
        body = await request.read()
        queued = self.answers.get(token)
        if queued:
            status, headers = queued.pop(0)
            return web.Response(status=status, headers=headers)
        browser = self.browsers.get(token)
        if browser is None:
            return web.Response(status=404)
        plaintext = http_ece.decrypt(
            body, private_key=browser.private_key, auth_secret=browser.auth, version="aes128gcm"
        )
        self.received.append(
            {
                "token": token,
                "payload": json.loads(plaintext),
                "ttl": int(request.headers["TTL"]),
                "urgency": request.headers.get("Urgency"),
                "sub": claims["sub"],
            }
        )
        return web.Response(status=201, headers={"Location": f"/message/{new_id()}"})


@pytest.fixture
def config(mongo_url, mongo_db_name, tmp_path) -> Config:
    # Short ticks: retries fall due after the push service's Retry-After, then the next tick.
    return make_config(mongo_url, mongo_db_name, tmp_path / "var", jobs_interval=0.3)


@pytest.fixture
async def stub(aiohttp_server):
    service = PushServiceStub()
    server = await aiohttp_server(service.app)
    service.base = str(server.make_url("")).rstrip("/")
    return service


@pytest.fixture
async def client(gateway, stub):
    """A signed-up person's REST client; the stub expects the gateway's VAPID key."""
    api = ApiClient(str(gateway.make_url("")).rstrip("/"))
    status, body = await api.get("/api/v1/push/vapid-public-key")
    assert status == 200, body
    stub.expected_key = body["public_key"]
    await api.signup()
    try:
        yield api
    finally:
        await api.close()


async def user_id(api: ApiClient) -> str:
    status, body = await api.get("/api/v1/me")
    assert status == 200, body
    return body["user"]["id"]


async def subscribe(api: ApiClient, stub: PushServiceStub, browser: Browser) -> dict:
    status, body = await api.post(
        "/api/v1/push/subscriptions",
        json={"endpoint": stub.endpoint(browser), "keys": browser.keys(), "expirationTime": None},
    )
    assert status == 201, body
    return body["subscription"]


def notification(user: str, **extra: Any) -> dict[str, Any]:
    """A stored NOTIF as the notification center hands it to its hooks."""
    return {
        "id": new_id(),
        "user_id": user,
        "kind": "mention",
        "title": "Alice mentioned you",
        "body": "@bob lunch at noon?",
        "conversation_id": new_id(),
        "seq": 7,
        "created_at": "2026-01-01T00:00:00.000Z",
        "read": False,
        "silent": False,
        **extra,
    }


async def notify(gateway, note: dict[str, Any]) -> None:
    """Run the hooks the notification center runs once a notification is durable."""
    messaging = gateway.app[keys.MESSAGING]
    for hook in list(messaging.notification_hooks):
        await hook(note)


# --- the key --------------------------------------------------------------------------------


async def test_vapid_key_is_generated_once_private_and_published(gateway, config):
    api = ApiClient(str(gateway.make_url("")).rstrip("/"))
    try:
        status, body = await api.get("/api/v1/push/vapid-public-key")  # no login needed
    finally:
        await api.close()
    assert status == 200, body
    point = unb64url(body["public_key"])
    assert len(point) == 65 and point[0] == 4  # uncompressed P-256
    path = config.data_dir / "vapid_private.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The next start (or another process on this DATA_DIR) reads the same key back.
    assert public_key_b64(load_vapid_key(config)) == body["public_key"]
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")


async def test_configured_vapid_key_is_used_and_bad_ones_are_refused(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    raw = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    for given in (raw, pem, pem.replace("\n", "\\n")):
        config = Config.from_env({"VAPID_PRIVATE_KEY": given}, data_dir=tmp_path)
        assert public_key_b64(load_vapid_key(config)) == public_key_b64(key)
    assert not (tmp_path / "vapid_private.pem").exists()  # nothing generated when configured
    for bad in ("not a key", b64url(os.urandom(31)), "-----BEGIN PRIVATE KEY-----\nxx\n"):
        with pytest.raises(ConfigError, match="VAPID_PRIVATE_KEY"):
            Config.from_env({"VAPID_PRIVATE_KEY": bad}, data_dir=tmp_path)
    for bad in ("admin@example.com", "mailto:", "http://example.com"):
        with pytest.raises(ConfigError, match="VAPID_SUBJECT"):
            Config.from_env({"VAPID_SUBJECT": bad}, data_dir=tmp_path)
    for good in ("mailto:ops@example.com", "https://example.com/contact"):
        assert Config.from_env({"VAPID_SUBJECT": good}, data_dir=tmp_path).vapid_subject == good


def test_production_without_a_vapid_key_has_push_off(tmp_path):
    config = Config.from_env(
        {},
        data_dir=tmp_path,
        environment="production",
        mongodb_url="mongodb://db:27017",
        redis_url="redis://redis:6379/0",
        jwt_secret="p" * 40,
        metrics_token="m" * 40,
    )
    assert load_vapid_key(config) is None
    assert not (tmp_path / "vapid_private.pem").exists()


# --- subscriptions --------------------------------------------------------------------------


async def test_bad_subscriptions_are_refused_and_change_nothing(gateway, client, stub):
    browser = stub.browser()
    good = {"endpoint": stub.endpoint(browser), "keys": browser.keys()}
    short_auth = {**browser.keys(), "auth": b64url(os.urandom(8))}
    compressed = {**browser.keys(), "p256dh": b64url(b"\x02" + os.urandom(64))}
    cases = [
        ({**good, "endpoint": "ftp://push.example.com/x"}, "invalid_endpoint"),
        ({**good, "endpoint": "http://push.example.com/x"}, "invalid_endpoint"),
        ({**good, "endpoint": "https://10.1.2.3/x"}, "invalid_endpoint"),
        ({**good, "endpoint": "https://user:pw@push.example.com/x"}, "invalid_endpoint"),
        ({**good, "endpoint": "https://push.example.com:99999/x"}, "invalid_endpoint"),
        ({**good, "endpoint": "https://push.example.com/" + "a" * 3000}, "invalid_field"),
        ({**good, "keys": short_auth}, "invalid_keys"),
        ({**good, "keys": compressed}, "invalid_keys"),
        ({**good, "keys": {**browser.keys(), "p256dh": "!!!"}}, "invalid_keys"),
        ({**good, "keys": {"p256dh": browser.keys()["p256dh"]}}, "missing_field"),
        ({**good, "expiration_time": 1000}, "invalid_field"),
        ({**good, "extra": 1}, "unknown_field"),
    ]
    for body, code in cases:
        status, reply = await client.post("/api/v1/push/subscriptions", json=body)
        assert status == 400 and reply["error"]["code"] == code, (body, reply)
    anonymous = ApiClient(client.base_url)
    try:
        status, reply = await anonymous.post("/api/v1/push/subscriptions", json=good)
    finally:
        await anonymous.close()
    assert status == 401, reply
    messaging = gateway.app[keys.MESSAGING]
    assert await messaging.push_subscriptions.collection.count_documents({}) == 0


async def test_http_endpoints_are_refused_outside_development(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path, stub
):
    # AETHERIAL_ENV unset: the loopback stub's http:// endpoint is not a push service.
    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", environment=None)
    server = await aiohttp_server(create_app(config))
    api = ApiClient(str(server.make_url("")).rstrip("/"))
    try:
        await api.signup()
        browser = stub.browser()
        status, reply = await api.post(
            "/api/v1/push/subscriptions",
            json={"endpoint": stub.endpoint(browser), "keys": browser.keys()},
        )
        assert status == 400 and reply["error"]["code"] == "invalid_endpoint", reply
        status, reply = await api.post(
            "/api/v1/push/subscriptions",
            json={"endpoint": "https://localhost/push/1", "keys": browser.keys()},
        )
        assert status == 400 and reply["error"]["code"] == "invalid_endpoint", reply
    finally:
        await api.close()


# --- pushing --------------------------------------------------------------------------------


async def test_a_notification_is_pushed_and_decrypted_by_the_push_service(gateway, client, stub):
    browser = stub.browser()
    subscription = await subscribe(client, stub, browser)
    assert subscription["endpoint"] == stub.endpoint(browser)
    assert set(subscription) == {"id", "endpoint", "created_at"}
    me = await user_id(client)
    note = notification(me)
    await notify(gateway, note)

    await eventually(lambda: stub.received, what="the push at the push service")
    assert stub.refused == []
    [arrived] = stub.received
    assert arrived["payload"] == {
        "notification_id": note["id"],
        "kind": "mention",
        "title": "Alice mentioned you",
        "body": "@bob lunch at noon?",
        "url": f"/#c/{note['conversation_id']}",
        "conversation_id": note["conversation_id"],
    }
    assert 0 < arrived["ttl"] <= push.PUSH_TTL
    assert arrived["urgency"] == "high"  # a mention
    assert arrived["sub"] == "mailto:admin@localhost"
    outbox = gateway.app[keys.MESSAGING].push_outbox
    await eventually(lambda: _empty(outbox), what="the outbox row deleted once delivered")

    await notify(gateway, notification(me, title="second"))
    await eventually(lambda: len(stub.received) == 2, what="the second push")
    assert [p["title"] for p in stub.payloads()] == ["Alice mentioned you", "second"]


async def _empty(outbox) -> bool:
    return await outbox.count() == 0


async def test_muted_notifications_are_not_pushed(gateway, client, stub):
    browser = stub.browser()
    await subscribe(client, stub, browser)
    me = await user_id(client)
    muted = notification(me, silent=True, title="muted")
    messaging = gateway.app[keys.MESSAGING]
    assert await push.do_enqueue_push(messaging, muted) == 0
    await notify(gateway, muted)
    assert await messaging.push_outbox.count() == 0
    await notify(gateway, notification(me, title="loud"))
    await eventually(lambda: stub.received, what="the loud push")
    await push.do_send_due(messaging, messaging.web_push.sender)  # nothing else is waiting
    assert [p["title"] for p in stub.payloads()] == ["loud"]


async def test_gone_subscription_is_removed(gateway, client, stub):
    kept, gone = stub.browser(), stub.browser()
    await subscribe(client, stub, kept)
    await subscribe(client, stub, gone)
    stub.answers[gone.token] = [(410, {})]
    messaging = gateway.app[keys.MESSAGING]
    me = await user_id(client)
    await notify(gateway, notification(me, title="one"))

    await eventually(lambda: stub.payloads(kept), what="the push to the live browser")
    subscriptions = messaging.push_subscriptions.collection

    async def removed() -> bool:
        return await subscriptions.count_documents({"endpoint": stub.endpoint(gone)}) == 0

    await eventually(removed, what="the 410 subscription removed")
    await eventually(lambda: _empty(messaging.push_outbox), what="no push left for it")
    await notify(gateway, notification(me, title="two"))
    await eventually(lambda: len(stub.payloads(kept)) == 2, what="the next push")
    assert stub.requests[gone.token] == 1  # never tried again
    assert await subscriptions.count_documents({}) == 1


async def test_push_service_errors_are_retried_with_its_retry_after(gateway, client, stub):
    browser = stub.browser()
    await subscribe(client, stub, browser)
    stub.answers[browser.token] = [(503, {"Retry-After": "1"}), (429, {"Retry-After": "0"})]
    me = await user_id(client)
    note = notification(me, kind="friend_request", conversation_id=None, title="Carol")
    await notify(gateway, note)
    # Delivered on the third attempt, by the periodic tick (JOBS_INTERVAL) after the delays.
    await eventually(lambda: stub.received, timeout=20, what="the push after two refusals")
    assert stub.requests[browser.token] == 3
    assert stub.payloads() == [
        {
            "notification_id": note["id"],
            "kind": "friend_request",
            "title": "Carol",
            "body": "@bob lunch at noon?",
            "url": "/",
        }
    ]
    assert stub.received[0]["urgency"] == "normal"


async def test_a_push_that_keeps_failing_is_dropped_after_the_last_attempt(gateway, client, stub):
    browser = stub.browser()
    await subscribe(client, stub, browser)
    stub.answers[browser.token] = [(500, {"Retry-After": "0"})] * push.MAX_ATTEMPTS
    messaging = gateway.app[keys.MESSAGING]
    await notify(gateway, notification(await user_id(client)))
    timeout = 10 + push.MAX_ATTEMPTS * 2
    await eventually(
        lambda: stub.requests.get(browser.token) == push.MAX_ATTEMPTS,
        timeout=timeout,
        what="every attempt made",
    )
    await eventually(lambda: _empty(messaging.push_outbox), what="the push dropped")
    assert stub.received == []
    assert await messaging.push_subscriptions.collection.count_documents({}) == 1  # kept


async def test_unsubscribe_stops_pushes_and_only_removes_your_own(gateway, client, stub):
    browser = stub.browser()
    await subscribe(client, stub, browser)
    other = ApiClient(client.base_url)
    try:
        await other.signup()
        status, _ = await other.delete(
            "/api/v1/push/subscriptions", json={"endpoint": stub.endpoint(browser)}
        )
        assert status == 204  # not theirs: nothing removed, and nothing said about it
        messaging = gateway.app[keys.MESSAGING]
        assert await messaging.push_subscriptions.collection.count_documents({}) == 1
        for _ in range(2):  # idempotent
            status, _ = await client.delete(
                "/api/v1/push/subscriptions", json={"endpoint": stub.endpoint(browser)}
            )
            assert status == 204
        assert await messaging.push_subscriptions.collection.count_documents({}) == 0
        assert await push.do_enqueue_push(messaging, notification(await user_id(client))) == 0
    finally:
        await other.close()


async def test_a_browser_moving_to_another_account_gets_only_that_accounts_pushes(
    gateway, client, stub
):
    browser = stub.browser()
    first = await subscribe(client, stub, browser)
    alice = await user_id(client)
    messaging = gateway.app[keys.MESSAGING]
    # Alice's push is queued, but the push service is down when it is tried...
    stub.answers[browser.token] = [(503, {"Retry-After": "3600"})]
    await notify(gateway, notification(alice, title="for alice"))
    await eventually(lambda: stub.requests.get(browser.token), what="the first attempt")
    # ...and then Bob signs in on that browser, which subscribes again.
    bob_api = ApiClient(client.base_url)
    try:
        await bob_api.signup()
        second = await subscribe(bob_api, stub, browser)
        bob = await user_id(bob_api)
    finally:
        await bob_api.close()
    assert second["id"] == first["id"]  # one subscription per endpoint
    assert await messaging.push_outbox.count() == 0  # alice's waiting push is not for bob
    await notify(gateway, notification(alice, title="alice again"))
    await notify(gateway, notification(bob, title="for bob"))
    await eventually(lambda: stub.received, what="bob's push")
    await push.do_send_due(messaging, messaging.web_push.sender)
    assert [p["title"] for p in stub.payloads()] == ["for bob"]


async def test_many_notifications_at_once_each_reach_each_browser_exactly_once(
    gateway, client, stub
):
    browsers = [stub.browser() for _ in range(3)]
    for browser in browsers:
        await subscribe(client, stub, browser)
    me = await user_id(client)
    messaging = gateway.app[keys.MESSAGING]
    notes = [notification(me, title=f"n{i}") for i in range(25)]
    # The hooks of many concurrent notifications, and extra senders racing the kicked ones
    # (as several nodes and workers do): the conditional claim lets one send each push.
    sender = messaging.web_push.sender
    await asyncio.gather(
        *[notify(gateway, note) for note in notes],
        *[push.do_send_due(messaging, sender) for _ in range(4)],
    )
    expected = len(notes) * len(browsers)
    await eventually(lambda: len(stub.received) >= expected, timeout=20, what="every push")
    await eventually(lambda: _empty(messaging.push_outbox), what="the outbox drained")
    await push.do_send_due(messaging, sender)
    pairs = [(r["token"], r["payload"]["notification_id"]) for r in stub.received]
    assert len(pairs) == len(set(pairs)) == expected
    assert stub.refused == []


def test_payload_stays_small():
    note = notification("u", title="t" * 1000, body="ü" * 5000)
    payload = push.push_payload(note)
    assert len(payload) <= push.PAYLOAD_MAX_BYTES
    assert b'"title":"' + b"t" * (push.TITLE_MAX - 1) in payload


# --- end to end: notifications from the notification center ---------------------------------


async def test_a_friend_request_reaches_the_closed_tab_as_a_decrypted_push(gateway, stub):
    from tests.messaging.chat_helpers import close_all, people

    alice, bob = await people(str(gateway.make_url("")).rstrip("/"), 2)
    try:
        status, body = await bob.api.get("/api/v1/push/vapid-public-key")
        assert status == 200, body
        stub.expected_key = body["public_key"]
        browser = stub.browser()
        await subscribe(bob.api, stub, browser)
        await bob.socket.close()  # the tab is closed
        status, body = await alice.api.post(
            "/api/v1/contacts/requests", json={"user_id": bob.user_id, "message": "hi Bob"}
        )
        assert status == 201, body
        await eventually(lambda: stub.received, what="the friend request's push")
        [payload] = stub.payloads(browser)
        assert payload["kind"] == "friend_request"
        assert payload["title"] == f"{alice.username} wants to be your friend"
        assert payload["body"] == "hi Bob"
        assert payload["url"] == "/"
        status, feed = await bob.api.get("/api/v1/notifications")
        assert status == 200, feed
        assert payload["notification_id"] == feed["notifications"][0]["id"]
        assert stub.refused == []
    finally:
        await close_all([alice, bob])


async def test_mentions_in_a_muted_group_are_not_pushed(gateway, stub):
    from tests.messaging.chat_helpers import close_all, group, people

    alice, bob = await people(str(gateway.make_url("")).rstrip("/"), 2)
    try:
        browser = stub.browser()
        await subscribe(bob.api, stub, browser)
        muted = await group(alice, [bob], "Muted")
        loud = await group(alice, [bob], "Loud")
        status, body = await bob.api.patch(
            f"/api/v1/conversations/{muted}/settings", json={"muted": True}
        )
        assert status == 200, body
        await alice.send(muted, "@bob in the muted one", mentions=[bob.user_id])
        await alice.send(loud, "@bob in the loud one", mentions=[bob.user_id])
        await eventually(lambda: stub.received, what="the unmuted mention's push")

        async def both_in_feed() -> bool:
            _, feed = await bob.api.get("/api/v1/notifications")
            return len(feed["notifications"]) == 2

        await eventually(both_in_feed, what="both mentions in bob's notification center")
        messaging = gateway.app[keys.MESSAGING]
        await push.do_send_due(messaging, messaging.web_push.sender)
        [payload] = stub.payloads(browser)
        assert payload["kind"] == "mention"
        assert payload["body"] == "@bob in the loud one"
        assert payload["url"] == f"/#c/{loud}"
    finally:
        await close_all([alice, bob])


# --- the Celery worker sends (TASKS_BACKEND=celery) ------------------------------------------


async def test_a_celery_worker_sends_the_push(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path, stub
):
    from tests.gateway.test_worker import JWT_SECRET, Worker, celery_worker_env

    key = ec.generate_private_key(ec.SECP256R1())
    raw_key = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    config = make_config(
        mongo_url,
        mongo_db_name,
        tmp_path / "gateway",
        redis_url=redis_url,
        jwt_secret=JWT_SECRET,
        tasks_backend="celery",
        jobs_interval=0.3,
        vapid_private_key=raw_key,
    )
    server = await aiohttp_server(create_app(config))
    api = ApiClient(str(server.make_url("")).rstrip("/"))
    worker = None
    try:
        status, body = await api.get("/api/v1/push/vapid-public-key")
        assert status == 200, body
        assert body["public_key"] == public_key_b64(key)  # the configured key, not a generated one
        stub.expected_key = body["public_key"]
        await api.signup()
        browser = stub.browser()
        await subscribe(api, stub, browser)
        await notify(server, notification(await user_id(api), title="from the worker"))
        # With TASKS_BACKEND=celery the gateway only enqueues: nothing sends it yet.
        outbox = server.app[keys.MESSAGING].push_outbox
        assert await outbox.count() == 1
        worker = Worker(
            celery_worker_env(
                mongo_url,
                mongo_db_name,
                redis_url,
                tmp_path / "worker-var",
                VAPID_PRIVATE_KEY=raw_key,
            ),
            tmp_path / "worker.log",
        )
        try:
            await eventually(
                lambda: stub.received or worker.process.poll() is not None,
                timeout=60,
                what="the worker's push",
            )
            assert worker.process.poll() is None, "the worker exited"
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- worker log ---\n{worker.log()[-4000:]}") from None
        assert [p["title"] for p in stub.payloads(browser)] == ["from the worker"]
        assert stub.refused == []
        await eventually(lambda: _empty(outbox), what="the outbox row deleted by the worker")
        await eventually(lambda: "web push: {'sent': 1}" in worker.log(), what="its log line")
    finally:
        await api.close()
        if worker is not None:
            code = await worker.stop()
            assert code == 0, worker.log()[-4000:]
            assert "Traceback" not in worker.log(), worker.log()[-4000:]
