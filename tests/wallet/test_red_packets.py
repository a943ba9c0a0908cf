"""Red packets: shares sum to the total, one grab per member (also concurrently), live card,
refund of the remainder by a durable job — also across a restart."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from gateway.app import create_app
from gateway.keys import DATABASE
from tests.conftest import make_config
from tests.helpers import ApiClient, eventually
from tests.messaging.chat_helpers import close_all, group, people
from tests.wallet.wallet_helpers import balance, check_ledger, red_packet, topup
from wallet.actions.red_packets import split


@pytest.fixture
async def base(gateway) -> str:
    return str(gateway.make_url("")).rstrip("/")


def test_split_is_exact_and_fair():
    for total, count in [(10_000, 10), (10, 10), (11, 10), (1, 1), (999_999, 7), (200, 200)]:
        for mode in ("random", "equal"):
            shares = split(total, count, mode)
            assert len(shares) == count and sum(shares) == total and min(shares) >= 1
    assert sorted(split(100, 3, "equal")) == [33, 33, 34]
    # Fair: over many draws every position gets about the mean (double-mean + shuffle).
    draws = [split(10_000, 10, "random") for _ in range(3000)]
    for position in range(10):
        mean = sum(d[position] for d in draws) / len(draws)
        assert 900 < mean < 1100, (position, mean)
    with pytest.raises(ValueError):
        split(5, 10, "random")


async def test_members_grab_once_concurrently_and_shares_sum_to_total(base, gateway):
    alice, *others = await people(base, 11)
    chat = await group(alice, others)
    await topup(alice, 20_000)
    status, body = await red_packet(alice, chat, 10_000, 10, greeting="Happy new year")
    assert status == 201, body
    packet = body["red_packet"]
    assert (packet["amount"], packet["count"], packet["status"]) == (10_000, 10, "open")
    assert await balance(alice) == 10_000
    # Everyone (11 people for 10 shares) grabs twice at once.
    grabbers = [alice, *others]
    results = await asyncio.gather(
        *[
            p.api.post(f"/api/v1/wallet/red-packets/{packet['id']}/claim")
            for p in grabbers
            for _ in range(2)
        ]
    )
    won = [body for status, body in results if status == 200]
    codes = Counter(body["error"]["code"] for status, body in results if status != 200)
    assert len(won) == 10, (codes, won)
    assert set(codes) <= {"already_claimed", "claim_in_progress", "red_packet_empty"}
    assert sum(b["amount"] for b in won) == 10_000
    status, body = await alice.api.get(f"/api/v1/wallet/red-packets/{packet['id']}")
    final = body["red_packet"]
    assert final["status"] == "finished" and final["claimed_amount"] == 10_000
    assert len({c["user_id"] for c in final["claims"]}) == 10
    # Each claimer's balance went up by exactly their share.
    shares = {c["user_id"]: c["amount"] for c in final["claims"]}
    for p in grabbers:
        expected = shares.get(p.user_id, 0) + (10_000 if p is alice else 0)
        assert await balance(p) == expected
    # The card was updated live for members.
    await eventually(
        lambda: [
            u for u in others[0].received("message.updated")
            if u["message"]["type"] == "red_packet" and "buttons" not in u["message"]["card"]
        ],
        what="finished red packet card",
    )  # fmt: skip
    await check_ledger(gateway.app[DATABASE].db)
    await close_all(grabbers)


async def test_non_member_cannot_grab_and_bad_input(base, gateway):
    alice, bob, stranger = await people(base, 3)
    chat = await group(alice, [bob])
    await topup(alice, 1000)
    cases = [
        ({"total": 0}, 400, "invalid_amount"),
        ({"total": 5, "count": 10}, 400, "invalid_amount"),
        ({"count": 0}, 400, "invalid_field"),
        ({"count": 201}, 400, "invalid_field"),
        ({"count": 1.5}, 400, "wrong_type"),
        ({"mode": "weird"}, 400, "invalid_field"),
        ({"currency": "BTC"}, 400, "unknown_currency"),
        ({"total": 1001}, 402, "insufficient_funds"),
        ({"greeting": "x" * 101}, 400, "invalid_field"),
    ]
    for change, want_status, want_code in cases:
        args = {"total": 100, "count": 2, **change}
        status, body = await red_packet(alice, chat, **args)
        assert (status, body["error"]["code"]) == (want_status, want_code), (change, body)
    assert await balance(alice) == 1000
    status, body = await red_packet(stranger, chat, 100, 2)
    assert (status, body["error"]["code"]) == (403, "not_a_member")
    _, body = await red_packet(alice, chat, 100, 2, mode="equal")
    pid = body["red_packet"]["id"]
    status, body = await stranger.api.post(f"/api/v1/wallet/red-packets/{pid}/claim")
    assert (status, body["error"]["code"]) == (403, "not_a_member")
    status, body = await stranger.api.get(f"/api/v1/wallet/red-packets/{pid}")
    assert status == 403
    status, body = await bob.api.post("/api/v1/wallet/red-packets/nope/claim")
    assert status == 404
    status, body = await bob.api.post(f"/api/v1/wallet/red-packets/{pid}/claim")
    assert status == 200 and body["amount"] == 50
    status, body = await bob.api.post(f"/api/v1/wallet/red-packets/{pid}/claim")
    assert (status, body["error"]["code"]) == (409, "already_claimed")
    assert body["error"]["details"]["amount"] == 50
    await check_ledger(gateway.app[DATABASE].db)
    await close_all([alice, bob, stranger])


async def test_remainder_refunded_after_expiry_across_a_restart(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    config = make_config(
        mongo_url, mongo_db_name, tmp_path / "var", red_packet_expiry=1, jobs_interval=0.1
    )
    server = await aiohttp_server(create_app(config))
    base = str(server.make_url("")).rstrip("/")
    alice, bob, carol = await people(base, 3)
    chat = await group(alice, [bob, carol])
    await topup(alice, 1000)
    _, body = await red_packet(alice, chat, 900, 3)
    pid = body["red_packet"]["id"]
    status, body = await bob.api.post(f"/api/v1/wallet/red-packets/{pid}/claim")
    assert status == 200
    bob_share = body["amount"]
    await close_all([alice, bob, carol])
    await server.close()  # down while the packet expires
    await asyncio.sleep(1.2)
    server = await aiohttp_server(create_app(config))
    base = str(server.make_url("")).rstrip("/")
    alice_api = ApiClient(base)
    await alice_api.login(alice.username)

    async def refunded():
        _, body = await alice_api.get(f"/api/v1/wallet/red-packets/{pid}")
        return body["red_packet"]["refunded"] is not None and body["red_packet"]

    packet = await eventually(refunded, what="red packet refunded")
    assert packet["status"] == "expired"
    assert packet["refunded"] == 900 - bob_share
    _, body = await alice_api.get("/api/v1/wallet")
    assert body["balances"][0]["amount"] == 1000 - bob_share
    carol_api = ApiClient(base)
    await carol_api.login(carol.username)
    status, body = await carol_api.post(f"/api/v1/wallet/red-packets/{pid}/claim")
    assert (status, body["error"]["code"]) == (409, "red_packet_closed")
    await check_ledger(server.app[DATABASE].db)
    await alice_api.close()
    await carol_api.close()
