"""Staged runs' manifests are read back from storage: an unreadable ``staged_at`` never stops the clean-up."""

from __future__ import annotations

import pytest

from tests.test_staging import stage_runs_and_clean_up


@pytest.mark.parametrize("staged_at", ["12:30", "P3D", "not a time", 12, None])
def test_a_manifest_without_a_full_staged_at_is_kept_and_the_expired_runs_are_still_removed(
    tmp_path, staged_at
):
    removed = stage_runs_and_clean_up(tmp_path, {"odd": staged_at, "old": "2026-10-01T00:00:00+00:00"})

    assert removed == ["old"]
    assert sorted(p.name for p in (tmp_path / "dag").iterdir()) == ["odd"]
