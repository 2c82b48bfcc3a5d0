"""A local Perkville v2 API server for the demo, the tests and the benchmarks (never imported by
the hook or the operators; they talk HTTP to it).

Where each concern lives:

- ``store/``: state and business rules, no HTTP; one ``Store`` built from one mixin per resource
  family: ``base`` (SQLite, one-transaction writes, reset, lookups, paging), ``settings`` (the
  switchable modes), ``auth`` (OAuth grant, tokens, scopes, staff roles), ``representations``
  (JSON shapes), ``catalog`` (business, locations, perks), ``users``, ``connections`` (+ joining,
  agreements), ``members`` (external member records), ``transactions`` (awards), ``ledger``.
- ``schema``, ``values``, ``errors``: the SQLite tables; value parsing/formatting and the pure
  field validators; typed refusals (and ``ErrorCollector``).
- ``seed``: the demo business every sandbox starts from.
- ``app``: the Starlette routes over the store (envelopes, pagination, one ``StoreError`` handler).
- ``paths``: the token path, the agreement-acceptance path, the ``/_sandbox/`` prefix.
- ``faults``: seeded latency, 5xx, 429, connection resets and answers lost after commit
  (``FaultConfig`` is the one list of fault settings; the CLI flags derive from it).
- ``admin``: ``/_sandbox/`` (health, faults, settings, stats, ledger, reset, token revoke).
- ``runtime``: the server process (assembles the app, serves it with uvicorn); ``cli``:
  ``perkville-sandbox``; ``connection``: the Airflow connection pointing at a sandbox.
- ``launcher``: ``run_sandbox()``, a sandbox in a child process; ``pytest_plugin``: the opt-in
  fixtures.

The HTTP contract, including every answer the real API leaves undocumented, is ``README.md``.
"""

import importlib.util

#: The extra that installs the sandbox's web stack (a production install of the provider lacks it).
SANDBOX_EXTRA_HINT = "pip install 'airflow-provider-perkville[sandbox]'"


def missing_web_stack() -> list[str]:
    """The sandbox's web packages that are not installed (none with the ``[sandbox]`` extra)."""
    return [name for name in ("starlette", "uvicorn") if importlib.util.find_spec(name) is None]


if _missing := missing_web_stack():
    raise ImportError(
        f"The Perkville sandbox needs the [sandbox] extra ({', '.join(_missing)} not installed): "
        f"{SANDBOX_EXTRA_HINT}",
        name=_missing[0],
    )
