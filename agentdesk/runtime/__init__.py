"""The agent runtime: a plain-Python core with no Django imports.

It runs one agent loop (retrieve → reason → act) against interfaces it defines itself
(a run store, a model client, a clock), so it can be unit-tested with in-memory fakes and
driven in production by the Django adapters in ``runs/adapters.py``.
"""
