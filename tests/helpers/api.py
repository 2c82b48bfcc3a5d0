"""A bearer-token client of the sandbox, and readers of its error bodies and ledger."""

from __future__ import annotations

from typing import Any

import requests

from perkville_provider.sandbox import seed


class Api:
    """Requests to the sandbox as one token; answers are returned as they are, never raised."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.base_url + path, params=params, timeout=10, allow_redirects=False)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.post(self.base_url + path, json=body, timeout=10)

    def patch(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.patch(self.base_url + path, json=body, timeout=10)

    def award(self, **fields: Any) -> requests.Response:
        body = {"business": seed.BUSINESS_ID, "perk": seed.CHECKIN_PERK_ID, **fields}
        return self.post("/v2/transactions/", body)

    def upsert_member(self, **fields: Any) -> requests.Response:
        body = {"business": seed.BUSINESS_ID, "external_system_id": "ABC_IGNITE", **fields}
        return self.post("/v2/external-members/", body)


def error_codes(response: requests.Response) -> dict[str, list[str]]:
    """``{"field": ["code", ...]}`` from an error body."""
    return {field: [e["code"] for e in items] for field, items in response.json()["errors"].items()}


def connection_of(sandbox, email: str) -> dict[str, Any]:
    """The connection of the user with this email, from the sandbox's own ledger."""
    return next(c for c in sandbox.admin.ledger()["connections"] if c["user_email"] == email)
