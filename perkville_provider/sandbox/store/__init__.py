"""The sandbox's state and business rules: SQLite tables and the operations on them, no HTTP.

One ``Store`` class assembled from one mixin per resource family (as moto assembles its large
backends), so each concern has one module:

- ``base``: the SQLite connection, one-transaction writes, reset, shared lookups and paging.
- ``settings``: the switchable sandbox modes (``/_sandbox/settings``).
- ``auth``: the OAuth password grant, bearer tokens, scopes and staff roles.
- ``representations``: the JSON shape of every resource (answers and ledger alike).
- ``catalog`` (business, locations, perks), ``users``, ``connections`` (+ joining and agreements),
  ``members`` (external member records), ``transactions`` (awards): one resource family each.
- ``ledger``: the export tests prove exactly-once from.

Refusals are the typed errors of ``errors.py``; tables are in ``schema.py``; value parsing,
formatting and the pure field validators are in ``values.py``.
"""

from __future__ import annotations

from perkville_provider.sandbox.store.base import Page, Seeder, TokenContext, WriteResult
from perkville_provider.sandbox.store.catalog import CatalogMixin
from perkville_provider.sandbox.store.connections import ConnectionsMixin
from perkville_provider.sandbox.store.ledger import LedgerMixin
from perkville_provider.sandbox.store.members import MembersMixin
from perkville_provider.sandbox.store.settings import DEFAULT_SETTINGS, DUPLICATE_MODES, SettingsMixin
from perkville_provider.sandbox.store.transactions import TransactionsMixin
from perkville_provider.sandbox.store.users import UsersMixin

__all__ = ["DEFAULT_SETTINGS", "DUPLICATE_MODES", "Page", "Seeder", "Store", "TokenContext", "WriteResult"]


class Store(
    CatalogMixin, UsersMixin, ConnectionsMixin, MembersMixin, TransactionsMixin, LedgerMixin, SettingsMixin
):
    """The sandbox's database and rules. One instance per server process; not thread-safe by design."""
