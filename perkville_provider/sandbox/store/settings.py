"""The switchable sandbox settings (``GET|PUT /_sandbox/settings``): their names, allowed values and
defaults. A new mode belongs here: a name in ``DEFAULT_SETTINGS``, its check in ``set_settings``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from perkville_provider.sandbox.errors import ErrorCollector
from perkville_provider.sandbox.modes import (
    MODE_DEFAULTS,
    check_datetime_form,
    check_mode_settings,
    check_relation,
)
from perkville_provider.sandbox.store.base import StoreBase
from perkville_provider.sandbox.values import db_dt, parse_dt, parse_ref

DEFAULT_SETTINGS: dict[str, Any] = {"duplicate_mode": "error", **MODE_DEFAULTS}
#: 400 naming the field (default); 200 with the existing transaction; 201 with it (idempotent create).
DUPLICATE_MODES = ("error", "return_existing", "created_existing", "tastypie_form")


class SettingsMixin(StoreBase):
    """Read and change the settings; ``duplicate_mode`` is stored, the join rule lives on the business."""

    _settings_cache: dict[str, Any] | None = None

    def get_settings(self) -> dict[str, Any]:
        """The settings, cached: the modes middleware reads them on every request."""
        if self._settings_cache is None:
            self._settings_cache = self._read_settings()
        return self._settings_cache

    def _read_settings(self) -> dict[str, Any]:
        settings = dict(DEFAULT_SETTINGS)
        for row in self.db.execute("SELECT key, value FROM settings"):
            settings[row["key"]] = json.loads(row["value"])
        business = self._one("SELECT join_requires_active_membership FROM businesses ORDER BY id LIMIT 1")
        if business is not None:
            settings["join_requires_active_membership"] = bool(business[0])
        return settings

    def set_settings(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """``duplicate_mode``, the modes of ``modes.py`` and ``join_requires_active_membership``
        (applied to every business)."""
        errors = ErrorCollector()
        check_mode_settings(changes, errors)
        for key, value in changes.items():
            if key == "duplicate_mode" and value not in DUPLICATE_MODES:
                errors.add(key, "invalid", f"duplicate_mode must be one of {', '.join(DUPLICATE_MODES)}")
            elif key == "join_requires_active_membership" and not isinstance(value, bool):
                errors.add(key, "invalid", "join_requires_active_membership must be true or false")
            elif key not in DEFAULT_SETTINGS and key != "join_requires_active_membership":
                errors.add(key, "unknown_field", f"{key} is not a sandbox setting")
        errors.raise_if_any()
        self._settings_cache = None
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
        return self.get_settings()[key]

    def _relation(self, value: Any, field: str, resource: str) -> int:
        """A relation in a request body, spelled as the ``relations`` mode accepts."""
        check_relation(value, field, resource, self._setting("relations"))
        return parse_ref(value, field, resource)

    def _body_business(self, body: Mapping[str, Any]) -> Any:
        """The ``business`` of a request body, checked against the ``relations`` mode."""
        value = body.get("business")
        if value not in (None, ""):
            check_relation(value, "business", "businesses", self._setting("relations"))
        return value

    def _body_db_dt(self, value: Any, field: str, tz: str) -> str:
        """A request body's datetime as the database stores it."""
        return db_dt(self._body_dt(value, field, tz))

    def _body_dt(self, value: Any, field: str, tz: str) -> datetime:
        """A datetime in a request body, in the form the ``datetime_input`` mode accepts."""
        check_datetime_form(value, field, self._setting("datetime_input"))
        return parse_dt(value, field, tz)
