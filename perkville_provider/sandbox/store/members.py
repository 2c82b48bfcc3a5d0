"""External member records (``/v2/external-members/``): the upsert that creates users and
connections, the patch, the lists; a record drives its connection's membership fields.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from functools import partial
from typing import Any

from perkville_provider.sandbox.errors import ErrorCollector, NotFound, ValidationFailed
from perkville_provider.sandbox.modes import known_fields
from perkville_provider.sandbox.store.auth import ADMIN_CUSTOMER_INFO, ADMIN_ROLES, AuthMixin
from perkville_provider.sandbox.store.base import Page, TokenContext, WriteResult, inserted_id
from perkville_provider.sandbox.store.representations import RepresentationsMixin
from perkville_provider.sandbox.store.settings import SettingsMixin
from perkville_provider.sandbox.values import (
    db_dt,
    normalize_email,
    now_utc,
    parse_member_key,
    parse_ref,
)

# Unprefixed spellings from the ABC Ignite page, accepted as aliases of the prefixed fields.
EXTERNAL_MEMBER_ALIASES = {
    "member_id": "external_member_id",
    "system_id": "external_system_id",
    "membership_type": "external_membership_type",
    "membership_status": "external_membership_status",
    "join_dt": "external_join_dt",
    "cancel_dt": "external_cancel_dt",
}
EXTERNAL_MEMBER_FIELDS = frozenset(
    {
        "business",
        "external_system_id",
        "external_member_id",
        "user_email",
        "first_name",
        "last_name",
        "external_membership_type",
        "external_membership_status",
        "external_join_dt",
        "external_cancel_dt",
        "home_location",
        "external_home_location_id",
    }
)


class MembersMixin(SettingsMixin, AuthMixin, RepresentationsMixin):
    """Create, update and read external member records."""

    def _external_member_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Fold the unprefixed aliases into the prefixed names (prefixed wins) and refuse unknown fields."""
        folded: dict[str, Any] = {}
        errors = ErrorCollector()
        known = known_fields(
            body,
            EXTERNAL_MEMBER_FIELDS | EXTERNAL_MEMBER_ALIASES.keys(),
            self._setting("unknown_fields"),
            errors,
            "an external member",
        )
        for key, value in known.items():
            name = EXTERNAL_MEMBER_ALIASES.get(key, key)
            if key == name or name not in known:
                folded[name] = value
        errors.raise_if_any()
        return folded

    def _home_location_id(self, data: Mapping[str, Any], business_id: int) -> int:
        """``home_location`` (id or URI) or ``external_home_location_id`` (the location's external id)."""
        if data.get("home_location") not in (None, ""):
            pk = self._relation(data["home_location"], "home_location", "locations")
            return self._location(pk, business_id, "home_location")["id"]
        external = str(data["external_home_location_id"])
        row = self._one(
            "SELECT id FROM locations WHERE business_id = ? AND external_location_id = ?",
            (business_id, external),
        )
        if row is None:
            raise ValidationFailed.one(
                "external_home_location_id",
                "does_not_exist",
                f"external_home_location_id: no location of business {business_id} has "
                f"external_location_id {external!r}",
            )
        return row[0]

    def _member_values(
        self, data: Mapping[str, Any], business: sqlite3.Row, errors: ErrorCollector
    ) -> dict[str, Any]:
        """The optional fields as column values (``user_email`` too); bad ones are added to ``errors``."""
        values: dict[str, Any] = {}
        for field in ("first_name", "last_name", "external_membership_type", "external_membership_status"):
            if field not in data:
                continue
            value = data[field]
            if value is None:
                values[field] = "" if field.endswith("_name") else None
            elif not isinstance(value, str):
                errors.add(field, "invalid", f"{field} must be a string, got {value!r}")
            else:
                values[field] = value.strip().upper() if field == "external_membership_status" else value
        for field in ("external_join_dt", "external_cancel_dt"):
            if field in data:
                values[field] = (
                    None
                    if data[field] in (None, "")
                    else errors.collect(partial(self._body_db_dt, data[field], field, business["timezone"]))
                )
        if data.get("user_email") not in (None, ""):
            values["user_email"] = errors.collect(lambda: normalize_email(data["user_email"]))
        if data.get("home_location") not in (None, "") or data.get("external_home_location_id") not in (
            None,
            "",
        ):
            values["home_location_id"] = errors.collect(lambda: self._home_location_id(data, business["id"]))
        return values

    def upsert_external_member(self, ctx: TokenContext, body: Mapping[str, Any]) -> WriteResult:
        """POST: create or update on (business, external_system_id, external_member_id)."""
        data = self._external_member_body(body)
        business = self._business(self._body_business(data))
        self.require_staff(ctx, business["id"], ADMIN_CUSTOMER_INFO, ADMIN_ROLES)
        errors = ErrorCollector()
        key = errors.collect(lambda: parse_member_key(data))
        values = self._member_values(data, business, errors)
        errors.raise_if_any()
        existing = self._one(
            "SELECT * FROM external_members WHERE business_id = ? AND external_system_id = ? "
            "AND external_member_id = ?",
            (business["id"], key["external_system_id"], key["external_member_id"]),
        )
        if existing is not None:
            record = self._update_member(existing, values)
            return WriteResult({**record, "created": False}, created=False)
        if "user_email" not in values:
            raise ValidationFailed.one("user_email", "required", "user_email is required to create a member")
        record = self._create_member(business["id"], key, values)
        return WriteResult({**record, "created": True}, created=True)

    def _create_member(
        self, business_id: int, key: Mapping[str, str], values: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Find or create the user (by email) and its connection, then the record; one transaction."""
        stamp = db_dt(now_utc())
        with self._write() as db:
            user = self._user_by_email(values["user_email"])
            if user is None:
                user_id = inserted_id(db.execute("INSERT INTO users (last_mod_dt) VALUES (?)", (stamp,)))
                db.execute(
                    "INSERT INTO user_emails (email, user_id, is_primary) VALUES (?, ?, 1)",
                    (values["user_email"], user_id),
                )
            else:
                user_id = user["id"]
            connection = self._connection_for(business_id, user_id)
            if connection is None:
                connection_id = inserted_id(
                    db.execute(
                        "INSERT INTO connections (business_id, user_id, status, last_mod_dt) "
                        "VALUES (?, ?, 'IMPORTED', ?)",
                        (business_id, user_id, stamp),
                    )
                )
            else:
                connection_id = connection["id"]
            member_id = inserted_id(
                db.execute(
                    "INSERT INTO external_members (business_id, user_id, connection_id, external_system_id, "
                    "external_member_id, created_dt, last_mod_dt) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (business_id, user_id, connection_id, *key.values(), stamp, stamp),
                )
            )
            self._apply_member_values(db, member_id, user_id, connection_id, values, stamp)
        return self.external_member_api(
            self._row("SELECT * FROM external_members WHERE id = ?", (member_id,))
        )

    def _update_member(self, record: sqlite3.Row, values: Mapping[str, Any]) -> dict[str, Any]:
        stamp = db_dt(now_utc())
        with self._write() as db:
            self._apply_member_values(
                db, record["id"], record["user_id"], record["connection_id"], values, stamp
            )
        return self.external_member_api(
            self._row("SELECT * FROM external_members WHERE id = ?", (record["id"],))
        )

    def _apply_member_values(
        self,
        db: sqlite3.Connection,
        member_id: int,
        user_id: int,
        connection_id: int,
        values: Mapping[str, Any],
        stamp: str,
    ) -> None:
        """Write the record's fields, its user's email and names, and the membership fields of the
        connection the record drives (inside the caller's transaction)."""
        if "user_email" in values:
            self._change_primary_email(db, user_id, values["user_email"], stamp)
        names = {k: values[k] for k in ("first_name", "last_name") if k in values}
        record = {k: v for k, v in values.items() if k != "user_email"}
        mirrored = {k: v for k, v in record.items() if k.startswith("external_") or k == "home_location_id"}
        for table, pk, columns in (
            ("users", user_id, names),
            ("external_members", member_id, record),
            ("connections", connection_id, mirrored),
        ):
            sets = "".join(f"{column} = ?, " for column in columns)
            db.execute(
                f"UPDATE {table} SET {sets}last_mod_dt = ? WHERE id = ?",  # noqa: S608 - fixed names
                [*columns.values(), stamp, pk],
            )

    def _change_primary_email(self, db: sqlite3.Connection, user_id: int, email: str, stamp: str) -> None:
        owner = self._one("SELECT user_id FROM user_emails WHERE email = ?", (email,))
        if owner is not None and owner[0] != user_id:
            raise ValidationFailed.one(
                "user_email", "pv_email_in_use", f"user_email {email} already belongs to another user"
            )
        if owner is None:
            db.execute("DELETE FROM user_emails WHERE user_id = ? AND is_primary = 1", (user_id,))
            db.execute(
                "INSERT INTO user_emails (email, user_id, is_primary) VALUES (?, ?, 1)", (email, user_id)
            )
        else:
            db.execute("UPDATE user_emails SET is_primary = (email = ?) WHERE user_id = ?", (email, user_id))

    def patch_external_member(self, ctx: TokenContext, pk: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH: update a record's fields; its identity (business, system, member id) is read-only."""
        record = self._one("SELECT * FROM external_members WHERE id = ?", (pk,))
        if record is None:
            raise NotFound(f"external member record {pk} does not exist")
        business = self._row("SELECT * FROM businesses WHERE id = ?", (record["business_id"],))
        self.require_staff(ctx, business["id"], ADMIN_CUSTOMER_INFO, ADMIN_ROLES)
        data = self._external_member_body(body)
        errors = ErrorCollector()
        if "business" in data and errors.collect(
            lambda: parse_ref(data["business"], "business", "businesses")
        ) not in (None, record["business_id"]):
            errors.add("business", "read_only", "business identifies the record and cannot be changed")
        for field in ("external_system_id", "external_member_id"):
            if field in data and str(data[field]).strip() != record[field]:
                errors.add(field, "read_only", f"{field} identifies the record and cannot be changed")
        values = self._member_values(data, business, errors)
        errors.raise_if_any()
        return self._update_member(record, values)

    def list_external_members(
        self, ctx: TokenContext, filters: Mapping[str, str], limit: int, offset: int
    ) -> Page:
        business = self._business(filters.get("business"))
        self.require_staff(ctx, business["id"], ADMIN_CUSTOMER_INFO, ADMIN_ROLES)
        where, params = ["business_id = ?"], [business["id"]]
        for field in ("external_system_id", "external_member_id"):
            if field in filters:
                where.append(f"{field} = ?")
                params.append(filters[field])
        return self._page("external_members", where, params, limit, offset, self.external_member_api)

    def get_external_member(self, ctx: TokenContext, pk: int) -> dict[str, Any]:
        record = self._one("SELECT * FROM external_members WHERE id = ?", (pk,))
        if record is None:
            raise NotFound(f"external member record {pk} does not exist")
        self.require_staff(ctx, record["business_id"], ADMIN_CUSTOMER_INFO, ADMIN_ROLES)
        return self.external_member_api(record)
