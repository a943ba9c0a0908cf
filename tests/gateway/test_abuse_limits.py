"""Abuse limits: sign-ups per address and in all, the client address behind trusted proxies,
failed logins counted before the password is checked, and the typing and sync budgets."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from messaging.actions.limits import SYNC_RATE_MAX, TYPING_RATE_MAX
from tests.conftest import make_config
from tests.helpers import PASSWORD, ApiClient
from tests.messaging.chat_helpers import close_all, direct, people

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
_names = itertools.count(1)


async def start(aiohttp_server, mongo_url, mongo_db_name, tmp_path, **overrides) -> str:
    from gateway.app import create_app

    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", **overrides)
    server = await aiohttp_server(create_app(config))
    return str(server.make_url("")).rstrip("/")


async def users_count(mongo_db) -> int:
    return await mongo_db.users.count_documents({})


class Raw:
    """Requests with chosen headers, answering (status, body, headers)."""

    def __init__(self, base_url: str) -> None:
        self.api = ApiClient(base_url)

    async def post(self, path: str, body: dict, forwarded: str | None = None):
        headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
        async with self.api.session.post(
            self.api.base_url + path, json=body, headers=headers
        ) as resp:
            return resp.status, await resp.json(), resp.headers

    async def sign_up(self, forwarded: str | None = None, password: str = PASSWORD, name=None):
        name = name or f"abuser{next(_names)}"
        body = {"username": name, "email": f"{name}@example.com", "password": password}
        return await self.post(REGISTER, body, forwarded)

    async def close(self) -> None:
        await self.api.close()


def assert_rate_limited(status, body, headers) -> None:
    assert status == 429, body
    assert body["error"]["code"] == "rate_limited" and body["error"]["message"], body
    retry_after = body["error"]["details"]["retry_after"]
    assert isinstance(retry_after, int) and retry_after >= 1
    assert headers["Retry-After"] == str(retry_after)


# --- sign-ups ------------------------------------------------------------------------------


async def test_sign_ups_are_limited_per_address_refused_ones_included(
    aiohttp_server, mongo_url, mongo_db_name, mongo_db, tmp_path
):
    base = await start(
        aiohttp_server,
        mongo_url,
        mongo_db_name,
        tmp_path,
        register_max_per_address=3,
        trusted_proxies=1,
    )
    raw = Raw(base)
    try:
        # A refused (weak password) attempt counts: probing is not free.
        status, body, _ = await raw.sign_up("198.51.100.7", password="short")
        assert status == 400 and body["error"]["code"] == "weak_password", body
        for _ in range(2):
            status, body, _ = await raw.sign_up("198.51.100.7")
            assert status == 201, body
        assert await users_count(mongo_db) == 2
        # The 4th attempt is refused before anything about it is looked at (even a weak
        # password, which would be a 400 otherwise) — so before any password hash — and
        # creates nothing.
        assert_rate_limited(*await raw.sign_up("198.51.100.7"))
        assert_rate_limited(*await raw.sign_up("198.51.100.7", password="short"))
        assert await users_count(mongo_db) == 2
        # Another address still signs up.
        status, body, _ = await raw.sign_up("198.51.100.8")
        assert status == 201, body
        assert await users_count(mongo_db) == 3
    finally:
        await raw.close()


async def test_concurrent_sign_ups_from_one_address_stop_at_the_limit(
    aiohttp_server, mongo_url, mongo_db_name, mongo_db, tmp_path
):
    base = await start(
        aiohttp_server, mongo_url, mongo_db_name, tmp_path, register_max_per_address=3
    )
    raw = Raw(base)
    try:
        answers = await asyncio.gather(*(raw.sign_up() for _ in range(15)))
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [201] * 3 + [429] * 12, answers
        assert await users_count(mongo_db) == 3
    finally:
        await raw.close()


async def test_global_sign_up_limit_refuses_everyone(
    aiohttp_server, mongo_url, mongo_db_name, mongo_db, tmp_path
):
    base = await start(
        aiohttp_server,
        mongo_url,
        mongo_db_name,
        tmp_path,
        register_max_global=3,
        trusted_proxies=1,
    )
    raw = Raw(base)
    try:
        for n in range(3):
            status, body, _ = await raw.sign_up(f"192.0.2.{n + 1}")
            assert status == 201, body
        for n in range(3):  # fresh addresses, old ones: all refused
            assert_rate_limited(*await raw.sign_up(f"192.0.2.{n + 10}"))
        assert_rate_limited(*await raw.sign_up("192.0.2.1"))
        assert await users_count(mongo_db) == 3
    finally:
        await raw.close()


async def test_an_address_over_its_own_limit_does_not_spend_the_global_one(
    aiohttp_server, mongo_url, mongo_db_name, mongo_db, tmp_path
):
    base = await start(
        aiohttp_server,
        mongo_url,
        mongo_db_name,
        tmp_path,
        register_max_per_address=2,
        register_max_global=4,
        trusted_proxies=1,
    )
    raw = Raw(base)
    try:
        statuses = [(await raw.sign_up("203.0.113.1"))[0] for _ in range(10)]
        assert statuses == [201, 201] + [429] * 8
        # refused attempts did not spend the global budget: two more fit, then it is spent
        for address in ("203.0.113.2", "203.0.113.3"):
            status, body, _ = await raw.sign_up(address)
            assert status == 201, body
        assert_rate_limited(*await raw.sign_up("203.0.113.4"))
        assert await users_count(mongo_db) == 4
    finally:
        await raw.close()


# --- the client address ---------------------------------------------------------------------


async def test_without_trusted_proxies_x_forwarded_for_is_ignored(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    base = await start(
        aiohttp_server,
        mongo_url,
        mongo_db_name,
        tmp_path,
        register_max_per_address=2,
        login_max_attempts_per_address=3,
    )
    raw = Raw(base)
    try:
        # Random X-Forwarded-For values do not make a client look like many.
        statuses = [(await raw.sign_up(f"10.9.{n}.{n}"))[0] for n in range(3)]
        assert statuses == [201, 201, 429]
        body = {"login": "nobody", "password": PASSWORD}
        answers = [await raw.post(LOGIN, body, f"10.8.{n}.1") for n in range(4)]
        assert [status for status, _, _ in answers] == [401, 401, 401, 429], answers
        assert_rate_limited(*answers[-1])
    finally:
        await raw.close()


async def session_ip(base: str, name: str, forwarded: str) -> str:
    raw = Raw(base)
    try:
        status, body, _ = await raw.post(LOGIN, {"login": name, "password": PASSWORD}, forwarded)
        assert status == 200, body
        status, sessions = await raw.api.get("/api/v1/me/sessions", token=body["access_token"])
        assert status == 200, sessions
        (current,) = [s for s in sessions["sessions"] if s["current"]]
        return current["ip"]
    finally:
        await raw.close()


@pytest.mark.parametrize(
    ("trusted", "forwarded", "seen"),
    [
        (0, "203.0.113.50", "127.0.0.1"),
        (1, "203.0.113.50", "203.0.113.50"),
        (1, "6.6.6.6, 203.0.113.50", "203.0.113.50"),  # forged leftmost, then what our proxy saw
        (1, "6.6.6.6,7.7.7.7 , 203.0.113.50", "203.0.113.50"),
        (2, "6.6.6.6, 203.0.113.50, 10.0.0.2", "203.0.113.50"),
        (2, "203.0.113.50", "203.0.113.50"),  # only one of the two proxies on the way
        (1, "6.6.6.6, 203.0.113.50:4711", "203.0.113.50"),  # a proxy that adds the port
        (1, "[2001:db8::5]:4711", "2001:db8::5"),
        (1, "2001:DB8:0::5", "2001:db8::5"),
    ],
)
async def test_client_address_is_read_from_the_right(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path, trusted, forwarded, seen
):
    base = await start(aiohttp_server, mongo_url, mongo_db_name, tmp_path, trusted_proxies=trusted)
    api = ApiClient(base)
    try:
        await api.register("addressee")
    finally:
        await api.close()
    assert await session_ip(base, "addressee", forwarded) == seen


async def test_a_forged_leftmost_entry_does_not_dodge_the_address_limit(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    base = await start(
        aiohttp_server,
        mongo_url,
        mongo_db_name,
        tmp_path,
        register_max_per_address=2,
        login_max_attempts_per_address=2,
        trusted_proxies=1,
    )
    raw = Raw(base)
    try:
        statuses = [(await raw.sign_up(f"10.{n}.0.1, 198.51.100.20"))[0] for n in range(3)]
        assert statuses == [201, 201, 429]
        body = {"login": "nobody", "password": PASSWORD}
        statuses = [
            (await raw.post(LOGIN, body, f"10.{n}.0.1, 198.51.100.20"))[0] for n in range(3)
        ]
        assert statuses == [401, 401, 429]
        # the real next address is another client
        assert (await raw.sign_up("10.0.0.1, 198.51.100.21"))[0] == 201
    finally:
        await raw.close()


async def test_ipv6_addresses_count_per_64_block(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    base = await start(
        aiohttp_server,
        mongo_url,
        mongo_db_name,
        tmp_path,
        register_max_per_address=2,
        trusted_proxies=1,
    )
    raw = Raw(base)
    try:
        block = ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:2:abcd::1"]
        statuses = [(await raw.sign_up(address))[0] for address in block]
        assert statuses == [201, 201, 429]
        assert (await raw.sign_up("2001:db8:1:3::1"))[0] == 201
    finally:
        await raw.close()


# --- failed logins ---------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def limiter_backend(request):
    if request.param == "redis":
        return {"redis_url": request.getfixturevalue("redis_url")}
    return {}


async def test_a_concurrent_burst_of_wrong_passwords_gets_at_most_the_limit(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path, limiter_backend
):
    base = await start(
        aiohttp_server,
        mongo_url,
        mongo_db_name,
        tmp_path,
        login_max_failures=3,
        login_max_attempts_per_address=1000,
        **limiter_backend,
    )
    victim = f"victim{next(_names)}"
    api = ApiClient(base)
    await api.register(victim)
    clients = [Raw(base) for _ in range(20)]
    try:
        wrong = {"login": victim, "password": "Wrong-pass-1"}
        answers = await asyncio.gather(*(c.post(LOGIN, wrong) for c in clients))
        codes = [body["error"]["code"] for _, body, _ in answers]
        assert codes.count("invalid_credentials") <= 3, codes
        assert codes.count("invalid_credentials") + codes.count("rate_limited") == 20, codes
        for status, body, headers in answers:
            if status == 429:
                assert_rate_limited(status, body, headers)
        # Locked: the right password is refused too, by username and by email alike.
        for login in (victim, victim.upper(), f"{victim}@example.com"):
            assert_rate_limited(
                *await clients[0].post(LOGIN, {"login": login, "password": PASSWORD})
            )
    finally:
        await api.close()
        await asyncio.gather(*(c.close() for c in clients))


async def test_failures_count_per_account_whichever_login_is_typed_and_success_resets(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    base = await start(
        aiohttp_server,
        mongo_url,
        mongo_db_name,
        tmp_path,
        login_max_failures=3,
        login_max_attempts_per_address=1000,
    )
    raw = Raw(base)
    try:
        await raw.api.register("dora")
        wrong = "Wrong-pass-1"
        for login in ("dora", "dora@example.com"):
            status, _, _ = await raw.post(LOGIN, {"login": login, "password": wrong})
            assert status == 401
        # A success forgets the failures...
        status, body, _ = await raw.post(LOGIN, {"login": "DORA@example.com", "password": PASSWORD})
        assert status == 200, body
        # ...so three more failures are answered as such, and then the account is locked.
        statuses = []
        for login in ("dora", "dora@example.com", "Dora", "dora"):
            statuses.append((await raw.post(LOGIN, {"login": login, "password": wrong}))[0])
        assert statuses == [401, 401, 401, 429]
        assert_rate_limited(
            *await raw.post(LOGIN, {"login": "dora@example.com", "password": PASSWORD})
        )
    finally:
        await raw.close()


# --- typing and sync -------------------------------------------------------------------------


async def test_typing_true_and_false_are_rate_limited_per_person(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    base = await start(aiohttp_server, mongo_url, mongo_db_name, tmp_path)
    ann, bob, cat = await people(base, 3)
    try:
        cid = await direct(ann, bob)
        cid_bc = await direct(bob, cat)

        async def typing(person, conversation_id, value):
            return await person.socket.call(
                "typing", {"conversation_id": conversation_id, "typing": value}
            )

        # "stopped" alone, from many calls at once: exactly the budget gets through.
        acks = await asyncio.gather(*(typing(ann, cid, False) for _ in range(TYPING_RATE_MAX + 10)))
        assert sum(a["ok"] for a in acks) == TYPING_RATE_MAX, acks
        refused = [a for a in acks if not a["ok"]]
        assert {a["error"]["code"] for a in refused} == {"rate_limited"}
        assert all(a["error"]["details"]["retry_after"] >= 1 for a in refused)
        # "typing" (throttled to sent: false after the first) counts as well.
        acks = [await typing(bob, cid_bc, True) for _ in range(TYPING_RATE_MAX + 1)]
        assert all(a["ok"] for a in acks[:-1]), acks
        assert acks[-1]["error"]["code"] == "rate_limited", acks[-1]
        # alternating, which used to dodge the per-chat throttle, is limited like the rest
        acks = [await typing(cat, cid_bc, n % 2 == 0) for n in range(TYPING_RATE_MAX + 1)]
        assert sum(a.get("sent", False) for a in acks) == TYPING_RATE_MAX, acks
        assert acks[-1]["error"]["code"] == "rate_limited", acks[-1]
        # the budget is per person, over all their chats: ann's is spent, a newcomer's is not
        dan = (await people(base, 1))[0]
        try:
            cid_ad = await direct(dan, ann)
            assert (await typing(dan, cid_ad, True))["ok"]
            assert (await typing(ann, cid_ad, True))["error"]["code"] == "rate_limited"
        finally:
            await dan.close()
    finally:
        await close_all([ann, bob, cat])


async def test_sync_is_rate_limited_per_person(aiohttp_server, mongo_url, mongo_db_name, tmp_path):
    base = await start(aiohttp_server, mongo_url, mongo_db_name, tmp_path)
    ann, bob = await people(base, 2)
    try:
        await direct(ann, bob)
        acks = await asyncio.gather(
            *(ann.socket.call("sync", {"cursors": {}}) for _ in range(SYNC_RATE_MAX + 5))
        )
        assert sum(a["ok"] for a in acks) == SYNC_RATE_MAX, [a for a in acks if not a["ok"]]
        refused = [a for a in acks if not a["ok"]]
        assert {a["error"]["code"] for a in refused} == {"rate_limited"}
        assert all(a["error"]["details"]["retry_after"] >= 1 for a in refused)
        # another device of the same person shares the budget; another person does not
        device = await ann.connect_device()
        try:
            ack = await device.call("sync", {"cursors": {}})
            assert ack["error"]["code"] == "rate_limited", ack
        finally:
            await device.close()
        ack = await bob.socket.call("sync", {"cursors": {}})
        assert ack["ok"] and ack["conversations"], ack
    finally:
        await close_all([ann, bob])


# --- card presses ----------------------------------------------------------------------------


async def test_card_presses_stop_exactly_at_the_limit_per_person_and_app(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path, limiter_backend
):
    from miniapps.host.routing import PRESS_RATE_MAX
    from tests.miniapps.test_host_holes import make_poll, press

    base = await start(aiohttp_server, mongo_url, mongo_db_name, tmp_path, **limiter_backend)
    ann, bea = await people(base, 2)
    try:
        cid, card = await make_poll(ann, [bea])
        acks = await asyncio.gather(
            *(press(bea, cid, card, n % 2) for n in range(PRESS_RATE_MAX + 15))
        )
        assert sum(a["ok"] for a in acks) == PRESS_RATE_MAX, acks
        refused = [a for a in acks if not a["ok"]]
        assert {a["error"]["code"] for a in refused} == {"rate_limited"}, refused
        assert all(a["error"]["details"]["retry_after"] >= 1 for a in refused)
        assert (await press(ann, cid, card))["ok"]  # another member's budget is their own
    finally:
        await close_all([ann, bea])
