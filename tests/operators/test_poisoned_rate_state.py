"""An award run on a connection whose machine rate state was poisoned completes at its normal pace.

Issue 22: a huge, infinite or far-future next start in the state file parked every request (27 h,
73 years) or broke it (``OverflowError``); a symlink or a FIFO in its place broke every request.
Each is replaced with one WARNING naming the file, and the awards go through once each.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from perkville_provider.hooks.perkville import PerkvilleHook
from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator
from tests.helpers.operator_runs import TaskInstanceStub

CASEY = "casey@example.com"
CHECKIN_PERK = 501
AWARDS = 20
BUDGET = 20.0  # requests per second: the run takes about a second at its normal pace
YEAR_2099 = 4_070_908_800.0


def _poison(path: Path, kind: str, tmp_path: Path) -> None:
    path.unlink(missing_ok=True)
    if kind == "huge":
        path.write_text(json.dumps({"next_start": 1e300, "throttled_rate": 1.0}))
    elif kind == "inf":
        path.write_text('{"next_start": Infinity, "quiet_until": Infinity, "decreased_at": 1e308}')
    elif kind == "http-date-2099":
        path.write_text(json.dumps({"next_start": YEAR_2099, "quiet_until": YEAR_2099}))
    elif kind == "symlink":
        victim = tmp_path / "victim"
        victim.write_text("precious")
        path.symlink_to(victim)
    elif kind == "fifo":
        os.mkfifo(path)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["huge", "inf", "http-date-2099", "symlink", "fifo"])
def test_an_award_run_on_a_poisoned_rate_state_completes_at_its_normal_pace(sandbox, tmp_path, caplog, kind):
    probe = PerkvilleHook()
    probe.conventions()  # wires the hook (no request): the limiter knows its state file
    path = probe.limiter.schedule.path
    _poison(path, kind, tmp_path)
    awards = [{"trans_source_id": f"POISON:{kind}:{n}", "user_email": CASEY} for n in range(AWARDS)]
    operator = PerkvilleAwardPointsOperator(
        task_id="award", awards=awards, perk_id=CHECKIN_PERK, max_workers=4, max_requests_per_second=BUDGET
    )
    caplog.set_level(logging.WARNING)

    started = time.monotonic()
    summary = operator.execute({"ti": TaskInstanceStub()})
    took = time.monotonic() - started

    assert summary["awarded"] == AWARDS
    ledger = Counter(row["trans_source_id"] for row in sandbox.admin.ledger()["transactions"])
    assert ledger == Counter(award["trans_source_id"] for award in awards)
    assert took < 10, f"parked by the poisoned state: {took:.1f} s for {AWARDS} awards at {BUDGET:g}/s"
    warnings = [r.getMessage() for r in caplog.records if "rate state file" in r.getMessage()]
    (warning,) = warnings
    assert str(path) in warning
    if kind == "symlink":
        assert (tmp_path / "victim").read_text() == "precious"
