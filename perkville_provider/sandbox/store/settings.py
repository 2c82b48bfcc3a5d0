"""The switchable sandbox settings (``GET|PUT /_sandbox/settings``): their names, allowed values and
defaults. A new mode belongs here: a name in ``DEFAULT_SETTINGS``, its check in ``set_settings``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from perkville_provider.sandbox.errors import ErrorCollector
from perkville_provider.sandbox.store.base import StoreBase

DEFAULT_SETTINGS: dict[str, Any] = {"duplicate_mode": "error"}
DUPLICATE_MODES = ("error", "return_existing")


class SettingsMixin(StoreBase):
    """Read and change the settings; ``duplicate_mode`` is stored, the join rule lives on the business."""

    def get_settings(self) -> dict[str, Any]:
        settings = dict(DEFAULT_SETTINGS)
        for row in self.db.execute("SELECT key, value FROM settings"):
            settings[row["key"]] = json.loads(row["value"])
        business = self._one("SELECT join_requires_active_membership FROM businesses ORDER BY id LIMIT 1")
        if business is not None:
            settings["join_requires_active_membership"] = bool(business[0])
        return settings

    def set_settings(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """``duplicate_mode`` and ``join_requires_active_membership`` (applied to every business)."""
        errors = ErrorCollector()
        for key, value in changes.items():
            if key == "duplicate_mode" and value not in DUPLICATE_MODES:
                errors.add(key, "invalid", f"duplicate_mode must be one of {', '.join(DUPLICATE_MODES)}")
            elif key == "join_requires_active_membership" and not isinstance(value, bool):
                errors.add(key, "invalid", "join_requires_active_membership must be true or false")
            elif key not in ("duplicate_mode", "join_requires_active_membership"):
                errors.add(key, "unknown_field", f"{key} is not a sandbox setting")
        errors.raise_if_any()
        with self._write() as db:
            for key, value in changes.items():
                if key == "join_requires_active_membership":
                    db.execute("UPDATE businesses SET join_requires_active_membership = ?", (int(value),))
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, json.dumps(value))
                    )
        return self.get_settings()

    def _setting(self, key: str) -> Any:
        row = self._one("SELECT value FROM settings WHERE key = ?", (key,))
        return DEFAULT_SETTINGS[key] if row is None else json.loads(row[0])
