"""Test DAG: every error path the hostile server can provoke, one connection per path.

Each connection (``AIRFLOW_CONN_PV_*``, set by the test) points at a prefix of the hostile server
that answers one hostile way. Each path runs an award batch (pre-flight, awards, summary, report)
and a probe (``test_connection()``, a list walk); the test then greps all the output for secrets.
"""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import Param, dag, task

from perkville_provider.operators.transactions import PerkvilleAwardPointsOperator

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
log = logging.getLogger(__name__)


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
    params={"report_dir": Param("", type="string")},
)
def hostile_secrets():
    for name in PATHS:
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
            try:
                walked = f"{len(hook.list_perks())} perks"
            except Exception as error:
                log.exception("list_perks(pv_%s) failed", name)
                walked = f"{type(error).__name__}: {error}"
            answers[name] = [message, walked]
        return answers

    probe()


hostile_secrets()
