"""perkville_provider.staging: layout, retention and what earlier reports say (no Airflow run needed)."""

from __future__ import annotations

import json

import pendulum

from perkville_provider import staging


def test_chunks_are_named_by_dag_run_and_chunk_and_a_rewrite_reads_the_same_records(tmp_path):
    run_dir = staging.run_staging_dir(
        f"file://{tmp_path}", "perkville_awards", "manual__2026-11-21T05:00:00+00:00"
    )
    records = [{"trans_source_id": f"A:{n}"} for n in range(5)]

    chunks = staging.stage_in_chunks(run_dir, "awards/2026-11-20", records, 2)

    assert [count for _, count in chunks] == [2, 2, 1]
    assert chunks[0][0] == "awards/2026-11-20/00000.jsonl"
    assert str(run_dir / chunks[0][0]) == (
        f"file://{tmp_path}/perkville_awards/manual__2026-11-21T05~3a00~3a00~2b00~3a00/awards/2026-11-20/00000.jsonl"
    )
    assert [r["trans_source_id"] for r in staging.read_staged_records([run_dir / p for p, _ in chunks])] == [
        f"A:{n}" for n in range(5)
    ]


def test_settled_keys_come_only_from_reports_of_runs_that_covered_the_days(tmp_path):
    root = f"file://{tmp_path}"
    for run_id, days, lines in (
        ("run1", ["2026-11-19"], [("A:1", "awarded"), ("A:2", "failed"), ("A:3", "daily_limited")]),
        ("run2", ["2026-11-01"], [("A:9", "awarded")]),
    ):
        run_dir = staging.run_staging_dir(root, "dag", run_id)
        staging.write_manifest(run_dir, run_id=run_id, days=days)
        report = run_dir / staging.REPORTS_DIR / "awards-00000.jsonl"
        staging.write_records(report, [{"key": key, "status": status} for key, status in lines])

    keys = staging.settled_keys(
        root,
        "dag",
        days=["2026-11-19", "2026-11-20"],
        statuses=("awarded", "daily_limited"),
        known_run=lambda run_id: True,
    )

    assert keys == {"A:1", "A:3"}


def stage_runs_and_clean_up(tmp_path, staged: dict[str, object]) -> list[str]:
    """Stage a run per name with its manifest's ``staged_at``; the names retention removed."""
    root = f"file://{tmp_path}"
    for run_id, staged_at in staged.items():
        staging.write_manifest(staging.run_staging_dir(root, "dag", run_id))
        (tmp_path / "dag" / run_id / staging.MANIFEST_NAME).write_text(json.dumps({"staged_at": staged_at}))
    removed = staging.remove_expired_runs(
        root, "dag", retention_days=30, now=pendulum.datetime(2026, 11, 22, tz="UTC")
    )
    return [path.rsplit("/", 1)[-1] for path in removed]


def test_cleanup_removes_only_runs_past_their_retention(tmp_path):
    removed = stage_runs_and_clean_up(
        tmp_path, {"old": "2026-10-01T00:00:00+00:00", "new": "2026-11-20T00:00:00+00:00"}
    )

    assert removed == ["old"]
    assert sorted(p.name for p in (tmp_path / "dag").iterdir()) == ["new"]
