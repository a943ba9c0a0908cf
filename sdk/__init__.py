"""The Aetherial mini-program SDK: protocol, runtime, client, simulator.

Not built yet (issue 4). It will import nothing of the server (see tests/test_layering.py).
"""
