"""Structured logs: a full run of the real ``run.py`` under ``LOG_FORMAT=json`` at DEBUG, whose
every line must parse and none may hold a secret; the request-id middleware; and the redaction
filter on each shape of secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from storage.config import Config, settings
from storage.logs import (
    QUIET_LOGGERS,
    Redactor,
    configure_logging,
    make_handler,
    request_context,
    secret_values,
)
from tests.conftest import _free_port
from tests.helpers import SocketClient, eventually
from tests.messaging.smtp_sink import Received
from tests.messaging.test_mfa import Authenticator
from tests.test_run import ROOT, stop, wait_for_line

PASSWORD = "Sekrit-horse-battery-91"
WRONG_PASSWORD = "Wrong-horse-battery-37"
NEW_PASSWORD = "Renewed-horse-battery-58"
METRICS_TOKEN = "metrics-" + "q" * 40
SMTP_PASSWORD = "smtp-pass-word-77"
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


# -- a full run ------------------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    import os

    ours = {s["env"] for s in settings()}
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env.update(
        PASSWORD_HASH_MEMORY_KIB="1024",
        PASSWORD_HASH_TIME_COST="1",
        LOG_FORMAT="json",
        LOG_LEVEL="debug",
        METRICS_TOKEN=METRICS_TOKEN,
        AETHERIAL_ENV="development",
        **extra,
    )
    return env


def _start(port: int, data_dir: Path, stderr_path: Path) -> subprocess.Popen:
    """run.py with its standard error (the log) in a file; its standard output holds the
    "running on" line we wait for."""
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "run.py", "--port", str(port), "--data-dir", str(data_dir)],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        wait_for_line(process, f"http://127.0.0.1:{port}")
    except BaseException:
        process.kill()
        process.wait(timeout=10)
        raise
    return process


async def _call(http, method, url, *, token=None, body=None, headers=None):
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with http.request(method, url, json=body, headers=headers) as response:
        text = await response.text()
        data = json.loads(text) if response.content_type == "application/json" else text
        return response.status, data, response.headers


async def _mailed_token(data_dir: Path, to: str, page: str) -> str:
    """The token of the ``#<page>/`` link in the mail to ``to`` that the embedded default wrote
    to ``DATA_DIR/outbox/`` (sent by the in-process task, a moment after the request)."""
    import email
    import email.policy

    async def find() -> str | None:
        for path in sorted((data_dir / "outbox").glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            received = Received("", [to], message)
            if received.to.endswith(to) and f"#{page}/" in received.text:
                return received.token(page)
        return None

    token = None
    for _ in range(200):
        token = await find()
        if token:
            return token
        await asyncio.sleep(0.05)
    pytest.fail(f"no mail to {to} with a #{page}/ link in {data_dir / 'outbox'}")


async def _account_secrets(http, base: str, data_dir: Path, ann: str, bob: str, secrets) -> None:
    """The secrets of issue 21's flows, each put through the API: the verification and reset
    links' tokens, the new password, the TOTP secret, the recovery codes and a login's mfa_token.
    """
    token = await _mailed_token(data_dir, f"{ann}@example.com", "verify-email")
    secrets["email verification token"] = token
    status, body, _ = await _call(
        http, "POST", base + "/api/v1/auth/email/verify", body={"token": token}
    )
    assert status == 200, body
    status, body, _ = await _call(
        http, "POST", base + "/api/v1/auth/password/forgot", body={"email": f"{ann}@example.com"}
    )
    assert status == 202, body
    token = await _mailed_token(data_dir, f"{ann}@example.com", "reset-password")
    secrets["password reset token"] = token
    secrets["new password"] = NEW_PASSWORD
    status, body, _ = await _call(
        http,
        "POST",
        base + "/api/v1/auth/password/reset",
        body={"token": token, "new_password": NEW_PASSWORD},
    )
    assert status == 200 and body["login"] == ann, body

    # bob turns on two-factor sign-in, then signs in with a recovery code
    _, login, _ = await _call(
        http, "POST", base + "/api/v1/auth/login", body={"login": bob, "password": PASSWORD}
    )
    access = login["access_token"]
    status, body, _ = await _call(
        http, "POST", base + "/api/v1/me/mfa/totp", token=access, body={"password": PASSWORD}
    )
    assert status == 200, body
    secrets["TOTP secret"] = body["secret"]
    authenticator = Authenticator(body["secret"])
    status, body, _ = await _call(
        http,
        "POST",
        base + "/api/v1/me/mfa/totp/confirm",
        token=access,
        body={"code": await authenticator.next_code()},
    )
    assert status == 200, body
    for number, code in enumerate(body["recovery_codes"]):
        secrets[f"recovery code {number}"] = code
    status, body, _ = await _call(
        http, "POST", base + "/api/v1/auth/login", body={"login": bob, "password": PASSWORD}
    )
    assert status == 401 and body["error"]["code"] == "mfa_required", body
    secrets["mfa token"] = mfa_token = body["error"]["details"]["mfa_token"]
    status, body, _ = await _call(
        http,
        "POST",
        base + "/api/v1/auth/login/mfa",
        body={"mfa_token": mfa_token, "code": secrets["recovery code 0"]},
    )
    assert status == 200, body
    secrets["bob's second access token"] = body["access_token"]


async def test_a_full_run_logs_json_lines_without_secrets(tmp_path):
    port = _free_port()
    data_dir = tmp_path / "var"
    stderr_path = tmp_path / "stderr.log"
    process = await asyncio.to_thread(_start, port, data_dir, stderr_path)
    secrets: dict[str, str] = {"password": PASSWORD, "wrong password": WRONG_PASSWORD}
    request_ids: list[str] = []
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            ann, bob = f"ann{uuid.uuid4().hex[:6]}", f"bob{uuid.uuid4().hex[:6]}"
            for name in (ann, bob):
                status, body, _ = await _call(
                    http,
                    "POST",
                    base + "/api/v1/auth/register",
                    body={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
                )
                assert status == 201, body
            status, body, _ = await _call(
                http,
                "POST",
                base + "/api/v1/auth/login",
                body={"login": ann, "password": WRONG_PASSWORD},
            )
            assert status == 401, body
            status, login, headers = await _call(
                http,
                "POST",
                base + "/api/v1/auth/login",
                body={"login": ann, "password": PASSWORD},
                headers={"X-Request-ID": "client-chosen-id-1"},
            )
            assert status == 200, login
            assert headers["X-Request-ID"] == "client-chosen-id-1"
            request_ids.append("client-chosen-id-1")
            secrets["first access token"] = login["access_token"]
            secrets["first refresh token"] = login["refresh_token"]
            status, tokens, headers = await _call(
                http,
                "POST",
                base + "/api/v1/auth/refresh",
                body={"refresh_token": login["refresh_token"]},
            )
            assert status == 200, tokens
            request_ids.append(headers["X-Request-ID"])
            secrets["access token"] = access = tokens["access_token"]
            secrets["refresh token"] = tokens["refresh_token"]
            _, bob_login, _ = await _call(
                http,
                "POST",
                base + "/api/v1/auth/login",
                body={"login": bob, "password": PASSWORD},
            )
            secrets["bob's access token"] = bob_login["access_token"]
            status, conversation, headers = await _call(
                http,
                "POST",
                base + "/api/v1/conversations",
                token=access,
                body={"type": "direct", "user_id": bob_login["user"]["id"]},
            )
            assert status in (200, 201), conversation
            request_ids.append(headers["X-Request-ID"])
            cid = conversation["conversation"]["id"]

            # a socket, a message, the refresh token in a query string (a client's mistake)
            socket = SocketClient()
            await socket.connect(base, access)
            try:
                ack = await socket.call(
                    "message.send",
                    {"conversation_id": cid, "client_msg_id": "m1", "text": "hello, logs"},
                )
                assert ack["ok"], ack
                await socket.wait_for("message.new")
            finally:
                await socket.close()
            status, _, _ = await _call(
                http, "GET", base + f"/api/v1/me?token={tokens['refresh_token']}", token=access
            )
            assert status == 400  # this route takes no query parameters
            # error routes: unknown path, bad token, a malformed body
            status, body, headers = await _call(http, "GET", base + "/api/v1/nowhere")
            assert status == 404 and body["error"]["code"] == "not_found"
            assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])
            request_ids.append(headers["X-Request-ID"])
            status, body, _ = await _call(
                http, "GET", base + "/api/v1/me", token=secrets["first access token"] + "x"
            )
            assert status == 401, body
            status, body, _ = await _call(
                http,
                "POST",
                base + "/api/v1/auth/login",
                body={"login": ann, "password": PASSWORD, "extra": "x"},
            )
            assert status == 400, body
            status, metrics, _ = await _call(http, "GET", base + "/metrics", token=METRICS_TOKEN)
            assert status == 200 and "aetherial_messages_sent_total" in metrics
            status, _, _ = await _call(http, "POST", base + "/api/v1/auth/logout", token=access)
            assert status == 204
            await _account_secrets(http, base, data_dir, ann, bob, secrets)
    finally:
        code = await asyncio.to_thread(stop, process, signal.SIGTERM)
    assert code == 0
    secrets["JWT secret"] = (data_dir / "jwt.key").read_text().strip()
    secrets["metrics token"] = METRICS_TOKEN

    output = stderr_path.read_text()
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) >= 15, output
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"]), record
        assert record["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    # who each line is about: requests by id (and user once signed in), socket events by socket
    logged_ids = {r.get("request_id") for r in records}
    assert set(request_ids) <= logged_ids, (request_ids, sorted(filter(None, logged_ids)))
    assert any(r.get("request_id") and r.get("user_id") for r in records)
    assert any(r.get("socket_id") and r.get("user_id") for r in records)
    assert any(r["logger"] == "aetherial.access" and "/api/v1/me?token=***" in r["message"]
               for r in records)  # fmt: skip

    leaked = {what: secret for what, secret in secrets.items() if secret in output}
    assert not leaked, f"found in the logs: {sorted(leaked)}"
    assert not JWT_SHAPE.search(output)


# -- request ids -----------------------------------------------------------------------------------


async def test_every_response_carries_a_request_id_and_its_records_do_too(api):
    stream = io.StringIO()
    config = Config.from_env({"LOG_FORMAT": "json", "LOG_LEVEL": "debug"})
    handler = make_handler(config, stream)
    root, access = logging.getLogger(), logging.getLogger("aetherial.access")
    root.addHandler(handler)
    access.setLevel(logging.DEBUG)
    try:
        base = api.base_url
        async with aiohttp.ClientSession() as http:
            ids = []
            for given in ("abc-123", "x" * 129, "bad id {with} spaces", "", "ok.id:42_-"):
                headers = {"X-Request-ID": given} if given else {}
                async with http.get(base + "/api/v1/nowhere", headers=headers) as response:
                    assert response.status == 404
                    ids.append(response.headers["X-Request-ID"])
            assert ids[0] == "abc-123" and ids[4] == "ok.id:42_-"
            for replaced in ids[1:4]:  # too long, not a sane token, absent: a fresh one
                assert re.fullmatch(r"[0-9a-f]{32}", replaced), replaced
            assert len(set(ids)) == 5
        await eventually(lambda: "abc-123" in stream.getvalue())
    finally:
        root.removeHandler(handler)
        access.setLevel(logging.NOTSET)
    records = [json.loads(line) for line in stream.getvalue().splitlines() if line]
    mine = [r for r in records if r.get("request_id") == "abc-123"]
    assert mine and all(r["logger"] == "aetherial.access" for r in mine)
    assert "GET /api/v1/nowhere -> 404" in mine[0]["message"]
    assert not [r for r in records if r.get("request_id") not in {None, *ids}]


# -- the formatter ---------------------------------------------------------------------------------


def _render(config: Config, emit) -> str:
    stream = io.StringIO()
    handler = make_handler(config, stream)
    logger = logging.getLogger(f"tests.logs.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    emit(logger)
    return stream.getvalue()


def test_json_lines_hold_the_context_and_the_traceback_as_a_string():
    config = Config.from_env({"LOG_FORMAT": "json"})

    def emit(logger):
        with request_context("req-1"):
            from storage.logs import bind_user

            bind_user("user-9")
            try:
                raise RuntimeError("boom with password=hunter2-hunter2")
            except RuntimeError:
                logger.exception("failed\non two lines, token=%s", "abc.def")
        logger.warning("outside")

    lines = _render(config, emit).splitlines()
    assert len(lines) == 2
    first, second = json.loads(lines[0]), json.loads(lines[1])
    assert first["request_id"] == "req-1" and first["user_id"] == "user-9"
    assert first["level"] == "ERROR" and first["message"] == "failed\non two lines, token=***"
    assert "Traceback" in first["exc_info"] and "RuntimeError" in first["exc_info"]
    assert "hunter2" not in lines[0] and "password=***" in first["exc_info"]
    assert "request_id" not in second and "user_id" not in second  # the context ended


def test_text_lines_are_masked_too_and_name_the_request():
    config = Config.from_env({})
    assert config.log_format == "text"

    def emit(logger):
        with request_context("req-2"):
            logger.info("login with password=%s", "hunter2-hunter2")

    text = _render(config, emit)
    assert text.count("\n") == 1
    assert "password=***" in text and "hunter2" not in text
    assert text.rstrip().endswith("[request_id=req-2]")


def test_configure_logging_replaces_only_its_own_handler_and_captures_warnings(tmp_path):
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        config = Config.from_env({"LOG_FORMAT": "json", "LOG_LEVEL": "debug"})
        first = configure_logging(config, io.StringIO())
        second = configure_logging(config, stream)
        assert first not in root.handlers and second in root.handlers
        assert all(h in root.handlers for h in before)  # pytest's own are left alone
        assert logging.getLogger("pymongo").getEffectiveLevel() == logging.INFO
        import warnings

        warnings.warn("careful: token=abcdef123456", UserWarning, stacklevel=1)
        logging.getLogger("tests.logs").debug("debug reaches the handler")
    finally:
        root.removeHandler(second)
        root.setLevel(level)
        logging.captureWarnings(False)
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(r["logger"] == "py.warnings" and "token=***" in r["message"] for r in records)
    assert any(r["message"] == "debug reaches the handler" for r in records)


# -- redaction, shape by shape ---------------------------------------------------------------------

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwic2lkIjoieCJ9."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        (f"token {JWT} seen", "token *** seen", "eyJ"),
        (f"Authorization: Bearer {JWT}", "Authorization: Bearer ***", "SflKx"),
        ("Authorization: Bearer opaque-token_123", "Bearer ***", "opaque-token_123"),
        ("Authorization: Basic dXNlcjpwYXNz", "Basic ***", "dXNlcjpwYXNz"),
        ("authorization=Token abc123def", "authorization=Token ***", "abc123def"),
        ('{"Authorization": "Digest abc123def"}', '"Authorization": "Digest ***"', "abc123def"),
        ("password=hunter2 next=1", "password=*** next=1", "hunter2"),
        ("new_password: hunter2, ok", "new_password: ***, ok", "hunter2"),
        ('{"password": "hunter 2", "login": "ann"}', '"password": "***"', "hunter 2"),
        ("{'refresh_token': 'abc123', 'x': 1}", "'refresh_token': '***'", "abc123"),
        ('{"totp_secret":"JBSWY3DPEHPK3PXP"}', '"totp_secret":"***"', "JBSWY3DP"),
        ('{"code": "123456"}', '"code": "***"', "123456"),
        ("recovery_code=abcd-efgh", "recovery_code=***", "abcd-efgh"),
        ('cmd {\\"password_hash\\": \\"$argon2id$v=19$x\\"}', '\\"***\\"', "argon2id"),
        ("GET /reset?token=abc123&next=/ ->", "?token=***&next=/", "abc123"),
        ("GET /media/1?exp=99&sig=deadbeef", "sig=***", "deadbeef"),
        ("api_key=sk-live-1234", "api_key=***", "sk-live-1234"),
        ("JWT_SECRET=" + "s" * 40, "JWT_SECRET=***", "s" * 40),
        (
            "mongodb://admin:p4ss@mongo:27017/db",
            "mongodb://admin:***@mongo:27017/db",
            "p4ss",
        ),
        ("redis://:s3cret@redis:6379/0 is down", "redis://:***@redis:6379/0", "s3cret"),
        ("smtp://mailer:pa55w0rd@smtp.example.com:587", "smtp://mailer:***@", "pa55w0rd"),
    ],
)
def test_redaction_masks_each_shape(text, kept, gone):
    masked = Redactor()(text)
    assert gone not in masked, masked
    assert kept in masked, masked


@pytest.mark.parametrize(
    "text",
    [
        "status_code=500 exit code 1",
        "error_code=invalid_token",
        "sent 12 messages to 3 sockets",
        "user_id=abc123 conversation_id=def456",
        "https://example.com/path?page=2",
        "token_ttl=900 access_token_ttl=900",
    ],
)
def test_redaction_leaves_ordinary_text_alone(text):
    assert Redactor()(text) == text


def test_configured_secrets_are_masked_wherever_they_appear(tmp_path):
    config = Config.from_env(
        {
            "JWT_SECRET": "J" * 20 + "wt-secret-value-xyz",
            "METRICS_TOKEN": METRICS_TOKEN,
            "AI_API_KEY": "sk-anything-1234",
            "REDIS_URL": f"redis://user:{SMTP_PASSWORD}@localhost:6379/0",
        },
        data_dir=tmp_path,
    )
    values = secret_values(config)
    assert {config.jwt_secret, METRICS_TOKEN, "sk-anything-1234", SMTP_PASSWORD} <= set(values)
    text = _render(
        config,
        lambda logger: logger.warning(
            "oops %s %s %s %s",
            config.jwt_secret,
            METRICS_TOKEN,
            "sk-anything-1234",
            f"(password {SMTP_PASSWORD} refused)",
        ),
    )
    for secret in (config.jwt_secret, METRICS_TOKEN, "sk-anything-1234", SMTP_PASSWORD):
        assert secret not in text
    assert text.count("***") == 4


def test_a_bad_format_string_is_still_logged(tmp_path):
    text = _render(Config.from_env({}), lambda logger: logger.info("%d items", "many"))
    assert "items" in text and "many" in text
