"""The ledger's follow-ups: what happens once a kind of movement is posted (a transfer's card, a
red packet's state, a paid order, new balances on people's devices).

Kept apart from ``wallet.context`` because the hooks are actions and actions import the context:
registering them there would be an import circle. Each hook runs when its money has moved — and
again when a node finishes a transaction another node began, so every hook is idempotent.
"""

from __future__ import annotations

from wallet.actions import (
    account_data,
    common,
    holds,
    payments,
    red_packets,
    topups,
    transfers,
)
from wallet.context import Wallet


def register_hooks(wallet: Wallet) -> None:
    async def after_posted(txn: dict) -> None:
        await common.notify_balances(wallet, txn)

    wallet.ledger.after_posted = after_posted
    transfers.register_hooks(wallet)
    red_packets.register_hooks(wallet)
    payments.register_hooks(wallet)
    holds.register_hooks(wallet)
    topups.register_hooks(wallet)
    # Leaving with your data: the statement in an export, no deletion while money is left.
    account_data.register(wallet)
