"""Provider metadata read by Airflow's providers manager through the entry point.

The connection form is declared here (``conn-fields`` and ``ui-field-behaviour``), not with
wtforms widgets on the hook: Airflow 3.2+ reads this without importing the hook, and masks
every field whose schema has ``"format": "password"``.
"""

from __future__ import annotations

from typing import Any

from perkville_provider import __version__

__all__ = [
    "get_provider_info",
]


def _string_field(label: str, description: str, *, secret: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:
        schema["format"] = "password"
    return {"label": label, "description": description, "schema": schema}


def get_provider_info() -> dict[str, Any]:
    """What Airflow reads of this provider: hooks, operators, connection type, extra links."""
    return {
        "package-name": "airflow-provider-perkville",
        "name": "Perkville",
        "description": "Perkville loyalty program: award points, sync external members, "
        "look up and join connections. https://www.perkville.com/developers/docs/v2/",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Perkville",
                "external-doc-url": "https://www.perkville.com/developers/docs/v2/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Perkville",
                "python-modules": ["perkville_provider.hooks.perkville"],
            }
        ],
        "operators": [
            {
                "integration-name": "Perkville",
                "python-modules": [
                    "perkville_provider.operators.award_points",
                    "perkville_provider.operators.sync_members",
                    "perkville_provider.operators.connections",
                ],
            }
        ],
        "transfers": [
            {
                "source-integration-name": "Perkville",
                "target-integration-name": "Common SQL",
                "python-module": "perkville_provider.transfers.perkville_to_sql",
            }
        ],
        "extra-links": ["perkville_provider.links.PerkvilleBusinessLink"],
        # perkville://<API host>/business/<id>/<resource>: the same node as the operators'
        # OpenLineage datasets (perkville_provider.lineage).
        "asset-uris": [
            {
                "schemes": ["perkville"],
                "handler": "perkville_provider.lineage.sanitize_uri",
                "to_openlineage_converter": "perkville_provider.lineage.convert_asset_to_openlineage",
            }
        ],
        "connection-types": [
            {
                "connection-type": "perkville",
                "hook-class-name": "perkville_provider.hooks.perkville.PerkvilleHook",
                "hook-name": "Perkville",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "API base URL",
                        "login": "Staff username (email)",
                        "password": "Staff password",
                    },
                    "placeholders": {
                        "host": "https://api.perkville.com",
                        "login": "staff@your-business.com",
                        "extra": '{"business_id": 9823}',
                    },
                },
                "conn-fields": {
                    "client_id": _string_field("Client ID", "API client id from Perkville's registration."),
                    "client_secret": _string_field(
                        "Client secret", "API client secret from Perkville's registration.", secret=True
                    ),
                    "token": _string_field(
                        "Token",
                        "A pre-issued long-lived token (mint one with `perkville-provider token`). "
                        "When set, the username and password are not used.",
                        secret=True,
                    ),
                    "token_url": _string_field(
                        "Token URL", "OAuth token endpoint (default https://www.perkville.com/api/token/)."
                    ),
                    "business_id": {
                        "label": "Business ID",
                        "description": "Default business for every call that does not name one.",
                        "schema": {"type": ["integer", "string", "null"]},
                    },
                    "scope": _string_field(
                        "Scope", "Space-separated scopes to request (default: all granted)."
                    ),
                    "timeout": {
                        "label": "Timeout (s)",
                        "description": "Read timeout in seconds for each request (default 30).",
                        "schema": {"type": ["number", "null"]},
                    },
                    "request_deadline": {
                        "label": "Request deadline (s)",
                        "description": "Wall-clock seconds one attempt may take, answer included "
                        "(default 1.5 x the read timeout).",
                        "schema": {"type": ["number", "null"]},
                    },
                    "max_response_bytes": {
                        "label": "Largest answer (bytes)",
                        "description": "Answers larger than this are refused (default 20,000,000).",
                        "schema": {"type": ["integer", "null"]},
                    },
                    "max_pages": {
                        "label": "Most pages per list",
                        "description": "A list walk stops with an error past this page (default 10,000).",
                        "schema": {"type": ["integer", "null"]},
                    },
                    "outage_breaker_seconds": {
                        "label": "Outage breaker (s)",
                        "description": "A batch stops after this long of nothing but 429s, or of "
                        "nothing but connection failures (default 300).",
                        "schema": {"type": ["number", "null"]},
                    },
                    "rate_limit_redis_conn_id": _string_field(
                        "Rate budget Redis connection",
                        "A redis connection id: every worker shares the budget through it (preferred "
                        "to the URL: its password is stored as one).",
                    ),
                    "rate_limit_redis_url": _string_field(
                        "Rate budget Redis URL",
                        "redis://:password@host:6379/0, when no Redis connection id is given.",
                        secret=True,
                    ),
                    "allow_insecure_http": {
                        "label": "Allow plain HTTP",
                        "description": "Allow an http:// host or token URL off this machine (default off).",
                        "schema": {"type": ["boolean", "null"]},
                    },
                },
            }
        ],
    }
