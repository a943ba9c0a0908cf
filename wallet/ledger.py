"""The double-entry ledger: journal, then apply — atomic and idempotent without isolation.

nx-27017's multi-document transactions are not isolated (DESIGN.md §3), so a movement of money is:

1. **journal** — insert the transaction (entries summing to zero, a unique idempotency key, a
   lease) with ``status: pending``. A second request with the same key finds the first and
   returns its outcome (or ``idempotency_key_reused`` when it asked for something else);
2. **apply** — move each account's balance with one conditional update per entry that also
   marks the account with the transaction id (``Accounts.apply_entry``): a debit of a
   non-negative account only when the balance covers it, and never twice. The one debit that can
   fail is applied first; if it fails nothing has moved and the transaction ends ``failed``
   (``reason``: ``insufficient_funds``, or ``negative_balance`` when the account is below zero);
3. **post** — ``status: applied``, then the entry documents and the transaction kind's hook
   (the transfer card, the red packet…), which are idempotent, then ``status: posted``.

An *overdraft* transaction (``post(..., overdraft=True)``: a card refund or chargeback taking
back money Stripe took back from us) debits even a non-negative account unconditionally, so a
user's balance may go below zero; only such transactions can make it so.

Concurrent movements (all but overdraft ones) take these steps together: ``ledger_batch``
journals, applies and writes the entries of every queued transaction in a fixed number of round
trips (group commit, like the message writer), going ``pending`` → ``posted`` directly.

A node that dies anywhere in between leaves a transaction whose lease runs out; ``recover``
(run by every node's job loop) takes the lease and finishes it from where it is. The worker that
holds a lease stops writing once it has run out, so two workers never act on one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from storage.errors import AppError
from storage.metrics import Metrics
from storage.mongo import new_id, now_ms
from wallet.ledger_batch import LedgerBatcher, apply_order
from wallet.store.accounts import Accounts, kind_of, owner_of
from wallet.store.ledger_entries import LedgerEntries
from wallet.store.ledger_txns import LedgerTxns

log = logging.getLogger(__name__)

LEASE_MS = 60_000  # a worker owns a transaction this long; then recovery may take it over
DUPLICATE_WAIT = 10.0  # seconds a duplicate request waits for the first one to finish
PRUNE_AFTER_MS = 10 * 60_000  # account markers of posted transactions are removed after this

Hook = Callable[[dict[str, Any]], Awaitable[None]]


class LeaseLost(Exception):
    """This worker's lease ran out; recovery will finish the transaction."""


@dataclass(frozen=True)
class Leg:
    account_id: str
    amount: int  # signed minor units: negative debits, positive credits


def insufficient_funds() -> AppError:
    return AppError("insufficient_funds", "your balance does not cover this amount", status=402)


def negative_balance() -> AppError:
    return AppError(
        "negative_balance",
        "your wallet is below zero after a card refund or chargeback; top up to bring it back "
        "to zero before paying or sending money",
        status=402,
    )


FUNDS_ERRORS = ("insufficient_funds", "negative_balance")  # a debit refused: nothing moved


def _failure(reason: str | None) -> AppError:
    return negative_balance() if reason == "negative_balance" else insufficient_funds()


class Ledger:
    metrics: Metrics  # the messaging context's, set by ``Wallet`` (transactions posted by kind)

    def __init__(self, accounts: Accounts, txns: LedgerTxns, entries: LedgerEntries) -> None:
        self.accounts = accounts
        self.txns = txns
        self.entries = entries
        self._hooks: dict[str, Hook] = {}
        # Concurrent movements share their round trips (group commit, see ``ledger_batch``).
        self.batcher = LedgerBatcher(accounts, txns, entries, _entry_docs, _failure, LeaseLost)
        # Runs after every posted transaction's own hook (tells people their new balances).
        self.after_posted: Hook | None = None

    def on_posted(self, kind: str, hook: Hook) -> None:
        """Run ``hook(txn)`` when a transaction of ``kind`` is posted (and again by recovery,
        so it must be idempotent)."""
        self._hooks[kind] = hook

    async def post(
        self,
        key: str,
        kind: str,
        currency: str,
        legs: list[Leg],
        memo: dict[str, Any] | None = None,
        *,
        overdraft: bool = False,
    ) -> dict[str, Any]:
        """Move money once per ``key``; returns the posted transaction.

        Raises ``insufficient_funds`` or ``negative_balance`` (also when replayed for the same
        key) and ``idempotency_key_reused`` when the key was used for a different movement.
        With ``overdraft`` the debits are unconditional: the account may go below zero.
        """
        _check_legs(legs, overdraft=overdraft)
        now = now_ms()
        fingerprint = _fingerprint(kind, currency, legs, overdraft=overdraft)
        txn = {
            "_id": new_id(),
            "idempotency_key": key,
            "kind": kind,
            "currency": currency,
            "entries": [{"account_id": g.account_id, "amount": g.amount} for g in legs],
            "memo": memo or {},
            "fingerprint": fingerprint,
            "status": "pending",
            "created_at": now,
            "lease_until": now + LEASE_MS,
        }
        if overdraft:
            txn["overdraft"] = True
            # Rare (card refunds, chargebacks) and unconditional: the one-by-one path.
            for leg in legs:
                await self.accounts.ensure_account(leg.account_id, currency, now)
            if await self.txns.add_txn(txn):
                return await self._finish(txn, deadline=now + LEASE_MS)
        else:
            applied = await self.batcher.apply(txn, now + LEASE_MS)
            if applied is not None:
                return await self._post_applied(applied, deadline=now + LEASE_MS)
        existing = await self._await_existing(key)
        if existing["fingerprint"] != fingerprint:
            raise AppError(
                "idempotency_key_reused",
                "this idempotency_key was used for a different request",
                status=409,
            )
        return _outcome(existing)

    async def _await_existing(self, key: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + DUPLICATE_WAIT
        while True:
            existing = await self.txns.get_by_key(key)
            if existing is None:  # cannot happen: transactions are never deleted
                raise AppError("internal_error", "the original request vanished", status=500)
            if existing["status"] in ("posted", "failed") or loop.time() > give_up:
                if existing["status"] not in ("posted", "failed"):
                    raise AppError(
                        "in_progress",
                        "the first request with this idempotency_key is still being "
                        "processed; retry with the same key",
                        status=409,
                    )
                return existing
            await asyncio.sleep(0.05)

    async def _post_applied(self, txn: dict[str, Any], *, deadline: int) -> dict[str, Any]:
        """The batcher moved the money and wrote the entries: hooks, then ``posted``
        (coalesced). A crash in between leaves it ``pending``: recovery re-applies (a no-op,
        the markers are there) and reruns the idempotent hooks."""
        await self._run_hooks(txn)
        if now_ms() > deadline:
            raise LeaseLost(txn["_id"])
        await self.batcher.mark_posted(txn)
        txn["status"], txn["posted_at"] = "posted", now_ms()
        self.metrics.ledger_posted(txn["kind"])
        return txn

    async def _run_hooks(self, txn: dict[str, Any]) -> None:
        hook = self._hooks.get(txn["kind"])
        if hook is not None:
            await hook(txn)
        if self.after_posted is not None:
            await self.after_posted(txn)

    async def close(self) -> None:
        """Let the in-flight batch finish (its callers are waiting for their answers)."""
        await self.batcher.close()

    async def _finish(self, txn: dict[str, Any], *, deadline: int) -> dict[str, Any]:
        def check_lease() -> None:
            if now_ms() > deadline:
                raise LeaseLost(txn["_id"])

        if txn["status"] == "pending":
            for leg in apply_order(txn["entries"]):
                check_lease()
                applied = await self.accounts.apply_entry(
                    leg["account_id"],
                    txn["_id"],
                    leg["amount"],
                    now_ms(),
                    overdraft=bool(txn.get("overdraft")),
                )
                if not applied:
                    # Only the first leg can fail (see _check_legs): nothing has moved.
                    balance = await self.accounts.get_balance(leg["account_id"])
                    reason = "negative_balance" if balance < 0 else "insufficient_funds"
                    await self.txns.set_status(
                        txn["_id"], "pending", "failed", {"failed_at": now_ms(), "reason": reason}
                    )
                    raise _failure(reason)
            check_lease()
            applied_at = now_ms()
            await self.txns.set_status(txn["_id"], "pending", "applied", {"applied_at": applied_at})
            txn["status"], txn["applied_at"] = "applied", applied_at
        if txn["status"] == "applied":
            check_lease()
            await self.entries.add_entries(_entry_docs(txn))
            await self._run_hooks(txn)
            check_lease()
            posted_at = now_ms()
            await self.txns.set_status(txn["_id"], "applied", "posted", {"posted_at": posted_at})
            txn["status"], txn["posted_at"] = "posted", posted_at
            self.metrics.ledger_posted(txn["kind"])
        return _outcome(txn)

    async def recover(self) -> int:
        """Finish every transaction whose worker died; returns how many were finished."""
        finished = 0
        for stuck in await self.txns.get_stuck(now_ms()):
            deadline = now_ms() + LEASE_MS
            txn = await self.txns.take_lease(stuck, deadline)
            if txn is None:
                continue  # another node took it
            try:
                await self._finish(txn, deadline=deadline)
            except AppError as exc:
                log.info("recovered transaction %s ended %s", txn["_id"], exc.code)
            except LeaseLost:
                log.warning("recovering transaction %s took longer than its lease", txn["_id"])
                continue
            finished += 1
        return finished

    async def prune(self) -> int:
        """Remove the accounts' markers of transactions posted long ago."""
        txns = await self.txns.get_prunable(now_ms() - PRUNE_AFTER_MS)
        by_account: dict[str, list[str]] = {}
        for txn in txns:
            for entry in txn["entries"]:
                by_account.setdefault(entry["account_id"], []).append(txn["_id"])
        for account_id, txn_ids in by_account.items():
            await self.accounts.prune_markers(account_id, txn_ids)
        if txns:
            await self.txns.mark_pruned([t["_id"] for t in txns], now_ms())
        return len(txns)


def _check_legs(legs: list[Leg], *, overdraft: bool = False) -> None:
    if len(legs) < 2 or sum(leg.amount for leg in legs) != 0:
        raise ValueError("a transaction needs two or more legs that sum to zero")
    if any(leg.amount == 0 for leg in legs):
        raise ValueError("a leg moves a non-zero amount")
    if len({leg.account_id for leg in legs}) != len(legs):
        raise ValueError("one leg per account")
    constrained = [g for g in legs if g.amount < 0 and kind_of(g.account_id) != "external"]
    if len(constrained) > 1 and not overdraft:
        # Then a second debit could fail after the first moved money; no movement needs it.
        raise ValueError("at most one debit of a non-external account per transaction")


def _fingerprint(kind: str, currency: str, legs: list[Leg], *, overdraft: bool) -> str:
    shape: list[Any] = [kind, currency, sorted((g.account_id, g.amount) for g in legs)]
    if overdraft:  # (only then, so the fingerprints of earlier transactions stay what they were)
        shape.append("overdraft")
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()


def _entry_docs(txn: dict[str, Any]) -> list[dict[str, Any]]:
    at = txn.get("applied_at") or txn["created_at"]
    return [
        {
            "_id": f"{txn['_id']}:{index}",
            "txn_id": txn["_id"],
            "account_id": entry["account_id"],
            "account_kind": kind_of(entry["account_id"]),
            "owner": owner_of(entry["account_id"]),
            "currency": txn["currency"],
            "amount": entry["amount"],
            "kind": txn["kind"],
            "memo": txn["memo"],
            "at": at,
        }
        for index, entry in enumerate(txn["entries"])
    ]


def _outcome(txn: dict[str, Any]) -> dict[str, Any]:
    if txn["status"] == "failed":
        raise _failure(txn.get("reason"))
    return txn
