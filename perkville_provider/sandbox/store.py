"""The sandbox's state and business rules: SQLite tables and the operations on them, no HTTP.

Every write runs in one SQLite transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), so a refused
request leaves nothing half-written. Reads and writes are microseconds, so the HTTP layer calls the
store directly on its event loop thread. Refusals are the typed errors of ``errors.py``.

The tables are in ``schema.py``, value parsing and formatting in ``values.py``. Representations
(``*_api`` methods) live here: the ledger export and the HTTP answers show the same shapes, and
they depend on the data model, not on HTTP.
"""

from __future__ import annotations

import decimal
import json
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pendulum

from perkville_provider.sandbox.errors import (
    ErrorCollector,
    InvalidToken,
    NotFound,
    OAuthError,
    PermissionDenied,
    ValidationFailed,
)
from perkville_provider.sandbox.modes import (
    MODE_DEFAULTS,
    check_datetime_form,
    check_mode_settings,
    check_relation,
    known_fields,
    parse_quantity,
)
from perkville_provider.sandbox.schema import DATA_TABLES, SCHEMA
from perkville_provider.sandbox.values import (
    api_dt,
    check_password,
    db_dt,
    normalize_email,
    now_utc,
    parse_bool,
    parse_dt,
    parse_ref,
    uri,
)

DEFAULT_SETTINGS: dict[str, Any] = {"duplicate_mode": "error", **MODE_DEFAULTS}

ADMIN_CUSTOMER_INFO = "ADMIN_CUSTOMER_INFO"
USER_CUSTOMER_INFO = "USER_CUSTOMER_INFO"
ADMIN_CUSTOMER_GRANT_POINTS = "ADMIN_CUSTOMER_GRANT_POINTS"
AWARD_ROLES = frozenset({"EMPLOYEE", "ADMIN"})
ADMIN_ROLES = frozenset({"ADMIN"})
ANY_STAFF_ROLE = frozenset({"FRONT_DESK", "EMPLOYEE", "ADMIN"})

CONNECTION_STATUSES = ("IMPORTED", "PENDING", "ACTIVE", "INACTIVE")
WRITABLE_CONNECTION_STATUSES = ("ACTIVE", "INACTIVE")
MAX_TRANS_SOURCE_ID = 255

MEMBERSHIP_NOT_ACTIVE_MESSAGE = "Your membership is not active. Please contact the business for help."
AGREEMENT_REQUIRED_MESSAGE = "Please review and accept the required terms to join at {perkville_url}"

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


# --- records --------------------------------------------------------------------------------------------


def membership_api(row: sqlite3.Row) -> dict[str, Any]:
    """The membership fields an external member record holds and mirrors onto its connection."""
    return {
        "external_membership_status": row["external_membership_status"],
        "external_membership_type": row["external_membership_type"],
        "external_join_dt": api_dt(row["external_join_dt"]),
        "external_cancel_dt": api_dt(row["external_cancel_dt"]),
    }


@dataclass(frozen=True)
class TokenContext:
    """Who a bearer token acts as: its user, limited by the scopes granted to it."""

    user_id: int
    client_id: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class Page:
    total: int
    objects: list[dict[str, Any]]


@dataclass(frozen=True)
class WriteResult:
    """A write's answer: the representation, and whether it created (201) or not (200)."""

    obj: dict[str, Any]
    created: bool


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


Seeder = Callable[[sqlite3.Connection], None]


class Store:
    """The sandbox's database and rules. One instance per server process; not thread-safe by design."""

    def __init__(self, path: str = ":memory:", seeder: Seeder | None = None) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        if path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        self._seeder = seeder
        self._tokens: dict[str, TokenContext] = {}
        self._roles: dict[tuple[int, int], str | None] = {}
        self._tz_cache: dict[tuple[str, int], str] = {}
        self._settings: dict[str, Any] | None = None
        if seeder is not None and self.db.execute("SELECT COUNT(*) FROM businesses").fetchone()[0] == 0:
            self.reset()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One SQLite transaction: all of it commits, or (on any error) none of it."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _one(self, sql: str, params: tuple | list = ()) -> sqlite3.Row | None:
        return self.db.execute(sql, params).fetchone()

    # --- lifecycle and settings -------------------------------------------------------------------

    def reset(self) -> None:
        """Drop every row and load the seed data again (tokens included: a reset is a fresh Perkville)."""
        with self._write() as db:
            for table in DATA_TABLES:
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            db.execute("DELETE FROM sqlite_sequence")
            if self._seeder is not None:
                self._seeder(db)
        self._tokens.clear()
        self._roles.clear()
        self._tz_cache.clear()
        self._settings = None

    def get_settings(self) -> dict[str, Any]:
        """The settings (cached: the modes middleware reads them on every request)."""
        if self._settings is None:
            self._settings = self._read_settings()
        return self._settings

    def _read_settings(self) -> dict[str, Any]:
        settings = dict(DEFAULT_SETTINGS)
        for row in self.db.execute("SELECT key, value FROM settings"):
            settings[row["key"]] = json.loads(row["value"])
        business = self._one("SELECT join_requires_active_membership FROM businesses ORDER BY id LIMIT 1")
        if business is not None:
            settings["join_requires_active_membership"] = bool(business[0])
        return settings

    def set_settings(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """The modes (``modes.py``) and ``join_requires_active_membership`` (applied to every business)."""
        errors = ErrorCollector()
        check_mode_settings(changes, errors)
        for key, value in changes.items():
            if key == "join_requires_active_membership" and not isinstance(value, bool):
                errors.add(key, "invalid", "join_requires_active_membership must be true or false")
            elif key not in DEFAULT_SETTINGS and key != "join_requires_active_membership":
                errors.add(key, "unknown_field", f"{key} is not a sandbox setting")
        errors.raise_if_any()
        self._settings = None
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

    def _body_dt(self, value: Any, field: str, tz: str) -> datetime:
        """A datetime in a request body, in the form the ``datetime_input`` mode accepts."""
        check_datetime_form(value, field, self._setting("datetime_input"))
        return parse_dt(value, field, tz)

    # --- auth ---------------------------------------------------------------------------------------

    def grant_token(
        self,
        *,
        client_id: str | None,
        client_secret: str | None,
        grant_type: str | None,
        username: str | None,
        password: str | None,
        scope: str | None,
    ) -> dict[str, str]:
        """The OAuth password grant: check the client, then the user, then the scopes; mint a token."""
        if not client_id or client_secret is None:
            raise OAuthError("invalid_client", "client authentication is missing", 401)
        client = self._one("SELECT client_secret, scopes FROM api_clients WHERE client_id = ?", (client_id,))
        if client is None or not secrets.compare_digest(client["client_secret"], client_secret):
            raise OAuthError("invalid_client", "unknown client or wrong client secret", 401)
        if grant_type != "password":
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        if not username or password is None:
            raise OAuthError("invalid_request", "username and password are required")
        user = self._one(
            "SELECT u.id, u.password_hash FROM users u JOIN user_emails e ON e.user_id = u.id "
            "WHERE e.email = ?",
            (username.strip().lower(),),
        )
        if user is None or not check_password(user["password_hash"], password):
            raise OAuthError("invalid_grant", "invalid username or password")
        granted = client["scopes"].split()
        if scope:
            asked = scope.split()
            missing = [s for s in asked if s not in granted]
            if missing:
                raise OAuthError("invalid_scope", f"scope not granted to this client: {' '.join(missing)}")
            granted = [s for s in granted if s in asked]
        token = secrets.token_urlsafe(32)
        scopes = " ".join(granted)
        with self._write() as db:
            db.execute(
                "INSERT INTO tokens (token, user_id, client_id, scopes, created_dt) VALUES (?, ?, ?, ?, ?)",
                (token, user["id"], client_id, scopes, db_dt(now_utc())),
            )
        return {"access_token": token, "token_type": "Bearer", "scope": scopes}

    def authenticate(self, token: str | None) -> TokenContext:
        if not token:
            raise InvalidToken("authentication credentials were not provided")
        ctx = self._tokens.get(token)
        if ctx is None:
            row = self._one("SELECT user_id, client_id, scopes FROM tokens WHERE token = ?", (token,))
            if row is None:
                raise InvalidToken("invalid or revoked token")
            ctx = TokenContext(row["user_id"], row["client_id"], frozenset(row["scopes"].split()))
            self._tokens[token] = ctx
        return ctx

    def revoke_token(self, token: str) -> bool:
        self._tokens.pop(token, None)
        with self._write() as db:
            return db.execute("DELETE FROM tokens WHERE token = ?", (token,)).rowcount > 0

    def staff_role(self, user_id: int, business_id: int) -> str | None:
        key = (user_id, business_id)
        if key not in self._roles:
            row = self._one(
                "SELECT role FROM staff_roles WHERE user_id = ? AND business_id = ?", (user_id, business_id)
            )
            self._roles[key] = None if row is None else row[0]
        return self._roles[key]

    def require_staff(self, ctx: TokenContext, business_id: int, scope: str, roles: frozenset[str]) -> None:
        """Refuse (403) unless the token has ``scope`` and its user one of ``roles`` at the business."""
        if scope not in ctx.scopes:
            raise PermissionDenied("pv_insufficient_scope", f"this token lacks the {scope} scope")
        if self.staff_role(ctx.user_id, business_id) not in roles:
            raise PermissionDenied(
                "pv_staff_role_required",
                f"user {ctx.user_id} needs a staff role ({' or '.join(sorted(roles))}) "
                f"at business {business_id}",
            )

    def visible_user(self, ctx: TokenContext, business_id: int) -> int | None:
        """Whose customer data the token may read at a business: everyone's (None) or only its own user's."""
        if ADMIN_CUSTOMER_INFO in ctx.scopes and self.staff_role(ctx.user_id, business_id) is not None:
            return None
        if USER_CUSTOMER_INFO in ctx.scopes:
            return ctx.user_id
        if ADMIN_CUSTOMER_INFO in ctx.scopes:
            raise PermissionDenied(
                "pv_staff_role_required", f"user {ctx.user_id} has no staff role at business {business_id}"
            )
        raise PermissionDenied(
            "pv_insufficient_scope", "this token lacks the ADMIN_CUSTOMER_INFO or USER_CUSTOMER_INFO scope"
        )

    # --- lookups ----------------------------------------------------------------------------------

    def _business(self, value: Any, field: str = "business") -> sqlite3.Row:
        if value is None or value == "":
            raise ValidationFailed.one(
                field, "pv_business_required", f"{field} is required (a business id or URI)"
            )
        pk = parse_ref(value, field, "businesses")
        row = self._one("SELECT * FROM businesses WHERE id = ?", (pk,))
        if row is None:
            raise ValidationFailed.one(field, "does_not_exist", f"{field}: business {pk} does not exist")
        return row

    def _location(self, value: Any, business_id: int, field: str = "location") -> sqlite3.Row:
        pk = parse_ref(value, field, "locations")
        row = self._one("SELECT * FROM locations WHERE id = ? AND business_id = ?", (pk, business_id))
        if row is None:
            raise ValidationFailed.one(
                field, "does_not_exist", f"{field}: location {pk} does not exist at business {business_id}"
            )
        return row

    def _location_tz(self, location_id: int | None, business: sqlite3.Row) -> str:
        if location_id is None:
            return business["timezone"]
        key = ("loc", location_id)
        if key not in self._tz_cache:
            row = self._one("SELECT timezone FROM locations WHERE id = ?", (location_id,))
            self._tz_cache[key] = business["timezone"] if row is None else row[0]
        return self._tz_cache[key]

    def _user_by_email(self, email: str) -> sqlite3.Row | None:
        return self._one(
            "SELECT u.* FROM users u JOIN user_emails e ON e.user_id = u.id WHERE e.email = ?", (email,)
        )

    def _connection_for(self, business_id: int, user_id: int) -> sqlite3.Row | None:
        return self._one(
            "SELECT * FROM connections WHERE business_id = ? AND user_id = ?", (business_id, user_id)
        )

    def _primary_email(self, user_id: int) -> str | None:
        row = self._one(
            "SELECT email FROM user_emails WHERE user_id = ? ORDER BY is_primary DESC, email LIMIT 1",
            (user_id,),
        )
        return None if row is None else row[0]

    # --- representations --------------------------------------------------------------------------

    def business_api(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "business_id": row["id"],
            "name": row["name"],
            "timezone": row["timezone"],
            "join_requires_active_membership": bool(row["join_requires_active_membership"]),
            "perkville_url": row["perkville_url"],
            "resource_uri": uri("businesses", row["id"]),
        }

    def location_api(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "location_id": row["id"],
            "business": uri("businesses", row["business_id"]),
            "name": row["name"],
            "timezone": row["timezone"],
            "external_location_id": row["external_location_id"],
            "resource_uri": uri("locations", row["id"]),
        }

    def perk_api(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "perk_id": row["id"],
            "business": uri("businesses", row["business_id"]),
            "title": row["title"],
            "description": row["description"],
            "classification": row["classification"],
            "points": row["points"],
            "status": row["status"],
            "resource_uri": uri("perks", row["id"]),
        }

    def user_api(self, row: sqlite3.Row) -> dict[str, Any]:
        emails = self.db.execute(
            "SELECT email, is_primary FROM user_emails WHERE user_id = ? ORDER BY is_primary DESC, email",
            (row["id"],),
        ).fetchall()
        connections = self.db.execute(
            "SELECT id FROM connections WHERE user_id = ? ORDER BY id", (row["id"],)
        ).fetchall()
        return {
            "user_id": row["id"],
            "first_name": row["first_name"],
            "last_name": row["last_name"],
            "emails": [{"email": e["email"], "primary": bool(e["is_primary"])} for e in emails],
            "phone_number": row["phone_number"],
            "birthday": row["birthday"],
            "connections": [uri("connections", c["id"]) for c in connections],
            "last_mod_dt": api_dt(row["last_mod_dt"]),
            "resource_uri": uri("users", row["id"]),
        }

    def connection_api(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "connection_id": row["id"],
            "business": uri("businesses", row["business_id"]),
            "user": uri("users", row["user_id"]),
            "user_email": self._primary_email(row["user_id"]),
            "status": row["status"],
            "point_balance": row["point_balance"],
            "lifetime_earned_points": row["lifetime_earned_points"],
            "home_location": uri("locations", row["home_location_id"]),
            "last_transaction_dt": api_dt(row["last_transaction_dt"]),
            "last_mod_dt": api_dt(row["last_mod_dt"]),
            **membership_api(row),
            "resource_uri": uri("connections", row["id"]),
        }

    def external_member_api(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "external_member_record_id": row["id"],
            "business": uri("businesses", row["business_id"]),
            "user": uri("users", row["user_id"]),
            "connection": uri("connections", row["connection_id"]),
            "user_email": self._primary_email(row["user_id"]),
            "external_system_id": row["external_system_id"],
            "external_member_id": row["external_member_id"],
            "first_name": row["first_name"],
            "last_name": row["last_name"],
            **membership_api(row),
            "home_location": uri("locations", row["home_location_id"]),
            "last_mod_dt": api_dt(row["last_mod_dt"]),
            "resource_uri": uri("external-members", row["id"]),
        }

    def transaction_api(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "transaction_id": row["id"],
            "business": uri("businesses", row["business_id"]),
            "user": uri("users", row["user_id"]),
            "connection": uri("connections", row["connection_id"]),
            "perk": uri("perks", row["perk_id"]),
            "location": uri("locations", row["location_id"]),
            "title": row["title"],
            "classification": row["classification"],
            "points": row["points"],
            "quantity": row["quantity"],
            "transaction_dt": api_dt(row["transaction_dt"]),
            "transaction_status": row["transaction_status"],
            "trans_source_id": row["trans_source_id"],
            "created_dt": api_dt(row["created_dt"]),
            "resource_uri": uri("transactions", row["id"]),
        }

    # --- lists ----------------------------------------------------------------------------------------

    def _page(
        self,
        table: str,
        where: list[str],
        params: list[Any],
        limit: int,
        offset: int,
        to_api: Callable[[sqlite3.Row], dict[str, Any]],
    ) -> Page:
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        total = self.db.execute(f"SELECT COUNT(*) FROM {table}{clause}", params).fetchone()[0]  # noqa: S608
        rows = self.db.execute(
            f"SELECT * FROM {table}{clause} ORDER BY id LIMIT ? OFFSET ?",  # noqa: S608
            [*params, limit, offset],
        ).fetchall()
        return Page(total, [to_api(r) for r in rows])

    def _last_mod_filters(
        self, filters: Mapping[str, str], tz: str, column: str, where: list[str], params: list[Any]
    ) -> None:
        for name, op in (("last_mod_dt__gte", ">="), ("last_mod_dt__lt", "<")):
            if name in filters:
                where.append(f"{column} {op} ?")
                params.append(db_dt(parse_dt(filters[name], name, tz)))

    def list_businesses(self, ctx: TokenContext, filters: Mapping[str, str], limit: int, offset: int) -> Page:
        return self._page("businesses", [], [], limit, offset, self.business_api)

    def get_business(self, ctx: TokenContext, pk: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM businesses WHERE id = ?", (pk,))
        if row is None:
            raise NotFound(f"business {pk} does not exist")
        return self.business_api(row)

    def list_locations(self, ctx: TokenContext, filters: Mapping[str, str], limit: int, offset: int) -> Page:
        business = self._business(filters.get("business"))
        return self._page(
            "locations", ["business_id = ?"], [business["id"]], limit, offset, self.location_api
        )

    def get_location(self, ctx: TokenContext, pk: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM locations WHERE id = ?", (pk,))
        if row is None:
            raise NotFound(f"location {pk} does not exist")
        return self.location_api(row)

    def list_perks(self, ctx: TokenContext, filters: Mapping[str, str], limit: int, offset: int) -> Page:
        business = self._business(filters.get("business"))
        where, params = ["business_id = ?"], [business["id"]]
        if "classification" in filters:
            where.append("classification = ?")
            params.append(filters["classification"].upper())
        return self._page("perks", where, params, limit, offset, self.perk_api)

    def get_perk(self, ctx: TokenContext, pk: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM perks WHERE id = ?", (pk,))
        if row is None:
            raise NotFound(f"perk {pk} does not exist")
        return self.perk_api(row)

    def me(self, ctx: TokenContext) -> dict[str, Any]:
        row = self._one("SELECT * FROM users WHERE id = ?", (ctx.user_id,))
        if row is None:
            raise InvalidToken("the token's user no longer exists")
        return self.user_api(row)

    def _visible_user_ids_clause(self, ctx: TokenContext) -> tuple[str, list[Any]]:
        """Staff with ADMIN_CUSTOMER_INFO see their customers and themselves; others only themselves."""
        businesses = [
            r[0]
            for r in self.db.execute("SELECT business_id FROM staff_roles WHERE user_id = ?", (ctx.user_id,))
        ]
        if ADMIN_CUSTOMER_INFO in ctx.scopes and businesses:
            marks = ",".join("?" * len(businesses))
            return (
                f"(id = ? OR id IN (SELECT user_id FROM connections WHERE business_id IN ({marks})))",  # noqa: S608
                [ctx.user_id, *businesses],
            )
        return "id = ?", [ctx.user_id]

    def list_users(self, ctx: TokenContext, filters: Mapping[str, str], limit: int, offset: int) -> Page:
        clause, params = self._visible_user_ids_clause(ctx)
        where = [clause]
        if "emails__email" in filters:
            where.append("id IN (SELECT user_id FROM user_emails WHERE email = ?)")
            params.append(filters["emails__email"].strip().lower())
        self._last_mod_filters(filters, "UTC", "last_mod_dt", where, params)
        return self._page("users", where, params, limit, offset, self.user_api)

    def get_user(self, ctx: TokenContext, pk: int) -> dict[str, Any]:
        clause, params = self._visible_user_ids_clause(ctx)
        row = self._one(f"SELECT * FROM users WHERE id = ? AND {clause}", [pk, *params])  # noqa: S608
        if row is None:
            raise NotFound(f"user {pk} does not exist or is not visible to this token")
        return self.user_api(row)

    def list_connections(
        self, ctx: TokenContext, filters: Mapping[str, str], limit: int, offset: int
    ) -> Page:
        business = self._business(filters.get("business"))
        where, params = ["business_id = ?"], [business["id"]]
        own = self.visible_user(ctx, business["id"])
        if own is not None:
            where.append("user_id = ?")
            params.append(own)
        if "user_id" in filters:
            where.append("user_id = ?")
            params.append(parse_ref(filters["user_id"], "user_id", "users"))
        if "user__emails__email" in filters:
            where.append("user_id IN (SELECT user_id FROM user_emails WHERE email = ?)")
            params.append(filters["user__emails__email"].strip().lower())
        if "status" in filters:
            status = filters["status"].upper()
            if status not in CONNECTION_STATUSES:
                raise ValidationFailed.one(
                    "status", "invalid", f"status must be one of {', '.join(CONNECTION_STATUSES)}"
                )
            where.append("status = ?")
            params.append(status)
        self._last_mod_filters(filters, business["timezone"], "last_mod_dt", where, params)
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

    # --- connections: join --------------------------------------------------------------------------

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
        return self.connection_api(self._one("SELECT * FROM connections WHERE id = ?", (pk,)))

    def _join_checks(self, connection: sqlite3.Row) -> None:
        business = self._one("SELECT * FROM businesses WHERE id = ?", (connection["business_id"],))
        errors = ErrorCollector()
        if (
            business["join_requires_active_membership"]
            and connection["external_membership_status"] != "ACTIVE"
        ):
            errors.add("status", "pv_connection_membership_not_active", MEMBERSHIP_NOT_ACTIVE_MESSAGE)
        missing = self._one(
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

    # --- agreements ---------------------------------------------------------------------------------

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

        def to_api(row: sqlite3.Row) -> dict[str, Any]:
            return {
                "agreement_id": row["id"],
                "business": uri("businesses", row["business_id"]),
                "name": row["name"],
                "text": row["text"],
                "version": row["version"],
                "required": bool(row["required"]),
                "apply_to_join_flow": bool(row["apply_to_join_flow"]),
                "is_accepted": row["id"] in accepted,
            }

        return self._page("agreements", where, params, limit, offset, to_api)

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

    # --- external members ---------------------------------------------------------------------------

    def _external_member_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Fold the unprefixed aliases into the prefixed names (prefixed wins) and refuse unknown fields."""
        folded: dict[str, Any] = {}
        errors = ErrorCollector()
        mode = self._setting("unknown_fields")
        known = known_fields(
            body, EXTERNAL_MEMBER_FIELDS | EXTERNAL_MEMBER_ALIASES.keys(), mode, errors, "an external member"
        )
        for key, value in known.items():
            name = EXTERNAL_MEMBER_ALIASES.get(key, key)
            if key == name or name not in known:
                folded[name] = value
        errors.raise_if_any()
        return folded

    @staticmethod
    def _member_key(data: Mapping[str, Any]) -> dict[str, str]:
        """The record's identity within the business: its system and its id there (ints become strings)."""
        errors = ErrorCollector()
        key: dict[str, str] = {}
        for field in ("external_system_id", "external_member_id"):
            value = data.get(field)
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str) or not value.strip():
                errors.add(field, "required", f"{field} is required (a non-empty string)")
            else:
                key[field] = value.strip()
        errors.raise_if_any()
        return key

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
                    else self._collect(
                        errors, lambda f=field: db_dt(self._body_dt(data[f], f, business["timezone"]))
                    )
                )
        if data.get("user_email") not in (None, ""):
            values["user_email"] = self._collect(errors, lambda: normalize_email(data["user_email"]))
        if data.get("home_location") not in (None, "") or data.get("external_home_location_id") not in (
            None,
            "",
        ):
            values["home_location_id"] = self._collect(
                errors, lambda: self._home_location_id(data, business["id"])
            )
        return values

    def upsert_external_member(self, ctx: TokenContext, body: Mapping[str, Any]) -> WriteResult:
        """POST: create or update on (business, external_system_id, external_member_id)."""
        data = self._external_member_body(body)
        business = self._business(self._body_business(data))
        self.require_staff(ctx, business["id"], ADMIN_CUSTOMER_INFO, ADMIN_ROLES)
        errors = ErrorCollector()
        key = self._collect(errors, lambda: self._member_key(data))
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
                user_id = db.execute("INSERT INTO users (last_mod_dt) VALUES (?)", (stamp,)).lastrowid
                db.execute(
                    "INSERT INTO user_emails (email, user_id, is_primary) VALUES (?, ?, 1)",
                    (values["user_email"], user_id),
                )
            else:
                user_id = user["id"]
            connection = self._connection_for(business_id, user_id)
            if connection is None:
                connection_id = db.execute(
                    "INSERT INTO connections (business_id, user_id, status, last_mod_dt) "
                    "VALUES (?, ?, 'IMPORTED', ?)",
                    (business_id, user_id, stamp),
                ).lastrowid
            else:
                connection_id = connection["id"]
            member_id = db.execute(
                "INSERT INTO external_members (business_id, user_id, connection_id, external_system_id, "
                "external_member_id, created_dt, last_mod_dt) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (business_id, user_id, connection_id, *key.values(), stamp, stamp),
            ).lastrowid
            self._apply_member_values(db, member_id, user_id, connection_id, values, stamp)
        return self.external_member_api(
            self._one("SELECT * FROM external_members WHERE id = ?", (member_id,))
        )

    def _update_member(self, record: sqlite3.Row, values: Mapping[str, Any]) -> dict[str, Any]:
        stamp = db_dt(now_utc())
        with self._write() as db:
            self._apply_member_values(
                db, record["id"], record["user_id"], record["connection_id"], values, stamp
            )
        return self.external_member_api(
            self._one("SELECT * FROM external_members WHERE id = ?", (record["id"],))
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
        business = self._one("SELECT * FROM businesses WHERE id = ?", (record["business_id"],))
        self.require_staff(ctx, business["id"], ADMIN_CUSTOMER_INFO, ADMIN_ROLES)
        data = self._external_member_body(body)
        errors = ErrorCollector()
        if "business" in data and self._collect(
            errors, lambda: parse_ref(data["business"], "business", "businesses")
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

    # --- transactions ---------------------------------------------------------------------------------

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
            self.transaction_api(self._one("SELECT * FROM transactions WHERE id = ?", (pk,))), True
        )

    def _award_request(self, body: Mapping[str, Any], business: sqlite3.Row) -> AwardRequest:
        """Every field of an award checked; all errors are reported together."""
        errors = ErrorCollector()
        body = known_fields(
            body, TRANSACTION_FIELDS, self._setting("unknown_fields"), errors, "a transaction"
        )
        trans_source_id = self._collect(errors, lambda: self._trans_source_id(body.get("trans_source_id")))
        perk = self._collect(errors, lambda: self._earn_perk(body.get("perk"), business["id"]))
        if body.get("perk") not in (None, ""):
            self._collect(
                errors, lambda: check_relation(body["perk"], "perk", "perks", self._setting("relations"))
            )
        quantity = self._collect(
            errors, lambda: parse_quantity(body.get("quantity", 1), self._setting("quantities"))
        )
        location = None
        if body.get("location") not in (None, ""):
            location = self._collect(
                errors,
                lambda: self._location(
                    self._relation(body["location"], "location", "locations"), business["id"]
                ),
            )
        when = now_utc()
        if body.get("transaction_dt") not in (None, ""):
            when = self._collect(
                errors, lambda: self._body_dt(body["transaction_dt"], "transaction_dt", business["timezone"])
            )
        flag = "limit_to_once_per_calendar_day"
        once_a_day = self._collect(errors, lambda: parse_bool(body.get(flag, False), flag))
        connection = self._collect(errors, lambda: self._award_connection(body, business["id"]))
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

    @staticmethod
    def _trans_source_id(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value in (None, ""):
            raise ValidationFailed.one(
                "trans_source_id", "required", "trans_source_id is required (a non-empty string)"
            )
        if not isinstance(value, str) or not value.strip():
            raise ValidationFailed.one(
                "trans_source_id", "invalid", f"trans_source_id must be a non-empty string, got {value!r}"
            )
        if len(value) > MAX_TRANS_SOURCE_ID:
            raise ValidationFailed.one(
                "trans_source_id", "max_length", f"trans_source_id is longer than {MAX_TRANS_SOURCE_ID}"
            )
        return value

    def _record_award(self, business_id: int, award: AwardRequest) -> int:
        """Insert the transaction and add its points to the connection, in one SQLite transaction."""
        stamp, now = db_dt(award.when), db_dt(now_utc())
        perk, connection = award.perk, award.connection
        points = int(
            (perk["points"] * decimal.Decimal(award.quantity)).to_integral_value(decimal.ROUND_HALF_UP)
        )
        with self._write() as db:
            pk = db.execute(
                "INSERT INTO transactions (business_id, user_id, connection_id, perk_id, location_id, title, "
                "classification, points, quantity, transaction_dt, transaction_status, trans_source_id, "
                "created_dt) VALUES (?, ?, ?, ?, ?, ?, 'EARN', ?, ?, ?, 'ACTIVE', ?, ?)",
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
            ).lastrowid
            db.execute(
                "UPDATE connections SET point_balance = point_balance + ?, "
                "lifetime_earned_points = lifetime_earned_points + ?, "
                "last_transaction_dt = MAX(COALESCE(last_transaction_dt, ''), ?), last_mod_dt = ? "
                "WHERE id = ?",
                (points, points, stamp, now, connection["id"]),
            )
        return pk

    @staticmethod
    def _collect(errors: ErrorCollector, check: Callable[[], Any]) -> Any:
        """Run one field check; on failure record its errors and go on, so all fields are reported."""
        try:
            return check()
        except ValidationFailed as exc:
            for field, items in exc.errors.items():
                errors.errors.setdefault(field, []).extend(items)
            return None

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
        business = self._business(filters.get("business"))
        where, params = ["business_id = ?"], [business["id"]]
        own = self.visible_user(ctx, business["id"])
        if own is not None:
            where.append("user_id = ?")
            params.append(own)
        if "user" in filters:
            where.append("user_id = ?")
            params.append(
                ctx.user_id if filters["user"] == "me" else parse_ref(filters["user"], "user", "users")
            )
        if "user__emails__email" in filters:
            where.append("user_id IN (SELECT user_id FROM user_emails WHERE email = ?)")
            params.append(filters["user__emails__email"].strip().lower())
        if "trans_source_id" in filters:
            where.append("trans_source_id = ?")
            params.append(filters["trans_source_id"])
        return self._page("transactions", where, params, limit, offset, self.transaction_api)

    def get_transaction(self, ctx: TokenContext, pk: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM transactions WHERE id = ?", (pk,))
        if row is None:
            raise NotFound(f"transaction {pk} does not exist")
        own = self.visible_user(ctx, row["business_id"])
        if own is not None and own != row["user_id"]:
            raise NotFound(f"transaction {pk} does not exist or is not visible to this token")
        return self.transaction_api(row)

    # --- ledger -----------------------------------------------------------------------------------------

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
