"""One module per collection; ``INDEXES`` maps each collection to the indexes declared beside it."""

from wallet.store import (
    accounts,
    app_fees,
    ledger_entries,
    ledger_txns,
    payment_orders,
    red_packet_claims,
    red_packets,
    stripe_topups,
    transfers,
)

INDEXES = {
    accounts.COLLECTION: accounts.INDEXES,
    ledger_txns.COLLECTION: ledger_txns.INDEXES,
    ledger_entries.COLLECTION: ledger_entries.INDEXES,
    transfers.COLLECTION: transfers.INDEXES,
    payment_orders.COLLECTION: payment_orders.INDEXES,
    red_packets.COLLECTION: red_packets.INDEXES,
    red_packet_claims.COLLECTION: red_packet_claims.INDEXES,
    stripe_topups.COLLECTION: stripe_topups.INDEXES,
    app_fees.COLLECTION: app_fees.INDEXES,
}
