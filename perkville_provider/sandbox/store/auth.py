"""OAuth and permission rules: the password grant, bearer tokens, scopes and staff roles."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Mapping
from typing import Any

from perkville_provider.sandbox.errors import InvalidToken, OAuthError, PermissionDenied
from perkville_provider.sandbox.store.base import StoreBase, TokenContext
from perkville_provider.sandbox.values import check_password, db_dt, now_utc

ADMIN_CUSTOMER_INFO = "ADMIN_CUSTOMER_INFO"
USER_CUSTOMER_INFO = "USER_CUSTOMER_INFO"
ADMIN_CUSTOMER_GRANT_POINTS = "ADMIN_CUSTOMER_GRANT_POINTS"
AWARD_ROLES = frozenset({"EMPLOYEE", "ADMIN"})
ADMIN_ROLES = frozenset({"ADMIN"})
ANY_STAFF_ROLE = frozenset({"FRONT_DESK", "EMPLOYEE", "ADMIN"})


class AuthMixin(StoreBase):
    """Tokens (granted, authenticated, revoked) and the checks every resource makes with them."""

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

    def _customer_data_filter(
        self, ctx: TokenContext, filters: Mapping[str, str]
    ) -> tuple[sqlite3.Row, list[str], list[Any]]:
        """A customer-data list's business and its WHERE clause so far: the business (required), the
        token's own user when that is all it may see, and the ``user__emails__email`` filter."""
        business = self._business(filters.get("business"))
        where, params = ["business_id = ?"], [business["id"]]
        own = self.visible_user(ctx, business["id"])
        if own is not None:
            where.append("user_id = ?")
            params.append(own)
        if "user__emails__email" in filters:
            where.append("user_id IN (SELECT user_id FROM user_emails WHERE email = ?)")
            params.append(filters["user__emails__email"].strip().lower())
        return business, where, params

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
