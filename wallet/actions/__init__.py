"""Wallet actions: ``check_*`` validates and authorizes, ``do_*`` moves money then tells people."""
