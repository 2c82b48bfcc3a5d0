"""``perkville-provider``: helper commands for people setting the provider up.

``perkville-provider token --conn-id perkville_default`` runs the password grant with the
connection's username, password and client, and prints the token and a ready connection value
holding it in the ``token`` extra. Perkville's tokens do not expire, so storing this value once
means no password needs to live in Airflow. The token is printed to stdout on purpose (that is
the command's job); nothing is logged.

``perkville-provider doctor --conn-id perkville_default [--json] [--write-extras [--save]]`` probes
the API the connection names with reads only (:mod:`perkville_provider.doctor`) and prints which of
the API's unknowns hold there; ``--write-extras`` prints the extras that fit, ``--save`` stores them
on the connection (metadata database only).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
from collections.abc import Iterator, Sequence

from perkville_provider.exceptions import PerkvilleError

__all__ = [
    "doctor",
    "main",
    "mint_token",
    "sandbox_main",
    "stored_connection_json",
]

_PROCESS_CONTEXT = "_AIRFLOW_PROCESS_CONTEXT"
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


@contextlib.contextmanager
def _metadata_database_connections() -> Iterator[None]:
    """Look connections up as Airflow's scheduler does: environment, secrets backends, metadata database.

    Outside a task, Airflow 3 reads connections from environment variables and secrets backends
    only, unless the process says it is a server (``_AIRFLOW_PROCESS_CONTEXT=server``, which the
    scheduler sets): the doctor, run by an operator next to Airflow, must see the connection that
    ``--save`` writes to. An explicit context is kept; the previous value is restored after.
    """
    previous = os.environ.get(_PROCESS_CONTEXT)
    os.environ.setdefault(_PROCESS_CONTEXT, "server")
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_PROCESS_CONTEXT, None)
        else:
            os.environ[_PROCESS_CONTEXT] = previous


def doctor(conn_id: str, *, as_json: bool = False, write_extras: bool = False, save: bool = False) -> int:
    """Run the doctor on the connection and print its table or JSON (``perkville-provider doctor``).

    :return: 0 when it ran (whatever it concluded), 1 when it could not probe or save
    """
    from perkville_provider.doctor import render_json, render_table, run_doctor, save_extras

    try:
        with _metadata_database_connections():
            report = run_doctor(conn_id)
    except PerkvilleError as error:
        print(f"perkville-provider doctor: could not probe {conn_id!r}: {error}", file=sys.stderr)
        return 1
    extras = report.suggested_extras()
    if as_json:
        print(render_json(report))
    else:
        print(render_table(report))
    if write_extras and not as_json:
        print("# Extras to set on the connection (the rest stay at their defaults):")
        print(json.dumps(extras, indent=2, sort_keys=True))
    if save and extras:
        try:
            save_extras(conn_id, extras)
        except PerkvilleError as error:
            print(f"perkville-provider doctor: not saved: {error}", file=sys.stderr)
            return 1
        print(f"# Saved {', '.join(sorted(extras))} on connection {conn_id!r}.", file=sys.stderr)
    elif save:
        print(f"# Nothing to save on connection {conn_id!r}: the defaults fit.", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``perkville-provider`` command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="perkville-provider", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="run the password grant and print a storable token")
    token.add_argument("--conn-id", default="perkville_default", help="Airflow connection id")
    check = commands.add_parser("doctor", help="probe the API with reads only; say which unknowns hold")
    check.add_argument("--conn-id", default="perkville_default", help="Airflow connection id")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--write-extras", action="store_true", help="print the extras that fit what was seen")
    check.add_argument(
        "--save", action="store_true", help="with --write-extras: store them on the connection"
    )
    args = parser.parse_args(argv)
    if args.command == "doctor":
        if args.save and not args.write_extras:
            parser.error("--save needs --write-extras")
        return doctor(args.conn_id, as_json=args.json, write_extras=args.write_extras, save=args.save)
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
