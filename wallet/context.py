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
from wallet.store.app_fees import AppFees
from wallet.store.ledger_entries import LedgerEntries
from wallet.store.ledger_txns import LedgerTxns
from wallet.store.payment_orders import PaymentOrders
from wallet.store.red_packet_claims import RedPacketClaims
from wallet.store.red_packets import RedPackets
from wallet.store.stripe_topups import StripeTopups
from wallet.store.transfers import Transfers

# ``notify_app(order, event_name, extra)`` tells the mini-program that asked for a payment what
# became of it (a signed event). Given by the process that hosts the apps (a gateway); None in
# one that does not (a Celery worker), which leaves the event in the order's outbox instead.
NotifyApp = Callable[[dict[str, Any], str, dict[str, Any]], Awaitable[None]]


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
    fees: AppFees
    notify_app: NotifyApp | None = None

    @classmethod
    def build(
        cls, config: Config, messaging: Messaging, *, notify_app: NotifyApp | None = None
    ) -> Wallet:
        """The stores and the ledger. The ledger's follow-ups per kind (cards, states) are
        registered by ``wallet.hooks.register_hooks``, which the composition root calls."""
        db = messaging.db
        accounts, txns, entries = Accounts(db), LedgerTxns(db), LedgerEntries(db)
        return cls(
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
            fees=AppFees(db),
            notify_app=notify_app,
        )

    def __post_init__(self) -> None:
        # Every wallet counts its ledger's transactions in the process's metrics.
        self.ledger.metrics = self.messaging.metrics

    @property
    def max_amount(self) -> int:
        return self.config.wallet_max_amount
