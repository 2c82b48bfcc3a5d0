"""What the sandbox's rate limit counts together: one token, one API client, or one business.

Perkville does not document its limit; it is most likely counted per API client or per business,
so every token of a client (every worker's own grant) draws on one budget. ``rate_limit_scope``
switches between the three, so tests reproduce a limit that workers share.
"""

from __future__ import annotations

import base64
import binascii

from perkville_provider.sandbox.errors import StoreError
from perkville_provider.sandbox.faults import RateKey, key_per_header
from perkville_provider.sandbox.store import Store


def _basic_client_id(header: str) -> str | None:
    """The client id of an HTTP Basic header (the token endpoint's client authentication)."""
    try:
        decoded = base64.b64decode(header.removeprefix("Basic ").strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def rate_key_for(store: Store) -> RateKey:
    """A resolver of rate-limit keys that looks tokens up in ``store`` (answers are remembered)."""
    memo: dict[tuple[str, str], str] = {}

    def key(scope: str, authorization: str | None, client: str) -> str:
        if not authorization or scope == "token":
            return key_per_header(scope, authorization, client)
        remembered = memo.get((scope, authorization))
        if remembered is None:
            remembered = _resolve(store, scope, authorization)
            if len(memo) > 10_000:
                memo.clear()
            memo[(scope, authorization)] = remembered
        return remembered

    return key


def _resolve(store: Store, scope: str, authorization: str) -> str:
    """The client (or the business of the token's user) behind an Authorization header."""
    if authorization.startswith("Basic "):
        client_id = _basic_client_id(authorization)
        return f"client:{client_id}" if client_id else authorization
    try:
        context = store.authenticate(authorization.removeprefix("Bearer ").strip())
    except StoreError:
        return authorization
    if scope == "client":
        return f"client:{context.client_id}"
    row = store._one(
        "SELECT business_id FROM staff_roles WHERE user_id = ? ORDER BY business_id LIMIT 1",
        (context.user_id,),
    )
    return f"business:{row['business_id']}" if row is not None else f"client:{context.client_id}"
