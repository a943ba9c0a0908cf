"""Money: accounts, the double-entry ledger, transfers, red packets, payment orders, Stripe.

Not built yet (issue 5); the package exists so the layout and the import-direction rules hold.
"""
