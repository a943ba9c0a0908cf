"""Contacts over real HTTP and Socket.IO: friend requests, friends, blocks, user search."""

from __future__ import annotations

import asyncio

import pytest

from storage.errors import AppError
from tests.helpers import ApiClient, SocketClient

REQUESTS = "/api/v1/contacts/requests"


@pytest.fixture
async def person(gateway):
    """``await person("alice")`` → a signed-in ApiClient with ``.user`` and ``.tokens``."""
    base = str(gateway.make_url("")).rstrip("/")
    clients: list[ApiClient] = []

    async def make(name: str) -> ApiClient:
        client = ApiClient(base)
        clients.append(client)
        client.tokens = await client.signup(name)
        client.user = client.tokens["user"]
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def socket_of(gateway):
    """``await socket_of(person)`` → a connected SocketClient on a new device of that person."""
    base = str(gateway.make_url("")).rstrip("/")
    sockets: list[SocketClient] = []

    async def connect(client: ApiClient) -> SocketClient:
        device = ApiClient(base)
        try:
            tokens = await device.login(client.user["username"])
        finally:
            await device.close()
        sock = SocketClient()
        sockets.append(sock)
        await sock.connect(base, tokens["access_token"])
        return sock

    yield connect
    for sock in sockets:
        await sock.close()


def db(gateway):
    from gateway.keys import DATABASE

    return gateway.app[DATABASE].db


def ctx(gateway):
    from gateway.keys import MESSAGING

    return gateway.app[MESSAGING]


async def snapshot(gateway) -> tuple[list, list]:
    """Everything contacts and blocks hold, to show that a refused request wrote nothing."""
    contacts = await db(gateway).contacts.find().sort("_id", 1).to_list(None)
    blocks = await db(gateway).blocks.find().sort("_id", 1).to_list(None)
    return contacts, blocks


async def friend_ids(client: ApiClient) -> list[str]:
    status, body = await client.get("/api/v1/contacts")
    assert status == 200, body
    return [f["user"]["id"] for f in body["friends"]]


async def make_friends(a: ApiClient, b: ApiClient) -> None:
    status, body = await a.post(REQUESTS, json={"user_id": b.user["id"]})
    assert status == 201, body
    status, body = await b.post(f"{REQUESTS}/{a.user['id']}/accept")
    assert status == 200, body


def names(events: list[tuple[str, object]]) -> list[str]:
    return [name for name, _ in events if name.startswith("contact.")]


# --- happy paths ----------------------------------------------------------------------------


async def test_request_accept_makes_both_friends_with_events(person, socket_of):
    alice, bob = await person("alice"), await person("bob")
    alice_sock, bob_phone, bob_laptop = (
        await socket_of(alice),
        await socket_of(bob),
        await socket_of(bob),
    )

    status, body = await alice.post(REQUESTS, json={"user_id": bob.user["id"], "message": " hi "})
    assert status == 201, body
    request = body["request"]
    assert request["from"]["id"] == alice.user["id"] and request["to"]["id"] == bob.user["id"]
    assert request["message"] == "hi" and "email" not in request["from"]
    (pushed,) = await bob_phone.wait_for("contact.request")
    assert pushed == {"request": request}

    _, body = await bob.get(REQUESTS)
    assert body == {"incoming": [request], "outgoing": []}
    _, body = await alice.get(REQUESTS)
    assert body == {"incoming": [], "outgoing": [request]}
    _, body = await bob.get(f"/api/v1/users/{alice.user['id']}")
    assert body["relationship"] == "request_received"

    status, body = await bob.post(f"{REQUESTS}/{alice.user['id']}/accept")
    assert status == 200, body
    assert body["friend"]["user"]["id"] == alice.user["id"] and body["friend"]["since"]
    (accepted,) = await alice_sock.wait_for("contact.accepted")
    assert accepted["user"]["id"] == bob.user["id"]
    for device in (bob_phone, bob_laptop):
        (added,) = await device.wait_for("contact.added")
        assert added == body["friend"]
    assert "contact.request" not in names(alice_sock.events)

    assert await friend_ids(alice) == [bob.user["id"]]
    assert await friend_ids(bob) == [alice.user["id"]]
    for client in (alice, bob):
        _, body = await client.get(REQUESTS)
        assert body == {"incoming": [], "outgoing": []}
    _, body = await alice.get(f"/api/v1/users/{bob.user['id']}")
    assert body["relationship"] == "friend" and body["user"]["username"] == "bob"


async def test_public_helpers(person, gateway):
    from messaging.actions import contacts

    alice, bob, carol = await person("alice"), await person("bob"), await person("carol")
    await make_friends(alice, bob)
    await make_friends(carol, alice)
    a, b, c = alice.user["id"], bob.user["id"], carol.user["id"]
    assert await contacts.are_friends(ctx(gateway), a, b)
    assert await contacts.are_friends(ctx(gateway), b, a)
    assert not await contacts.are_friends(ctx(gateway), b, c)
    assert sorted(await contacts.get_friend_ids(ctx(gateway), a)) == sorted([b, c])
    assert await contacts.get_friend_ids(ctx(gateway), b) == [a]
    await contacts.check_not_blocked(ctx(gateway), a, b)
    await carol.request("PUT", f"/api/v1/contacts/blocks/{b}")
    for x, y in ((b, c), (c, b)):
        with pytest.raises(AppError) as info:
            await contacts.check_not_blocked(ctx(gateway), x, y)
        assert (info.value.code, info.value.status) == ("blocked", 403)


async def test_mutual_request_becomes_friendship(person, socket_of, gateway):
    alice, bob = await person("alice"), await person("bob")
    alice_sock = await socket_of(alice)
    status, _ = await alice.post(REQUESTS, json={"user_id": bob.user["id"]})
    assert status == 201
    status, body = await bob.post(REQUESTS, json={"user_id": alice.user["id"], "message": "yo"})
    assert status == 200, body
    assert set(body) == {"friend"} and body["friend"]["user"]["id"] == alice.user["id"]
    await alice_sock.wait_for("contact.accepted")
    assert await friend_ids(alice) == [bob.user["id"]]
    assert await friend_ids(bob) == [alice.user["id"]]
    assert await db(gateway).contacts.count_documents({}) == 1


async def test_decline(person, socket_of, gateway):
    alice, bob = await person("alice"), await person("bob")
    alice_sock = await socket_of(alice)
    await alice.post(REQUESTS, json={"user_id": bob.user["id"]})
    status, _ = await bob.post(f"{REQUESTS}/{alice.user['id']}/decline")
    assert status == 204
    (declined,) = await alice_sock.wait_for("contact.request_declined")
    assert declined == {"user_id": bob.user["id"]}
    assert await db(gateway).contacts.count_documents({}) == 0
    status, body = await bob.post(f"{REQUESTS}/{alice.user['id']}/accept")
    assert (status, body["error"]["code"]) == (404, "request_not_found")
    # a declined request may be sent again
    status, _ = await alice.post(REQUESTS, json={"user_id": bob.user["id"]})
    assert status == 201


async def test_cancel(person, socket_of, gateway):
    alice, bob = await person("alice"), await person("bob")
    bob_sock = await socket_of(bob)
    await alice.post(REQUESTS, json={"user_id": bob.user["id"]})
    await bob_sock.wait_for("contact.request")
    status, _ = await alice.delete(f"{REQUESTS}/{bob.user['id']}")
    assert status == 204
    (cancelled,) = await bob_sock.wait_for("contact.request_cancelled")
    assert cancelled == {"user_id": alice.user["id"]}
    status, body = await bob.post(f"{REQUESTS}/{alice.user['id']}/accept")
    assert (status, body["error"]["code"]) == (404, "request_not_found")
    # only the sender can cancel: bob "cancelling" alice's request is not found
    await alice.post(REQUESTS, json={"user_id": bob.user["id"]})
    status, body = await bob.delete(f"{REQUESTS}/{alice.user['id']}")
    assert (status, body["error"]["code"]) == (404, "request_not_found")
    assert await db(gateway).contacts.count_documents({"state": "pending"}) == 1


async def test_remove_friend(person, socket_of):
    alice, bob = await person("alice"), await person("bob")
    await make_friends(alice, bob)
    alice_sock, bob_sock = await socket_of(alice), await socket_of(bob)
    status, _ = await alice.delete(f"/api/v1/contacts/{bob.user['id']}")
    assert status == 204
    assert await alice_sock.wait_for("contact.removed") == [{"user_id": bob.user["id"]}]
    assert await bob_sock.wait_for("contact.removed") == [{"user_id": alice.user["id"]}]
    assert await friend_ids(alice) == [] and await friend_ids(bob) == []
    status, body = await bob.delete(f"/api/v1/contacts/{alice.user['id']}")
    assert (status, body["error"]["code"]) == (404, "not_friends")


async def test_friends_are_paginated(person):
    me = await person("hub")
    others = [await person(f"friend{i}") for i in range(5)]
    for other in others:
        await make_friends(other, me)
    seen, before, pages = [], None, 0
    while True:
        path = "/api/v1/contacts?limit=2" + (f"&before={before}" if before else "")
        status, body = await me.get(path)
        assert status == 200, body
        seen += [f["user"]["id"] for f in body["friends"]]
        pages += 1
        before = body["next_before"]
        if before is None:
            break
    assert pages == 3
    # newest friendship first, each exactly once
    assert seen == [o.user["id"] for o in reversed(others)]


# --- blocks ---------------------------------------------------------------------------------


async def test_block_ends_friendship_and_refuses_requests(person, socket_of, gateway):
    alice, bob = await person("alice"), await person("bob")
    await make_friends(alice, bob)
    alice_sock, bob_sock = await socket_of(alice), await socket_of(bob)
    status, _ = await alice.request("PUT", f"/api/v1/contacts/blocks/{bob.user['id']}")
    assert status == 204
    assert await alice_sock.wait_for("contact.blocked") == [{"user_id": bob.user["id"]}]
    assert await bob_sock.wait_for("contact.removed") == [{"user_id": alice.user["id"]}]
    await alice_sock.wait_for("contact.removed")
    assert "contact.blocked" not in names(bob_sock.events)
    assert await friend_ids(alice) == [] and await friend_ids(bob) == []

    before = await snapshot(gateway)
    status, body = await bob.post(REQUESTS, json={"user_id": alice.user["id"]})
    assert (status, body["error"]["code"]) == (403, "blocked")
    assert body["error"]["message"] == "you cannot add this user"  # says nothing of the block
    status, body = await alice.post(REQUESTS, json={"user_id": bob.user["id"]})
    assert (status, body["error"]["code"]) == (403, "blocked")
    assert await snapshot(gateway) == before

    # hidden from the blocked user's search and profile lookups, not the other way round
    _, body = await bob.get("/api/v1/users/search?q=ali")
    assert body == {"users": []}
    status, body = await bob.get(f"/api/v1/users/{alice.user['id']}")
    assert (status, body["error"]["code"]) == (404, "user_not_found")
    _, body = await alice.get("/api/v1/users/search?q=bo")
    assert [u["id"] for u in body["users"]] == [bob.user["id"]]
    _, body = await alice.get(f"/api/v1/users/{bob.user['id']}")
    assert body["relationship"] == "blocked"

    _, body = await alice.get("/api/v1/contacts/blocks")
    assert [b["user"]["id"] for b in body["blocks"]] == [bob.user["id"]]
    # blocking again changes nothing
    status, _ = await alice.request("PUT", f"/api/v1/contacts/blocks/{bob.user['id']}")
    assert status == 204
    assert await snapshot(gateway) == before


async def test_block_deletes_pending_requests(person, socket_of, gateway):
    alice, bob, carol = await person("alice"), await person("bob"), await person("carol")
    bob_sock, carol_sock = await socket_of(bob), await socket_of(carol)
    await alice.post(REQUESTS, json={"user_id": bob.user["id"]})
    await carol.post(REQUESTS, json={"user_id": alice.user["id"]})
    for other in (bob, carol):
        await alice.request("PUT", f"/api/v1/contacts/blocks/{other.user['id']}")
    assert await bob_sock.wait_for("contact.request_cancelled") == [{"user_id": alice.user["id"]}]
    assert await carol_sock.wait_for("contact.request_declined") == [{"user_id": alice.user["id"]}]
    assert await db(gateway).contacts.count_documents({}) == 0


async def test_unblock(person, socket_of):
    alice, bob = await person("alice"), await person("bob")
    alice_sock = await socket_of(alice)
    await alice.request("PUT", f"/api/v1/contacts/blocks/{bob.user['id']}")
    status, _ = await alice.delete(f"/api/v1/contacts/blocks/{bob.user['id']}")
    assert status == 204
    assert await alice_sock.wait_for("contact.unblocked") == [{"user_id": bob.user["id"]}]
    _, body = await alice.get("/api/v1/contacts/blocks")
    assert body == {"blocks": []}
    status, body = await bob.get(f"/api/v1/users/{alice.user['id']}")
    assert status == 200 and body["relationship"] == "none"
    status, _ = await bob.post(REQUESTS, json={"user_id": alice.user["id"]})
    assert status == 201
    # unblocking again is a no-op
    status, _ = await alice.delete(f"/api/v1/contacts/blocks/{bob.user['id']}")
    assert status == 204
    assert names(alice_sock.events).count("contact.unblocked") == 1


# --- search and profiles --------------------------------------------------------------------


async def test_search_by_prefix_in_any_case(person):
    me = await person("Alister")
    for name in ("alice", "ALINA", "albert", "bob", "aXli"):
        await person(name)
    for q in ("ali", "ALI", "aLi"):
        status, body = await me.get(f"/api/v1/users/search?q={q}")
        assert status == 200, body
        assert [u["username"] for u in body["users"]] == ["alice", "ALINA"]  # not me
    _, body = await me.get("/api/v1/users/search?q=a&limit=2")
    assert [u["username"] for u in body["users"]] == ["albert", "alice"]
    assert all("email" not in u for u in body["users"])
    # the query is a prefix, not a pattern
    _, body = await me.get("/api/v1/users/search?q=a.i")
    assert body == {"users": []}


async def test_profile(person):
    alice = await person("alice")
    _, body = await alice.get(f"/api/v1/users/{alice.user['id']}")
    assert body["relationship"] == "self" and "email" not in body["user"]
    status, body = await alice.get("/api/v1/users/nosuchuser")
    assert (status, body["error"]["code"]) == (404, "user_not_found")


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({}, "missing_field", "user_id"),
        ({"user_id": 42}, "wrong_type", "user_id"),
        ({"user_id": None}, "wrong_type", "user_id"),
        ({"user_id": ""}, "invalid_field", "user_id"),
        ({"user_id": "x", "message": 5}, "wrong_type", "message"),
        ({"user_id": "x", "message": "m" * 201}, "invalid_field", "message"),
        ({"user_id": "x", "note": "hi"}, "unknown_field", "note"),
    ],
)
async def test_send_request_rejects_bad_body(person, gateway, payload, code, field):
    alice = await person("alice")
    status, body = await alice.post(REQUESTS, json=payload)
    assert (status, body["error"]["code"]) == (400, code), body
    assert body["error"]["details"]["field"] == field
    assert await snapshot(gateway) == ([], [])


async def test_send_request_refusals_write_nothing(person, gateway):
    alice, bob, carol = await person("alice"), await person("bob"), await person("carol")
    await make_friends(alice, carol)
    cases = [
        ({"user_id": "nosuchuser"}, 404, "user_not_found"),
        ({"user_id": alice.user["id"]}, 400, "cannot_add_self"),
        ({"user_id": carol.user["id"]}, 409, "already_friends"),
    ]
    before = await snapshot(gateway)
    for payload, status, code in cases:
        got, body = await alice.post(REQUESTS, json=payload)
        assert (got, body["error"]["code"]) == (status, code), payload
        assert body["error"]["message"]
    assert await snapshot(gateway) == before

    # a duplicate returns the pending request and stores nothing new
    status, first = await alice.post(REQUESTS, json={"user_id": bob.user["id"], "message": "a"})
    assert status == 201
    before = await snapshot(gateway)
    status, again = await alice.post(REQUESTS, json={"user_id": bob.user["id"], "message": "b"})
    assert (status, again) == (200, first)
    assert await snapshot(gateway) == before


async def test_request_actions_on_nothing_write_nothing(person, gateway):
    alice, bob = await person("alice"), await person("bob")
    before = await snapshot(gateway)
    for method, path in [
        ("POST", f"{REQUESTS}/{bob.user['id']}/accept"),
        ("POST", f"{REQUESTS}/{bob.user['id']}/decline"),
        ("DELETE", f"{REQUESTS}/{bob.user['id']}"),
        ("POST", f"{REQUESTS}/nosuchuser/accept"),
    ]:
        status, body = await alice.request(method, path)
        assert (status, body["error"]["code"]) == (404, "request_not_found"), path
    # accepting your own outgoing request is not possible either
    await alice.post(REQUESTS, json={"user_id": bob.user["id"]})
    before = await snapshot(gateway)
    status, body = await alice.post(f"{REQUESTS}/{bob.user['id']}/accept")
    assert (status, body["error"]["code"]) == (404, "request_not_found")
    assert await snapshot(gateway) == before
    status, _ = await bob.post(REQUESTS, json={"user_id": alice.user["id"]})  # mutual
    assert status == 200
    status, body = await bob.post(f"{REQUESTS}/{alice.user['id']}/accept")
    assert (status, body["error"]["code"]) == (409, "already_friends")


async def test_block_refusals_write_nothing(person, gateway):
    alice = await person("alice")
    cases = [
        (f"/api/v1/contacts/blocks/{alice.user['id']}", 400, "cannot_block_self"),
        ("/api/v1/contacts/blocks/nosuchuser", 404, "user_not_found"),
    ]
    for path, status, code in cases:
        got, body = await alice.request("PUT", path)
        assert (got, body["error"]["code"]) == (status, code)
    assert await snapshot(gateway) == ([], [])


@pytest.mark.parametrize(
    ("path", "code", "field"),
    [
        ("/api/v1/contacts?limit=0", "invalid_field", "query.limit"),
        ("/api/v1/contacts?limit=101", "invalid_field", "query.limit"),
        ("/api/v1/contacts?limit=ten", "wrong_type", "query.limit"),
        ("/api/v1/contacts?before=garbage", "invalid_field", "query.before"),
        ("/api/v1/contacts?sort=name", "unknown_field", "query.sort"),
        ("/api/v1/users/search", "missing_field", "query.q"),
        ("/api/v1/users/search?q=", "invalid_field", "query.q"),
        ("/api/v1/users/search?q=%20%20", "invalid_field", "query.q"),
        ("/api/v1/users/search?q=a&limit=51", "invalid_field", "query.limit"),
    ],
)
async def test_bad_queries(person, path, code, field):
    alice = await person("alice")
    status, body = await alice.get(path)
    assert (status, body["error"]["code"]) == (400, code), body
    assert body["error"]["details"]["field"] == field


async def test_contacts_need_a_token(api: ApiClient):
    for method, path in [("GET", "/api/v1/contacts"), ("POST", REQUESTS)]:
        status, body = await api.request(method, path, json={"user_id": "x"})
        assert (status, body["error"]["code"]) == (401, "missing_token")


# --- concurrency ----------------------------------------------------------------------------


async def test_simultaneous_mutual_requests_make_one_friendship(person, gateway):
    for round_ in range(3):
        alice, bob = await person(f"alice{round_}"), await person(f"bob{round_}")
        (s1, b1), (s2, b2) = await asyncio.gather(
            alice.post(REQUESTS, json={"user_id": bob.user["id"]}),
            bob.post(REQUESTS, json={"user_id": alice.user["id"]}),
        )
        # one created the request, the other accepted it
        assert sorted([s1, s2]) == [200, 201], (b1, b2)
        assert {"request", "friend"} == set(b1) | set(b2)
        assert await friend_ids(alice) == [bob.user["id"]]
        assert await friend_ids(bob) == [alice.user["id"]]
        pair = {"users": alice.user["id"]}
        assert await db(gateway).contacts.count_documents(pair) == 1
        assert await db(gateway).contacts.count_documents({**pair, "state": "friends"}) == 1


async def test_ten_identical_requests_make_one(person, socket_of, gateway):
    alice, bob = await person("alice"), await person("bob")
    bob_sock = await socket_of(bob)
    results = await asyncio.gather(
        *(alice.post(REQUESTS, json={"user_id": bob.user["id"]}) for _ in range(10))
    )
    assert sorted(status for status, _ in results) == [200] * 9 + [201]
    assert len({str(body) for _, body in results}) == 1  # all the same request
    assert await db(gateway).contacts.count_documents({}) == 1
    await bob_sock.wait_for("contact.request")
    await asyncio.sleep(0.2)
    assert names(bob_sock.events) == ["contact.request"]
    _, body = await bob.get(REQUESTS)
    assert len(body["incoming"]) == 1


async def test_accept_racing_cancel_leaves_one_outcome(person, gateway):
    for round_ in range(3):
        alice, bob = await person(f"alice{round_}"), await person(f"bob{round_}")
        await alice.post(REQUESTS, json={"user_id": bob.user["id"]})
        (accepted, _), (cancelled, _) = await asyncio.gather(
            bob.post(f"{REQUESTS}/{alice.user['id']}/accept"),
            alice.delete(f"{REQUESTS}/{bob.user['id']}"),
        )
        assert sorted([accepted, cancelled]) in ([200, 404], [204, 404])
        docs = await db(gateway).contacts.find({"users": alice.user["id"]}).to_list(None)
        if accepted == 200:
            assert [d["state"] for d in docs] == ["friends"]
            assert await friend_ids(bob) == [alice.user["id"]]
        else:
            assert docs == [] and await friend_ids(bob) == []


async def test_request_racing_block_leaves_nothing(person, gateway):
    for round_ in range(3):
        alice, bob = await person(f"alice{round_}"), await person(f"bob{round_}")
        (status, _), _ = await asyncio.gather(
            bob.post(REQUESTS, json={"user_id": alice.user["id"]}),
            alice.request("PUT", f"/api/v1/contacts/blocks/{bob.user['id']}"),
        )
        assert status in (201, 403)
        assert await db(gateway).contacts.count_documents({"users": alice.user["id"]}) == 0


async def test_replies_match_their_declared_schemas(person):
    """The OpenAPI document is built from these schemas, so it must describe real replies."""
    from jsonschema import Draft202012Validator

    from gateway.routes.contacts import api as contacts_api

    schemas = {(r.method, r.path): r.response for r in contacts_api.routes}
    alice, bob, carol = await person("alice"), await person("bob"), await person("carol")
    a, b, c = alice.user["id"], bob.user["id"], carol.user["id"]
    await carol.request("PUT", f"/api/v1/contacts/blocks/{a}")
    await alice.request("PUT", f"/api/v1/contacts/blocks/{c}")
    calls = [
        (alice, "POST", REQUESTS, {"user_id": b}, REQUESTS),
        (alice, "POST", REQUESTS, {"user_id": b}, REQUESTS),
        (alice, "GET", REQUESTS, None, REQUESTS),
        (bob, "GET", f"/api/v1/users/{a}", None, "/api/v1/users/{user_id}"),
        (bob, "POST", f"{REQUESTS}/{a}/accept", None, REQUESTS + "/{user_id}/accept"),
        (carol, "POST", REQUESTS, {"user_id": b}, REQUESTS),
        (bob, "POST", REQUESTS, {"user_id": c}, REQUESTS),
        (bob, "GET", "/api/v1/contacts?limit=1", None, "/api/v1/contacts"),
        (alice, "GET", "/api/v1/contacts/blocks", None, "/api/v1/contacts/blocks"),
        (alice, "GET", "/api/v1/users/search?q=b", None, "/api/v1/users/search"),
    ]
    for client, method, path, payload, declared in calls:
        status, body = await client.request(method, path, json=payload)
        assert status in (200, 201), body
        Draft202012Validator(schemas[(method, declared)]).validate(body)
