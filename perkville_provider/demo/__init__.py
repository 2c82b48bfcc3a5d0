"""The demo: a gym's membership database and a runner for the example DAGs against the sandbox.

``python -m perkville_provider.demo`` runs it (``make demo``); ``python -m
perkville_provider.demo.data`` only writes the membership database.
"""
