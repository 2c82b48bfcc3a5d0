"""Killing an award task mid-batch: it stops sending, and a retry finishes the rest exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter

from airflow.sdk.exceptions import AirflowException

from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator
from tests.helpers.operator_runs import TaskInstanceStub, execute_in_thread

CASEY = "casey@example.com"
CHECKIN_PERK = 501
AWARDS = [{"trans_source_id": f"KILL:{n}", "user_email": CASEY} for n in range(300)]


def _operator() -> PerkvilleAwardPointsOperator:
    return PerkvilleAwardPointsOperator(task_id="award", awards=AWARDS, perk_id=CHECKIN_PERK, max_workers=4)


def _ledger_ids(sandbox) -> Counter:
    return Counter(row["trans_source_id"] for row in sandbox.admin.ledger()["transactions"])


def _senders() -> list[threading.Thread]:
    """The batch's sending threads (its pool names them after the job)."""
    return [thread for thread in threading.enumerate() if thread.name.startswith("perkville-award_points")]


def _wait_until_every_request_is_answered(sandbox, before: int) -> None:
    """A request the task cut may still commit on the server: the ledger is final once none is in flight.

    ``before``: requests in flight before the task started (an earlier test's cut trickle may still
    run on this worker's sandbox); the task's own are answered once the count is back to it.
    """
    deadline = time.monotonic() + 30
    while sandbox.admin.stats()["in_flight"] > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sandbox.admin.stats()["in_flight"] <= before, "the sandbox still runs requests of the killed task"


def test_a_killed_award_task_stops_sending_and_its_retry_awards_the_rest_exactly_once(sandbox):
    sandbox.admin.set_faults(latency_ms=20)
    before = sandbox.admin.stats()["in_flight"]
    operator = _operator()
    worker, outcome = execute_in_thread(operator)
    deadline = time.monotonic() + 30
    while len(_ledger_ids(sandbox)) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _senders(), "the batch sends from its pool's threads"
    operator.on_kill()
    worker.join(timeout=30)

    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), AirflowException)
    assert "stopped before the end of the batch" in str(outcome["error"])
    assert _senders() == [], "a thread of the killed task could still send"
    _wait_until_every_request_is_answered(sandbox, before)
    after_kill = _ledger_ids(sandbox)
    assert 20 <= len(after_kill) < len(AWARDS)

    summary = _operator().execute({"ti": TaskInstanceStub()})

    assert summary["awarded"] == len(AWARDS) - len(after_kill), "nothing is sent once the task has stopped"
    assert summary["duplicate"] == len(after_kill)
    assert _ledger_ids(sandbox) == Counter(award["trans_source_id"] for award in AWARDS)


def test_on_kill_before_the_batch_starts_stops_nothing_that_runs_later(sandbox):
    operator = _operator()
    operator.on_kill()

    summary = operator.execute({"ti": TaskInstanceStub()})

    assert summary["awarded"] == len(AWARDS)
    assert _ledger_ids(sandbox) == Counter(award["trans_source_id"] for award in AWARDS)
