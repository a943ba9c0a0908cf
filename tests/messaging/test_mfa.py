"""Two-factor sign-in over real HTTP: enrol an authenticator (TOTP, RFC 6238), confirm it, sign
in with a code, replays and reused recovery codes refused, turn it off — and every bad input
answered with its code while nothing changes.

Codes are made with pyotp from the secret the server showed, as an authenticator app would.
A code is single use per time step, and a step no earlier than one already used; the server
accepts the steps next to the current one (valid_window 1), so a test takes its codes from
``Authenticator.next_code`` — the next unused step that is valid now — and never sleeps 30 s.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import jwt
import pyotp
import pytest

from tests.helpers import PASSWORD, ApiClient

LOGIN = "/api/v1/auth/login"
LOGIN_MFA = "/api/v1/auth/login/mfa"
TOTP = "/api/v1/me/mfa/totp"
CONFIRM = "/api/v1/me/mfa/totp/confirm"
RECOVERY = "/api/v1/me/mfa/recovery-codes"
STATUS = "/api/v1/me/mfa"


class Authenticator:
    """An authenticator app: codes of the shown secret, each step used once, in order."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.last_step = -1

    async def next_code(self) -> str:
        """The code of the next step the server accepts now. The previous step is used only
        early in the current one (so it cannot fall out of the window on the way); when the
        two ahead are used too, wait for the clock (only a test using more than three codes
        in one period does)."""
        while True:
            now = time.time()
            current = int(now // 30)
            candidates = [current, current + 1]
            if now % 30 < 20:
                candidates.insert(0, current - 1)
            for step in candidates:
                if step > self.last_step:
                    self.last_step = step
                    return self.totp.at(step * 30)
            await asyncio.sleep(30 - now % 30 + 0.1)

    def used_code(self) -> str:
        return self.totp.at(self.last_step * 30)


async def db(gateway):
    from gateway.keys import DATABASE

    return gateway.app[DATABASE].db


async def snapshot(gateway, user_id: str) -> tuple:
    """What two-factor sign-in keeps for a person: the flag, the factor, the recovery codes."""
    database = await db(gateway)
    user = await database.users.find_one({"_id": user_id})
    factor = await database.mfa_factors.find_one({"_id": user_id})
    codes = await database.mfa_recovery_codes.find({"user_id": user_id}).to_list(None)
    return user["mfa_enabled"], factor, sorted(codes, key=lambda c: c["_id"])


async def enrol(api: ApiClient, username: str) -> tuple[dict, Authenticator, list[str]]:
    """Sign up ``username`` and turn two-factor sign-in on → (login reply, app, codes)."""
    me = await api.signup(username)
    status, body = await api.post(TOTP, json={"password": PASSWORD})
    assert status == 200, body
    app = Authenticator(body["secret"])
    status, body = await api.post(CONFIRM, json={"code": await app.next_code()})
    assert status == 200, body
    assert body["user"]["mfa_enabled"] is True
    return me, app, body["recovery_codes"]


async def password_step(api: ApiClient, username: str) -> dict:
    """The login's first half: the right password → the 401 ``mfa_required`` details."""
    status, body = await api.post(LOGIN, json={"login": username, "password": PASSWORD})
    assert status == 401, body
    assert body["error"]["code"] == "mfa_required"
    return body["error"]["details"]


async def finish(api: ApiClient, mfa_token: str, code: str) -> tuple[int, dict]:
    return await api.post(LOGIN_MFA, json={"mfa_token": mfa_token, "code": code})


async def sessions_count(gateway, user_id: str) -> int:
    return await (await db(gateway)).sessions.count_documents({"user_id": user_id})


# --- the whole journey ------------------------------------------------------------------------


async def test_enrol_sign_in_replay_recovery_and_turn_off(api: ApiClient, gateway):
    me = await api.signup("ada")
    user_id = me["user"]["id"]
    assert me["user"]["mfa_enabled"] is False
    status, body = await api.get(STATUS)
    assert status == 200 and body == {
        "enabled": False,
        "enrolling": False,
        "methods": [],
        "recovery_codes_left": 0,
    }

    # enrol: the secret, its otpauth URI and QR code
    status, enrolment = await api.post(TOTP, json={"password": PASSWORD})
    assert status == 200, enrolment
    secret = enrolment["secret"]
    assert pyotp.parse_uri(enrolment["otpauth_uri"]).secret == secret
    assert "issuer=Aetherial" in enrolment["otpauth_uri"] and "ada" in enrolment["otpauth_uri"]
    assert enrolment["qr_svg"].startswith("<svg")
    assert enrolment["qr_data_uri"].startswith("data:image/svg+xml")
    assert (enrolment["digits"], enrolment["period"]) == (6, 30)
    # pending: signing in still needs only the password
    assert (await api.get(STATUS))[1]["enrolling"] is True
    await api.login("ada")

    app = Authenticator(secret)
    status, body = await api.post(CONFIRM, json={"code": await app.next_code()})
    assert status == 200, body
    codes = body["recovery_codes"]
    assert body["user"]["mfa_enabled"] is True
    assert len(codes) == 10 == len(set(codes))
    enabled, factor, rows = await snapshot(gateway, user_id)
    assert enabled and factor["confirmed_at"] is not None
    # only hashes are stored
    assert len(rows) == 10 and not any(c.replace("-", "") in str(rows) for c in codes)
    status, body = await api.get(STATUS)
    assert body == {
        "enabled": True,
        "enrolling": False,
        "methods": ["totp", "recovery_code"],
        "recovery_codes_left": 10,
    }
    status, body = await api.get("/api/v1/me")
    assert body["user"]["mfa_enabled"] is True

    # the password alone opens no session
    sessions = await sessions_count(gateway, user_id)
    details = await password_step(api, "ada")
    assert details["methods"] == ["totp", "recovery_code"]
    assert details["expires_in"] == 300
    assert await sessions_count(gateway, user_id) == sessions

    # a wrong code is refused, the right one signs in
    code = await app.next_code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    status, body = await finish(api, details["mfa_token"], wrong)
    assert status == 403 and body["error"]["code"] == "wrong_code"
    status, body = await finish(api, details["mfa_token"], code)
    assert status == 200, body
    assert body["user"]["id"] == user_id and body["access_token"] and body["refresh_token"]
    assert await sessions_count(gateway, user_id) == sessions + 1
    status, _ = await api.get("/api/v1/me", token=body["access_token"])
    assert status == 200

    # the same code again (it is still inside its window) is refused, with a fresh token
    details = await password_step(api, "ada")
    status, body = await finish(api, details["mfa_token"], code)
    assert status == 403 and body["error"]["code"] == "code_already_used"
    # a recovery code works once (typed in capitals, without its dash)
    typed = codes[0].replace("-", "").upper()
    status, body = await finish(api, details["mfa_token"], typed)
    assert status == 200, body
    details = await password_step(api, "ada")
    status, body = await finish(api, details["mfa_token"], codes[0])
    assert status == 403 and body["error"]["code"] == "code_already_used"
    assert (await api.get(STATUS))[1]["recovery_codes_left"] == 9

    # turning it off needs the password and a code
    status, body = await finish(api, details["mfa_token"], codes[1])
    assert status == 200, body
    api.token = body["access_token"]
    status, body = await api.delete(TOTP, json={"password": "wrong-password-1", "code": codes[2]})
    assert status == 403 and body["error"]["code"] == "wrong_password"
    status, body = await api.delete(TOTP, json={"password": PASSWORD, "code": "000000"})
    assert status == 403 and body["error"]["code"] == "wrong_code"
    assert (await snapshot(gateway, user_id))[0]
    status, body = await api.delete(TOTP, json={"password": PASSWORD, "code": codes[2]})
    assert status == 200, body
    assert body["user"]["mfa_enabled"] is False
    enabled, factor, rows = await snapshot(gateway, user_id)
    assert (enabled, factor, rows) == (False, None, [])

    # the password alone signs in again
    tokens = await api.login("ada")
    assert tokens["user"]["mfa_enabled"] is False


async def test_an_unfinished_login_token_dies_with_a_password_change_or_mfa_off(
    api: ApiClient, gateway
):
    _me, _app, codes = await enrol(api, "bea")
    details = await password_step(api, "bea")
    status, _ = await api.delete(TOTP, json={"password": PASSWORD, "code": codes[0]})
    assert status == 200
    status, body = await finish(api, details["mfa_token"], codes[1])
    assert status == 401 and body["error"]["code"] == "invalid_mfa_token"


async def test_a_completed_login_token_is_spent(api: ApiClient, gateway):
    _me, _app, codes = await enrol(api, "cyd")
    details = await password_step(api, "cyd")
    status, body = await finish(api, details["mfa_token"], codes[0])
    assert status == 200, body
    status, body = await finish(api, details["mfa_token"], codes[1])
    assert status == 401 and body["error"]["code"] == "invalid_mfa_token"
    # the refused attempt did not spend codes[1]
    details = await password_step(api, "cyd")
    status, body = await finish(api, details["mfa_token"], codes[1])
    assert status == 200, body


async def test_new_recovery_codes_kill_the_old_ones(api: ApiClient, gateway):
    _me, _app, old = await enrol(api, "dov")
    status, body = await api.post(RECOVERY, json={"password": PASSWORD, "code": old[0]})
    assert status == 200, body
    new = body["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    assert (await api.get(STATUS))[1]["recovery_codes_left"] == 10
    rows = (await snapshot(gateway, _me["user"]["id"]))[2]
    assert len(rows) == 10  # the old set is gone, not only dead
    details = await password_step(api, "dov")
    status, body = await finish(api, details["mfa_token"], old[1])
    assert status == 403 and body["error"]["code"] == "wrong_code"
    status, body = await finish(api, details["mfa_token"], new[9])
    assert status == 200, body


async def test_restarting_an_enrolment_replaces_the_secret(api: ApiClient, gateway):
    await api.signup("eli")
    first = (await api.post(TOTP, json={"password": PASSWORD}))[1]["secret"]
    second = (await api.post(TOTP, json={"password": PASSWORD}))[1]["secret"]
    assert first != second
    status, body = await api.post(CONFIRM, json={"code": await Authenticator(first).next_code()})
    assert status == 403 and body["error"]["code"] == "wrong_code"
    status, body = await api.post(CONFIRM, json={"code": await Authenticator(second).next_code()})
    assert status == 200, body
    # on: a new enrolment is refused and the factor kept
    factor = (await snapshot(gateway, body["user"]["id"]))[1]
    status, body = await api.post(TOTP, json={"password": PASSWORD})
    assert status == 409 and body["error"]["code"] == "mfa_already_enabled"
    assert (await snapshot(gateway, factor["_id"]))[1] == factor


# --- concurrency ------------------------------------------------------------------------------


async def test_one_recovery_code_used_by_ten_at_once_signs_in_once(
    api: ApiClient, gateway, monkeypatch
):
    from messaging.actions import mfa

    # Every attempt is counted before it is checked; with the usual five, half of the ten
    # would be refused before reaching the code. Here all ten race on the code itself.
    monkeypatch.setattr(mfa, "MFA_MAX_FAILURES", 100)
    me, _app, codes = await enrol(api, "fay")
    tokens = [(await password_step(api, "fay"))["mfa_token"] for _ in range(10)]
    before = await sessions_count(gateway, me["user"]["id"])
    results = await asyncio.gather(*(finish(api, t, codes[3]) for t in tokens))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [403] * 9, results
    assert {b["error"]["code"] for s, b in results if s == 403} == {"code_already_used"}
    assert await sessions_count(gateway, me["user"]["id"]) == before + 1


async def test_one_totp_code_sent_ten_times_at_once_signs_in_once(
    api: ApiClient, gateway, monkeypatch
):
    from messaging.actions import mfa

    monkeypatch.setattr(mfa, "MFA_MAX_FAILURES", 100)
    me, app, _codes = await enrol(api, "gus")
    tokens = [(await password_step(api, "gus"))["mfa_token"] for _ in range(10)]
    code = await app.next_code()
    results = await asyncio.gather(*(finish(api, t, code) for t in tokens))
    assert sorted(s for s, _ in results) == [200] + [403] * 9, results
    assert await sessions_count(gateway, me["user"]["id"]) == 2  # signup's login + this one


# --- limits -----------------------------------------------------------------------------------


async def test_five_wrong_codes_end_the_token_and_limit_the_account(api: ApiClient, gateway):
    _me, _app, codes = await enrol(api, "hal")
    details = await password_step(api, "hal")
    for _ in range(5):
        status, body = await finish(api, details["mfa_token"], "000000")
        assert status == 403 and body["error"]["code"] == "wrong_code"
    # the token is dead, even with a right code
    status, body = await finish(api, details["mfa_token"], codes[0])
    assert status == 401 and body["error"]["code"] == "invalid_mfa_token"
    # a new token: the account's budget of wrong codes is spent too
    details = await password_step(api, "hal")
    status, body = await finish(api, details["mfa_token"], codes[0])
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert int(body["error"]["details"]["retry_after"]) > 0
    # nothing was spent: the code still counts as unused
    assert (await api.get(STATUS))[1]["recovery_codes_left"] == 10


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "missing_field"),
        ({"password": ""}, 400, "invalid_field"),
        ({"password": 12345678}, 400, "wrong_type"),
        ({"password": PASSWORD, "extra": 1}, 400, "unknown_field"),
        ({"password": "Wrong-horse-9"}, 403, "wrong_password"),
    ],
)
async def test_enrolment_needs_the_password(api: ApiClient, gateway, body, status, code):
    me = await api.signup()
    got, answer = await api.post(TOTP, json=body)
    assert got == status and answer["error"]["code"] == code, answer
    assert await snapshot(gateway, me["user"]["id"]) == (False, None, [])


async def test_enrolment_needs_a_session(api: ApiClient, gateway):
    status, body = await api.post(TOTP, json={"password": PASSWORD})
    assert status == 401 and body["error"]["code"] == "missing_token"


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("12a456", 400, "invalid_code"),
        ("12345", 400, "invalid_code"),
        ("1234567", 400, "invalid_code"),
        ("abcde-fghjk", 400, "invalid_code"),  # a recovery code's shape: none exist yet
        ("", 400, "invalid_field"),
    ],
)
async def test_confirm_refuses_malformed_codes(api: ApiClient, gateway, code, status, error):
    me = await api.signup()
    await api.post(TOTP, json={"password": PASSWORD})
    before = await snapshot(gateway, me["user"]["id"])
    got, body = await api.post(CONFIRM, json={"code": code})
    assert got == status and body["error"]["code"] == error, body
    assert body["error"]["message"]
    assert await snapshot(gateway, me["user"]["id"]) == before


async def test_confirm_without_an_enrolment(api: ApiClient, gateway):
    me = await api.signup()
    status, body = await api.post(CONFIRM, json={"code": "123456"})
    assert status == 409 and body["error"]["code"] == "mfa_not_enrolling"
    assert await snapshot(gateway, me["user"]["id"]) == (False, None, [])


async def test_confirm_with_a_wrong_code(api: ApiClient, gateway):
    me = await api.signup()
    secret = (await api.post(TOTP, json={"password": PASSWORD}))[1]["secret"]
    code = await Authenticator(secret).next_code()
    before = await snapshot(gateway, me["user"]["id"])
    status, body = await api.post(CONFIRM, json={"code": f"{(int(code) + 7) % 10**6:06d}"})
    assert status == 403 and body["error"]["code"] == "wrong_code"
    assert await snapshot(gateway, me["user"]["id"]) == before


async def test_confirm_twice(api: ApiClient, gateway):
    _me, app, _codes = await enrol(api, "ivy")
    before = await snapshot(gateway, _me["user"]["id"])
    status, body = await api.post(CONFIRM, json={"code": await app.next_code()})
    assert status == 409 and body["error"]["code"] == "mfa_already_enabled"
    assert await snapshot(gateway, _me["user"]["id"]) == before


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"code": "123456"}, 400, "missing_field"),
        ({"password": PASSWORD}, 400, "missing_field"),
        ({"password": PASSWORD, "code": 123456}, 400, "wrong_type"),
        ({"password": PASSWORD, "code": "12 34 5x"}, 400, "invalid_code"),
        ({"password": PASSWORD, "code": "x" * 33}, 400, "invalid_field"),
        ({"password": "Wrong-horse-9", "code": "RECOVERY"}, 403, "wrong_password"),
        ({"password": PASSWORD, "code": "000000"}, 403, "wrong_code"),
        ({"password": PASSWORD, "code": "zzzzz-zzzzz"}, 403, "wrong_code"),
    ],
)
async def test_turning_off_and_new_codes_need_password_and_code(
    api: ApiClient, gateway, body, status, code
):
    me, _app, codes = await enrol(api, None)
    body = {k: (codes[0] if v == "RECOVERY" else v) for k, v in body.items()}
    before = await snapshot(gateway, me["user"]["id"])
    for method, path in (("DELETE", TOTP), ("POST", RECOVERY)):
        got, answer = await api.request(method, path, json=body)
        assert got == status and answer["error"]["code"] == code, (path, answer)
    assert await snapshot(gateway, me["user"]["id"]) == before


async def test_turning_off_or_new_codes_when_it_is_off(api: ApiClient, gateway):
    me = await api.signup()
    for method, path in (("DELETE", TOTP), ("POST", RECOVERY)):
        got, answer = await api.request(method, path, json={"password": PASSWORD, "code": "1" * 6})
        assert got == 409 and answer["error"]["code"] == "mfa_not_enabled", answer
    assert await snapshot(gateway, me["user"]["id"]) == (False, None, [])


def forged(claims: dict, key: str | bytes = "not-the-secret-" * 3) -> str:
    base = {
        "iss": "aetherial",
        "aud": "aetherial:mfa",
        "typ": "mfa",
        "jti": "x",
        "pwd": "0" * 16,
        "iat": int(time.time()),
        "exp": int(time.time()) + 300,
    }
    return jwt.encode({**base, **claims}, key, algorithm="HS256")


def with_subject(token: str, user_id: str) -> str:
    """The token with its payload's ``sub`` changed and its signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = user_id
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{signature}"


async def test_login_tokens_that_are_not_good(api: ApiClient, gateway):
    from gateway.keys import MESSAGING
    from messaging.actions import mfa

    ctx = gateway.app[MESSAGING]
    other_client = ApiClient(api.base_url)
    try:
        other, _other_app, other_codes = await enrol(other_client, "kim")
    finally:
        await other_client.close()
    me, _app, codes = await enrol(api, "jon")
    user_id = me["user"]["id"]
    real = (await password_step(api, "jon"))["mfa_token"]
    other_token = (await password_step(api, "kim"))["mfa_token"]
    user = await ctx.users.get_user(user_id)
    key, mark = mfa._token_key(ctx), mfa._password_mark(user)
    past = int(time.time()) - 600
    bad_tokens = {
        "garbage": "not-a-token",
        "forged (wrong key)": forged({"sub": user_id, "pwd": mark}),
        "an access token": ctx.tokens.issue_access_token(user_id, me["session_id"]),
        "expired": forged({"sub": user_id, "pwd": mark, "iat": past, "exp": past + 300}, key),
        "another audience": forged({"sub": user_id, "pwd": mark, "aud": "aetherial"}, key),
        "another type": forged({"sub": user_id, "pwd": mark, "typ": "access"}, key),
        "from before a password change": forged({"sub": user_id}, key),
        "an unknown user": forged({"sub": "nobody", "pwd": mark}, key),
        "kim's, made out to jon": with_subject(other_token, user_id),
        "jon's, made out to kim": with_subject(real, other["user"]["id"]),
    }
    before = await snapshot(gateway, user_id)
    other_before = await snapshot(gateway, other["user"]["id"])
    sessions = await sessions_count(gateway, user_id)
    for label, token in bad_tokens.items():
        for code in (codes[0], other_codes[0]):
            status, body = await finish(api, token, code)
            assert status == 401 and body["error"]["code"] == "invalid_mfa_token", (label, body)
    # kim's token with jon's code: checked against kim's codes
    status, body = await finish(api, other_token, codes[0])
    assert status == 403 and body["error"]["code"] == "wrong_code"
    assert await snapshot(gateway, user_id) == before
    assert await sessions_count(gateway, user_id) == sessions
    assert (await snapshot(gateway, other["user"]["id"]))[2] == other_before[2]
    # the real one still works with the untouched code
    status, body = await finish(api, real, codes[0])
    assert status == 200 and body["user"]["id"] == user_id


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "missing_field"),
        ({"mfa_token": "x"}, 400, "missing_field"),
        ({"code": "123456"}, 400, "missing_field"),
        ({"mfa_token": "", "code": "123456"}, 400, "invalid_field"),
        ({"mfa_token": "x", "code": ["123456"]}, 400, "wrong_type"),
        ({"mfa_token": "x" * 2049, "code": "123456"}, 400, "invalid_field"),
        ({"mfa_token": "TOKEN", "code": "12345a"}, 400, "invalid_code"),
        ({"mfa_token": "TOKEN", "code": "123456", "x": 1}, 400, "unknown_field"),
    ],
)
async def test_login_second_half_bad_bodies(api: ApiClient, gateway, body, status, code):
    me, _app, _codes = await enrol(api, None)
    token = (await password_step(api, me["user"]["username"]))["mfa_token"]
    body = {k: (token if v == "TOKEN" else v) for k, v in body.items()}
    before = await snapshot(gateway, me["user"]["id"])
    sessions = await sessions_count(gateway, me["user"]["id"])
    got, answer = await api.post(LOGIN_MFA, json=body)
    assert got == status and answer["error"]["code"] == code, answer
    assert await snapshot(gateway, me["user"]["id"]) == before
    assert await sessions_count(gateway, me["user"]["id"]) == sessions


async def test_wrong_password_still_says_invalid_credentials(api: ApiClient, gateway):
    """A wrong password must not reveal that the account has two-factor sign-in."""
    await enrol(api, "max")
    status, body = await api.post(LOGIN, json={"login": "max", "password": "Wrong-horse-9"})
    assert status == 401 and body["error"]["code"] == "invalid_credentials"
    assert "details" not in body["error"]


async def test_second_factor_for_other_actions(api: ApiClient, gateway):
    """``check_second_factor`` (account deletion uses it): spends the code it accepts."""
    from gateway.keys import MESSAGING
    from messaging.actions import mfa
    from storage.errors import AppError

    me, app, codes = await enrol(api, "ned")
    ctx = gateway.app[MESSAGING]
    user = await ctx.users.get_user(me["user"]["id"])
    code = await app.next_code()
    await mfa.check_second_factor(ctx, user, code)
    for attempt, expected in ((code, "code_already_used"), ("999999x", "invalid_code")):
        with pytest.raises(AppError) as refused:
            await mfa.check_second_factor(ctx, user, attempt)
        assert refused.value.code == expected
    await mfa.check_second_factor(ctx, user, codes[5])
    with pytest.raises(AppError) as refused:
        await mfa.check_second_factor(ctx, user, codes[5])
    assert refused.value.code == "code_already_used"
