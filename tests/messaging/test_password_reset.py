"""Password reset through the running gateway and a local SMTP server: the same answer whether or
not the address is known, a link only for verified addresses of accounts that may sign in, rate
limits, a single-use 30-minute token, every session ended, and every bad input refused with
nothing changed."""

from __future__ import annotations

import asyncio

import pytest

from gateway.keys import MESSAGING
from messaging.actions import password_reset
from storage.config import Config
from storage.mongo import now_ms
from tests.conftest import make_config
from tests.helpers import PASSWORD, ApiClient
from tests.messaging.smtp_sink import SmtpSink

FORGOT = "/api/v1/auth/password/forgot"
RESET = "/api/v1/auth/password/reset"
VERIFY = "/api/v1/auth/email/verify"
NEW_PASSWORD = "Brand-new-horse-42"


@pytest.fixture
def config(smtp_config) -> Config:
    return smtp_config


async def verified(api: ApiClient, sink: SmtpSink, name: str) -> dict:
    """A new account, signed in on ``api``, its address verified from the mailed link."""
    login = await api.signup(name)
    [mail] = await sink.wait_for(f"{name}@example.com")
    status, body = await api.post(VERIFY, json={"token": mail.token("verify-email")})
    assert status == 200, body
    return login


async def reset_link(api: ApiClient, sink: SmtpSink, name: str, nth: int = 2) -> str:
    """Ask for a reset of ``name``'s password; the token of the ``nth`` mail to them."""
    status, body = await api.post(FORGOT, json={"email": f"{name}@example.com"})
    assert status == 202, body
    return (await sink.wait_for(f"{name}@example.com", nth))[nth - 1].token("reset-password")


async def password_hash(gateway, name: str) -> str:
    user = await gateway.app[MESSAGING].users.get_user_by_login(name)
    return user["password_hash"]


async def can_sign_in(api: ApiClient, name: str, password: str) -> bool:
    status, _ = await api.post("/api/v1/auth/login", json={"login": name, "password": password})
    return status == 200


async def test_forgot_then_reset_ends_every_session(api: ApiClient, gateway, sink):
    login = await verified(api, sink, "rosa")
    laptop = ApiClient(api.base_url)
    try:
        other = await laptop.login("rosa")
        token = await reset_link(api, sink, "rosa")
        mail = sink.to("rosa@example.com")[1]
        assert mail.subject == "Reset your password"
        assert "30 minutes" in mail.text
        assert mail.link("reset-password").startswith("http://127.0.0.1:8080/#reset-password/")

        status, body = await api.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})
        assert (status, body) == (200, {"login": "rosa"})
        for access in (login["access_token"], other["access_token"]):
            status, body = await api.get("/api/v1/me", token=access)
            assert (status, body["error"]["code"]) == (401, "session_revoked")
        status, body = await api.post(
            "/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
        )
        assert status == 401
        assert not await can_sign_in(api, "rosa", PASSWORD)
        assert await can_sign_in(api, "rosa", NEW_PASSWORD)
        # used: the link works no more
        status, body = await api.post(RESET, json={"token": token, "new_password": "Other-pw-77x"})
        assert (status, body["error"]["code"]) == (400, "link_used")
        assert await can_sign_in(api, "rosa", NEW_PASSWORD)
    finally:
        await laptop.close()


async def test_reset_mail_in_spanish(api: ApiClient, sink):
    await verified(api, sink, "pablo")
    assert (await api.patch("/api/v1/me", json={"locale": "es-ES"}))[0] == 200
    await reset_link(api, sink, "pablo")
    mail = sink.to("pablo@example.com")[1]
    assert mail.subject == "Restablece tu contraseña"
    assert "30 minutos" in mail.text


async def test_same_answer_and_no_mail_unless_verified_and_allowed(api: ApiClient, gateway, sink):
    await api.signup("unver")  # never verifies
    suspended = ApiClient(api.base_url)
    try:
        await verified(suspended, sink, "susi")
    finally:
        await suspended.close()
    ctx = gateway.app[MESSAGING]
    await ctx.users.collection.update_one({"username": "susi"}, {"$set": {"suspended": True}})
    await verified(api, sink, "known")
    tokens_before = await ctx.email_tokens.collection.count_documents({})
    mail_before = await ctx.mail_outbox.count()

    answers = [
        await api.post(FORGOT, json={"email": address})
        for address in (
            "nobody@example.com",
            "unver@example.com",
            "susi@example.com",
            "  KNOWN@example.com ",
        )
    ]
    assert len({(status, str(body)) for status, body in answers}) == 1
    assert answers[0][0] == 202 and "message" in answers[0][1]
    # only the verified, active account got a token and a mail
    assert await ctx.email_tokens.collection.count_documents({}) == tokens_before + 1
    assert await ctx.mail_outbox.count() == mail_before + 1
    await sink.wait_for("known@example.com", 2)
    assert len(sink.to("unver@example.com")) == 1  # its sign-up verification only
    assert len(sink.to("susi@example.com")) == 1
    assert sink.to("nobody@example.com") == []


async def test_per_email_limit_still_answers_202_without_mail(api: ApiClient, gateway, sink):
    await verified(api, sink, "mona")
    for _ in range(password_reset.FORGOT_MAX_PER_EMAIL + 2):
        status, _ = await api.post(FORGOT, json={"email": "mona@example.com"})
        assert status == 202
    await sink.wait_for("mona@example.com", 1 + password_reset.FORGOT_MAX_PER_EMAIL)
    rows = await gateway.app[MESSAGING].mail_outbox.collection.count_documents(
        {"template": "reset_password"}
    )
    assert rows == password_reset.FORGOT_MAX_PER_EMAIL


async def test_per_address_limit_answers_429(api: ApiClient):
    for n in range(password_reset.FORGOT_MAX_PER_ADDRESS):
        status, _ = await api.post(FORGOT, json={"email": f"p{n}@example.com"})
        assert status == 202
    status, body = await api.post(FORGOT, json={"email": "last@example.com"})
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert body["error"]["details"]["retry_after"] > 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "missing_field"),
        ({"email": 7}, "wrong_type"),
        ({"email": "x@example.com", "more": 1}, "unknown_field"),
        ({"email": "no-at-sign"}, "invalid_field"),
        ({"email": "a" * 250 + "@example.com"}, "invalid_field"),
    ],
)
async def test_forgot_rejects_bad_bodies(api: ApiClient, gateway, body, code):
    status, answer = await api.post(FORGOT, json=body)
    assert (status, answer["error"]["code"]) == (400, code), answer
    assert await gateway.app[MESSAGING].email_tokens.collection.count_documents({}) == 0


# --- the reset link ------------------------------------------------------------------------


async def test_expired_link_changes_nothing(api: ApiClient, gateway, sink):
    await verified(api, sink, "exa")
    token = await reset_link(api, sink, "exa")
    before = await password_hash(gateway, "exa")
    tokens = gateway.app[MESSAGING].email_tokens.collection
    await tokens.update_many({"purpose": "reset_password"}, {"$set": {"expires_at": now_ms() - 1}})
    status, body = await api.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})
    assert (status, body["error"]["code"]) == (400, "link_expired")
    assert await password_hash(gateway, "exa") == before
    assert (await api.get("/api/v1/me"))[0] == 200  # still signed in


async def test_link_lives_password_reset_ttl(api: ApiClient, gateway, sink):
    await verified(api, sink, "ttl")
    await reset_link(api, sink, "ttl")
    row = await gateway.app[MESSAGING].email_tokens.collection.find_one(
        {"purpose": "reset_password"}
    )
    assert row["expires_at"] - row["created_at"] == 1800 * 1000


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: "x" * len(token),
        lambda token: token[:-2],
        lambda token: token + "A",
        lambda token: "short",
    ],
)
async def test_forged_links_change_nothing(api: ApiClient, gateway, sink, forge):
    await verified(api, sink, "fay")
    token = await reset_link(api, sink, "fay")
    before = await password_hash(gateway, "fay")
    status, body = await api.post(RESET, json={"token": forge(token), "new_password": NEW_PASSWORD})
    assert (status, body["error"]["code"]) == (400, "link_invalid")
    assert await password_hash(gateway, "fay") == before
    # the real one still works
    status, _ = await api.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})
    assert status == 200


async def test_a_verification_link_is_no_reset_link(api: ApiClient, gateway, sink):
    await api.signup("vic")
    [mail] = await sink.wait_for("vic@example.com")
    status, body = await api.post(
        RESET, json={"token": mail.token("verify-email"), "new_password": NEW_PASSWORD}
    )
    assert (status, body["error"]["code"]) == (400, "link_invalid")
    assert await can_sign_in(api, "vic", PASSWORD)


@pytest.mark.parametrize(
    "new_password", ["short1!", "password123", "wes-is-great-1", "aaaaaaaaaaaaaaaaaaaa"]
)
async def test_weak_password_refused_and_the_link_kept(api: ApiClient, gateway, sink, new_password):
    await verified(api, sink, "wes")
    token = await reset_link(api, sink, "wes")
    before = await password_hash(gateway, "wes")
    status, body = await api.post(RESET, json={"token": token, "new_password": new_password})
    assert (status, body["error"]["code"]) == (400, "weak_password"), body
    assert body["error"]["details"]["field"] == "password"
    assert await password_hash(gateway, "wes") == before
    assert (await api.get("/api/v1/me"))[0] == 200
    status, _ = await api.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})
    assert status == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"new_password": NEW_PASSWORD}, "missing_field"),
        ({"token": "x" * 43}, "missing_field"),
        ({"token": 5, "new_password": NEW_PASSWORD}, "wrong_type"),
        ({"token": "", "new_password": NEW_PASSWORD}, "invalid_field"),
        ({"token": "x" * 43, "new_password": NEW_PASSWORD, "login": "x"}, "unknown_field"),
    ],
)
async def test_reset_rejects_bad_bodies(api: ApiClient, body, code):
    status, answer = await api.post(RESET, json=body)
    assert (status, answer["error"]["code"]) == (400, code), answer


async def test_one_reset_voids_the_other_links(api: ApiClient, gateway, sink):
    await verified(api, sink, "olga")
    first = await reset_link(api, sink, "olga", 2)
    second = await reset_link(api, sink, "olga", 3)
    status, _ = await api.post(RESET, json={"token": second, "new_password": NEW_PASSWORD})
    assert status == 200
    status, body = await api.post(RESET, json={"token": first, "new_password": "Sneaky-horse-5"})
    assert (status, body["error"]["code"]) == (400, "link_used")
    assert await can_sign_in(api, "olga", NEW_PASSWORD)


async def test_suspended_account_cannot_reset(api: ApiClient, gateway, sink):
    await verified(api, sink, "sam")
    token = await reset_link(api, sink, "sam")
    await gateway.app[MESSAGING].users.collection.update_one(
        {"username": "sam"}, {"$set": {"suspended": True}}
    )
    before = await password_hash(gateway, "sam")
    status, body = await api.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})
    assert (status, body["error"]["code"]) == (403, "account_suspended")
    assert await password_hash(gateway, "sam") == before


async def test_ten_concurrent_uses_one_wins(api: ApiClient, gateway, sink):
    await verified(api, sink, "tess")
    token = await reset_link(api, sink, "tess")
    passwords = [f"Concurrent-horse-{n}x" for n in range(10)]
    answers = await asyncio.gather(
        *[api.post(RESET, json={"token": token, "new_password": p}) for p in passwords]
    )
    winners = [p for p, (status, _) in zip(passwords, answers, strict=True) if status == 200]
    assert len(winners) == 1
    assert {b["error"]["code"] for s, b in answers if s != 200} == {"link_used"}
    assert await can_sign_in(api, "tess", winners[0])
    for loser in set(passwords) - set(winners):
        assert not await can_sign_in(api, "tess", loser)


async def test_reset_forgives_failed_sign_ins(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path, sink
):
    from gateway.app import create_app

    cfg = make_config(
        mongo_url, mongo_db_name, tmp_path / "var", smtp_url=sink.url, login_max_failures=3
    )
    server = await aiohttp_server(create_app(cfg))
    api = ApiClient(str(server.make_url("")).rstrip("/"))
    try:
        await verified(api, sink, "lou")
        for _ in range(3):
            assert not await can_sign_in(api, "lou", "Guess-horse-1")
        status, body = await api.post(
            "/api/v1/auth/login", json={"login": "lou", "password": PASSWORD}
        )
        assert (status, body["error"]["code"]) == (429, "rate_limited")
        token = await reset_link(api, sink, "lou")
        status, _ = await api.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})
        assert status == 200
        assert await can_sign_in(api, "lou", NEW_PASSWORD)
    finally:
        await api.close()
