"""The sandbox's fixed paths, in one place for the server, the launcher, the CLI and the connection.

Kept free of imports so anything (the CLI banner, the Airflow connection) can use it cheaply.
"""

from __future__ import annotations

TOKEN_PATH = "/api/token/"  # noqa: S105 - a path, not a secret
# The docs name the batch agreement-acceptance resource but not its path; this is the sandbox's choice.
AGREEMENT_ACCEPT_PATH = "/v2/agreements-batch/"
ADMIN_PREFIX = "/_sandbox/"
