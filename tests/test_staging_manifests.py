"""Staged runs' manifests are read back from storage: an unreadable ``staged_at`` never stops the clean-up."""

from __future__ import annotations

import json

import pendulum
import pytest

from perkville_provider import staging


@pytest.mark.parametrize("staged_at", ["12:30", "P3D", "not a time", 12, None])
def test_a_manifest_without_a_full_staged_at_is_kept_and_the_expired_runs_are_still_removed(
    tmp_path, staged_at
):
    root = f"file://{tmp_path}"
    for run_id, when in (("odd", staged_at), ("old", "2026-10-01T00:00:00+00:00")):
        staging.write_manifest(staging.run_staging_dir(root, "dag", run_id))
        (tmp_path / "dag" / run_id / staging.MANIFEST_NAME).write_text(json.dumps({"staged_at": when}))

    removed = staging.remove_expired_runs(
        root, "dag", retention_days=30, now=pendulum.datetime(2026, 11, 22, tz="UTC")
    )

    assert [path.rsplit("/", 1)[-1] for path in removed] == ["old"]
    assert sorted(p.name for p in (tmp_path / "dag").iterdir()) == ["odd"]
