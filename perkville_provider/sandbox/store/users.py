"""Users: ``/v2/users/me/``, the list and the detail, narrowed to what the token may see."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perkville_provider.sandbox.errors import InvalidToken, NotFound
from perkville_provider.sandbox.store.auth import ADMIN_CUSTOMER_INFO, AuthMixin
from perkville_provider.sandbox.store.base import Page, TokenContext
from perkville_provider.sandbox.store.representations import RepresentationsMixin


class UsersMixin(AuthMixin, RepresentationsMixin):
    """Staff see their businesses' customers and themselves; anyone else only itself."""

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
