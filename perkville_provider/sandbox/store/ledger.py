"""The ledger (``/_sandbox/ledger``): every row tests prove exactly-once and no-loss from."""

from __future__ import annotations

from typing import Any

from perkville_provider.sandbox.store.representations import RepresentationsMixin


class LedgerMixin(RepresentationsMixin):
    """All rows of the written resources, in id order, in their API shapes."""

    def ledger(self) -> dict[str, list[dict[str, Any]]]:
        """Everything tests prove exactly-once from: all rows, in id order, in their API shapes."""
        return {
            "transactions": [
                self.transaction_api(r) for r in self.db.execute("SELECT * FROM transactions ORDER BY id")
            ],
            "external_members": [
                self.external_member_api(r)
                for r in self.db.execute("SELECT * FROM external_members ORDER BY id")
            ],
            "connections": [
                self.connection_api(r) for r in self.db.execute("SELECT * FROM connections ORDER BY id")
            ],
            "users": [self.user_api(r) for r in self.db.execute("SELECT * FROM users ORDER BY id")],
        }
