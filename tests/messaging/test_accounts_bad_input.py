"""Every class of bad input gets its documented error and writes nothing."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.helpers import PASSWORD, ApiClient

REGISTER = "/api/v1/auth/register"


async def users_count(gateway) -> int:
    from gateway.keys import DATABASE

    return await gateway.app[DATABASE].db.users.count_documents({})


def reg(**fields):
    body = {"username": "zoe", "email": "zoe@example.com", "password": PASSWORD}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not ...}


@pytest.mark.parametrize(
    ("payload", "status", "code", "field"),
    [
        (reg(username=...), 400, "missing_field", "username"),
        (reg(password=...), 400, "missing_field", "password"),
        (reg(username=42), 400, "wrong_type", "username"),
        (reg(email=["a@b.co"]), 400, "wrong_type", "email"),
        (reg(password=None), 400, "wrong_type", "password"),
        (reg(extra=1), 400, "unknown_field", "extra"),
        (reg(username="ab"), 400, "invalid_field", "username"),
        (reg(username="1abc"), 400, "invalid_field", "username"),
        (reg(username="has space"), 400, "invalid_field", "username"),
        (reg(username="x" * 33), 400, "invalid_field", "username"),
        (reg(email="not-an-email"), 400, "invalid_field", "email"),
        (reg(password="short1!"), 400, "weak_password", "password"),
        (reg(password="lowercaseonly"), 400, "weak_password", "password"),
        (reg(password="password123"), 400, "weak_password", "password"),
        (reg(password="Zoe-is-great-1"), 400, "weak_password", "password"),
        (reg(password="aaaaaaaaaaaaaaaaaaaa"), 400, "weak_password", "password"),
    ],
)
async def test_register_rejects(api: ApiClient, gateway, payload, status, code, field):
    got, body = await api.post(REGISTER, json=payload)
    assert got == status, body
    assert body["error"]["code"] == code
    assert body["error"]["details"]["field"] == field
    assert body["error"]["message"]
    assert await users_count(gateway) == 0


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "wrong_type"),
        (b"\xff\xfe", "invalid_json"),
        (b"", "invalid_json"),
    ],
)
async def test_register_rejects_non_object_bodies(api: ApiClient, gateway, raw, code):
    status, body = await api.post(REGISTER, data=raw)
    assert status == 400 and body["error"]["code"] == code
    assert await users_count(gateway) == 0


async def test_duplicates_in_other_letter_case(api: ApiClient, gateway):
    await api.register("Quinn")
    status, body = await api.post(
        REGISTER, json={"username": "QUINN", "email": "other@example.com", "password": PASSWORD}
    )
    assert status == 409 and body["error"]["code"] == "username_taken"
    status, body = await api.post(
        REGISTER, json={"username": "quinn2", "email": "QUINN@EXAMPLE.COM", "password": PASSWORD}
    )
    assert status == 409 and body["error"]["code"] == "email_taken"
    assert await users_count(gateway) == 1


async def test_concurrent_duplicate_registration_creates_one_account(api: ApiClient, gateway):
    import asyncio

    results = await asyncio.gather(
        *[
            api.post(
                REGISTER,
                json={
                    "username": "Race" if i % 2 else "race",
                    "email": f"race{i}@example.com",
                    "password": PASSWORD,
                },
            )
            for i in range(8)
        ]
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 7
    assert await users_count(gateway) == 1


async def test_oversized_body(api: ApiClient, gateway, config):
    payload = b'{"username": "' + b"x" * (config.max_body_bytes + 10) + b'"}'
    status, body = await api.post(REGISTER, data=payload)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    assert await users_count(gateway) == 0


def _forge(secret: str, **claims) -> str:
    now = int(time.time())
    base = {
        "iss": "aetherial",
        "sub": "u",
        "sid": "s",
        "typ": "access",
        "iat": now,
        "exp": now + 600,
    }
    base.update(claims)
    return jwt.encode(base, secret, algorithm="HS256")


async def test_bad_access_tokens(api: ApiClient, config):
    tokens = await api.signup("tokenuser")
    good = tokens["access_token"]
    secret = (config.data_dir / "jwt.key").read_text().strip()
    claims = jwt.decode(good, options={"verify_signature": False})
    head, payload, signature = good.split(".")
    tampered_payload = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(claims["sub"].encode(), b"0" * 24)
    ).decode()
    cases = {
        "malformed": ("not.a.jwt", "invalid_token"),
        "garbage": ("abc", "invalid_token"),
        "tampered": (f"{head}.{tampered_payload}.{signature}", "invalid_token"),
        "wrong key": (
            _forge(
                "another-secret-that-is-long-enough-123456", sub=claims["sub"], sid=claims["sid"]
            ),
            "invalid_token",
        ),
        "expired": (
            _forge(secret, sub=claims["sub"], sid=claims["sid"], exp=int(time.time()) - 5),
            "token_expired",
        ),
        "alg none": (jwt.encode({**claims}, None, algorithm="none"), "invalid_token"),
        "wrong type": (
            _forge(secret, sub=claims["sub"], sid=claims["sid"], typ="refresh"),
            "invalid_token",
        ),
        "unknown session": (_forge(secret, sub=claims["sub"], sid="x" * 24), "session_revoked"),
    }
    for name, (token, code) in cases.items():
        status, body = await api.get("/api/v1/me", token=token)
        assert (status, body["error"]["code"]) == (401, code), name
    status, body = await api.request(
        "GET", "/api/v1/me", token="", headers={"Authorization": "Basic abc"}
    )
    assert status == 401 and body["error"]["code"] == "invalid_token"
    api.token = None
    status, body = await api.get("/api/v1/me")
    assert status == 401 and body["error"]["code"] == "missing_token"


async def test_login_bad_input(api: ApiClient):
    for payload, code in [
        ({}, "missing_field"),
        ({"login": 1, "password": "x"}, "wrong_type"),
        ({"login": "a", "password": "b", "x": 1}, "unknown_field"),
    ]:
        status, body = await api.post("/api/v1/auth/login", json=payload)
        assert status == 400 and body["error"]["code"] == code
