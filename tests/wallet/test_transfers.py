"""Transfers in chat: a card the recipient accepts, returned at expiry, idempotent, validated."""

from __future__ import annotations

import asyncio

import pytest

from gateway.app import create_app
from tests.conftest import make_config
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, direct, group, people
from tests.wallet.wallet_helpers import balance, check_ledger, new_key, topup, transfer


@pytest.fixture
async def base(gateway) -> str:
    return str(gateway.make_url("")).rstrip("/")


async def test_transfer_card_accept(base, gateway):
    alice, bob = await people(base, 2)
    chat = await direct(alice, bob)
    await topup(alice, 5000)
    status, body = await transfer(alice, bob, chat, 1250, note="lunch")
    assert status == 201, body
    sent = body["transfer"]
    assert (sent["status"], sent["amount"], sent["currency"], sent["exponent"]) == (
        "pending", 1250, "USD", 2,
    )  # fmt: skip
    assert await balance(alice) == 3750
    assert await balance(bob) == 0
    # The card arrives in the chat for both, posted as Alice's message.
    for p in (alice, bob):
        await eventually(
            lambda p=p: [m for m in p.received() if m["message"]["type"] == "transfer"],
            what="transfer card",
        )
    card_msg = next(m["message"] for m in bob.received() if m["message"]["type"] == "transfer")
    assert card_msg["sender_id"] == alice.user_id
    assert card_msg["wallet"] == {"kind": "transfer", "id": sent["id"]}
    assert card_msg["card"]["buttons"][0]["action_id"] == "wallet.transfer.accept"
    assert "12.50 USD" in card_msg["card"]["title"]
    # Only the recipient can accept.
    status, body = await alice.api.post(f"/api/v1/wallet/transfers/{sent['id']}/accept")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await bob.api.post(f"/api/v1/wallet/transfers/{sent['id']}/accept")
    assert status == 200 and body["transfer"]["status"] == "accepted"
    assert await balance(bob) == 1250
    status, body = await bob.api.post(f"/api/v1/wallet/transfers/{sent['id']}/accept")
    assert status == 409 and body["error"]["code"] == "transfer_settled"
    # The card is redrawn for both: no button any more.
    await eventually(
        lambda: [
            u for u in alice.received("message.updated")
            if u["message"]["id"] == card_msg["id"] and "buttons" not in u["message"]["card"]
        ],
        what="accepted card",
    )  # fmt: skip
    # Bob's statement shows the accepted transfer; balances were pushed to devices.
    status, body = await bob.api.get("/api/v1/wallet/transactions")
    assert [t["kind"] for t in body["transactions"]] == ["transfer_accept"]
    assert body["transactions"][0]["amount"] == 1250
    assert any(b["change"] == 1250 for b in bob.received("wallet.balance"))
    await check_ledger(_db(gateway))
    await close_all([alice, bob])


def _db(gateway):
    from gateway.keys import DATABASE

    return gateway.app[DATABASE].db


async def test_recipient_returns_transfer(base, gateway):
    alice, bob = await people(base, 2)
    chat = await direct(alice, bob)
    await topup(alice, 1000)
    _, body = await transfer(alice, bob, chat, 400)
    tid = body["transfer"]["id"]
    status, body = await bob.api.post(f"/api/v1/wallet/transfers/{tid}/return")
    assert status == 200 and body["transfer"]["status"] == "returned"
    assert (await balance(alice), await balance(bob)) == (1000, 0)
    status, body = await bob.api.post(f"/api/v1/wallet/transfers/{tid}/accept")
    assert status == 409 and body["error"]["code"] == "transfer_settled"
    await check_ledger(_db(gateway))
    await close_all([alice, bob])


async def test_same_transfer_sent_five_times_concurrently_moves_money_once(base, gateway):
    alice, bob = await people(base, 2)
    chat = await direct(alice, bob)
    await topup(alice, 10_000)
    request = {
        "to_user_id": bob.user_id,
        "amount": 700,
        "currency": "USD",
        "conversation_id": chat,
        "idempotency_key": "dinner-2026-11-26",
    }
    results = await asyncio.gather(
        *[alice.api.post("/api/v1/wallet/transfers", json=request) for _ in range(5)]
    )
    assert all(status == 201 for status, _ in results), results
    assert len({body["transfer"]["id"] for _, body in results}) == 1
    assert await balance(alice) == 9300
    # One card in the chat, not five.
    await asyncio.sleep(0.3)
    cards = {m["message"]["id"] for m in bob.received() if m["message"]["type"] == "transfer"}
    assert len(cards) == 1
    # The same key for something else is refused, and moves nothing.
    status, body = await alice.api.post("/api/v1/wallet/transfers", json={**request, "amount": 701})
    assert status == 409 and body["error"]["code"] == "idempotency_key_reused"
    assert await balance(alice) == 9300
    await check_ledger(_db(gateway))
    await close_all([alice, bob])


async def test_unaccepted_transfer_returns_after_expiry_across_a_restart(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    """The expiry is a row in MongoDB, not a timer: a gateway that was down when it fell due
    returns the money when it comes back."""
    config = make_config(
        mongo_url, mongo_db_name, tmp_path / "var", transfer_expiry=1, jobs_interval=0.1
    )
    server = await aiohttp_server(create_app(config))
    base = str(server.make_url("")).rstrip("/")
    alice, bob = await people(base, 2)
    chat = await direct(alice, bob)
    await topup(alice, 2000)
    _, body = await transfer(alice, bob, chat, 500)
    tid = body["transfer"]["id"]
    await close_all([alice, bob])
    await server.close()  # down while the transfer falls due
    await asyncio.sleep(1.2)
    server = await aiohttp_server(create_app(config))
    base = str(server.make_url("")).rstrip("/")
    from tests.helpers import ApiClient

    alice_api = ApiClient(base)
    await alice_api.login(alice.username)

    async def returned():
        _, body = await alice_api.get(f"/api/v1/wallet/transfers/{tid}")
        return body["transfer"]["status"] == "returned"

    await eventually(returned, what="transfer returned")
    _, body = await alice_api.get("/api/v1/wallet")
    assert body["balances"][0]["amount"] == 2000

    # "returned" is set by the ledger's hook, a moment before the transaction is marked posted.
    async def posted() -> bool:
        txns = await _db(server).ledger_txns.find({}).to_list(None)
        return all(t["status"] in ("posted", "failed") for t in txns)

    await eventually(posted, what="the return posted")
    await check_ledger(_db(server))
    await alice_api.close()


async def test_transfer_bad_input_changes_nothing(base, gateway):
    alice, bob, carol = await people(base, 3)
    chat = await direct(alice, bob)
    await topup(alice, 1000)
    cases = [
        ({"amount": -5}, 400, "invalid_amount"),
        ({"amount": 0}, 400, "invalid_amount"),
        ({"amount": 12.5}, 400, "wrong_type"),
        ({"amount": 10**12}, 400, "amount_too_large"),
        ({"amount": 2**70}, 400, "invalid_field"),
        ({"currency": "XYZ"}, 400, "unknown_currency"),
        ({"currency": "usd"}, 400, "unknown_currency"),
        ({"to_user_id": alice.user_id}, 400, "invalid_recipient"),
        ({"to_user_id": carol.user_id}, 400, "invalid_recipient"),
        ({"amount": 1001}, 402, "insufficient_funds"),
        ({"idempotency_key": "has spaces"}, 400, "invalid_field"),
        ({"note": "x" * 201}, 400, "invalid_field"),
        ({"surprise": 1}, 400, "unknown_field"),
    ]
    for change, want_status, want_code in cases:
        change = {"amount": 100, **change}
        status, body = await transfer(alice, bob, chat, **change)
        assert (status, body["error"]["code"]) == (want_status, want_code), (change, body)
    # Carol is not in the chat: she cannot send into it either.
    await topup(carol, 1000)
    status, body = await transfer(carol, bob, chat, 100)
    assert (status, body["error"]["code"]) == (403, "not_a_member")
    status, body = await alice.api.post("/api/v1/wallet/transfers", json={"amount": 1})
    assert status == 400 and body["error"]["code"] == "missing_field"
    assert await balance(alice) == 1000
    assert await balance(bob) == 0
    entries = await _db(gateway).ledger_entries.count_documents({"kind": "transfer"})
    assert entries == 0
    await check_ledger(_db(gateway))
    await close_all([alice, bob, carol])


async def test_insufficient_funds_and_unknown_ids(base, gateway):
    alice, bob = await people(base, 2)
    chat = await group(alice, [bob])
    status, body = await transfer(alice, bob, chat, 1)
    assert status == 402 and body["error"]["code"] == "insufficient_funds"
    status, body = await bob.api.post("/api/v1/wallet/transfers/nope/accept")
    assert status == 404
    status, body = await bob.api.get("/api/v1/wallet/transfers/nope")
    assert status == 404
    status, body = await bob.api.get(f"/api/v1/wallet/transactions?before=junk&key={new_key()}")
    assert status == 400
    await close_all([alice, bob])


async def test_accept_pressed_before_the_transfer_row_exists_waits_for_it(base, gateway):
    """The card is delivered a moment before its transfer row is stored: an Accept pressed in
    that instant waits for the row instead of answering "not found"."""
    alice, bob = await people(base, 2)
    chat = await direct(alice, bob)
    await topup(alice, 1000)
    _, body = await transfer(alice, bob, chat, 300)
    tid = body["transfer"]["id"]
    transfers = _db(gateway).wallet_transfers
    row = await transfers.find_one({"_id": tid})
    await transfers.delete_one({"_id": tid})  # as between the card's commit and the row's insert

    async def stored_soon() -> None:
        await asyncio.sleep(0.05)
        await transfers.insert_one(row)

    storing = asyncio.create_task(stored_soon())
    status, body = await bob.api.post(f"/api/v1/wallet/transfers/{tid}/accept")
    await storing
    assert status == 200 and body["transfer"]["status"] == "accepted", body
    assert (await balance(alice), await balance(bob)) == (700, 300)
    await check_ledger(_db(gateway))
    await close_all([alice, bob])
