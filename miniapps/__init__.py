"""Mini-programs: the host in ``miniapps/host/`` and the built-ins, one folder each.

Not built yet (issue 4).
"""
