"""``perkville-provider``: helper commands for people setting the provider up.

``perkville-provider token --conn-id perkville_default`` runs the password grant with the
connection's username, password and client, and prints the token and a ready connection value
holding it in the ``token`` extra. Perkville's tokens do not expire, so storing this value once
means no password needs to live in Airflow. The token is printed to stdout on purpose (that is
the command's job); nothing is logged.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence

from perkville_provider.exceptions import PerkvilleError

__all__ = [
    "main",
    "mint_token",
    "sandbox_main",
    "stored_connection_json",
]

#: Extras a stored token makes unneeded: the client secret (and any older token).
_DROPPED_EXTRAS = frozenset({"client_secret", "token"})


def stored_connection_json(connection, token: str) -> str:
    """The connection as JSON with the token in its extra and without the password or secret.

    Every other extra is kept (proxies, TLS verification, business, scope...): the stored
    connection must work where the original did.
    """
    extra = {name: value for name, value in connection.extra_dejson.items() if name not in _DROPPED_EXTRAS}
    extra["token"] = token
    value = {"conn_type": connection.conn_type or "perkville", "extra": extra}
    if connection.host:
        value["host"] = connection.host
    if connection.port:
        value["port"] = connection.port
    if connection.schema:
        value["schema"] = connection.schema
    return json.dumps(value)


def mint_token(conn_id: str) -> int:
    """Print a new token for the connection (``perkville-provider token``); return the exit status."""
    from perkville_provider.hooks.perkville import PerkvilleHook

    hook = PerkvilleHook(perkville_conn_id=conn_id)
    try:
        token = hook.grant_token()
    except PerkvilleError as error:
        print(f"perkville-provider: could not mint a token for {conn_id!r}: {error}", file=sys.stderr)
        return 1
    connection = hook.get_connection(conn_id)
    value = stored_connection_json(connection, token)
    env_name = f"AIRFLOW_CONN_{conn_id.upper()}"
    print(f"# Token for connection {conn_id!r}. It does not expire: store it once, keep it secret.")
    print(f"token: {token}")
    print("# As an environment variable:")
    print(f"{env_name}={shlex.quote(value)}")
    print("# Or in the metadata database:")
    print(f"airflow connections add {shlex.quote(conn_id)} --conn-json {shlex.quote(value)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``perkville-provider`` command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="perkville-provider", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="run the password grant and print a storable token")
    token.add_argument("--conn-id", default="perkville_default", help="Airflow connection id")
    args = parser.parse_args(argv)
    return mint_token(args.conn_id)


def sandbox_main(argv: Sequence[str] | None = None) -> int:
    """The ``perkville-sandbox`` command: one line naming the ``[sandbox]`` extra when it is missing.

    The script is installed with the provider (scripts cannot depend on an extra), so it must say
    what to install instead of a traceback from deep inside the sandbox package.
    """
    try:
        from perkville_provider.sandbox.cli import main as sandbox_cli
    except ImportError as error:
        if "[sandbox] extra" not in str(error):
            raise
        print(f"perkville-sandbox: {error}", file=sys.stderr)
        return 1
    return sandbox_cli(argv)


if __name__ == "__main__":
    sys.exit(main())
