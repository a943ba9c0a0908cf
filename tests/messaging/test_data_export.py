"""Leave with your data, the export: asked for with the password, built in the background by
the task runner, announced by a notification and a mail (a real local SMTP server), downloaded
once by the mailed link (a ZIP: profile, devices, contacts, your messages per conversation, your
media, notifications, the wallet's statement, mini-program consents), then gone; bad input
changes nothing; one at a time, a few a day; concurrent downloads: one wins."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import zipfile

import pyotp
import pytest

from gateway.keys import MESSAGING
from storage.mongo import now_ms
from tests.conftest import make_config
from tests.helpers import PASSWORD, ApiClient, eventually
from tests.media.media_helpers import fetch, jpeg, upload
from tests.messaging.chat_helpers import close_all, direct, group, people
from tests.messaging.smtp_sink import SmtpSink
from tests.wallet.wallet_helpers import topup, transfer

EXPORT = "/api/v1/me/export"
EXPORTS = "/api/v1/me/exports"
LINK = re.compile(r"(https?://\S+/api/v1/exports/([0-9a-f]{24})/download\?token=[A-Za-z0-9_-]+)")


@pytest.fixture
def config(smtp_config):
    return smtp_config


@pytest.fixture
async def base(gateway) -> str:
    return str(gateway.make_url("")).rstrip("/")


def ctx(gateway):
    return gateway.app[MESSAGING]


async def export_rows(gateway, user_id: str | None = None) -> list[dict]:
    query = {} if user_id is None else {"user_id": user_id}
    return await ctx(gateway).exports.collection.find(query).to_list(None)


async def wait_ready(api: ApiClient, export_id: str) -> dict:
    async def ready():
        status, body = await api.get(EXPORTS)
        assert status == 200, body
        found = [e for e in body["exports"] if e["id"] == export_id]
        return found and found[0]["status"] == "ready" and found[0]

    return await eventually(ready, timeout=30, what="the export ready")


async def mailed_link(sink: SmtpSink, to: str, export_id: str) -> str:
    async def arrived():
        for mail in sink.received:
            found = LINK.search(mail.text)
            if mail.to.endswith(to) and found and found.group(2) == export_id:
                assert found.group(1) in mail.html.replace("&amp;", "&")
                return found.group(1)
        return None

    return await eventually(arrived, timeout=30, what="the export mail")


async def download(api: ApiClient, url: str) -> tuple[int, dict, bytes]:
    """GET without any Authorization header (the link is the permission)."""
    path = url[url.index("/api/v1/") :]
    async with api.session.get(api.base_url + path) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def ask(a, b) -> None:
    status, body = await a.api.post(
        "/api/v1/contacts/requests", json={"user_id": b.user_id, "message": "hi"}
    )
    assert status == 201, body


async def befriend(a, b) -> None:
    await ask(a, b)
    status, body = await b.api.post(f"/api/v1/contacts/requests/{a.user_id}/accept")
    assert status == 200, body


def error_of(body: bytes) -> str:
    return json.loads(body)["error"]["code"]


@pytest.fixture
async def anonymous(base):
    client = ApiClient(base)
    try:
        yield client
    finally:
        await client.close()


async def test_export_end_to_end(gateway, base, sink, anonymous):
    alice, bob, carol, dave = await people(base, 4)
    try:
        # A friend, a request sent, one received, a block.
        await befriend(alice, bob)
        await ask(alice, carol)
        await ask(dave, alice)
        status, _ = await alice.api.request("PUT", f"/api/v1/contacts/blocks/{dave.user_id}")
        assert status == 204
        # A group and a direct chat, with messages from both sides.
        team = await group(alice, [bob, carol], "Trip planning")
        chat = await direct(alice, bob)
        await alice.send(team, "mine in the group")
        await bob.send(team, "bob's, not in alice's export")
        await alice.send(chat, "mine in direct")
        await bob.send(chat, f"@{alice.username} a reply", mentions=[alice.user_id])
        # A photo sent in the group.
        status, body = await upload(alice.api, jpeg(), filename="beach.jpg")
        assert status == 201, body
        photo = body["media"]
        ack = await alice.socket.call(
            "message.send",
            {
                "conversation_id": team,
                "client_msg_id": "photo-1",
                "type": "image",
                "media_ids": [photo["id"]],
                "text": "the beach",
            },
        )
        assert ack["ok"], ack
        _, _, photo_bytes = await fetch(alice.api, photo["url"])
        # Money: a top-up and a transfer Bob accepts.
        await topup(alice, 5000)
        status, body = await transfer(alice, bob, chat, 1250, note="lunch")
        assert status == 201, body
        status, _ = await bob.api.post(f"/api/v1/wallet/transfers/{body['transfer']['id']}/accept")
        assert status == 200

        status, body = await alice.api.post(EXPORT, json={"password": PASSWORD})
        assert status == 202, body
        export = body["export"]
        assert export["status"] == "pending" and export["size"] is None
        ready = await wait_ready(alice.api, export["id"])
        assert ready["size"] > 0 and ready["expires_at"]

        # Told twice: the notification center, and a mail with the link.
        status, body = await alice.api.get("/api/v1/notifications")
        assert status == 200
        told = [n for n in body["notifications"] if n["title"] == "Your data export is ready"]
        assert len(told) == 1 and told[0]["kind"] == "service"
        url = await mailed_link(sink, "@example.com", export["id"])
        assert alice.username in next(m for m in sink.received if url in m.text).to

        zip_blob = (await ctx(gateway).exports.get_export(export["id"]))["blob"]
        assert await ctx(gateway).blobs.size(zip_blob) == ready["size"]
        status, headers, data = await download(anonymous, url)
        assert status == 200, data[:200]
        assert headers["Content-Type"] == "application/zip"
        assert "attachment" in headers["Content-Disposition"]
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        media_name = next(n for n in names if n.startswith(f"media/{photo['id']}-"))
        assert media_name.endswith("beach.jpg")
        assert {
            "README.txt",
            "profile.json",
            "sessions.json",
            "contacts.json",
            f"conversations/{team}.json",
            f"conversations/{chat}.json",
            "media.json",
            media_name,
            "notifications.json",
            "wallet/statement.json",
            "wallet/statement.csv",
            "miniapps/consents.json",
        } <= names
        assert archive.testzip() is None

        def read(name):
            return json.loads(archive.read(name))

        readme = archive.read("README.txt").decode()
        for name in ("profile.json", "contacts.json", "wallet/statement.csv", export["id"]):
            assert name in readme
        profile = read("profile.json")["profile"]
        assert (profile["id"], profile["username"]) == (alice.user_id, alice.username)
        assert profile["email"] == f"{alice.username}@example.com"
        assert "password_hash" not in json.dumps(read("profile.json"))
        assert len(read("sessions.json")["sessions"]) == 1
        contacts = read("contacts.json")
        assert [f["user"]["id"] for f in contacts["friends"]] == [bob.user_id]
        assert [r["user"]["id"] for r in contacts["requests_sent"]] == [carol.user_id]
        assert contacts["requests_received"] == []  # dave's request went with the block
        assert [b["user"]["id"] for b in contacts["blocked"]] == [dave.user_id]
        group_file = read(f"conversations/{team}.json")
        assert group_file["conversation"]["title"] == "Trip planning"
        assert group_file["conversation"]["type"] == "group"
        mine = group_file["your_messages"]
        assert [m["text"] for m in mine if m["type"] != "system"] == [
            "mine in the group",
            "the beach",
        ]
        assert all(m["sender_id"] == alice.user_id for m in mine)
        direct_file = read(f"conversations/{chat}.json")
        assert direct_file["conversation"]["title"] == bob.username  # the peer's name
        texts = [m["text"] for m in direct_file["your_messages"] if m["type"] == "text"]
        assert texts == ["mine in direct"]
        assert archive.read(media_name) == photo_bytes
        listed = read("media.json")["media"]
        assert [(m["id"], m["file"], m["kind"]) for m in listed] == [
            (photo["id"], media_name, "image")
        ]
        assert any(n["kind"] == "mention" for n in read("notifications.json")["notifications"])
        statement = read("wallet/statement.json")
        assert statement["balances"] == [
            {"amount": 3750, "currency": "USD", "exponent": 2, "flag": None}
        ]
        assert sorted(e["amount"] for e in statement["transactions"]) == [-1250, 5000]
        rows = list(csv.DictReader(io.StringIO(archive.read("wallet/statement.csv").decode())))
        assert sorted(int(r["amount"]) for r in rows) == [-1250, 5000]
        assert read("miniapps/consents.json") == {"consents": [], "apps_that_know_you": []}

        # Once: the second download is gone, and so is the file.
        status, _, body = await download(anonymous, url)
        assert status == 410 and error_of(body) == "gone"
        status, body = await alice.api.get(EXPORTS)
        assert body["exports"][0]["status"] == "downloaded"
        assert body["exports"][0]["downloaded_at"]
        row = (await export_rows(gateway, alice.user_id))[0]
        assert row["blob"] is None and "token_hash" in row

        async def zip_deleted() -> bool:  # (just after the last byte went out)
            return await ctx(gateway).blobs.size(zip_blob) is None

        await eventually(zip_deleted, what="the ZIP deleted")
        assert not list((ctx(gateway).config.data_dir / "exports" / "building").glob("*"))
    finally:
        await close_all([alice, bob, carol, dave])


async def test_an_export_is_only_for_its_link(gateway, base, sink, anonymous):
    alice, bob = await people(base, 2)
    try:
        status, body = await alice.api.post(EXPORT, json={"password": PASSWORD})
        assert status == 202
        export_id = body["export"]["id"]
        await wait_ready(alice.api, export_id)
        url = await mailed_link(sink, f"{alice.username}@example.com", export_id)
        token = url.split("token=")[1]
        path = f"/api/v1/exports/{export_id}/download"
        for query in ("", "?token=", "?token=" + "x" * 43, "?token=" + token[:-1]):
            async with anonymous.session.get(base + path + query) as resp:
                assert resp.status in (400, 404), query
                code = (await resp.json())["error"]["code"]
                assert code in ("export_not_found", "invalid_field"), code
        async with anonymous.session.get(
            base + f"/api/v1/exports/{'0' * 24}/download?token={token}"
        ) as resp:
            assert resp.status == 404
        # Another user cannot ask for a link to it; its owner can, and the mailed link
        # then stops working.
        status, body = await bob.api.post(f"{EXPORTS}/{export_id}/link")
        assert status == 404 and body["error"]["code"] == "export_not_found"
        status, body = await alice.api.post(f"{EXPORTS}/{export_id}/link")
        assert status == 200, body
        fresh = body["url"]
        status, _, data = await download(anonymous, url)
        assert status == 404 and error_of(data) == "export_not_found"
        # Ten downloads at once: one gets the file, the others are told it is gone.
        results = await asyncio.gather(*[download(anonymous, fresh) for _ in range(10)])
        statuses = sorted(r[0] for r in results)
        assert statuses == [200] + [410] * 9, statuses
        assert zipfile.ZipFile(io.BytesIO(next(r[2] for r in results if r[0] == 200)))
        status, body = await alice.api.post(f"{EXPORTS}/{export_id}/link")
        assert status == 409 and body["error"]["code"] == "export_not_ready"
    finally:
        await close_all([alice, bob])


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({}, 400, "missing_field"),
        ({"password": None}, 400, "wrong_type"),
        ({"password": ""}, 403, "wrong_password"),
        ({"password": "Not-the-password-1"}, 403, "wrong_password"),
        ({"password": PASSWORD, "extra": 1}, 400, "unknown_field"),
        ({"password": "x" * 257}, 400, "invalid_field"),
    ],
)
async def test_export_refuses_bad_input(gateway, api: ApiClient, payload, status, code):
    me = await api.signup()
    got, body = await api.post(EXPORT, json=payload)
    assert got == status, body
    assert body["error"]["code"] == code and body["error"]["message"]
    assert await export_rows(gateway) == []
    status, body = await api.get(EXPORTS)
    assert status == 200 and body["exports"] == []
    anonymous = ApiClient(api.base_url)
    try:
        status, body = await anonymous.post(EXPORT, json={"password": PASSWORD})
        assert status == 401 and body["error"]["code"] == "missing_token"
    finally:
        await anonymous.close()
    assert me["user"]["id"]


async def test_one_export_at_a_time_and_a_few_a_day(gateway, api: ApiClient, sink):
    await api.signup()
    # Two at once: the index lets one through.
    results = await asyncio.gather(
        *[api.post(EXPORT, json={"password": PASSWORD}) for _ in range(2)]
    )
    assert sorted(s for s, _ in results) == [202, 409]
    refused = next(b for s, b in results if s == 409)
    assert refused["error"]["code"] == "export_in_progress"
    first = next(b for s, b in results if s == 202)["export"]["id"]
    await wait_ready(api, first)
    for _ in range(2):
        status, body = await api.post(EXPORT, json={"password": PASSWORD})
        assert status == 202, body
        await wait_ready(api, body["export"]["id"])
    status, body = await api.post(EXPORT, json={"password": PASSWORD})
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert 0 < body["error"]["details"]["retry_after"] <= 86400
    assert len(await export_rows(gateway)) == 3
    status, body = await api.get(EXPORTS)
    assert [e["status"] for e in body["exports"]] == ["ready"] * 3


async def test_an_unused_export_expires_and_its_file_goes(gateway, api: ApiClient, sink):
    me = await api.signup()
    status, body = await api.post(EXPORT, json={"password": PASSWORD})
    export_id = body["export"]["id"]
    await wait_ready(api, export_id)
    url = await mailed_link(sink, me["user"]["username"] + "@example.com", export_id)
    messaging = ctx(gateway)
    row = await messaging.exports.get_export(export_id)
    assert await messaging.blobs.size(row["blob"]) == row["size"]
    # Fake the clock: the link's day is over.
    past = now_ms() - 1000
    await messaging.exports.collection.update_one(
        {"_id": export_id}, {"$set": {"expires_at": past, "due_at": past}}
    )

    async def expired():
        rows = await export_rows(gateway)
        return rows[0]["status"] == "expired" and rows[0]["blob"] is None

    await eventually(expired, what="the export expired")
    # The row lets go of its file first, then the file is deleted (a moment later).

    async def file_gone():
        return await messaging.blobs.size(row["blob"]) is None

    await eventually(file_gone, what="the export's file deleted")
    status, _, data = await download(api, url)
    assert status == 410 and error_of(data) == "gone"


async def test_with_two_factor_sign_in_the_export_needs_a_code(gateway, api: ApiClient, sink):
    await api.signup()
    status, body = await api.post("/api/v1/me/mfa/totp", json={"password": PASSWORD})
    assert status == 200, body
    totp = pyotp.TOTP(body["secret"])
    status, body = await api.post("/api/v1/me/mfa/totp/confirm", json={"code": totp.now()})
    assert status == 200, body
    recovery = body["recovery_codes"]
    status, body = await api.post(EXPORT, json={"password": PASSWORD})
    assert status == 403 and body["error"]["code"] == "mfa_code_required"
    status, body = await api.post(EXPORT, json={"password": PASSWORD, "code": "000000"})
    assert status == 403 and body["error"]["code"] in ("wrong_code", "code_already_used")
    assert await export_rows(gateway) == []
    status, body = await api.post(EXPORT, json={"password": PASSWORD, "code": recovery[0]})
    assert status == 202, body
    # The recovery code was spent.
    await wait_ready(api, body["export"]["id"])
    status, body = await api.post(EXPORT, json={"password": PASSWORD, "code": recovery[0]})
    assert status == 403 and body["error"]["code"] == "code_already_used"


@pytest.mark.timeout(180)
async def test_a_celery_worker_builds_the_export(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path, sink
):
    """TASKS_BACKEND=celery: the gateway only enqueues EXPORTS_RUN_DUE; a real worker process
    builds the ZIP into the shared blob store (GridFS), notifies and mails; the gateway serves
    the download and deletes the file."""
    from gateway.app import create_app
    from tests.gateway.test_worker import JWT_SECRET, Worker, celery_worker_env

    settings = dict(
        redis_url=redis_url,
        jwt_secret=JWT_SECRET,
        tasks_backend="celery",
        media_backend="gridfs",
        smtp_url=sink.url,
        jobs_interval=0.2,
    )
    config = make_config(mongo_url, mongo_db_name, tmp_path / "gateway", **settings)
    server = await aiohttp_server(create_app(config))
    base = str(server.make_url("")).rstrip("/")
    (alice,) = await people(base, 1)
    worker = None
    try:
        status, body = await alice.api.post(EXPORT, json={"password": PASSWORD})
        assert status == 202, body
        export_id = body["export"]["id"]
        await asyncio.sleep(1.0)  # ticks went out, but nobody runs them yet
        status, body = await alice.api.get(EXPORTS)
        assert body["exports"][0]["status"] == "pending"
        worker = Worker(
            celery_worker_env(
                mongo_url,
                mongo_db_name,
                redis_url,
                tmp_path / "worker-var",
                MEDIA_BACKEND="gridfs",
                SMTP_URL=sink.url,
            ),
            tmp_path / "worker.log",
        )
        try:
            await wait_ready(alice.api, export_id)
            url = await mailed_link(sink, f"{alice.username}@example.com", export_id)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- worker log ---\n{worker.log()[-4000:]}") from None
        status, _, data = await download(alice.api, url)
        assert status == 200
        archive = zipfile.ZipFile(io.BytesIO(data))
        assert {"profile.json", "wallet/statement.json", "miniapps/consents.json"} <= set(
            archive.namelist()
        )
        messaging = server.app[MESSAGING]
        row = await messaging.exports.get_export(export_id)
        assert row["status"] == "downloaded" and row["blob"] is None

        async def zip_deleted() -> bool:  # (just after the last byte went out)
            return await messaging.db["media.files"].find_one({}) is None

        await eventually(zip_deleted, what="the ZIP deleted from GridFS")
    finally:
        if worker is not None:
            await worker.stop()
        await close_all([alice])
