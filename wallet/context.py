"""What wallet actions need, built once per app and passed explicitly (no globals).

The wallet posts its cards and checks membership through the messaging context it is given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from messaging.context import Messaging
from storage.config import Config
from wallet.ledger import Ledger
from wallet.store.accounts import Accounts
from wallet.store.ledger_entries import LedgerEntries
from wallet.store.ledger_txns import LedgerTxns
from wallet.store.payment_orders import PaymentOrders
from wallet.store.red_packet_claims import RedPacketClaims
from wallet.store.red_packets import RedPackets
from wallet.store.stripe_topups import StripeTopups
from wallet.store.transfers import Transfers


@dataclass
class Wallet:
    config: Config
    messaging: Messaging
    accounts: Accounts
    txns: LedgerTxns
    entries: LedgerEntries
    ledger: Ledger
    transfers: Transfers
    red_packets: RedPackets
    claims: RedPacketClaims
    payments: PaymentOrders
    topups: StripeTopups
    # Set by the composition root when mini-programs are hosted: ``notify_app(order, event_name,
    # extra)`` tells the app that asked for a payment what became of it (a signed event).
    notify_app: Callable[[dict, str, dict[str, Any]], Awaitable[None]] | None = None

    @classmethod
    def build(cls, config: Config, messaging: Messaging) -> Wallet:
        db = messaging.db
        accounts, txns, entries = Accounts(db), LedgerTxns(db), LedgerEntries(db)
        wallet = cls(
            config=config,
            messaging=messaging,
            accounts=accounts,
            txns=txns,
            entries=entries,
            ledger=Ledger(accounts, txns, entries),
            transfers=Transfers(db),
            red_packets=RedPackets(db),
            claims=RedPacketClaims(db),
            payments=PaymentOrders(db),
            topups=StripeTopups(db),
        )
        # Each kind's follow-up (card, state) runs when its money has moved — and again when a
        # node finishes a transaction another node began, so every hook is idempotent.
        from wallet.actions import common, payments, red_packets, topups, transfers

        async def after_posted(txn: dict) -> None:
            await common.notify_balances(wallet, txn)

        wallet.ledger.after_posted = after_posted
        transfers.register_hooks(wallet)
        red_packets.register_hooks(wallet)
        payments.register_hooks(wallet)
        topups.register_hooks(wallet)
        return wallet

    @property
    def max_amount(self) -> int:
        return self.config.wallet_max_amount
