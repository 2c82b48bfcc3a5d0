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


# Written out, not imported: Airflow reads this module without importing the hook's modules
# (tests/test_provider_info.py checks each against its source).
DEFAULT_TOKEN_URL = "https://www.perkville.com/api/token/"  # noqa: S105 (a URL)
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 20_000_000
DEFAULT_MAX_PAGES = 10_000
DEFAULT_OUTAGE_SECONDS = 300.0
SHARINGS = ("machine", "redis", "process")
RELATIONS = ("uri", "id")
QUANTITY_FORMATS = ("number", "string")
DATETIME_FORMATS = ("api", "iso")

DOCS_URL = "https://pypi.org/project/airflow-provider-perkville/"
"""The README (PyPI shows it): the form links its "Connection set-up" and "Rate limits" sections."""


def _field(label: str, description: str, schema: dict[str, Any], *, markdown: bool = False) -> dict[str, Any]:
    """One extra in the form.

    A ``markdown`` description may hold links: Airflow renders ``description_md`` only when
    ``description`` is absent.
    """
    if markdown:
        return {"label": label, "schema": {**schema, "description_md": description}}
    return {"label": label, "description": description, "schema": schema}


# Every type includes "null": Airflow's form marks a field of a non-null type required (a star,
# and no saving it empty). Airflow's form saves every field, an untouched one as its default:
# the hook's default where it has one, else "" (which the hook reads as "not set", as it reads
# null), so that the saved extra holds no null; except an untouched secret, saved as null: Airflow
# shows a secret as "***", and an empty one came back from its Test button as a literal "***".


def _string_field(label: str, description: str, *, secret: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:
        schema["format"] = "password"
    else:
        schema["default"] = ""
    return _field(label, description, schema)


def _choice_field(label: str, description: str, choices: tuple[str, ...]) -> dict[str, Any]:
    """A select of ``choices``, the first the default (so the form saves a value, not null)."""
    return _field(
        label, description, {"type": ["string", "null"], "enum": list(choices), "default": choices[0]}
    )


def _number_field(label: str, description: str, kind: str, default: float | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": [kind, "null"], "default": ""}
    if default is not None:
        schema = {"type": [kind, "null"], "default": default, "minimum": 1 if kind == "integer" else 0}
    return _field(label, description, schema)


def _flag_field(label: str, description: str, default: bool) -> dict[str, Any]:
    return _field(label, description, {"type": ["boolean", "null"], "default": default})


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
                    # Port is shown because Airflow 3.3.2's Test button sends port 0 for a
                    # connection stored without one, and its API refuses that (see the README).
                    "hidden-fields": ["schema"],
                    "relabeling": {
                        "host": "API base URL",
                        "login": "Staff username (email)",
                        "password": "Staff password",
                        "port": "Port (443, or the one in the URL)",
                    },
                    "placeholders": {
                        "host": "https://api.perkville.com",
                        "login": "staff@your-business.com",
                        "port": "443",
                        "extra": '{"business_id": 9823}',
                    },
                },
                "conn-fields": {
                    "client_id": _field(
                        "Client ID",
                        "API client id from Perkville's registration. Every setting is explained in "
                        f"[the provider's documentation]({DOCS_URL}#connection-set-up).",
                        {"type": ["string", "null"], "default": ""},
                        markdown=True,
                    ),
                    "client_secret": _string_field(
                        "Client secret", "API client secret from Perkville's registration.", secret=True
                    ),
                    "token": _string_field(
                        "Token",
                        "A pre-issued long-lived token (mint one with `perkville-provider token`). "
                        "When set, the username and password are not used.",
                        secret=True,
                    ),
                    # Not "token_url": Airflow masks every extra whose name holds "token".
                    "oauth_url": _field(
                        "OAuth token URL",
                        "OAuth token endpoint (Perkville's is on another host than the API).",
                        {"type": ["string", "null"], "default": DEFAULT_TOKEN_URL},
                    ),
                    "business_id": _field(
                        "Business ID",
                        "Default business for every call that does not name one (a number).",
                        {"type": ["integer", "null"], "minimum": 1, "default": ""},
                    ),
                    "scope": _string_field(
                        "Scope", "Space-separated scopes to request (empty: all granted)."
                    ),
                    "timeout": _number_field(
                        "Timeout (s)",
                        "Read timeout in seconds for each request.",
                        "number",
                        DEFAULT_READ_TIMEOUT,
                    ),
                    "request_deadline": _number_field(
                        "Request deadline (s)",
                        "Wall-clock seconds one attempt may take, answer included "
                        "(empty: 1.5 x the read timeout).",
                        "number",
                    ),
                    "max_response_bytes": _number_field(
                        "Largest answer (bytes)",
                        "Answers larger than this are refused.",
                        "integer",
                        DEFAULT_MAX_RESPONSE_BYTES,
                    ),
                    "max_pages": _number_field(
                        "Most pages per list",
                        "A list walk stops with an error past this page.",
                        "integer",
                        DEFAULT_MAX_PAGES,
                    ),
                    "max_requests_per_second": _number_field(
                        "Requests per second",
                        "The connection's rate budget, shared as the next setting says "
                        "(empty: Perkville's documented limit).",
                        "number",
                    ),
                    "rate_limit_sharing": _field(
                        "Rate budget shared by",
                        f"Who shares the budget: machine, redis or process (empty: redis when a Redis "
                        f"URL is set, else machine). See [Rate limits]({DOCS_URL}#rate-limits).",
                        {
                            "type": ["string", "null"],
                            "enum": ["", *SHARINGS],
                            "default": "",
                            "values_display": {"": "automatic"},
                        },
                        markdown=True,
                    ),
                    "rate_limit_redis_url": _string_field(
                        "Rate budget Redis URL",
                        "redis://:password@host:6379/0 shared by every worker, when no Redis connection "
                        "id is given.",
                        secret=True,
                    ),
                    "adaptive_pacing": _flag_field(
                        "Adaptive pacing", "Slow down when Perkville answers 429, speed up again after.", True
                    ),
                    "rate_limit_dir": _string_field(
                        "Rate budget folder",
                        "Where machine sharing keeps its state, private to the user (empty: "
                        "$AIRFLOW_HOME/perkville-rate).",
                    ),
                    "paths": _field(
                        "Resource paths",
                        "Paths that differ from the defaults, e.g. "
                        '{"external_members": "/v2/external_members/"} (empty: none).',
                        {"type": ["object", "null"], "default": {}},
                    ),
                    "relations": _choice_field(
                        "Related objects sent as", "uri (/v2/perks/501/) or id (501).", RELATIONS
                    ),
                    "quantity_format": _choice_field(
                        "Quantities sent as", 'number (9.99) or string ("9.99").', QUANTITY_FORMATS
                    ),
                    "datetime_format": _choice_field(
                        "Date-times sent as",
                        "api (2026-05-01 11:30:00+00:00) or iso (2026-05-01T07:30:00-04:00).",
                        DATETIME_FORMATS,
                    ),
                    "verify": _flag_field(
                        "Verify TLS certificates",
                        "Off only for a test server; a private CA's bundle path goes in the raw Extra.",
                        True,
                    ),
                    "allow_insecure_http": _flag_field(
                        "Allow plain HTTP", "Allow an http:// host or token URL off this machine.", False
                    ),
                    "outage_breaker_seconds": _number_field(
                        "Outage breaker (s)",
                        "A batch stops after this long of nothing but 429s, or of nothing but "
                        "connection failures.",
                        "number",
                        DEFAULT_OUTAGE_SECONDS,
                    ),
                    "rate_limit_redis_conn_id": _string_field(
                        "Rate budget Redis connection",
                        "A redis connection id: every worker shares the budget through it (preferred "
                        "to the URL: its password is stored as one).",
                    ),
                },
            }
        ],
    }
