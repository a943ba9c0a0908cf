"""Email verification and change of address, through the running gateway and a local SMTP server:
links work once, forged/used/expired ones change nothing, resending is limited, a change takes
effect only from the new address's link and tells the old address."""

from __future__ import annotations

import asyncio

import pytest

from gateway.keys import MESSAGING
from storage.config import Config
from storage.mongo import now_ms
from tests.conftest import make_config
from tests.helpers import PASSWORD, ApiClient
from tests.messaging.smtp_sink import SmtpSink

VERIFY = "/api/v1/auth/email/verify"
RESEND = "/api/v1/me/email/verification"
CHANGE = "/api/v1/me/email"


@pytest.fixture
def config(smtp_config) -> Config:
    return smtp_config


async def me(api: ApiClient, token: str | None = None) -> dict:
    status, body = await api.get("/api/v1/me", token=token)
    assert status == 200, body
    return body["user"]


async def signed_up(api: ApiClient, sink: SmtpSink, name: str) -> tuple[dict, str]:
    """A new account (signed in on ``api``) and the token of its verification link."""
    login = await api.signup(name)
    [mail] = await sink.wait_for(f"{name}@example.com")
    return login, mail.token("verify-email")


async def test_link_verifies_once_and_nothing_else_works(api: ApiClient, gateway, sink):
    _, token = await signed_up(api, sink, "vera")
    # forged: nothing known, nothing changed
    for forged in ("x" * 43, token[:-1] + ("A" if token[-1] != "A" else "B"), "short"):
        status, body = await api.post(VERIFY, json={"token": forged})
        assert (status, body["error"]["code"]) == (400, "link_invalid"), body
    assert (await me(api))["email_verified"] is False
    status, body = await api.post(VERIFY, json={"token": token})
    assert status == 200, body
    status, body = await api.post(VERIFY, json={"token": token})
    assert (status, body["error"]["code"]) == (400, "link_used")
    assert (await me(api))["email_verified"] is True
    # verified already: resending is refused
    status, body = await api.post(RESEND)
    assert (status, body["error"]["code"]) == (409, "already_verified")


async def test_expired_link_changes_nothing(api: ApiClient, gateway, sink):
    _, token = await signed_up(api, sink, "eli")
    tokens = gateway.app[MESSAGING].email_tokens.collection
    await tokens.update_many({}, {"$set": {"expires_at": now_ms() - 1}})  # fake the clock
    status, body = await api.post(VERIFY, json={"token": token})
    assert (status, body["error"]["code"]) == (400, "link_expired")
    assert (await me(api))["email_verified"] is False
    # a new link works
    assert (await api.post(RESEND))[0] == 202
    fresh = (await sink.wait_for("eli@example.com", 2))[1].token("verify-email")
    assert (await api.post(VERIFY, json={"token": fresh}))[0] == 200


async def test_tokens_are_stored_hashed(api: ApiClient, gateway, sink):
    _, token = await signed_up(api, sink, "hana")
    rows = await gateway.app[MESSAGING].email_tokens.collection.find({}).to_list(None)
    assert len(rows) == 1
    assert token not in str(rows)
    assert len(rows[0]["_id"]) == 64  # a SHA-256


async def test_resend_is_rate_limited(api: ApiClient, sink):
    await signed_up(api, sink, "rita")
    for _ in range(5):
        assert (await api.post(RESEND))[0] == 202
    status, body = await api.post(RESEND)
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert body["error"]["details"]["retry_after"] > 0
    await sink.wait_for("rita@example.com", 6)
    assert (await api.post(RESEND, token=""))[0] == 401


async def test_concurrent_uses_of_one_link_verify_once(api: ApiClient, gateway, sink):
    _, token = await signed_up(api, sink, "cora")
    answers = await asyncio.gather(*[api.post(VERIFY, json={"token": token}) for _ in range(10)])
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] + [400] * 9
    assert {b["error"]["code"] for s, b in answers if s == 400} == {"link_used"}


# --- change of address -----------------------------------------------------------------------


async def test_change_takes_effect_from_the_new_address(api: ApiClient, gateway, sink):
    _, first = await signed_up(api, sink, "milo")
    assert (await api.post(VERIFY, json={"token": first}))[0] == 200
    status, body = await api.post(CHANGE, json={"email": "Milo@New.example", "password": PASSWORD})
    assert status == 202, body
    assert body == {"pending_email": "Milo@New.example"}
    [confirm] = await sink.wait_for("Milo@New.example")
    assert "Milo@New.example" in confirm.text
    # nothing changes until the link is followed
    user = await me(api)
    assert (user["email"], user["email_verified"]) == ("milo@example.com", True)

    status, body = await api.post(VERIFY, json={"token": confirm.token("verify-email")})
    assert status == 200, body
    assert body == {"email": "Milo@New.example", "email_verified": True, "changed": True}
    user = await me(api)
    assert (user["email"], user["email_verified"]) == ("Milo@New.example", True)
    # the old address is told, in the reader's language
    notices = await sink.wait_for("milo@example.com", 2)
    assert notices[1].subject == "The email address of your account was changed"
    assert "milo@example.com" in notices[1].text and "Milo@New.example" in notices[1].text
    # sign-in works with the new address (any letter case), not the old one
    other = ApiClient(api.base_url)
    try:
        await other.login("milo@new.example")
        status, _ = await other.post(
            "/api/v1/auth/login", json={"login": "milo@example.com", "password": PASSWORD}
        )
        assert status == 401
    finally:
        await other.close()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "not-an-address", "password": PASSWORD}, 400, "invalid_field"),
        ({"email": "a@b", "password": PASSWORD}, 400, "invalid_field"),
        ({"email": "PAT@example.com", "password": PASSWORD}, 400, "same_email"),
        ({"email": "taken@example.com", "password": PASSWORD}, 409, "email_taken"),
        ({"email": "TAKEN@example.com", "password": PASSWORD}, 409, "email_taken"),
        ({"email": "new@example.com", "password": "Wrong-horse-9"}, 403, "wrong_password"),
        ({"email": "new@example.com"}, 400, "missing_field"),
        ({"email": "new@example.com", "password": PASSWORD, "x": 1}, 400, "unknown_field"),
        ({"email": 5, "password": PASSWORD}, 400, "wrong_type"),
    ],
)
async def test_bad_change_requests_change_nothing(
    api: ApiClient, gateway, sink, body, status, code
):
    taken = ApiClient(api.base_url)
    try:
        await taken.register("taken")
    finally:
        await taken.close()
    await signed_up(api, sink, "pat")
    got, answer = await api.post(CHANGE, json=body)
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert (await me(api))["email"] == "pat@example.com"
    tokens = gateway.app[MESSAGING].email_tokens.collection
    assert await tokens.count_documents({"kind": "change"}) == 0


async def test_wrong_passwords_share_the_sign_in_budget(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path, sink
):
    from gateway.app import create_app

    cfg = make_config(
        mongo_url, mongo_db_name, tmp_path / "var", smtp_url=sink.url, login_max_failures=3
    )
    server = await aiohttp_server(create_app(cfg))
    api = ApiClient(str(server.make_url("")).rstrip("/"))
    try:
        await api.signup("wes")
        for _ in range(3):
            status, _ = await api.post(CHANGE, json={"email": "w@x.example", "password": "nope"})
            assert status == 403
        status, body = await api.post(CHANGE, json={"email": "w@x.example", "password": PASSWORD})
        assert (status, body["error"]["code"]) == (429, "rate_limited")
        status, body = await api.post(
            "/api/v1/auth/login", json={"login": "wes", "password": PASSWORD}
        )
        assert (status, body["error"]["code"]) == (429, "rate_limited")
    finally:
        await api.close()


async def test_newer_change_voids_the_older_link(api: ApiClient, sink):
    await signed_up(api, sink, "noa")
    for address in ("one@example.com", "two@example.com"):
        status, _ = await api.post(CHANGE, json={"email": address, "password": PASSWORD})
        assert status == 202
    older = (await sink.wait_for("one@example.com"))[0].token("verify-email")
    newer = (await sink.wait_for("two@example.com"))[0].token("verify-email")
    status, body = await api.post(VERIFY, json={"token": older})
    assert (status, body["error"]["code"]) == (400, "link_used")
    assert (await me(api))["email"] == "noa@example.com"
    assert (await api.post(VERIFY, json={"token": newer}))[0] == 200
    assert (await me(api))["email"] == "two@example.com"


async def test_address_taken_meanwhile_is_refused_and_the_link_kept(api: ApiClient, sink):
    await signed_up(api, sink, "ines")
    status, _ = await api.post(CHANGE, json={"email": "shared@example.com", "password": PASSWORD})
    assert status == 202
    token = (await sink.wait_for("shared@example.com"))[0].token("verify-email")
    squatter = ApiClient(api.base_url)
    try:
        status, body = await squatter.post(
            "/api/v1/auth/register",
            json={"username": "squat", "email": "shared@example.com", "password": PASSWORD},
        )
        assert status == 201, body
        status, body = await api.post(VERIFY, json={"token": token})
        assert (status, body["error"]["code"]) == (409, "email_taken")
        assert (await me(api))["email"] == "ines@example.com"
        # the squatter leaves that address: the same link now works
        await squatter.login("squat")
        status, _ = await squatter.post(
            CHANGE, json={"email": "elsewhere@example.com", "password": PASSWORD}
        )
        assert status == 202
        moved = (await sink.wait_for("elsewhere@example.com"))[0].token("verify-email")
        assert (await squatter.post(VERIFY, json={"token": moved}))[0] == 200
    finally:
        await squatter.close()
    assert (await api.post(VERIFY, json={"token": token}))[0] == 200
    assert (await me(api))["email"] == "shared@example.com"


async def test_two_accounts_confirming_one_address_at_once(api: ApiClient, sink):
    other = ApiClient(api.base_url)
    try:
        await signed_up(api, sink, "amy")
        await signed_up(other, sink, "bea")
        for client in (api, other):
            status, _ = await client.post(
                CHANGE, json={"email": "same@example.com", "password": PASSWORD}
            )
            assert status == 202
        links = [m.token("verify-email") for m in await sink.wait_for("same@example.com", 2)]
        answers = await asyncio.gather(*[api.post(VERIFY, json={"token": t}) for t in links])
        assert sorted(status for status, _ in answers) == [200, 409], answers
        emails = {(await me(api))["email"], (await me(other))["email"]}
        # one has the address; the other kept their own
        assert len(emails & {"amy@example.com", "bea@example.com"}) == 1
        assert "same@example.com" in emails
    finally:
        await other.close()


async def test_change_voids_reset_links_sent_to_the_old_address(api: ApiClient, sink):
    _, first = await signed_up(api, sink, "zed")
    assert (await api.post(VERIFY, json={"token": first}))[0] == 200
    status, _ = await api.post("/api/v1/auth/password/forgot", json={"email": "zed@example.com"})
    assert status == 202
    reset = (await sink.wait_for("zed@example.com", 2))[1].token("reset-password")
    status, _ = await api.post(CHANGE, json={"email": "zed@new.example", "password": PASSWORD})
    assert status == 202
    confirm = (await sink.wait_for("zed@new.example"))[0].token("verify-email")
    assert (await api.post(VERIFY, json={"token": confirm}))[0] == 200
    status, body = await api.post(
        "/api/v1/auth/password/reset", json={"token": reset, "new_password": "Another-horse-7"}
    )
    assert (status, body["error"]["code"]) == (400, "link_used")
