"""The sandbox's SQLite tables. Ids of external member records and transactions use AUTOINCREMENT so
an id is never reused, and the seed starts them in their own ranges."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS businesses (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, timezone TEXT NOT NULL,
    join_requires_active_membership INTEGER NOT NULL, perkville_url TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS locations (
    id INTEGER PRIMARY KEY, business_id INTEGER NOT NULL REFERENCES businesses(id), name TEXT NOT NULL,
    timezone TEXT NOT NULL, external_location_id TEXT);
CREATE TABLE IF NOT EXISTS perks (
    id INTEGER PRIMARY KEY, business_id INTEGER NOT NULL REFERENCES businesses(id), title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '', classification TEXT NOT NULL, points INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'ACTIVE');
CREATE TABLE IF NOT EXISTS agreements (
    id INTEGER PRIMARY KEY, business_id INTEGER NOT NULL REFERENCES businesses(id), name TEXT NOT NULL,
    text TEXT NOT NULL, version TEXT NOT NULL, required INTEGER NOT NULL, apply_to_join_flow INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY, first_name TEXT NOT NULL DEFAULT '', last_name TEXT NOT NULL DEFAULT '',
    password_hash TEXT, phone_number TEXT, birthday TEXT, last_mod_dt TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS user_emails (
    email TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), is_primary INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS user_emails_user ON user_emails(user_id);
CREATE TABLE IF NOT EXISTS agreement_acceptances (
    agreement_id INTEGER NOT NULL REFERENCES agreements(id), user_id INTEGER NOT NULL REFERENCES users(id),
    version TEXT NOT NULL, accepted_dt TEXT NOT NULL, PRIMARY KEY (agreement_id, user_id));
CREATE TABLE IF NOT EXISTS staff_roles (
    user_id INTEGER NOT NULL REFERENCES users(id), business_id INTEGER NOT NULL REFERENCES businesses(id),
    role TEXT NOT NULL, PRIMARY KEY (user_id, business_id));
CREATE TABLE IF NOT EXISTS api_clients (
    client_id TEXT PRIMARY KEY, client_secret TEXT NOT NULL, scopes TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), client_id TEXT NOT NULL,
    scopes TEXT NOT NULL, created_dt TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS connections (
    id INTEGER PRIMARY KEY, business_id INTEGER NOT NULL REFERENCES businesses(id),
    user_id INTEGER NOT NULL REFERENCES users(id), status TEXT NOT NULL,
    point_balance INTEGER NOT NULL DEFAULT 0, lifetime_earned_points INTEGER NOT NULL DEFAULT 0,
    home_location_id INTEGER, last_transaction_dt TEXT, last_mod_dt TEXT NOT NULL,
    external_membership_status TEXT, external_membership_type TEXT, external_join_dt TEXT,
    external_cancel_dt TEXT, UNIQUE (business_id, user_id));
CREATE TABLE IF NOT EXISTS external_members (
    id INTEGER PRIMARY KEY AUTOINCREMENT, business_id INTEGER NOT NULL REFERENCES businesses(id),
    user_id INTEGER NOT NULL REFERENCES users(id), connection_id INTEGER NOT NULL REFERENCES connections(id),
    external_system_id TEXT NOT NULL, external_member_id TEXT NOT NULL,
    first_name TEXT NOT NULL DEFAULT '', last_name TEXT NOT NULL DEFAULT '',
    external_membership_type TEXT, external_membership_status TEXT, external_join_dt TEXT,
    external_cancel_dt TEXT, home_location_id INTEGER, created_dt TEXT NOT NULL, last_mod_dt TEXT NOT NULL,
    UNIQUE (business_id, external_system_id, external_member_id));
CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, business_id INTEGER NOT NULL REFERENCES businesses(id),
    user_id INTEGER NOT NULL REFERENCES users(id), connection_id INTEGER NOT NULL REFERENCES connections(id),
    perk_id INTEGER NOT NULL REFERENCES perks(id), location_id INTEGER, title TEXT NOT NULL,
    classification TEXT NOT NULL, points INTEGER NOT NULL, quantity INTEGER NOT NULL,
    transaction_dt TEXT NOT NULL, transaction_status TEXT NOT NULL, trans_source_id TEXT NOT NULL,
    created_dt TEXT NOT NULL, UNIQUE (business_id, trans_source_id));
CREATE INDEX IF NOT EXISTS transactions_daily ON transactions(connection_id, perk_id, transaction_dt);
"""

DATA_TABLES = (
    "transactions",
    "external_members",
    "connections",
    "tokens",
    "agreement_acceptances",
    "staff_roles",
    "user_emails",
    "users",
    "agreements",
    "perks",
    "locations",
    "businesses",
    "api_clients",
    "settings",
)
