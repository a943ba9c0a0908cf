"""Due work, found in MongoDB and done by whichever node (or Celery worker) gets there first.

Every job is a row that is already durable — a transfer past its expiry, a red packet past its
own, a payment hold past its expiry, a transaction or a grab whose worker died — so a restart
loses nothing: the next scan finds it. Each step is idempotent and claims its row with a
conditional update, so any number of nodes may scan at once.
"""

from __future__ import annotations

import logging

from wallet.actions import holds, payments, red_packets, transfers
from wallet.context import Wallet

log = logging.getLogger(__name__)


async def run_due_jobs(wallet: Wallet, *, prune: bool = False) -> dict[str, int]:
    done = {
        "recovered_transactions": await wallet.ledger.recover(),
        "recovered_claims": await red_packets.do_recover_claims(wallet),
        "returned_transfers": await transfers.do_expire_due(wallet),
        "refunded_red_packets": await red_packets.do_expire_due(wallet),
        "expired_payments": await payments.do_expire_due(wallet),
        "settled_holds": await holds.do_settle_due(wallet),
    }
    if prune:
        done["pruned_markers"] = await wallet.ledger.prune()
    if any(done.values()):
        log.info("wallet jobs: %s", {k: v for k, v in done.items() if v})
    return done
