"""A local Perkville v2 API server for the demo, the tests and the benchmarks (never imported by
the hook or the operators; they talk HTTP to it).

Modules, one concern each:

- ``schema``, ``values``, ``errors``: the SQLite tables, value parsing/formatting, typed refusals.
- ``store``: state and business rules, no HTTP (tokens, scopes and roles, awards, members, joins).
- ``seed``: the demo business every sandbox starts from.
- ``app``: the Starlette routes over the store (envelopes, pagination, error shapes).
- ``faults``: seeded latency, 5xx, 429, connection resets and answers lost after commit.
- ``admin``: ``/_sandbox/`` (health, faults, settings, stats, ledger, reset, token revoke).
- ``runtime``: assembles the app and serves it with uvicorn; ``cli``: ``perkville-sandbox``.
- ``launcher``: ``run_sandbox()``, a sandbox in a child process; ``pytest_plugin``: the fixtures.

The HTTP contract, including every answer the real API leaves undocumented, is ``README.md``.
"""
