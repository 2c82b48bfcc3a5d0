"""The JSON shapes of the resources (``*_api``): the HTTP answers and the ledger export show the
same shapes, and they depend on the data model, not on HTTP.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from perkville_provider.sandbox.store.base import StoreBase
from perkville_provider.sandbox.values import api_dt, uri


def membership_api(row: sqlite3.Row) -> dict[str, Any]:
    """The membership fields an external member record holds and mirrors onto its connection."""
    return {
        "external_membership_status": row["external_membership_status"],
        "external_membership_type": row["external_membership_type"],
        "external_join_dt": api_dt(row["external_join_dt"]),
        "external_cancel_dt": api_dt(row["external_cancel_dt"]),
    }


def agreement_api(row: sqlite3.Row, is_accepted: bool) -> dict[str, Any]:
    """An agreement as the agreements view shows it to one user (``is_accepted`` is theirs)."""
    return {
        "agreement_id": row["id"],
        "business": uri("businesses", row["business_id"]),
        "name": row["name"],
        "text": row["text"],
        "version": row["version"],
        "required": bool(row["required"]),
        "apply_to_join_flow": bool(row["apply_to_join_flow"]),
        "is_accepted": is_accepted,
    }


class RepresentationsMixin(StoreBase):
    """One method per resource: a row in, its API representation out."""

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
