"""Group commit of ledger transactions: the message writer's pattern, for money.

Concurrent ``Ledger.post`` calls queue here; one lane per node takes every queued transaction
as one batch and moves the money of all of them in a fixed number of round trips, whatever the
batch's size:

1. the accounts they name that this node has not seen: one bulk upsert;
2. **journal**: one ``insert_many(ordered=False)`` — the unique idempotency key still decides,
   between nodes and inside the batch: a duplicate is answered by the caller as before (wait
   for the first, same outcome);
3. **apply the debits that can fail**: per account, ONE conditional update moving the total of
   the batch's debits of that account, on condition that the balance covers the *total* and
   that none of the transactions' markers is there yet. An account whose group fails (short of
   funds for all of them together) falls back to one transaction at a time, in queue order, with
   ``Accounts.apply_entry`` — so exactly those that fit are applied, and never below zero;
4. **apply the rest** (credits, external debits) of the transactions whose debit went through:
   one bulk of per-account updates, guarded by the markers only;
5. the failed ones → ``failed`` (one bulk), the entry documents of the applied ones (one
   ``insert_many``), and their users' balances read back once for the balance events.

Each caller then runs its transaction's hooks itself (concurrently with the next batch) and
the ``posted`` statuses are coalesced into one ``update_many`` per flush.

Crash safety is the single path's: every step is conditional and idempotent through the
accounts' ``applied.<txn id>`` markers, a transaction stays ``pending`` until its money moved,
entries and hooks are written, and ``Ledger.recover`` finishes whatever a dead node left once
its lease runs out (pending → posted or failed; re-applying a marked entry is a no-op). A
failure is answered only after ``failed`` is stored, success only after the entries are.
Overdraft transactions (rare: card refunds and chargebacks) keep the one-by-one path.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from storage.errors import AppError
from storage.mongo import now_ms
from wallet.store.accounts import Accounts, kind_of
from wallet.store.ledger_entries import LedgerEntries
from wallet.store.ledger_txns import LedgerTxns

log = logging.getLogger(__name__)

MAX_BATCH = 500
MAX_QUEUED = 20_000  # past this the node answers "overloaded" instead of queueing without end

# What a queued transaction becomes: the txn (money moved, entries stored), None (its key was
# taken: the caller answers from the stored one), or an exception (funds short, lease lost…).
Applied = dict[str, Any] | None


@dataclass
class _Queued:
    txn: dict[str, Any]
    deadline: int
    future: asyncio.Future[Applied]


class LedgerBatcher:
    def __init__(
        self,
        accounts: Accounts,
        txns: LedgerTxns,
        entries: LedgerEntries,
        entry_docs: Callable[[dict[str, Any]], list[dict[str, Any]]],
        failure: Callable[[str | None], AppError],
        lease_lost: Callable[[str], Exception],
    ) -> None:
        self.accounts, self.txns, self.entries = accounts, txns, entries
        self._entry_docs, self._failure, self._lease_lost = entry_docs, failure, lease_lost
        self._queue: deque[_Queued] = deque()
        self._lane: asyncio.Task[None] | None = None
        self._posted = Coalescer(self._flush_posted)

    async def apply(self, txn: dict[str, Any], deadline: int) -> Applied:
        """Journal and apply ``txn`` with whatever else is queued (see the module)."""
        if len(self._queue) >= MAX_QUEUED:
            raise AppError("overloaded", "the server is busy; retry with the same key", status=503)
        future: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(txn, deadline, future))
        if self._lane is None:
            self._lane = asyncio.create_task(self._run_lane())
        return await future

    async def mark_posted(self, txn: dict[str, Any]) -> None:
        """``posted``, coalesced with the other callers' (one round trip per flush)."""
        await self._posted.submit((txn["_id"], txn["applied_at"]))

    async def close(self) -> None:
        if self._lane is not None:
            await asyncio.gather(self._lane, return_exceptions=True)
        await self._posted.close()

    async def _run_lane(self) -> None:
        try:
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
                try:
                    await self._commit(batch)
                except Exception as exc:
                    # Whatever was journalled is finished by recovery; a retry with the same key
                    # gets its outcome. The callers hear of the failure now.
                    log.exception("a ledger batch of %d failed", len(batch))
                    _fail(batch, exc)
        finally:
            # No await between the empty-queue check and here: no apply() can slip in.
            self._lane = None
            _fail(list(self._queue), ConnectionAbortedError("the ledger batcher stopped"))
            self._queue.clear()

    async def _commit(self, batch: list[_Queued]) -> None:
        now = now_ms()
        currencies = {e["account_id"]: q.txn["currency"] for q in batch for e in q.txn["entries"]}
        await self.accounts.ensure_accounts(currencies, now)
        taken = await self.txns.add_txns([q.txn for q in batch])
        todo = []
        for index, queued in enumerate(batch):
            if index in taken:
                _settle(queued, None)
            else:
                todo.append(queued)
        todo = self._within_lease(todo)
        # 3. The debits that can fail, per account, all-or-nothing per group.
        debits: dict[str, list[tuple[str, int]]] = {}
        rest: dict[str, list[dict[str, Any]]] = {}
        for queued in todo:
            first, *others = apply_order(queued.txn["entries"])
            if _can_fail(first):
                debits.setdefault(first["account_id"], []).append(
                    (queued.txn["_id"], first["amount"])
                )
                rest[queued.txn["_id"]] = others
            else:
                rest[queued.txn["_id"]] = [first, *others]
        failed: dict[str, str] = {}  # txn id → reason
        applied_at = now_ms()
        if not await self.accounts.apply_grouped(debits, applied_at, covered=True):
            done = await self.accounts.applied_groups({a: m[0][0] for a, m in debits.items()})
            for account_id, moves in debits.items():
                if account_id not in done:
                    await self._one_by_one(account_id, moves, applied_at, failed)
        # 4. The rest of the transactions whose debit moved (these cannot fail).
        moved = [q for q in todo if q.txn["_id"] not in failed]
        credits: dict[str, list[tuple[str, int]]] = {}
        for queued in moved:
            for entry in rest[queued.txn["_id"]]:
                credits.setdefault(entry["account_id"], []).append(
                    (queued.txn["_id"], entry["amount"])
                )
        if not await self.accounts.apply_grouped(credits, applied_at, covered=False):
            # A group already applied (cannot happen to a new transaction; be exact anyway):
            # one by one, each idempotent through its marker.
            for account_id, moves in credits.items():
                for txn_id, amount in moves:
                    await self.accounts.apply_entry(account_id, txn_id, amount, applied_at)
        # 5. Failures stored before they are answered; entries before success is.
        if failed:
            await self.txns.set_failed_many(list(failed.items()), now_ms())
            for queued in todo:
                reason = failed.get(queued.txn["_id"])
                if reason is not None:
                    _settle(queued, self._failure(reason))
        moved = self._within_lease(moved)
        for queued in moved:
            queued.txn["applied_at"] = applied_at
        if moved:
            await self.entries.add_entries([d for q in moved for d in self._entry_docs(q.txn)])
        users = {e["account_id"] for q in moved for e in q.txn["entries"]}
        users = [a for a in users if kind_of(a) == "user"]
        balances = await self.accounts.get_accounts(users)
        for queued in moved:
            # Read right after this batch moved them: the hooks tell people these balances
            # (not stored with the transaction: ``posted`` sets named fields only).
            queued.txn["balances_after"] = {
                e["account_id"]: balances[e["account_id"]]
                for e in queued.txn["entries"]
                if e["account_id"] in balances
            }
            _settle(queued, queued.txn)

    async def _one_by_one(
        self,
        account_id: str,
        moves: list[tuple[str, int]],
        now: int,
        failed: dict[str, str],
    ) -> None:
        """The group was short: apply its debits in queue order; those that do not fit fail."""
        for txn_id, amount in moves:
            if not await self.accounts.apply_entry(account_id, txn_id, amount, now):
                balance = await self.accounts.get_balance(account_id)
                failed[txn_id] = "negative_balance" if balance < 0 else "insufficient_funds"

    def _within_lease(self, batch: list[_Queued]) -> list[_Queued]:
        """Drop (and fail) those whose lease ran out: recovery owns them now."""
        now = now_ms()
        kept = []
        for queued in batch:
            if now > queued.deadline:
                _settle(queued, self._lease_lost(queued.txn["_id"]))
            else:
                kept.append(queued)
        return kept

    async def _flush_posted(self, items: list[tuple[str, int]]) -> None:
        by_applied: dict[int, list[str]] = {}
        for txn_id, applied_at in items:
            by_applied.setdefault(applied_at, []).append(txn_id)
        now = now_ms()
        for applied_at, txn_ids in by_applied.items():
            await self.txns.set_posted_many(txn_ids, applied_at, now)


class Coalescer:
    """Calls ``flush(items)`` with everything submitted while the previous flush ran; each
    ``submit`` returns once its item was flushed (or raises what the flush raised)."""

    def __init__(self, flush: Callable[[list[Any]], Awaitable[None]]) -> None:
        self._flush = flush
        self._items: list[tuple[Any, asyncio.Future[None]]] = []
        self._lane: asyncio.Task[None] | None = None

    async def submit(self, item: Any) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._items.append((item, future))
        if self._lane is None:
            self._lane = asyncio.create_task(self._run())
        await future

    async def close(self) -> None:
        if self._lane is not None:
            await asyncio.gather(self._lane, return_exceptions=True)

    async def _run(self) -> None:
        try:
            while self._items:
                taken, self._items = self._items, []
                try:
                    await self._flush([item for item, _ in taken])
                except Exception as exc:
                    for _, future in taken:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for _, future in taken:
                    if not future.done():
                        future.set_result(None)
        finally:
            self._lane = None


def _can_fail(entry: dict[str, Any]) -> bool:
    return entry["amount"] < 0 and kind_of(entry["account_id"]) != "external"


def apply_order(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The debit that can fail first, then the other debits, then the credits."""

    def rank(entry: dict[str, Any]) -> int:
        if entry["amount"] < 0:
            return 1 if kind_of(entry["account_id"]) == "external" else 0
        return 2

    return sorted(entries, key=rank)


def _settle(queued: _Queued, outcome: Applied | BaseException) -> None:
    if queued.future.done():
        return
    if isinstance(outcome, BaseException):
        queued.future.set_exception(outcome)
    else:
        queued.future.set_result(outcome)


def _fail(batch: list[_Queued], exc: BaseException) -> None:
    for queued in batch:
        _settle(queued, exc)
