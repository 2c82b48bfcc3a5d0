"""Load the gym's membership data into the cluster's PostgreSQL ``gym`` database.

The rows come from the demo's generator (``perkville_provider.demo.data``: the same members,
check-ins and bad rows, at the cluster's size), written to a SQLite file first and copied into
PostgreSQL with typed columns (timestamps and dates, as a real membership system has), so the
example DAGs' SQL extract runs against PostgreSQL. Connects with ``AIRFLOW_CONN_GYM_SOURCE_DB``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
from pathlib import Path

import pendulum
import psycopg2

from perkville_provider.demo import data

POSTGRES_SCHEMA = """
DROP TABLE IF EXISTS demo_info, clubs, members, checkins;
CREATE TABLE demo_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE clubs (club_code TEXT PRIMARY KEY, name TEXT NOT NULL, timezone TEXT NOT NULL);
CREATE TABLE members (
    member_id TEXT, email TEXT, first_name TEXT, last_name TEXT, membership_type TEXT,
    membership_status TEXT, join_date DATE, cancel_date DATE, home_club TEXT,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE checkins (
    checkin_id INTEGER NOT NULL, member_id TEXT, club_code TEXT NOT NULL,
    checked_in_at TIMESTAMP NOT NULL
);
CREATE INDEX members_updated_at ON members (updated_at);
CREATE INDEX checkins_checked_in_at ON checkins (checked_in_at);
"""
TABLES = ("demo_info", "clubs", "members", "checkins")


def connect():  # -> psycopg2 connection
    conn = json.loads(os.environ["AIRFLOW_CONN_GYM_SOURCE_DB"])
    return psycopg2.connect(
        host=conn["host"],
        port=conn["port"],
        user=conn["login"],
        password=conn["password"],
        dbname=conn["schema"],
    )


def _copy_table(source: sqlite3.Connection, cursor, table: str) -> int:
    buffer = io.StringIO()
    count = 0
    for row in source.execute(f"SELECT * FROM {table}"):
        buffer.write("\t".join(r"\N" if value is None else str(value) for value in row) + "\n")
        count += 1
    buffer.seek(0)
    cursor.copy_from(buffer, table, null=r"\N")
    return count


def load(spec: data.DemoDataSpec, sqlite_path: Path) -> dict[str, int]:
    """Generate the data at ``spec``'s size and copy it into PostgreSQL; row counts per table."""
    data.generate(sqlite_path, spec, overwrite=True)
    source = sqlite3.connect(sqlite_path)
    counts = {}
    with connect() as conn, conn.cursor() as cursor:
        cursor.execute(POSTGRES_SCHEMA)
        for table in TABLES:
            counts[table] = _copy_table(source, cursor, table)
    source.close()
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, required=True)
    parser.add_argument("--checkins-per-day", type=int, required=True)
    parser.add_argument("--days", type=int, required=True)
    parser.add_argument("--anchor", required=True, help="YYYY-MM-DD: the day after the last check-in day")
    parser.add_argument("--sqlite", type=Path, required=True, help="where the generator writes first")
    args = parser.parse_args()
    spec = data.DemoDataSpec(
        anchor=pendulum.Date.fromisoformat(args.anchor),
        days=args.days,
        members=args.members,
        checkins_per_day=args.checkins_per_day,
    )
    counts = load(spec, args.sqlite)
    print("gym source loaded:", ", ".join(f"{table} {count}" for table, count in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
