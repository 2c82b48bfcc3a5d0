"""The Airflow connection that points at a sandbox, as a dict or as an ``AIRFLOW_CONN_*`` JSON value.

Kept free of server imports so the CLI banner, ``SandboxHandle`` and the demo can share it.
"""

from __future__ import annotations

import json
from typing import Any

from perkville_provider.sandbox import seed
from perkville_provider.sandbox.paths import TOKEN_PATH


def airflow_connection(base_url: str, **overrides: Any) -> dict[str, Any]:
    """A ``perkville`` connection for the sandbox's demo admin; ``overrides`` replace top-level keys,
    and an ``extra`` override is merged into the default extra."""
    conn: dict[str, Any] = {
        "conn_type": "perkville",
        "host": base_url,
        "login": seed.ADMIN_USERNAME,
        "password": seed.ADMIN_PASSWORD,
        "extra": {
            "client_id": seed.CLIENT_ID,
            "client_secret": seed.CLIENT_SECRET,
            "oauth_url": f"{base_url}{TOKEN_PATH}",
            "business_id": seed.BUSINESS_ID,
        },
    }
    extra = overrides.pop("extra", None)
    conn.update(overrides)
    if extra:
        conn["extra"] = {**conn["extra"], **extra}
    return conn


def airflow_conn_env_value(base_url: str, **overrides: Any) -> str:
    """The JSON value for ``AIRFLOW_CONN_PERKVILLE_DEFAULT``."""
    return json.dumps(airflow_connection(base_url, **overrides))
