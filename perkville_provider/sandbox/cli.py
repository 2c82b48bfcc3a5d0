"""``perkville-sandbox``: serve the local Perkville, or reseed its database file.

    perkville-sandbox serve --host 127.0.0.1 --port 8765 --db .demo/sandbox.db [fault flags]
    perkville-sandbox reset --db .demo/sandbox.db

On start, ``serve`` prints the base URL, the demo credentials and a ready
``export AIRFLOW_CONN_PERKVILLE_DEFAULT='...'`` line.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perkville_provider.sandbox import seed
from perkville_provider.sandbox.connection import airflow_conn_env_value
from perkville_provider.sandbox.faults import FAULT_FLAGS
from perkville_provider.sandbox.paths import ADMIN_PREFIX, TOKEN_PATH
from perkville_provider.sandbox.store.settings import DUPLICATE_MODES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perkville-sandbox", description="A local Perkville v2 API server.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the sandbox until interrupted")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    serve.add_argument("--db", default=":memory:", help="SQLite file (kept across restarts) or :memory:")
    for flag in FAULT_FLAGS:
        name = f"--{flag.flag.replace('_', '-')}"
        if flag.kind is bool:
            serve.add_argument(name, dest=flag.setting, action="store_const", const=True, help=flag.help)
            continue
        serve.add_argument(
            name, dest=flag.setting, metavar=flag.flag.upper(), type=flag.kind, default=None, help=flag.help
        )
    serve.add_argument(
        "--duplicate-mode",
        choices=DUPLICATE_MODES,
        default=None,
        help="answer to a repeated trans_source_id: 400 error (default), 200 or 201 with the existing one",
    )
    serve.add_argument("--faults-json", default=None, help=argparse.SUPPRESS)
    serve.add_argument(
        "--settings-json",
        default=None,
        help='start-up settings as JSON, e.g. the API-unknown modes: {"relations": "uri"} (README)',
    )
    serve.add_argument("--ready-file", default=None, help=argparse.SUPPRESS)
    serve.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument(
        "--http", choices=["auto", "httptools", "h11"], default="auto", help="HTTP implementation"
    )
    serve.add_argument("--quiet", action="store_true", help="do not print the banner")
    reset = commands.add_parser("reset", help="reseed a sandbox database file")
    reset.add_argument("--db", required=True)
    return parser


def _faults(args: argparse.Namespace) -> dict[str, Any]:
    faults: dict[str, Any] = json.loads(args.faults_json) if args.faults_json else {}
    for flag in FAULT_FLAGS:
        value = getattr(args, flag.setting)
        if value is not None:
            faults[flag.setting] = value
    return faults


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = json.loads(args.settings_json) if args.settings_json else {}
    if args.duplicate_mode:
        settings["duplicate_mode"] = args.duplicate_mode
    return settings


def banner(base_url: str) -> str:
    return "\n".join(
        [
            f"Perkville sandbox on {base_url}",
            f"  token URL {base_url}{TOKEN_PATH}, admin API {base_url}{ADMIN_PREFIX}",
            f"  business {seed.BUSINESS_ID}; admin {seed.ADMIN_USERNAME} / {seed.ADMIN_PASSWORD}; "
            f"front desk {seed.FRONTDESK_USERNAME} / {seed.FRONTDESK_PASSWORD}",
            f"  API client {seed.CLIENT_ID} / {seed.CLIENT_SECRET}",
            f"export AIRFLOW_CONN_PERKVILLE_DEFAULT={shlex.quote(airflow_conn_env_value(base_url))}",
        ]
    )


def _serve(args: argparse.Namespace) -> None:
    from perkville_provider.sandbox.runtime import serve

    if args.db != ":memory:":
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)

    def ready(base_url: str) -> None:
        if args.ready_file:
            tmp = f"{args.ready_file}.tmp"
            Path(tmp).write_text(base_url)
            os.replace(tmp, args.ready_file)
        if not args.quiet:
            print(banner(base_url), flush=True)

    serve(
        host=args.host,
        port=args.port,
        db=args.db,
        faults=_faults(args),
        settings=_settings(args),
        on_ready=ready,
        parent_pid=args.parent_pid,
        http=args.http,
    )


def _reset(args: argparse.Namespace) -> None:
    from perkville_provider.sandbox.store import Store

    store = Store(args.db, seeder=seed.load)
    store.reset()
    store.close()
    print(f"reseeded {args.db}")


#: Socket errors a user fixes by choosing another address: said in one line, not a traceback.
_ADDRESS_ERRORS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            _serve(args) if args.command == "serve" else _reset(args)
    except OSError as error:
        if args.command != "serve" or error.errno not in _ADDRESS_ERRORS:
            raise
        print(
            f"perkville-sandbox: cannot listen on {args.host}:{args.port}: {os.strerror(error.errno)} "
            "(choose another with --port, or --port 0 for a free one)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
