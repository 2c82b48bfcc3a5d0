"""Test DAG: every error path the hostile server can provoke, one connection per path.

Each connection (``AIRFLOW_CONN_PV_*``, set by the test) points at a prefix of the hostile server
that answers one hostile way. The paths that fail record by record run an award batch (summary,
report); every path runs through the probe (``test_connection()``, the business read, a list
walk); the test then greps all the output for secrets.
"""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import Param, dag, task

from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator

PATHS = (
    "echo_400",
    "echo_500",
    "grant_echo_500",
    "grant_echo_401",
    "regrant_refused",
    "bad_token_url",
    "inner_newline",
    "foreign_next",
)
#: The paths that get past the pre-flight read and fail record by record (summary, report); the
#: others fail before any record, which the probe's calls show.
BATCH_PATHS = ("echo_400", "echo_500", "regrant_refused")
log = logging.getLogger(__name__)


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
    params={"report_dir": Param("", type="string")},
)
def hostile_secrets():
    for name in BATCH_PATHS:
        PerkvilleAwardPointsOperator(
            task_id=f"award_{name}",
            perkville_conn_id=f"pv_{name}",
            awards=[
                {"trans_source_id": f"S:{name}:{n}", "user_email": "casey@example.com"} for n in range(3)
            ],
            perk_id=501,
            max_workers=2,
            max_failure_ratio=1.0,
            retries=0,
            report_path="{{ params.report_dir }}/" + name + ".jsonl",
        )

    @task
    def probe() -> dict[str, list[str]]:
        from perkville_provider.hooks.perkville import PerkvilleHook

        answers: dict[str, list[str]] = {}
        for name in PATHS:
            hook = PerkvilleHook(perkville_conn_id=f"pv_{name}")
            ok, message = hook.test_connection()
            log.info("test_connection(pv_%s): %s %s", name, ok, message)
            answers[name] = [message]
            for call in (hook.list_perks,):
                try:
                    answers[name].append(f"{len(call())} items")
                except Exception as error:
                    log.exception("%s(pv_%s) failed", call.__name__, name)
                    answers[name].append(f"{type(error).__name__}: {error}")
        return answers

    probe()


hostile_secrets()
