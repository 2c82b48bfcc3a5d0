"""Connections (a user at a business) and joining: the status patch with its join checks, and the
agreements a join needs (the agreements view and the batch acceptance).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from perkville_provider.sandbox.errors import ErrorCollector, NotFound, PermissionDenied, ValidationFailed
from perkville_provider.sandbox.store.auth import (
    ADMIN_CUSTOMER_INFO,
    ANY_STAFF_ROLE,
    USER_CUSTOMER_INFO,
    AuthMixin,
)
from perkville_provider.sandbox.store.base import Page, TokenContext
from perkville_provider.sandbox.store.representations import RepresentationsMixin, agreement_api
from perkville_provider.sandbox.store.settings import SettingsMixin
from perkville_provider.sandbox.values import api_dt, db_dt, now_utc, parse_bool, parse_ref

CONNECTION_STATUSES = ("IMPORTED", "PENDING", "ACTIVE", "INACTIVE")
WRITABLE_CONNECTION_STATUSES = ("ACTIVE", "INACTIVE")

MEMBERSHIP_NOT_ACTIVE_MESSAGE = "Your membership is not active. Please contact the business for help."
AGREEMENT_REQUIRED_MESSAGE = "Please review and accept the required terms to join at {perkville_url}"


class ConnectionsMixin(SettingsMixin, AuthMixin, RepresentationsMixin):
    """``/v2/connections/``, ``/v2/agreements-view/`` and the agreement acceptance."""

    def list_connections(
        self, ctx: TokenContext, filters: Mapping[str, str], limit: int, offset: int
    ) -> Page:
        business, where, params = self._customer_data_filter(ctx, filters)
        if "user_id" in filters:
            where.append("user_id = ?")
            params.append(parse_ref(filters["user_id"], "user_id", "users"))
        if "status" in filters:
            status = filters["status"].upper()
            if status not in CONNECTION_STATUSES:
                raise ValidationFailed.one(
                    "status", "invalid", f"status must be one of {', '.join(CONNECTION_STATUSES)}"
                )
            where.append("status = ?")
            params.append(status)
        self._datetime_range_filters(filters, business["timezone"], "last_mod_dt", where, params)
        return self._page("connections", where, params, limit, offset, self.connection_api)

    def _readable_connection(self, ctx: TokenContext, pk: int) -> sqlite3.Row:
        row = self._one("SELECT * FROM connections WHERE id = ?", (pk,))
        if row is None:
            raise NotFound(f"connection {pk} does not exist")
        own = self.visible_user(ctx, row["business_id"])
        if own is not None and own != row["user_id"]:
            raise PermissionDenied(
                "pv_staff_role_required",
                f"connection {pk} is another user's; reading it needs ADMIN_CUSTOMER_INFO and a staff role",
            )
        return row

    def get_connection(self, ctx: TokenContext, pk: int) -> dict[str, Any]:
        return self.connection_api(self._readable_connection(ctx, pk))

    def patch_connection(self, ctx: TokenContext, pk: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """Only ``status`` ACTIVE/INACTIVE is writable; joining (ACTIVE) runs the join checks."""
        row = self._readable_connection(ctx, pk)
        errors = ErrorCollector()
        for key in body:
            if key != "status":
                errors.add(key, "read_only", f"{key} cannot be changed; only status is writable")
        status = body.get("status")
        if status not in WRITABLE_CONNECTION_STATUSES:
            errors.add("status", "invalid", f"status must be ACTIVE or INACTIVE, got {status!r}")
        errors.raise_if_any()
        if status == "ACTIVE" and row["status"] != "ACTIVE":
            self._join_checks(row)
        with self._write() as db:
            db.execute(
                "UPDATE connections SET status = ?, last_mod_dt = ? WHERE id = ?",
                (status, db_dt(now_utc()), pk),
            )
        return self.connection_api(self._row("SELECT * FROM connections WHERE id = ?", (pk,)))

    def _join_checks(self, connection: sqlite3.Row) -> None:
        business = self._row("SELECT * FROM businesses WHERE id = ?", (connection["business_id"],))
        errors = ErrorCollector()
        if (
            business["join_requires_active_membership"]
            and connection["external_membership_status"] != "ACTIVE"
        ):
            errors.add("status", "pv_connection_membership_not_active", MEMBERSHIP_NOT_ACTIVE_MESSAGE)
        missing = self._row(
            "SELECT COUNT(*) FROM agreements a WHERE a.business_id = ? AND a.required = 1 AND a.active = 1 "
            "AND a.apply_to_join_flow = 1 AND NOT EXISTS (SELECT 1 FROM agreement_acceptances x "
            "WHERE x.agreement_id = a.id AND x.user_id = ?)",
            (business["id"], connection["user_id"]),
        )[0]
        if missing:
            errors.add(
                "__all__",
                "pv_agreement_required",
                AGREEMENT_REQUIRED_MESSAGE.format(perkville_url=business["perkville_url"]),
            )
        errors.raise_if_any()

    def _agreement_subject(self, ctx: TokenContext, business_id: int, user_value: Any) -> int:
        """The user whose agreements are read or accepted; oneself, or (for staff) anyone."""
        user_id = ctx.user_id if user_value in (None, "") else parse_ref(user_value, "user_id", "users")
        if user_id == ctx.user_id and USER_CUSTOMER_INFO in ctx.scopes:
            return user_id
        self.require_staff(ctx, business_id, ADMIN_CUSTOMER_INFO, ANY_STAFF_ROLE)
        if self._one("SELECT 1 FROM users WHERE id = ?", (user_id,)) is None:
            raise ValidationFailed.one("user_id", "does_not_exist", f"user_id: user {user_id} does not exist")
        return user_id

    def agreements_view(self, ctx: TokenContext, filters: Mapping[str, str], limit: int, offset: int) -> Page:
        business = self._business(filters.get("business"))
        user_id = self._agreement_subject(ctx, business["id"], filters.get("user_id"))
        where, params = ["business_id = ?", "active = 1"], [business["id"]]
        if "apply_to_join_flow" in filters and parse_bool(
            filters["apply_to_join_flow"], "apply_to_join_flow"
        ):
            where.append("apply_to_join_flow = 1")
        accepted = {
            r[0]
            for r in self.db.execute(
                "SELECT agreement_id FROM agreement_acceptances WHERE user_id = ?", (user_id,)
            )
        }
        return self._page(
            "agreements", where, params, limit, offset, lambda row: agreement_api(row, row["id"] in accepted)
        )

    def accept_agreements(self, ctx: TokenContext, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Record acceptances (idempotent: a second acceptance keeps the first date)."""
        business = self._business(self._body_business(body))
        if body.get("user_id") in (None, ""):
            raise ValidationFailed.one("user_id", "required", "user_id is required")
        user_id = self._agreement_subject(ctx, business["id"], body.get("user_id"))
        ids = body.get("agreement_ids")
        if not isinstance(ids, list) or not ids:
            raise ValidationFailed.one(
                "agreement_ids", "required", "agreement_ids must be a non-empty list of ids"
            )
        pks = [parse_ref(v, "agreement_ids", "agreements") for v in ids]
        rows = {
            r["id"]: r
            for r in self.db.execute(
                f"SELECT * FROM agreements WHERE business_id = ? AND id IN ({','.join('?' * len(pks))})",  # noqa: S608
                [business["id"], *pks],
            )
        }
        unknown = [pk for pk in pks if pk not in rows]
        if unknown:
            raise ValidationFailed.one(
                "agreement_ids",
                "does_not_exist",
                f"agreement_ids: {unknown} are not agreements of business {business['id']}",
            )
        stamp = db_dt(now_utc())
        with self._write() as db:
            for pk in pks:
                db.execute(
                    "INSERT OR IGNORE INTO agreement_acceptances "
                    "(agreement_id, user_id, version, accepted_dt) VALUES (?, ?, ?, ?)",
                    (pk, user_id, rows[pk]["version"], stamp),
                )
        accepted = self.db.execute(
            f"SELECT agreement_id, accepted_dt FROM agreement_acceptances WHERE user_id = ? "  # noqa: S608
            f"AND agreement_id IN ({','.join('?' * len(pks))}) ORDER BY agreement_id",
            [user_id, *pks],
        )
        return [{"agreement_id": r[0], "is_accepted": True, "accepted_dt": api_dt(r[1])} for r in accepted]
