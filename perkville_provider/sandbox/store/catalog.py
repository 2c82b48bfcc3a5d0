"""The business's catalog: the business itself, its locations and its perks (read-only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perkville_provider.sandbox.errors import NotFound
from perkville_provider.sandbox.store.auth import AuthMixin
from perkville_provider.sandbox.store.base import Page, TokenContext
from perkville_provider.sandbox.store.representations import RepresentationsMixin


class CatalogMixin(AuthMixin, RepresentationsMixin):
    """``/v2/businesses/``, ``/v2/locations/``, ``/v2/perks/``."""

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
