"""Write actions: ``check_*`` validates and authorizes, ``do_*`` writes then emits events."""
