"""``perkville-provider doctor``: which of the API's unknowns hold on a real Perkville, from reads only.

The provider settles what Perkville does not document with stock tastypie's behaviour and lets a
connection's extras say otherwise (:mod:`perkville_provider.api_conventions`). The doctor asks the
API the connection names, with reads only, which of those choices fit there, and says which ones
no read can show; ``--write-extras`` prints (``--save`` stores) the extras that match.

The reads go through a hook of the connection (its token, paths, retries, redaction) whose adapter
refuses every write before it is sent (:mod:`perkville_provider.doctor.guard`); the one POST it lets
through is the token grant a connection without a stored token needs.

- :func:`run_doctor` -> :class:`Report`; :func:`render_table`, :func:`render_json`
- :func:`quick_summary` -> one line for a connection test
- :func:`save_extras` stores extras on a connection kept in Airflow's metadata database
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from perkville_provider.connection_settings import read_settings
from perkville_provider.doctor.findings import CANNOT_TELL, DIFFERS, HOLDS, Finding, Report
from perkville_provider.doctor.guard import ReadOnlyAdapter, WriteRefused
from perkville_provider.doctor.prober import Prober
from perkville_provider.doctor.probes import run_probes
from perkville_provider.doctor.render import render_json, render_table, summary_line
from perkville_provider.exceptions import PerkvilleConfigurationError, PerkvilleError
from perkville_provider.hooks.perkville import PerkvilleHook
from perkville_provider.redaction import redact_text
from perkville_provider.retries import RetryPolicy
from perkville_provider.session import base_url_of

__all__ = [
    "CANNOT_TELL",
    "DIFFERS",
    "HOLDS",
    "Finding",
    "Report",
    "WriteRefused",
    "quick_summary",
    "render_json",
    "render_table",
    "run_doctor",
    "save_extras",
]

#: A doctor is interactive: a few quick retries, never minutes of waiting.
DOCTOR_RETRIES = RetryPolicy(max_attempts=3, max_elapsed=30.0)


def guarded_hook(
    conn_id: str, *, retry_policy: RetryPolicy | None = None
) -> tuple[PerkvilleHook, ReadOnlyAdapter]:
    """A new hook of ``conn_id`` whose every request passes the read-only guard."""
    hook = PerkvilleHook(perkville_conn_id=conn_id, retry_policy=retry_policy or DOCTOR_RETRIES)
    settings = read_settings(hook.get_connection(conn_id), conn_id)
    guard = ReadOnlyAdapter(hook.pool_adapter, settings.credentials.token_url)
    hook.send_through(guard)
    return hook, guard


def run_doctor(
    conn_id: str = PerkvilleHook.default_conn_name, *, retry_policy: RetryPolicy | None = None
) -> Report:
    """Probe the API ``conn_id`` names with reads only and conclude on each unknown.

    :raises PerkvilleConfigurationError: a setting of the connection cannot be used (nothing sent)
    :raises PerkvilleError: the API cannot be reached or refuses the token (the first read says)
    """
    hook, guard = guarded_hook(conn_id, retry_policy=retry_policy)
    connection = hook.get_connection(conn_id)
    settings = read_settings(connection, conn_id)
    report = Report(conn_id=conn_id, base_url=base_url_of(connection), current_extras=settings.extras)
    prober = Prober(hook, guard, report)
    try:
        run_probes(prober, settings.business_id, conn_id, settings.extras)
    finally:
        report.exchanges = list(guard.exchanges)
        hook.get_conn().close()
    return report


def quick_summary(hook: PerkvilleHook) -> str:
    """One line for the connection's Test button: what the doctor concludes, what to set.

    Runs the doctor on the hook's connection with a guarded hook of its own (the given hook is not
    used to send, so its session and token stay as they are).
    """
    try:
        report = run_doctor(hook.perkville_conn_id)
    except PerkvilleError as error:
        return f"doctor could not probe: {error}"
    except Exception as error:  # the Test button must answer with a sentence, whatever happened
        return redact_text(f"doctor could not probe: {type(error).__name__}: {error}")
    differing = [found.key for found in report.findings if found.conclusion == DIFFERS]
    line = f"doctor: {summary_line(report)}"
    if differing:
        line += f" (differ: {', '.join(differing)})"
    extras = report.suggested_extras()
    if extras:
        line += f"; extras that fit: {json.dumps(extras, sort_keys=True)}"
    return f"{line}; run `perkville-provider doctor --conn-id {hook.perkville_conn_id}` for the table"


def save_extras(conn_id: str, extras: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extras`` into the connection ``conn_id`` of Airflow's metadata database.

    :return: the names of the extras stored and their values
    :raises PerkvilleConfigurationError: the connection is not in the metadata database (an
        environment variable or a secrets backend defines it: set the extras there)
    """
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with create_session() as session:
            connection = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
            if connection is not None:
                current = connection.extra_dejson if isinstance(connection.extra_dejson, dict) else {}
                connection.set_extra(json.dumps({**current, **extras}))
    except SQLAlchemyError as error:
        raise PerkvilleConfigurationError(
            f"connection {conn_id!r}: Airflow's metadata database could not be read or written "
            f"({type(error).__name__}); set these extras on the connection by hand"
        ) from None
    if connection is None:
        raise PerkvilleConfigurationError(
            f"connection {conn_id!r} is not in Airflow's metadata database (an environment variable "
            "or a secrets backend defines it); set these extras where it is defined"
        )
    return dict(extras)
