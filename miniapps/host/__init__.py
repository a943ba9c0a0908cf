"""The mini-program host: registry, manifests, sandbox supervisor, capability checks, consent.

Not built yet (issue 4).
"""
