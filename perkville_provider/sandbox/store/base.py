"""The store's plumbing: the SQLite connection, one-transaction writes, reset, lookups and paging.

Every write runs in one SQLite transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), so a refused
request leaves nothing half-written. Reads and writes are microseconds, so the HTTP layer calls the
store directly on its event loop thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from perkville_provider.sandbox.errors import ValidationFailed
from perkville_provider.sandbox.schema import DATA_TABLES, SCHEMA
from perkville_provider.sandbox.values import db_dt, parse_dt, parse_ref


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The id of the row an INSERT just wrote."""
    if cursor.lastrowid is None:
        raise LookupError("the INSERT wrote no row")
    return cursor.lastrowid


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


Seeder = Callable[[sqlite3.Connection], None]


class StoreBase:
    _settings_cache: dict[str, Any] | None = None
    """The database and the helpers every resource family shares. Not thread-safe by design."""

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

    def _row(self, sql: str, params: tuple | list = ()) -> sqlite3.Row:
        """The one row that must exist (just written, or referenced by a foreign key)."""
        row = self._one(sql, params)
        if row is None:
            raise LookupError(f"no row for {sql} {params!r}")
        return row

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
        self._settings_cache = None

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

    def _datetime_range_filters(
        self, filters: Mapping[str, str], tz: str, column: str, where: list[str], params: list[Any]
    ) -> None:
        for name, op in ((f"{column}__gte", ">="), (f"{column}__lt", "<")):
            if name in filters:
                where.append(f"{column} {op} ?")
                params.append(db_dt(parse_dt(filters[name], name, tz)))
