"""Transactions (``/v2/transactions/``): awarding points (validation, the duplicate check, the daily
limit, the write) and reading them back.
"""

from __future__ import annotations

import decimal
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pendulum

from perkville_provider.sandbox.errors import ErrorCollector, NotFound, ValidationFailed
from perkville_provider.sandbox.modes import known_fields
from perkville_provider.sandbox.store.auth import ADMIN_CUSTOMER_GRANT_POINTS, AWARD_ROLES, AuthMixin
from perkville_provider.sandbox.store.base import Page, TokenContext, WriteResult, inserted_id
from perkville_provider.sandbox.store.representations import RepresentationsMixin
from perkville_provider.sandbox.store.settings import SettingsMixin
from perkville_provider.sandbox.values import (
    db_dt,
    normalize_email,
    now_utc,
    parse_bool,
    parse_quantity,
    parse_ref,
    parse_trans_source_id,
)

TRANSACTION_FIELDS = frozenset(
    {
        "business",
        "user",
        "user_email",
        "external_member_id",
        "external_system_id",
        "perk",
        "quantity",
        "location",
        "transaction_dt",
        "trans_source_id",
        "limit_to_once_per_calendar_day",
    }
)


@dataclass(frozen=True)
class AwardRequest:
    """A checked award: what ``_record_award`` writes once the duplicate and daily checks pass."""

    trans_source_id: str
    perk: sqlite3.Row
    quantity: int | decimal.Decimal
    location_id: int | None
    when: datetime
    once_a_day: bool
    connection: sqlite3.Row


class TransactionsMixin(SettingsMixin, AuthMixin, RepresentationsMixin):
    """Award points exactly once per ``trans_source_id``; list and read transactions."""

    def award(self, ctx: TokenContext, body: Mapping[str, Any]) -> WriteResult:
        """POST /v2/transactions/: validate everything, then the duplicate check, then the daily limit."""
        business = self._business(self._body_business(body))
        self.require_staff(ctx, business["id"], ADMIN_CUSTOMER_GRANT_POINTS, AWARD_ROLES)
        award = self._award_request(body, business)
        existing = self._one(
            "SELECT * FROM transactions WHERE business_id = ? AND trans_source_id = ?",
            (business["id"], award.trans_source_id),
        )
        if existing is not None:
            mode = self._setting("duplicate_mode")
            if mode in ("return_existing", "created_existing"):
                return WriteResult(self.transaction_api(existing), created=mode == "created_existing")
            if mode == "tastypie_form":  # stock tastypie's unique-field refusal, no code
                message = "Transaction with this Trans source id already exists."
                raise ValidationFailed(
                    {"trans_source_id": [{"code": "", "message": message}]}, "transactions"
                )
            raise ValidationFailed.one(
                "trans_source_id",
                "pv_duplicate_trans_source_id",
                f"trans_source_id {award.trans_source_id!r} was already used at business {business['id']} "
                f"(transaction {existing['id']})",
            )
        if award.once_a_day:
            self._check_daily_limit(award, business)
        pk = self._record_award(business["id"], award)
        return WriteResult(
            self.transaction_api(self._row("SELECT * FROM transactions WHERE id = ?", (pk,))), True
        )

    def _award_request(self, body: Mapping[str, Any], business: sqlite3.Row) -> AwardRequest:
        """Every field of an award checked; all errors are reported together."""
        errors = ErrorCollector()
        body = known_fields(
            body, TRANSACTION_FIELDS, self._setting("unknown_fields"), errors, "a transaction"
        )
        trans_source_id = errors.collect(lambda: parse_trans_source_id(body.get("trans_source_id")))
        if body.get("perk") not in (None, ""):
            errors.collect(lambda: self._relation(body["perk"], "perk", "perks"))
        perk = errors.collect(lambda: self._earn_perk(body.get("perk"), business["id"]))
        quantity = errors.collect(
            lambda: parse_quantity(body.get("quantity", 1), self._setting("quantities"))
        )
        location = None
        if body.get("location") not in (None, ""):
            location = errors.collect(
                lambda: self._location(
                    self._relation(body["location"], "location", "locations"), business["id"]
                )
            )
        when = now_utc()
        if body.get("transaction_dt") not in (None, ""):
            when = errors.collect(
                lambda: self._body_dt(body["transaction_dt"], "transaction_dt", business["timezone"])
            )
        flag = "limit_to_once_per_calendar_day"
        once_a_day = errors.collect(lambda: parse_bool(body.get(flag, False), flag))
        connection = errors.collect(lambda: self._award_connection(body, business["id"]))
        errors.raise_if_any()
        return AwardRequest(
            trans_source_id,
            perk,
            quantity,
            None if location is None else location["id"],
            when,
            once_a_day,
            connection,
        )

    def _record_award(self, business_id: int, award: AwardRequest) -> int:
        """Insert the transaction and add its points to the connection, in one SQLite transaction."""
        stamp, now = db_dt(award.when), db_dt(now_utc())
        perk, connection = award.perk, award.connection
        points = int(
            (perk["points"] * decimal.Decimal(award.quantity)).to_integral_value(decimal.ROUND_HALF_UP)
        )
        with self._write() as db:
            pk = inserted_id(
                db.execute(
                    "INSERT INTO transactions (business_id, user_id, connection_id, perk_id, location_id, "
                    "title, classification, points, quantity, transaction_dt, transaction_status, "
                    "trans_source_id, created_dt) VALUES (?, ?, ?, ?, ?, ?, 'EARN', ?, ?, ?, 'ACTIVE', ?, ?)",
                    (
                        business_id,
                        connection["user_id"],
                        connection["id"],
                        perk["id"],
                        award.location_id,
                        perk["title"],
                        perk["points"],
                        award.quantity if isinstance(award.quantity, int) else float(award.quantity),
                        stamp,
                        award.trans_source_id,
                        now,
                    ),
                )
            )
            db.execute(
                "UPDATE connections SET point_balance = point_balance + ?, "
                "lifetime_earned_points = lifetime_earned_points + ?, "
                "last_transaction_dt = MAX(COALESCE(last_transaction_dt, ''), ?), last_mod_dt = ? "
                "WHERE id = ?",
                (points, points, stamp, now, connection["id"]),
            )
        return pk

    def _earn_perk(self, value: Any, business_id: int) -> sqlite3.Row:
        if value in (None, ""):
            raise ValidationFailed.one("perk", "required", "perk is required (a perk id or URI)")
        pk = parse_ref(value, "perk", "perks")
        row = self._one("SELECT * FROM perks WHERE id = ? AND business_id = ?", (pk, business_id))
        if row is None:
            raise ValidationFailed.one(
                "perk", "does_not_exist", f"perk: perk {pk} does not exist at business {business_id}"
            )
        if row["classification"] != "EARN":
            raise ValidationFailed.one(
                "perk",
                "pv_perk_not_earnable",
                f"perk {pk} is a {row['classification']} perk; only EARN perks award points",
            )
        return row

    def _award_connection(self, body: Mapping[str, Any], business_id: int) -> sqlite3.Row:
        """The connection named by exactly one of ``user``, ``user_email``, ``external_member_id``."""
        given = [f for f in ("user", "user_email", "external_member_id") if body.get(f) not in (None, "")]
        if len(given) != 1:
            raise ValidationFailed.one(
                "__all__",
                "pv_user_identifier_required",
                "give exactly one of user, user_email, or external_member_id (with external_system_id)"
                + (f"; got {', '.join(given)}" if given else ""),
            )
        field = given[0]
        value = body[field]
        if field == "user":
            user_id = self._relation(value, "user", "users")
            row = self._connection_for(business_id, user_id)
        elif field == "user_email":
            email = normalize_email(value)
            row = self._one(
                "SELECT c.* FROM connections c JOIN user_emails e ON e.user_id = c.user_id "
                "WHERE c.business_id = ? AND e.email = ?",
                (business_id, email),
            )
        else:
            system = body.get("external_system_id")
            if system in (None, ""):
                raise ValidationFailed.one(
                    "external_system_id", "required", "external_system_id is required with external_member_id"
                )
            row = self._one(
                "SELECT c.* FROM connections c JOIN external_members m ON m.user_id = c.user_id "
                "AND m.business_id = c.business_id WHERE c.business_id = ? AND m.external_system_id = ? "
                "AND m.external_member_id = ?",
                (business_id, str(system), str(value)),
            )
        if row is None:
            raise ValidationFailed.one(
                field,
                "pv_user_not_found",
                f"{field} {value!r}: no customer with a connection to business {business_id}",
            )
        return row

    def _check_daily_limit(self, award: AwardRequest, business: sqlite3.Row) -> None:
        """At most one award of the perk per user per calendar day, in the timezone of the award's
        location, else the customer's home location, else the business."""
        connection, perk = award.connection, award.perk
        location_id = award.location_id or connection["home_location_id"]
        tz = self._location_tz(location_id, business)
        local = pendulum.instance(award.when).in_timezone(tz)
        start = local.start_of("day")
        end = start.add(days=1)
        hit = self._one(
            "SELECT id FROM transactions WHERE connection_id = ? AND perk_id = ? "
            "AND transaction_status = 'ACTIVE' AND transaction_dt >= ? AND transaction_dt < ? LIMIT 1",
            (connection["id"], perk["id"], db_dt(start), db_dt(end)),
        )
        if hit is not None:
            raise ValidationFailed.one(
                "__all__",
                "pv_perk_daily_limit_reached",
                f"perk {perk['id']} was already awarded to user {connection['user_id']} on "
                f"{local.to_date_string()} ({tz}); limit_to_once_per_calendar_day allows one a day",
            )

    def list_transactions(
        self, ctx: TokenContext, filters: Mapping[str, str], limit: int, offset: int
    ) -> Page:
        business, where, params = self._customer_data_filter(ctx, filters)
        if "user" in filters:
            where.append("user_id = ?")
            params.append(
                ctx.user_id if filters["user"] == "me" else parse_ref(filters["user"], "user", "users")
            )
        if "trans_source_id" in filters:
            where.append("trans_source_id = ?")
            params.append(filters["trans_source_id"])
        self._datetime_range_filters(filters, business["timezone"], "transaction_dt", where, params)
        return self._page("transactions", where, params, limit, offset, self.transaction_api)

    def get_transaction(self, ctx: TokenContext, pk: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM transactions WHERE id = ?", (pk,))
        if row is None:
            raise NotFound(f"transaction {pk} does not exist")
        own = self.visible_user(ctx, row["business_id"])
        if own is not None and own != row["user_id"]:
            raise NotFound(f"transaction {pk} does not exist or is not visible to this token")
        return self.transaction_api(row)
