"""How the export writes a page into its table: the table's contract, then one upsert per page.

The export upserts on the object's id. Before the first request the table is checked against
that contract (:meth:`TableWriter.check_table`): a table the export cannot write safely (no key,
another key, another unique column, a view, a missing column, an extra ``NOT NULL`` column, a
quantity column that would round 9.99) is refused naming the table and the problem, a permanent
error; a retry cannot fix it.

A page is written in one transaction with the dialect's own upsert on the key (``ON CONFLICT``,
``ON DUPLICATE KEY``), never ``REPLACE``, which deletes whatever row another unique column
matches. When the database refuses the page for a value (a constraint, a value out of range),
its rows are written one by one so that only the refused rows are skipped, each named by its id.
The database's error text often quotes the row (PostgreSQL's "Failing row contains ..."): it is
never logged or raised, only its class and SQLSTATE.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from perkville_provider.transfers.tables import TableLayout, Value, comparable

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

#: DB-API error classes raised for one row's values; the others are about the table or the link.
ROW_ERRORS = ("IntegrityError", "DataError")
#: DB-API error classes a retry cannot fix (a column, a type, a permission the table lacks).
SCHEMA_ERRORS = ("ProgrammingError", "NotSupportedError")


class TableContractError(AirflowFailException):
    """A table the export cannot write safely; names the table and what is wrong."""


class SqlWriteError(AirflowException):
    """The database refused a write: says the error's class and SQLSTATE, never the rows."""

    def __init__(self, table: str, error: BaseException) -> None:
        super().__init__(f"the database refused a write into {table}: {describe_sql_error(error)}")
        self.retriable = _error_class(error) not in SCHEMA_ERRORS


def _error_class(error: BaseException) -> str | None:
    names = {cls.__name__ for cls in type(error).__mro__}
    return next((name for name in (*ROW_ERRORS, *SCHEMA_ERRORS) if name in names), None)


def describe_sql_error(error: BaseException) -> str:
    """An error's class and SQLSTATE, without its message (which may quote the row)."""
    state = getattr(error, "pgcode", None) or getattr(error, "sqlstate", None)
    if state is None and getattr(error, "args", None) and isinstance(error.args[0], int):
        state = error.args[0]  # MySQL's error number
    return f"{type(error).__name__}" + (f" (SQLSTATE {state})" if state else "")


def _sqlite_value(value: Value) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


@dataclass
class PageWrite:
    """What one page's write did; ``refused`` names each row the database would not take."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[str] = field(default_factory=list)


class TableWriter:
    """Writes rows of one layout into one table through a ``DbApiHook``: DDL, checks, upserts."""

    def __init__(self, hook: DbApiHook, layout: TableLayout, table: str) -> None:
        self.hook = hook
        self.layout = layout
        self.table = table

    @property
    def dialect(self) -> str:
        """The connection's SQLAlchemy dialect name (``sqlite``, ``postgresql``...)."""
        return str(getattr(self.hook, "dialect_name", "") or "")

    def create_if_missing(self) -> None:
        """``CREATE TABLE IF NOT EXISTS`` with the layout's columns and key, in the connection's dialect."""
        self.hook.run(self.layout.create_table_sql(self.table, self.dialect))

    def check_table(self) -> None:
        """Refuse a table the export cannot upsert into on its key (see the module's docstring)."""
        from sqlalchemy import types

        schema, _, name = self.table.rpartition(".")
        inspector = self.hook.inspector
        schema_arg = schema or None
        problem: str | None = None
        if name in inspector.get_view_names(schema=schema_arg):
            problem = "is a view; the export writes into a table"
        elif not inspector.has_table(name, schema=schema_arg):
            problem = "does not exist (set create_table=True to create it)"
        if problem is None:
            problem = self._contract_problem(inspector, name, schema_arg, types)
        if problem is not None:
            raise TableContractError(
                f"table {self.table} {problem}. The export upserts {self.layout.resource} on "
                f"{self.layout.key}; let it create the table (create_table=True on a new name) or "
                "alter this one (see the README's export columns)."
            )

    def _contract_problem(self, inspector: Any, name: str, schema: str | None, types: Any) -> str | None:
        key = self.layout.key
        primary = list(inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or [])
        if not primary:
            return f"has no primary key, where the export's is ({key}): every run would add its rows again"
        if primary != [key]:
            return f"has the primary key ({', '.join(primary)}), where the export's is ({key})"
        columns = {column["name"]: column for column in inspector.get_columns(name, schema=schema)}
        missing = [column for column in self.layout.column_names if column not in columns]
        if missing:
            return f"lacks the column(s) {', '.join(missing)}"
        required = [
            column_name
            for column_name, column in columns.items()
            if column_name not in self.layout.column_names
            and not column.get("nullable", True)
            and column.get("default") is None
            and column.get("autoincrement") is not True
        ]
        if required:
            return f"has NOT NULL column(s) without a default the export does not fill: {', '.join(required)}"
        uniques = [
            list(c.get("column_names") or []) for c in inspector.get_unique_constraints(name, schema=schema)
        ]
        uniques += [
            list(i.get("column_names") or [])
            for i in inspector.get_indexes(name, schema=schema)
            if i.get("unique")
        ]
        other = [columns_ for columns_ in uniques if columns_ != [key]]
        if other:
            return (
                f"has another unique key ({', '.join(str(c) for c in other[0])}): "
                "a row could clash with another object's row"
            )
        exact = [
            column.name
            for column in self.layout.columns
            if column.kind == "quantity" and isinstance(columns[column.name]["type"], types.Integer)
        ]
        if exact:
            return f"stores {exact[0]} as an integer; it holds 2 decimal places (NUMERIC(12, 2))"
        return None

    def existing(self, keys: Sequence[Value]) -> dict[Any, tuple[Any, ...]]:
        """The stored rows with these keys, in comparable form, by key."""
        if not keys:
            return {}
        placeholders = ", ".join([self.hook.placeholder] * len(keys))
        sql = (
            f"SELECT {', '.join(self.layout.column_names)} FROM {self.table} "  # noqa: S608 - validated names
            f"WHERE {self.layout.key} IN ({placeholders})"
        )
        rows = self._fetch(sql, list(keys))
        return {comparable(row[0]): tuple(comparable(value) for value in row) for row in rows}

    def upsert(self, rows: Sequence[tuple[Value, ...]]) -> PageWrite:
        """Write the new and changed rows in one transaction (row by row if the page is refused)."""
        latest = {comparable(row[0]): row for row in rows}
        stored = self.existing(list(latest))
        changed = [
            row for key, row in latest.items() if stored.get(key) != tuple(comparable(value) for value in row)
        ]
        result = PageWrite(unchanged=len(rows) - len(changed))
        try:
            self._write(changed, stored)
            written = list(changed)
        except Exception as error:
            if _error_class(error) not in ROW_ERRORS:
                raise SqlWriteError(self.table, error) from None
            written = []
            for row in changed:
                try:
                    self._write([row], stored)
                    written.append(row)
                except Exception as row_error:
                    if _error_class(row_error) not in ROW_ERRORS:
                        raise SqlWriteError(self.table, row_error) from None
                    result.refused.append(self._refusal(row, row_error))
        result.inserted = sum(1 for row in written if comparable(row[0]) not in stored)
        result.updated = len(written) - result.inserted
        return result

    def _refusal(self, row: tuple[Value, ...], error: BaseException) -> str:
        return (
            f"{self.layout.resource} {row[0]}: the database refused the row "
            f"({describe_sql_error(error)}; see the table's constraints)"
        )

    def upsert_sql(self) -> str | None:
        """The dialect's upsert on the key for one row of bind parameters.

        None for a dialect without one known here: then stored rows are updated, new ones inserted.
        """
        names = self.layout.column_names
        others = [name for name in names if name != self.layout.key]
        if self.dialect == "mysql":
            return (
                self._insert_sql()
                + " ON DUPLICATE KEY UPDATE "
                + ", ".join(f"{n} = VALUES({n})" for n in others)
            )
        if self.dialect in ("sqlite", "postgresql"):
            return f"{self._insert_sql()} ON CONFLICT ({self.layout.key}) DO UPDATE SET " + ", ".join(
                f"{n} = excluded.{n}" for n in others
            )
        return None

    def _insert_sql(self) -> str:
        names = self.layout.column_names
        placeholders = ", ".join([self.hook.placeholder] * len(names))
        return f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({placeholders})"  # noqa: S608

    def _statements(
        self, rows: Sequence[tuple[Value, ...]], stored: dict[Any, Any]
    ) -> list[tuple[str, list[tuple[Any, ...]]]]:
        upsert = self.upsert_sql()
        if upsert is not None:
            return [(upsert, [self._bind(row) for row in rows])]
        key, others = self.layout.key, self.layout.column_names[1:]
        update = (
            f"UPDATE {self.table} SET "  # noqa: S608 - validated names
            + ", ".join(f"{name} = {self.hook.placeholder}" for name in others)
            + f" WHERE {key} = {self.hook.placeholder}"
        )
        new = [self._bind(row) for row in rows if comparable(row[0]) not in stored]
        old = [(*self._bind(row)[1:], row[0]) for row in rows if comparable(row[0]) in stored]
        return [
            (statement, params) for statement, params in ((update, old), (self._insert_sql(), new)) if params
        ]

    def _bind(self, row: tuple[Value, ...]) -> tuple[Any, ...]:
        if self.dialect != "sqlite":
            return row
        # SQLite's quantity and timestamp columns are TEXT: the decimal's exact digits, ISO 8601.
        return tuple(
            str(value)
            if isinstance(value, decimal.Decimal)
            else value.isoformat()
            if isinstance(value, dt.datetime)
            else value
            for value in row
        )

    def _write(self, rows: Sequence[tuple[Value, ...]], stored: dict[Any, Any]) -> None:
        if not rows:
            return
        with closing(self.hook.get_conn()) as conn:
            try:
                with closing(conn.cursor()) as cursor:
                    for statement, params in self._statements(rows, stored):
                        cursor.executemany(statement, params)
                conn.commit()
            except Exception:
                conn.rollback()
                raise

    def _fetch(self, sql: str, parameters: list[Any]) -> list[tuple[Any, ...]]:
        try:
            with closing(self.hook.get_conn()) as conn, closing(conn.cursor()) as cursor:
                cursor.execute(sql, parameters)
                return list(cursor.fetchall())
        except Exception as error:
            raise SqlWriteError(self.table, error) from None
