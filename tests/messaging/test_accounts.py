"""Accounts over real HTTP: register, login, refresh with rotation, logout, sessions, profile."""

from __future__ import annotations

import asyncio

from tests.helpers import PASSWORD, ApiClient


async def count(gateway, collection: str) -> int:
    from gateway.keys import DATABASE

    return await gateway.app[DATABASE].db[collection].count_documents({})


async def test_register_login_me(api: ApiClient):
    status, body = await api.post(
        "/api/v1/auth/register",
        json={"username": "Alice", "email": "Alice@Example.com", "password": PASSWORD},
    )
    assert status == 201
    user = body["user"]
    assert user["username"] == "Alice" and user["email"] == "Alice@Example.com"
    assert "password_hash" not in user and "password" not in user

    # login by username or email, in any letter case
    for login in ("alice", "ALICE@example.COM"):
        tokens = await api.login(login)
        assert tokens["user"]["id"] == user["id"]
        assert tokens["expires_in"] > 0 and tokens["token_type"] == "Bearer"

    status, body = await api.get("/api/v1/me")
    assert status == 200 and body["user"]["id"] == user["id"]


async def test_password_is_stored_as_argon2id(api: ApiClient, gateway):
    from gateway.keys import DATABASE

    user = await api.register("hashcheck")
    doc = await gateway.app[DATABASE].db.users.find_one({"_id": user["id"]})
    assert doc["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in str(doc)


async def test_profile_edit(api: ApiClient):
    await api.signup("bob")
    status, body = await api.patch(
        "/api/v1/me",
        json={
            "display_name": "  Bob   Builder ",
            "bio": "fixes things",
            "avatar_url": "https://example.com/b.png",
        },
    )
    assert status == 200
    assert body["user"]["display_name"] == "Bob Builder"
    assert body["user"]["bio"] == "fixes things"
    assert body["user"]["avatar_url"] == "https://example.com/b.png"
    status, body = await api.get("/api/v1/me")
    assert body["user"]["display_name"] == "Bob Builder"
    status, body = await api.patch("/api/v1/me", json={"avatar_url": None})
    assert status == 200 and body["user"]["avatar_url"] is None


async def test_profile_bad_input_changes_nothing(api: ApiClient):
    await api.signup("carol")
    cases = [
        ({}, 400, "empty_update"),
        ({"display_name": "   "}, 400, "invalid_field"),
        ({"display_name": "x" * 65}, 400, "invalid_field"),
        ({"bio": 5}, 400, "wrong_type"),
        ({"avatar_url": "javascript:alert(1)"}, 400, "invalid_field"),
        ({"avatar_url": "ftp://example.com/a.png"}, 400, "invalid_field"),
        ({"role": "admin"}, 400, "unknown_field"),
    ]
    for payload, status, code in cases:
        got_status, body = await api.patch("/api/v1/me", json=payload)
        assert (got_status, body["error"]["code"]) == (status, code), payload
    _, body = await api.get("/api/v1/me")
    assert body["user"]["display_name"] == "carol" and body["user"]["bio"] == ""


async def test_refresh_rotates_and_reuse_revokes_session(api: ApiClient):
    first = await api.signup("dave")
    status, second = await api.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert status == 200
    assert second["refresh_token"] != first["refresh_token"]
    assert second["session_id"] == first["session_id"]
    status, _ = await api.get("/api/v1/me", token=second["access_token"])
    assert status == 200

    # The old token again: theft suspected, the whole session ends.
    status, body = await api.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert status == 401 and body["error"]["code"] == "refresh_token_reused"
    status, body = await api.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert status == 401 and body["error"]["code"] == "session_revoked"
    status, body = await api.get("/api/v1/me", token=second["access_token"])
    assert status == 401 and body["error"]["code"] == "session_revoked"


async def test_concurrent_refresh_with_one_token_yields_one_winner(api: ApiClient):
    tokens = await api.signup("erin")
    results = await asyncio.gather(
        *[
            api.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
            for _ in range(5)
        ]
    )
    assert sorted(status for status, _ in results) == [200, 401, 401, 401, 401]


async def test_unknown_refresh_token(api: ApiClient, gateway):
    before = await count(gateway, "sessions")
    status, body = await api.post("/api/v1/auth/refresh", json={"refresh_token": "nope"})
    assert status == 401 and body["error"]["code"] == "invalid_refresh_token"
    assert await count(gateway, "sessions") == before


async def test_logout_ends_the_session(api: ApiClient):
    tokens = await api.signup("frank")
    status, _ = await api.post("/api/v1/auth/logout")
    assert status == 204
    status, body = await api.get("/api/v1/me")
    assert status == 401 and body["error"]["code"] == "session_revoked"
    status, body = await api.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert status == 401 and body["error"]["code"] == "session_revoked"


async def test_sessions_list_and_revoke_other_device(api: ApiClient, gateway):
    laptop = await api.signup("gina")
    phone_client = ApiClient(api.base_url)
    try:
        phone = await phone_client.login("gina")
        status, body = await api.get("/api/v1/me/sessions")
        assert status == 200
        sessions = {s["id"]: s for s in body["sessions"]}
        assert set(sessions) == {laptop["session_id"], phone["session_id"]}
        assert sessions[laptop["session_id"]]["current"] is True
        assert sessions[phone["session_id"]]["current"] is False

        status, _ = await api.delete(f"/api/v1/me/sessions/{phone['session_id']}")
        assert status == 204
        status, body = await phone_client.get("/api/v1/me")
        assert status == 401 and body["error"]["code"] == "session_revoked"
        _, body = await api.get("/api/v1/me/sessions")
        assert [s["id"] for s in body["sessions"]] == [laptop["session_id"]]

        # someone else's or an unknown session: 404, nothing changes
        other = ApiClient(api.base_url)
        try:
            await other.signup("hank")
            status, body = await other.delete(f"/api/v1/me/sessions/{laptop['session_id']}")
            assert status == 404 and body["error"]["code"] == "session_not_found"
        finally:
            await other.close()
        status, _ = await api.get("/api/v1/me")
        assert status == 200
    finally:
        await phone_client.close()


async def test_login_failures(api: ApiClient):
    await api.register("ivan")
    for login, password in [("ivan", "Wrong-password-1"), ("nobody", PASSWORD)]:
        status, body = await api.post(
            "/api/v1/auth/login", json={"login": login, "password": password}
        )
        assert status == 401 and body["error"]["code"] == "invalid_credentials"


async def test_expired_sessions_and_tokens_are_swept(api: ApiClient, gateway):
    from gateway.keys import MESSAGING
    from messaging.actions.auth import do_sweep_expired

    ctx = gateway.app[MESSAGING]
    live = await api.signup("sweeper")
    await ctx.sessions.collection.insert_one(
        {
            "_id": "old-session",
            "user_id": live["user"]["id"],
            "created_at": 0,
            "last_used_at": 0,
            "expires_at": 1,
            "revoked": False,
        }
    )
    await ctx.refresh_tokens.collection.insert_one(
        {
            "_id": "old-token",
            "session_id": "old-session",
            "user_id": live["user"]["id"],
            "rotated": False,
            "created_at": 0,
            "expires_at": 1,
        }
    )
    assert await do_sweep_expired(ctx) == 2
    assert await ctx.sessions.get_session("old-session") is None
    assert await ctx.refresh_tokens.get_refresh_token("old-token") is None
    status, _ = await api.get("/api/v1/me")  # the live session is untouched
    assert status == 200
