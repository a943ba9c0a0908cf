"""Mail end to end: rows first, sent in the background through a real (local) SMTP server or
written to the embedded outbox folder; text + HTML in the reader's language; a server that is down
or refuses for now is tried again later and the mail arrives once; a permanent refusal is given up
and kept; the same key queues once; concurrent senders send each mail once."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import re
import stat

import pytest

from gateway.keys import MESSAGING
from messaging.actions import mail
from storage.config import Config
from storage.errors import ConfigError
from storage.mail import MailError, OutboxDirMailer, SmtpMailer, make_mailer, parse_smtp_url
from storage.mongo import now_ms
from tests.conftest import make_config
from tests.helpers import ApiClient, eventually
from tests.messaging.smtp_sink import SmtpSink

VERIFY = "/api/v1/auth/email/verify"
RESEND = "/api/v1/me/email/verification"


@pytest.fixture
def config(smtp_config) -> Config:
    return smtp_config


def outbox(gateway):
    return gateway.app[MESSAGING].mail_outbox


async def make_due(gateway, key: str | None = None) -> None:
    """Fake the clock: the waiting row(s) are due now (instead of in 30 s or more)."""
    query = {"state": "queued"} if key is None else {"_id": key}
    await outbox(gateway).collection.update_many(query, {"$set": {"due_at": now_ms()}})


async def only_row(gateway) -> dict:
    rows = await outbox(gateway).collection.find({}).to_list(None)
    assert len(rows) == 1, rows
    return rows[0]


# --- what arrives --------------------------------------------------------------------------


async def test_signup_mail_has_text_and_html_and_its_link_verifies(api: ApiClient, sink):
    login = await api.signup("mara")
    assert login["user"]["email_verified"] is False
    [received] = await sink.wait_for("mara@example.com")
    message = received.message
    assert received.mail_from == "no-reply@localhost"
    assert message["From"].addresses[0].display_name == "Aetherial"
    assert received.to == "mara@example.com"
    assert received.subject == "Confirm your email address"
    assert message["Message-ID"].endswith("@localhost>")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    assert "Hello mara," in received.text and "mara@example.com" in received.text
    assert "<a href=" in received.html and 'lang="en"' in received.html
    link = received.link("verify-email")
    assert link.startswith("http://127.0.0.1:8080/#verify-email/")  # PUBLIC_URL's default

    status, body = await api.post(VERIFY, json={"token": received.token("verify-email")})
    assert status == 200, body
    assert body == {"email": "mara@example.com", "email_verified": True, "changed": False}
    status, me = await api.get("/api/v1/me")
    assert me["user"]["email_verified"] is True


async def test_mail_is_in_the_readers_language(api: ApiClient, sink):
    await api.signup("lucia")
    await sink.wait_for("lucia@example.com")
    assert (await api.patch("/api/v1/me", json={"locale": "es-MX"}))[0] == 200
    assert (await api.post(RESEND))[0] == 202
    spanish = (await sink.wait_for("lucia@example.com", 2))[1]
    assert spanish.subject == "Confirma tu dirección de correo"
    assert "Hola lucia:" in spanish.text
    assert 'lang="es"' in spanish.html
    assert spanish.message["Content-Language"] == "es"
    # no German templates: English
    assert (await api.patch("/api/v1/me", json={"locale": "de-DE"}))[0] == 200
    assert (await api.post(RESEND))[0] == 202
    english = (await sink.wait_for("lucia@example.com", 3))[2]
    assert english.subject == "Confirm your email address"


async def test_html_part_escapes_what_people_typed(api: ApiClient, sink):
    await api.signup("ana")
    await sink.wait_for("ana@example.com")
    status, _ = await api.patch("/api/v1/me", json={"display_name": "<b>Ana & Co</b>"})
    assert status == 200
    assert (await api.post(RESEND))[0] == 202
    received = (await sink.wait_for("ana@example.com", 2))[1]
    assert "&lt;b&gt;Ana &amp; Co&lt;/b&gt;" in received.html
    assert "<b>Ana" not in received.html
    assert "Hello <b>Ana & Co</b>," in received.text  # plain text is not HTML


# --- failures and retries ------------------------------------------------------------------


async def test_smtp_down_is_retried_and_delivered_once_when_back(api: ApiClient, gateway, sink):
    sink.stop()
    await api.signup("owen")

    async def tried():
        row = await only_row(gateway)
        return row if row.get("last_error") else None

    row = await eventually(tried, what="a failed first attempt")
    assert row["state"] == "queued"
    assert row["last_error"]
    assert row["due_at"] > now_ms() + 20_000  # the next attempt in about 30 s, not at once
    assert row["text"]  # still there to send

    sink.start()
    await make_due(gateway)

    async def sent():
        return (await only_row(gateway))["state"] == "sent"

    await eventually(sent, what="sent")
    await sink.wait_for("owen@example.com")
    row = await only_row(gateway)
    assert row["attempts"] == 2
    assert "text" not in row and "html" not in row  # the link is not kept once sent
    # more runs (every node's tick) send nothing more
    ctx = gateway.app[MESSAGING]
    for _ in range(3):
        assert (await mail.do_send_due(ctx, ctx.mail.mailer)) == {
            "sent": 0,
            "retried": 0,
            "failed": 0,
        }
    assert len(sink.to("owen@example.com")) == 1


async def test_temporary_refusal_retried_permanent_one_given_up(api: ApiClient, gateway, sink):
    sink.fail_with = "451 4.3.0 Try again later"
    await api.signup("ivy")

    async def tried():
        row = await only_row(gateway)
        return row if row.get("last_error") else None

    row = await eventually(tried, what="a failed first attempt")
    assert row["state"] == "queued" and "451" in row["last_error"]

    sink.fail_with = "550 5.1.1 No such user"
    await make_due(gateway)

    async def failed():
        row = await only_row(gateway)
        return row if row["state"] == "failed" else None

    row = await eventually(failed, what="given up")
    assert row["attempts"] == 2 and "550" in row["last_error"]
    assert "text" not in row and "html" not in row
    # kept, and never tried again
    sink.fail_with = None
    ctx = gateway.app[MESSAGING]
    assert (await mail.do_send_due(ctx, ctx.mail.mailer))["sent"] == 0
    assert sink.to("ivy@example.com") == []


async def test_gives_up_after_the_last_attempt(api: ApiClient, gateway, sink, caplog):
    sink.fail_with = "421 4.7.0 Too busy"
    await api.signup("gus")
    row = await eventually(
        lambda: outbox(gateway).collection.find_one({"last_error": {"$exists": True}}),
        what="a failed attempt",
    )
    await outbox(gateway).collection.update_one(
        {"_id": row["_id"]}, {"$set": {"attempts": mail.MAX_ATTEMPTS - 1, "due_at": now_ms()}}
    )
    with caplog.at_level(logging.WARNING, logger="messaging.actions.mail"):
        await eventually(
            lambda: outbox(gateway).collection.find_one({"state": "failed"}), what="failed"
        )
    assert any("given up" in r.getMessage() for r in caplog.records)
    assert (await only_row(gateway))["attempts"] == mail.MAX_ATTEMPTS


def test_retry_delays_double_and_are_capped():
    delays = [mail.retry_delay(n) for n in range(1, 10)]
    assert delays[:4] == [30, 60, 120, 240]
    assert delays[-1] == mail.RETRY_MAX and delays == sorted(delays)


# --- idempotency and concurrency -----------------------------------------------------------


async def test_the_same_key_sends_once(api: ApiClient, gateway, sink):
    login = await api.signup("kai")
    await sink.wait_for("kai@example.com")
    ctx = gateway.app[MESSAGING]
    user = await ctx.users.get_user(login["user"]["id"])
    params = {"url": "https://example.com/x", "expires_at": now_ms() + 3_600_000}
    first, second = await asyncio.gather(
        mail.do_queue_mail(ctx, user, "export_ready", params, key="export_ready:e1"),
        mail.do_queue_mail(ctx, user, "export_ready", params, key="export_ready:e1"),
    )
    assert sorted([first, second]) == [False, True]
    [received] = [r for r in await sink.wait_for("kai@example.com", 2) if "export" in r.subject]
    assert received.subject == "Your data export is ready"
    assert "https://example.com/x" in received.text
    # queued again after it was sent: still nothing more
    assert (
        await mail.do_queue_mail(ctx, user, "export_ready", params, key="export_ready:e1") is False
    )
    await mail.do_send_due(ctx, ctx.mail.mailer)
    assert len(sink.to("kai@example.com")) == 2  # the verification and the export, once each


async def test_concurrent_senders_send_each_mail_once(api: ApiClient, gateway, sink):
    login = await api.signup("nia")
    await sink.wait_for("nia@example.com")
    ctx = gateway.app[MESSAGING]
    user = await ctx.users.get_user(login["user"]["id"])
    kick, ctx.mail = ctx.mail, None  # queue without kicking: the rows wait for the senders
    try:
        for n in range(6):
            await mail.do_queue_mail(
                ctx,
                user,
                "export_ready",
                {"url": f"https://example.com/{n}", "expires_at": "tomorrow"},
                key=f"export_ready:c{n}",
            )
        await asyncio.gather(*[mail.do_send_due(ctx, kick.mailer) for _ in range(10)])
    finally:
        ctx.mail = kick
    await sink.wait_for("nia@example.com", 7)
    await mail.do_send_due(ctx, kick.mailer)
    urls = sorted(
        re.search(r"https://example.com/\d", r.text).group(0)
        for r in sink.to("nia@example.com")[1:]
    )
    assert urls == [f"https://example.com/{n}" for n in range(6)]
    assert await outbox(gateway).count("sent") == 7


# --- SMTP details ----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_smtp_login_and_no_password_in_logs(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path, caplog
):
    from gateway.app import create_app

    server = SmtpSink(users={"mailer": "s3cret@pw"})
    server.start()
    try:
        cfg = make_config(
            mongo_url,
            mongo_db_name,
            tmp_path / "var",
            smtp_url=f"smtp://mailer:s3cret%40pw@127.0.0.1:{server.port}",
            mail_from="Aetherial Mail <mail@aetherial.example>",
        )
        with caplog.at_level(logging.INFO):
            gateway = await aiohttp_server(create_app(cfg))
            client = ApiClient(str(gateway.make_url("")).rstrip("/"))
            try:
                await client.signup("lena")
                [received] = await server.wait_for("lena@example.com")
            finally:
                await client.close()
        assert server.logins == ["mailer"]
        assert received.mail_from == "mail@aetherial.example"
        assert received.message["Message-ID"].endswith("@aetherial.example>")
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert f"smtp://mailer@127.0.0.1:{server.port}" in logged
        assert "s3cret" not in logged
        # a wrong password is the operator's to fix: retried, not given up
        wrong = SmtpMailer(parse_smtp_url(f"smtp://mailer:nope@127.0.0.1:{server.port}"))
        with pytest.raises(MailError) as refused:
            await wrong.send(received.message)
        assert refused.value.permanent is False and "nope" not in str(refused.value)
    finally:
        server.stop()


async def test_mailer_tells_temporary_from_permanent(sink):
    message = email.message_from_string(
        "From: a@localhost\nTo: b@example.com\nSubject: hi\n\nhello\n",
        policy=email.policy.default,
    )
    mailer = SmtpMailer(parse_smtp_url(sink.url))
    await mailer.send(message)
    assert len(sink.to("b@example.com")) == 1
    for reply, permanent in (("450 4.2.0 Mailbox busy", False), ("550 5.1.1 Unknown", True)):
        sink.fail_with = reply
        with pytest.raises(MailError) as failed:
            await mailer.send(message)
        assert failed.value.permanent is permanent, reply
        assert reply.split()[0] in str(failed.value)
    sink.fail_with = None
    sink.stop()
    with pytest.raises(MailError) as down:
        await mailer.send(message)
    assert down.value.permanent is False


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("smtp://", "no host"),
        ("smtp://host:notaport", "port"),
        ("smtp://host/path", "no path"),
        ("smtp://host?starttls=maybe", "starttls must be 1 or 0"),
        ("smtp://host?tls=1", "unknown parameter"),
        ("smtps://host?starttls=1", "starttls is for smtp://"),
        ("smtp://:pw@host", "no user name"),
    ],
)
def test_bad_smtp_urls_are_refused_at_start(tmp_path, url, problem):
    config = Config.from_env({"SMTP_URL": url, "DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match=problem) as refused:
        make_mailer(config)
    assert "pw" not in str(refused.value)


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="SMTP_URL"):
        Config.from_env({"SMTP_URL": "http://mail.example.com"})
    with pytest.raises(ConfigError, match="PASSWORD_RESET_TTL"):
        Config.from_env({"PASSWORD_RESET_TTL": "5"})
    for sender in ("nobody", "a@b, c@d", ""):
        with pytest.raises(ConfigError, match="MAIL_FROM"):
            make_mailer(Config.from_env({"MAIL_FROM": sender, "DATA_DIR": str(tmp_path)}))
    settings = parse_smtp_url("smtp://u:p%40ss@mail.example.com?starttls=1")
    assert (settings.port, settings.tls, settings.password) == (587, "starttls", "p@ss")
    assert "p@ss" not in repr(settings) and "p@ss" not in settings.safe_url
    assert parse_smtp_url("smtps://mail.example.com").port == 465


# --- the embedded default: the outbox folder ---------------------------------------------


async def test_without_smtp_mail_goes_to_the_outbox_folder(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path, caplog
):
    from gateway.app import create_app

    cfg = make_config(mongo_url, mongo_db_name, tmp_path / "var", jobs_interval=0.2)
    folder = cfg.data_dir / "outbox"
    with caplog.at_level(logging.INFO, logger="gateway.app"):
        gateway = await aiohttp_server(create_app(cfg))
    where = [r.getMessage() for r in caplog.records if "mail goes to" in r.getMessage()]
    assert len(where) == 1 and str(folder) in where[0]

    client = ApiClient(str(gateway.make_url("")).rstrip("/"))
    try:
        await client.signup("otto")
        files = await eventually(lambda: sorted(folder.glob("*.eml")), what="a .eml file")
        assert [p.name for p in folder.iterdir()] == [files[0].name]  # no temporary file left
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
        message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
        assert message["To"] == "otto@example.com"
        body = message.get_body(preferencelist=("plain",)).get_content()
        token = body.split("#verify-email/", 1)[1].split()[0]
        status, answer = await client.post(VERIFY, json={"token": token})
        assert status == 200, answer
    finally:
        await client.close()


async def test_outbox_folder_writes_whole_files(tmp_path):
    mailer = OutboxDirMailer(tmp_path / "outbox")
    message = email.message_from_string(
        "From: a@localhost\nTo: b@example.com\nSubject: hi\n\nhello\n",
        policy=email.policy.default,
    )
    await asyncio.gather(*[mailer.send(message) for _ in range(5)])
    names = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert len(names) == 5 and all(n.endswith(".eml") and not n.startswith(".") for n in names)
    for path in (tmp_path / "outbox").iterdir():
        assert path.read_bytes().endswith(b"hello\r\n")


# --- with Celery: the worker sends ---------------------------------------------------------


async def test_a_celery_worker_sends_the_mail(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path, sink
):
    from gateway.app import create_app
    from tests.gateway.test_worker import JWT_SECRET, Worker, celery_worker_env

    cfg = make_config(
        mongo_url,
        mongo_db_name,
        tmp_path / "gateway",
        redis_url=redis_url,
        jwt_secret=JWT_SECRET,
        tasks_backend="celery",
        jobs_interval=0.2,
        smtp_url=sink.url,
    )
    gateway = await aiohttp_server(create_app(cfg))
    client = ApiClient(str(gateway.make_url("")).rstrip("/"))
    try:
        await client.signup("cel")
    finally:
        await client.close()
    # the gateway only enqueues: without a worker the row waits
    assert (await only_row(gateway))["state"] == "queued"
    assert sink.received == []
    worker = Worker(
        celery_worker_env(
            mongo_url,
            mongo_db_name,
            redis_url,
            tmp_path / "worker-var",
            SMTP_URL=sink.url,
        ),
        tmp_path / "worker.log",
    )
    try:
        try:
            [received] = await sink.wait_for("cel@example.com", timeout=60)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- worker log ---\n{worker.log()[-4000:]}") from None
        assert received.subject == "Confirm your email address"
        await eventually(
            lambda: outbox(gateway).count("sent"), what="the row marked sent by the worker"
        )
        assert f"mail goes to SMTP server smtp://127.0.0.1:{sink.port}" in worker.log()
    finally:
        assert await worker.stop() == 0
