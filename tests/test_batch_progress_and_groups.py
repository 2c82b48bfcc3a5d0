"""What a batch tells a user while and after it runs: progress with a total for staged input, and
failures grouped by code (in the log, the summary, and merged chunks)."""

from __future__ import annotations

import logging
import re
from typing import Any

from perkville_provider import staging
from perkville_provider.batch import Outcome, format_summary, merge_summaries, run_batch
from perkville_provider.exceptions import ErrorDetail, PerkvilleValidationError
from tests.test_batch import _job


def _perk_not_earnable(record: dict[str, Any]) -> Outcome:
    if record["n"] % 10 == 0:
        return Outcome("awarded", metrics={"points": 1})
    return Outcome.failed(
        PerkvilleValidationError(
            "perk 999 cannot be earned",
            status=400,
            details=(ErrorDetail("perk", "pv_perk_not_earnable", "perk 999 cannot be earned"),),
        )
    )


def test_staged_input_logs_done_of_total_the_percentage_and_the_time_left(tmp_path, caplog):
    run_dir = staging.run_staging_dir(f"file://{tmp_path}", "dag", "run")
    (name, count), *_ = staging.stage_in_chunks(
        run_dir, "awards", [{"id": f"r{n}", "n": n} for n in range(6)], 10
    )
    records = staging.read_staged_records(str(run_dir / name))
    caplog.set_level(logging.INFO)

    run_batch(records, _job(), max_workers=1, progress_interval=0.0, logger=logging.getLogger("progress"))

    progress = [
        r.getMessage() for r in caplog.records if r.name == "progress" and "/6 records" in r.getMessage()
    ]
    assert count == 6
    assert progress, caplog.text
    assert progress[0] == "test_awards: 0/6 records (0%), starting"
    assert "test_awards: 6/6 (100%) records in" in caplog.text
    assert re.search(
        r"test_awards: \d/6 records \(\d+%\), [\d.]+ records/s, (\d+s left|time left unknown)", progress[-1]
    )


def test_failures_are_grouped_by_code_in_the_log_and_the_summary(caplog):
    caplog.set_level(logging.WARNING)
    records = [{"id": f"r{n}", "n": n} for n in range(40)]

    summary = run_batch(records, _job(process=_perk_not_earnable), max_workers=2)

    groups = summary["failures_by_code"]
    assert list(groups) == ["pv_perk_not_earnable"]
    group = groups["pv_perk_not_earnable"]
    assert group["count"] == 36
    assert group["first_keys"] == ["r1", "r2", "r3", "r4", "r5"]
    assert "perk 999 cannot be earned" in group["message"]
    one_by_one = [
        r for r in caplog.records if "pv_perk_not_earnable:" in r.getMessage() and "record " in r.getMessage()
    ]
    assert len(one_by_one) == 3, "the same error is not repeated per record"
    assert "pv_perk_not_earnable  36  (r1, r2, r3, r4, r5, ...)" in caplog.text
    assert "pv_perk_not_earnable  36  (r1, r2, r3, r4, r5, ...)" in format_summary(summary)


def test_merged_chunks_add_up_their_groups():
    chunks = [
        run_batch([{"id": f"c{c}r{n}", "n": n} for n in range(1, 4)], _job(process=_perk_not_earnable))
        for c in range(3)
    ]

    merged = merge_summaries(iter(chunks))

    group = merged["failures_by_code"]["pv_perk_not_earnable"]
    assert group["count"] == 9
    assert group["first_keys"] == ["c0r1", "c0r2", "c0r3", "c1r1", "c1r2"]
