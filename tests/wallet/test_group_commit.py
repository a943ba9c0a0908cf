"""Group commit of ledger transactions (wallet/ledger_batch.py): concurrent movements share their
round trips, and every guarantee of the one-by-one ledger still holds.

- Hundreds of concurrent movements over a few accounts, some of them overdrawing: the batcher
  groups several debits of one account into one conditional update and falls back to one at a
  time when the group does not fit — never below zero, each answer matches the journal, the
  ledger is zero-sum and every balance is the sum of its entries.
- THE crash test: the real platform (``run.py``, embedded store) is SIGKILLed in the middle of
  500 concurrent transfers; after a restart and recovery every acknowledged transfer is posted
  exactly once, replaying every key gives the original answer and moves nothing, no money
  appeared or vanished, and the admin reconciliation report is clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from gateway.keys import DATABASE, WALLET
from storage.errors import AppError
from tests.conftest import _free_port
from tests.helpers import ApiClient
from tests.test_run import _env, start, stop, wait_gone
from tests.wallet.wallet_helpers import check_ledger
from wallet.actions.common import derived_id
from wallet.ledger import Leg
from wallet.store.accounts import external_account, user_account

ROOT = Path(__file__).resolve().parents[2]


async def test_concurrent_movements_over_few_accounts_some_overdrawing(gateway):
    """240 movements at once between five accounts (two nearly empty): each answer is what
    the journal says, nothing below zero, zero-sum, balances = entries."""
    wallet = gateway.app[WALLET]
    db = gateway.app[DATABASE].db
    accounts = [user_account(f"gc{i}", "USD") for i in range(5)]
    funding = [50_000, 50_000, 20_000, 300, 0]  # the last two overdraw almost at once
    source = external_account("dev_topup", "USD")
    for i, (account, amount) in enumerate(zip(accounts, funding, strict=True)):
        if amount:
            await wallet.ledger.post(
                f"gc-fund-{i}", "dev_topup", "USD", [Leg(source, -amount), Leg(account, amount)]
            )
    rng = random.Random(22)
    plans = []
    for n in range(240):
        a, b = rng.sample(range(5), 2)
        plans.append((f"gc-{n}", accounts[a], accounts[b], rng.randint(1, 1500)))
    # A few keys sent twice at once: the same movement, moved once.
    plans += [plans[k] for k in (3, 50, 51, 200)]

    async def move(key: str, frm: str, to: str, amount: int):
        try:
            txn = await wallet.ledger.post(
                key, "gc_test", "USD", [Leg(frm, -amount), Leg(to, amount)]
            )
            return key, "posted", txn["_id"]
        except AppError as exc:
            return key, exc.code, None

    fallbacks = []  # the batcher's "group short of funds: one at a time" path is taken
    one_by_one = wallet.ledger.batcher._one_by_one

    async def counted(account_id, moves, now, failed):
        fallbacks.append(len(moves))
        await one_by_one(account_id, moves, now, failed)

    wallet.ledger.batcher._one_by_one = counted
    results = await asyncio.gather(*[move(*plan) for plan in plans])
    assert any(n > 1 for n in fallbacks), fallbacks
    outcomes = {r[1] for r in results}
    assert outcomes == {"posted", "insufficient_funds"}, outcomes  # both paths were taken
    journal = {
        t["idempotency_key"]: t
        for t in await db.ledger_txns.find({"kind": "gc_test"}).to_list(None)
    }
    assert len(journal) == 240
    for key, outcome, txn_id in results:
        txn = journal[key]
        if outcome == "posted":
            assert txn["status"] == "posted" and txn["_id"] == txn_id, (key, txn)
        else:
            assert txn["status"] == "failed" and txn["reason"] == outcome, (key, txn)
    balances = await check_ledger(db)  # zero-sum, none negative, balances = entries
    for account, amount in zip(accounts, funding, strict=True):
        moved = sum(
            e["amount"]
            for t in journal.values()
            if t["status"] == "posted"
            for e in t["entries"]
            if e["account_id"] == account
        )
        assert balances.get(account, 0) == amount + moved >= 0
    assert sum(balances.get(a, 0) for a in accounts) == sum(funding)
    # Replaying every key: the same outcome, nothing moves.
    again = await asyncio.gather(*[move(*plan) for plan in plans])
    assert sorted(again) == sorted(results)
    assert await check_ledger(db) == balances


# --- the crash test -------------------------------------------------------------------------

PEOPLE = 10
TRANSFERS = 500
FUNDS = 30_000


def _platform_env() -> dict[str, str]:
    env = _env()
    env.update(
        AETHERIAL_ENV="development",  # dev top-ups
        JOBS_INTERVAL="0.5",  # recovery scans often
        SEND_RATE_MAX="100000",
        SEND_RATE_WINDOW="1",
        LOGIN_MAX_ATTEMPTS_PER_ADDRESS="100000",
        REGISTER_MAX_PER_ADDRESS="100000",
    )
    return env


def _transfer_body(rng: random.Random, ids: list[str], i: int, chat: str, n: int) -> dict:
    to = rng.choice([j for j in range(PEOPLE) if j != i])
    return {
        "to_user_id": ids[to],
        "amount": rng.randint(1, 2500),  # ~50 of these each exceed 30,000: some are refused
        "currency": "USD",
        "conversation_id": chat,
        "idempotency_key": f"crash-{i}-{n}",
    }


async def _statement(client: ApiClient) -> list[dict]:
    entries, before = [], None
    while True:
        path = "/api/v1/wallet/transactions?limit=100" + (f"&before={before}" if before else "")
        status, body = await client.get(path)
        assert status == 200, body
        entries += body["transactions"]
        before = body["next_before"]
        if before is None:
            return entries


async def _reconciliation(admin: ApiClient, timeout: float = 150.0) -> dict:
    """The admin report once recovery has finished everything in flight (the dead node's
    leases run out after ``LEASE_MS``)."""
    deadline = time.monotonic() + timeout
    while True:
        status, report = await admin.get("/api/v1/admin/wallet/reconciliation")
        assert status == 200, report
        if report["transactions_in_flight"] == 0 or time.monotonic() > deadline:
            return report
        await asyncio.sleep(1)


@pytest.mark.xdist_group("heavy")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_sigkill_in_the_middle_of_500_concurrent_transfers(tmp_path):
    data_dir, port, env = tmp_path / "var", _free_port(), _platform_env()
    base = f"http://127.0.0.1:{port}"
    process = start(data_dir, port, env)
    clients = [ApiClient(base) for _ in range(PEOPLE)]
    try:
        users = [await c.signup() for c in clients]
        ids = [u["user"]["id"] for u in users]
        status, body = await clients[0].post(
            "/api/v1/conversations",
            json={"type": "group", "title": "Crash", "member_ids": ids[1:]},
        )
        assert status == 201, body
        chat = body["conversation"]["id"]
        for c in clients:
            status, body = await c.post(
                "/api/v1/wallet/dev-topup", json={"amount": FUNDS, "currency": "USD"}
            )
            assert status == 200, body
        rng = random.Random(500)
        plans = [
            (i, _transfer_body(rng, ids, i, chat, n))
            for n in range(TRANSFERS // PEOPLE)
            for i in range(PEOPLE)
        ]
        acked: dict[str, tuple[int, dict]] = {}
        enough = asyncio.Event()

        async def send(i: int, body: dict) -> None:
            try:
                status, answer = await clients[i].post("/api/v1/wallet/transfers", json=body)
            except (TimeoutError, aiohttp.ClientError):
                return  # the node died before answering: not acknowledged
            acked[body["idempotency_key"]] = (status, answer)
            if len(acked) >= TRANSFERS // 5:
                enough.set()

        tasks = [asyncio.create_task(send(i, body)) for i, body in plans]
        await asyncio.wait_for(enough.wait(), 120)
        process.send_signal(signal.SIGKILL)  # mid-batch: some acked, most not
        process.wait(timeout=20)
        await asyncio.gather(*tasks)
        assert TRANSFERS // 5 <= len(acked) < TRANSFERS, len(acked)
        assert {s for s, _ in acked.values()} <= {201, 402}, {s for s, _ in acked.values()}
        assert wait_gone(data_dir, timeout=20) == []
        # (The embedded store is ours again: give the first person the admin role, offline.)
        made = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "run.py", "--data-dir", str(data_dir), "create-admin",
             users[0]["user"]["username"]],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert made.returncode == 0, made.stdout + made.stderr
        process = start(data_dir, port, env)
        for c in clients:  # new sessions: the old connections died with the node
            await c.session.close()
            c.session = aiohttp.ClientSession()
        report = await _reconciliation(clients[0])
        assert report["transactions_in_flight"] == 0, report
        assert report["balanced"] and not report["mismatched_accounts"], report
        assert report["negative_accounts"] == [], report
        (usd,) = report["currencies"]
        assert usd["sum"] == 0 and usd["external"] == -FUNDS * PEOPLE, usd
        assert usd["users"] + usd["held"] == FUNDS * PEOPLE, usd

        # Every acknowledged transfer is posted exactly once; every refused one not at all.
        statements = await asyncio.gather(*[_statement(c) for c in clients])
        debits: dict[str, int] = {}
        for entries in statements:
            for entry in entries:
                if entry["kind"] == "transfer":
                    transfer_id = entry["details"]["transfer_id"]
                    debits[transfer_id] = debits.get(transfer_id, 0) + 1
        assert all(n == 1 for n in debits.values()), debits
        by_key = {body["idempotency_key"]: (i, body) for i, body in plans}
        for key, (status, answer) in acked.items():
            i, body = by_key[key]
            transfer_id = derived_id("transfer", ids[i], key)
            if status == 201:
                assert answer["transfer"]["id"] == transfer_id
                assert debits.get(transfer_id) == 1, key
            else:
                assert answer["error"]["code"] == "insufficient_funds", answer
                assert transfer_id not in debits, key

        # Replaying every key: the original answer for the acknowledged, nothing moves again.
        async def replay(i: int, body: dict) -> tuple[str, int, dict]:
            status, answer = await clients[i].post("/api/v1/wallet/transfers", json=body)
            return body["idempotency_key"], status, answer

        replies = await asyncio.gather(*[replay(i, body) for i, body in plans])
        for key, status, answer in replies:
            assert status in (201, 402), (key, status, answer)
            if key in acked:
                first_status, first = acked[key]
                assert status == first_status, (key, first, answer)
                if status == 201:
                    assert answer["transfer"]["id"] == first["transfer"]["id"]
                    assert answer["transfer"]["amount"] == first["transfer"]["amount"]
        after = await _reconciliation(clients[0])
        assert after["balanced"] and after["transactions_in_flight"] == 0, after
        assert after["currencies"][0]["users"] + after["currencies"][0]["held"] == FUNDS * PEOPLE
        again = await asyncio.gather(*[_statement(c) for c in clients])
        recount: dict[str, int] = {}
        for entries in again:
            for entry in entries:
                if entry["kind"] == "transfer":
                    transfer_id = entry["details"]["transfer_id"]
                    recount[transfer_id] = recount.get(transfer_id, 0) + 1
        assert all(n == 1 for n in recount.values()), recount
        for key, status, answer in replies:
            if status == 201:  # (the unacknowledged ones too, now: posted exactly once)
                assert recount.get(answer["transfer"]["id"]) == 1, key
        assert {k: v for k, v in recount.items() if k in debits} == debits  # nothing new for old
    finally:
        await asyncio.gather(*[c.close() for c in clients])
        with contextlib.suppress(Exception):
            stop(process, signal.SIGTERM)
        wait_gone(data_dir)
