"""The demo data every sandbox starts from (and returns to on reset); the README's seed table.

Ids are fixed and come from different ranges per table (users 1001+, connections 5001+, ...) so
a test that mixes up a user id and a connection id fails instead of passing by accident.
"""

from __future__ import annotations

import sqlite3

from perkville_provider.sandbox.values import db_dt, hash_password, now_utc

BUSINESS_ID = 9823
BUSINESS_TIMEZONE = "America/New_York"
PERKVILLE_URL = "https://www.perkville.com/biz/9823/"
DOWNTOWN_LOCATION_ID = 101
WESTSIDE_LOCATION_ID = 102
CHECKIN_PERK_ID = 501
CLASS_PERK_ID = 502
REWARD_PERK_ID = 503
#: One point per dollar: its quantity is a money amount with cents (``9.99``).
PURCHASE_PERK_ID = 504
JOIN_AGREEMENT_ID = 701

ADMIN_USERNAME = "admin@demo-fitness.example"
ADMIN_PASSWORD = "admin-password"  # noqa: S105 - public demo credential
FRONTDESK_USERNAME = "frontdesk@demo-fitness.example"
FRONTDESK_PASSWORD = "frontdesk-password"  # noqa: S105
CUSTOMER_USERNAME = "casey@example.com"
CUSTOMER_PASSWORD = "casey-password"  # noqa: S105
IMPORTED_CUSTOMER_USERNAME = "robin@example.com"
IMPORTED_CUSTOMER_PASSWORD = "robin-password"  # noqa: S105
CLIENT_ID = "demo-client-id"
CLIENT_SECRET = "demo-client-secret"  # noqa: S105
CLIENT_SCOPES = (
    "PUBLIC USER_CUSTOMER_INFO ADMIN_CUSTOMER_INFO ADMIN_CUSTOMER_GRANT_POINTS ADMIN_PERK ADMIN_LOCATION"
)

ADMIN_USER_ID = 1001
FRONTDESK_USER_ID = 1002
CUSTOMER_USER_ID = 1003
IMPORTED_CUSTOMER_USER_ID = 1004
CUSTOMER_CONNECTION_ID = 5001
IMPORTED_CUSTOMER_CONNECTION_ID = 5002
FIRST_EXTERNAL_MEMBER_ID = 7001
FIRST_TRANSACTION_ID = 20001

_USERS = (
    (ADMIN_USER_ID, "Avery", "Admin", ADMIN_USERNAME, ADMIN_PASSWORD),
    (FRONTDESK_USER_ID, "Frankie", "Desk", FRONTDESK_USERNAME, FRONTDESK_PASSWORD),
    (CUSTOMER_USER_ID, "Casey", "Member", CUSTOMER_USERNAME, CUSTOMER_PASSWORD),
    (IMPORTED_CUSTOMER_USER_ID, "Robin", "Imported", IMPORTED_CUSTOMER_USERNAME, IMPORTED_CUSTOMER_PASSWORD),
)


def load(db: sqlite3.Connection) -> None:
    """Insert the demo business into an empty database (inside the caller's transaction)."""
    stamp = db_dt(now_utc())
    db.execute(
        "INSERT INTO businesses VALUES (?, 'Demo Fitness Club', ?, 1, ?)",
        (BUSINESS_ID, BUSINESS_TIMEZONE, PERKVILLE_URL),
    )
    db.executemany(
        "INSERT INTO locations VALUES (?, ?, ?, ?, ?)",
        [
            (DOWNTOWN_LOCATION_ID, BUSINESS_ID, "Downtown", "America/New_York", "DT"),
            (WESTSIDE_LOCATION_ID, BUSINESS_ID, "Westside", "America/Los_Angeles", "WS"),
        ],
    )
    db.executemany(
        "INSERT INTO perks (id, business_id, title, description, classification, points) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (CHECKIN_PERK_ID, BUSINESS_ID, "Daily check-in", "Check in at any location", "EARN", 10),
            (CLASS_PERK_ID, BUSINESS_ID, "Group class", "Attend a group class", "EARN", 25),
            (REWARD_PERK_ID, BUSINESS_ID, "Free smoothie", "One smoothie at the juice bar", "REDEEM", 500),
            (PURCHASE_PERK_ID, BUSINESS_ID, "Pro shop purchase", "One point per dollar spent", "EARN", 1),
        ],
    )
    db.execute(
        "INSERT INTO agreements VALUES (?, ?, 'Loyalty program terms', ?, '2024-01', 1, 1, 1)",
        (
            JOIN_AGREEMENT_ID,
            BUSINESS_ID,
            "I agree to the [loyalty program terms](https://www.perkville.com/biz/9823/terms/).",
        ),
    )
    for user_id, first, last, email, password in _USERS:
        db.execute(
            "INSERT INTO users (id, first_name, last_name, password_hash, last_mod_dt) "
            "VALUES (?, ?, ?, ?, ?)",
            (user_id, first, last, hash_password(password), stamp),
        )
        db.execute("INSERT INTO user_emails VALUES (?, ?, 1)", (email, user_id))
    db.executemany(
        "INSERT INTO staff_roles VALUES (?, ?, ?)",
        [(ADMIN_USER_ID, BUSINESS_ID, "ADMIN"), (FRONTDESK_USER_ID, BUSINESS_ID, "FRONT_DESK")],
    )
    db.execute("INSERT INTO api_clients VALUES (?, ?, ?)", (CLIENT_ID, CLIENT_SECRET, CLIENT_SCOPES))
    db.execute(
        "INSERT INTO connections (id, business_id, user_id, status, point_balance, lifetime_earned_points, "
        "home_location_id, last_mod_dt, external_membership_status, external_membership_type) "
        "VALUES (?, ?, ?, 'ACTIVE', 120, 120, ?, ?, 'ACTIVE', 'Monthly')",
        (CUSTOMER_CONNECTION_ID, BUSINESS_ID, CUSTOMER_USER_ID, DOWNTOWN_LOCATION_ID, stamp),
    )
    db.execute(
        "INSERT INTO connections (id, business_id, user_id, status, home_location_id, last_mod_dt, "
        "external_membership_status, external_membership_type) "
        "VALUES (?, ?, ?, 'IMPORTED', ?, ?, 'INACTIVE', 'Monthly')",
        (
            IMPORTED_CUSTOMER_CONNECTION_ID,
            BUSINESS_ID,
            IMPORTED_CUSTOMER_USER_ID,
            WESTSIDE_LOCATION_ID,
            stamp,
        ),
    )
    db.executemany(
        "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
        [("external_members", FIRST_EXTERNAL_MEMBER_ID - 1), ("transactions", FIRST_TRANSACTION_ID - 1)],
    )
    db.execute(
        "INSERT INTO agreement_acceptances VALUES (?, ?, '2024-01', ?)",
        (JOIN_AGREEMENT_ID, CUSTOMER_USER_ID, stamp),
    )


def add_customers(db: sqlite3.Connection, count: int, *, business_id: int = BUSINESS_ID) -> range:
    """Bulk customers for benchmarks: ``count`` users, each with an email and an ACTIVE connection
    holding a balance (``i % 1000`` points). Returns the new connection ids.

    Written straight into a sandbox database that no server is using (the API would take one
    request per member); ``bench/bench_export.py`` seeds its 100,000 connections this way.
    """
    stamp = db_dt(now_utc())
    first_user = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM users").fetchone()[0]
    first_connection = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM connections").fetchone()[0]
    users = range(first_user, first_user + count)
    db.executemany(
        "INSERT INTO users (id, first_name, last_mod_dt) VALUES (?, 'Bulk', ?)", ((u, stamp) for u in users)
    )
    db.executemany("INSERT INTO user_emails VALUES (?, ?, 1)", ((f"bulk.{u}@example.com", u) for u in users))
    db.executemany(
        "INSERT INTO connections (id, business_id, user_id, status, point_balance, lifetime_earned_points, "
        "home_location_id, last_mod_dt, external_membership_status) "
        "VALUES (?, ?, ?, 'ACTIVE', ?, ?, ?, ?, 'ACTIVE')",
        (
            (first_connection + i, business_id, u, i % 1000, i % 1000, DOWNTOWN_LOCATION_ID, stamp)
            for i, u in enumerate(users)
        ),
    )
    return range(first_connection, first_connection + count)
