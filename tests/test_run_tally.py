"""A run's counts from its per-record reports: each chunk's last try, each try, and the run."""

from __future__ import annotations

from perkville_provider import run_tally, staging

STATUSES = ("awarded", "duplicate", "daily_limited")


def _write(run_dir, chunk: int, try_number: int, lines: list[tuple[str, str]]) -> None:
    path = run_dir / staging.REPORTS_DIR / run_tally.report_name("awards", chunk, try_number)
    staging.write_records(
        path,
        [
            {
                "index": i,
                "key": key,
                "status": status,
                **({"metrics": {"points": 10}} if status == "awarded" else {}),
            }
            | (
                {"code": "pv_perk_not_earnable", "message": "perk 999 cannot be earned"}
                if status == "failed"
                else {}
            )
            for i, (key, status) in enumerate(lines)
        ],
    )


def test_a_run_that_took_two_tries_counts_what_each_try_added(tmp_path):
    """The sandbox died after 8 awards of chunk 0; the retry awarded the other 31 and met the 8 as
    duplicates. The run added 39 awards to the ledger: its report must say 39, not 31."""
    run_dir = staging.run_staging_dir(f"file://{tmp_path}", "dag", "run")
    keys = [f"K:{n}" for n in range(39)]
    _write(run_dir, 0, 1, [(key, "awarded") for key in keys[:8]])
    _write(run_dir, 0, 2, [(key, "duplicate") for key in keys[:8]] + [(key, "awarded") for key in keys[8:]])
    _write(run_dir, 1, 1, [("K:99", "failed"), ("K:98", "failed")])

    run = run_tally.run_counts(run_dir, "awards", added="awarded")
    tries = run_tally.try_counts(run_dir, "awards")
    chunks = run_tally.chunk_summaries(run_dir, "awards", 3, operation="award_points", statuses=STATUSES)

    assert (run["total"], run["awarded"], run["points"], run["failed"]) == (41, 39, 390, 2)
    assert run.get("duplicate", 0) == 0
    assert tries["1"] == {"total": 10, "awarded": 8, "points": 80, "failed": 2}
    assert tries["2"] == {"total": 39, "duplicate": 8, "awarded": 31, "points": 310}
    assert (chunks[0]["awarded"], chunks[0]["duplicate"]) == (31, 8), "a chunk's table is its last try"
    assert chunks[1]["failures_by_code"]["pv_perk_not_earnable"]["first_keys"] == ["K:99", "K:98"]
    assert chunks[2] is None, "a chunk that never ran wrote no report"


def test_a_clear_and_rerun_keeps_the_first_results(tmp_path):
    """After clear + re-run the chunk's new try finds everything settled: the run still added 3."""
    run_dir = staging.run_staging_dir(f"file://{tmp_path}", "dag", "run")
    _write(run_dir, 0, 1, [("A", "awarded"), ("B", "awarded"), ("C", "awarded")])
    _write(run_dir, 0, 2, [])

    assert run_tally.run_counts(run_dir, "awards", added="awarded")["awarded"] == 3
    assert run_tally.try_counts(run_dir, "awards")["1"]["awarded"] == 3
