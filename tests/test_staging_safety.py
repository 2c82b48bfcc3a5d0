"""Staged files hold personal data: private modes, whole files, safe folder names, checked reads."""

from __future__ import annotations

import json
import logging
import os
import stat

import pendulum
import pytest

from perkville_provider import staging

NOW = pendulum.datetime(2026, 11, 22, tz="UTC")


@pytest.fixture(autouse=True)
def usual_umask():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_staged_files_are_0600_in_folders_0700(tmp_path, monkeypatch):
    monkeypatch.delenv(staging.FILE_MODE_ENV_VAR, raising=False)
    run_dir = staging.run_staging_dir(f"file://{tmp_path}/root", "dag", "run1")

    staging.stage_in_chunks(run_dir, "members", [{"user_email": "a@example.com"}], 10)
    staging.write_manifest(run_dir, run_id="run1")

    chunk = tmp_path / "root" / "dag" / "run1" / "members" / "00000.jsonl"
    assert mode(chunk) == 0o600
    assert mode(tmp_path / "root" / "dag" / "run1" / staging.MANIFEST_NAME) == 0o600
    for folder in ("root", "root/dag", "root/dag/run1", "root/dag/run1/members"):
        assert mode(tmp_path / folder) == 0o700, folder
    assert sorted(p.name for p in chunk.parent.iterdir()) == ["00000.jsonl"]  # no temporary left


def test_a_group_shared_folder_is_a_setting_and_a_wider_mode_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(staging.FILE_MODE_ENV_VAR, "0660")
    run_dir = staging.run_staging_dir(f"file://{tmp_path}", "dag", "run1")
    staging.write_records(run_dir / "x.jsonl", [{"a": 1}])
    assert mode(tmp_path / "dag" / "run1" / "x.jsonl") == 0o660
    assert mode(tmp_path / "dag" / "run1") == 0o770

    monkeypatch.setenv(staging.FILE_MODE_ENV_VAR, "0644")
    with pytest.raises(ValueError, match="PERKVILLE_STAGING_FILE_MODE"):
        staging.write_records(run_dir / "y.jsonl", [{"a": 1}])


def test_a_chunk_restaged_while_a_reader_reads_it_is_read_whole(tmp_path):
    path = staging.run_staging_dir(f"file://{tmp_path}", "dag", "run1") / "awards" / "00000.jsonl"
    staging.write_records(path, [{"n": n, "pad": "x" * 100} for n in range(1000)])

    with open(tmp_path / "dag" / "run1" / "awards" / "00000.jsonl", encoding="utf-8") as reader:
        reader.readline()
        staging.write_records(path, [{"n": "new"}])
        rest = reader.readlines()

    assert len(rest) == 999
    assert [json.loads(line)["n"] for line in rest] == list(range(1, 1000))
    assert [r["n"] for r in staging.read_staged_records(path)] == ["new"]


@pytest.mark.parametrize(
    "run_ids",
    [("..",), (".",), ("a:b", "a_b", "a~3ab"), ("x" * 250, "x" * 249 + "y"), ("../../etc",)],
    ids=["dotdot", "dot", "look-alikes", "long", "traversal"],
)
def test_every_run_id_gets_its_own_folder_inside_the_dags_folder(tmp_path, run_ids):
    dag_dir = tmp_path / "dag"
    folders = [staging.run_staging_dir(f"file://{tmp_path}", "dag", run_id) for run_id in run_ids]

    for folder in folders:
        staging.write_manifest(folder, run_id="x")
    names = [str(folder).rsplit("/", 1)[-1] for folder in folders]

    assert len(set(names)) == len(run_ids)
    assert sorted(p.name for p in dag_dir.iterdir()) == sorted(names)
    assert all(name not in (".", "..") and "/" not in name and len(name) <= 200 for name in names)


def test_retention_skips_what_it_cannot_read_and_removes_the_rest(tmp_path, caplog):
    root = f"file://{tmp_path}"
    for run_id, manifest in (
        ("old", {"staged_at": "2026-10-01T00:00:00+00:00"}),
        ("garbage-date", {"staged_at": "last tuesday"}),
        ("a-list", [1, 2]),
        ("not-json", None),
        ("future", {"staged_at": "2099-01-01T00:00:00+00:00"}),
        ("new", {"staged_at": "2026-11-21T00:00:00+00:00"}),
        ("old2", {"staged_at": "2026-10-02T00:00:00+00:00"}),
    ):
        staging.write_manifest(staging.run_staging_dir(root, "dag", run_id))
        text = "{not json" if manifest is None else json.dumps(manifest)
        (tmp_path / "dag" / run_id / staging.MANIFEST_NAME).write_text(text)

    with caplog.at_level(logging.WARNING):
        removed = staging.remove_expired_runs(root, "dag", retention_days=30, now=NOW)

    assert sorted(path.rsplit("/", 1)[-1] for path in removed) == ["future", "old", "old2"]
    assert sorted(p.name for p in (tmp_path / "dag").iterdir()) == [
        "a-list",
        "garbage-date",
        "new",
        "not-json",
    ]
    for name in ("a-list", "garbage-date", "not-json", "future"):
        assert name in caplog.text


def test_only_reports_in_the_folder_of_a_run_airflow_knows_count_as_settled(tmp_path, caplog):
    root = f"file://{tmp_path}"

    def stage(folder_run_id: str, manifest_run_id: str, key: str) -> None:
        run_dir = staging.run_staging_dir(root, "dag", folder_run_id)
        staging.write_manifest(run_dir, run_id=manifest_run_id, days=["2026-11-20"])
        staging.write_records(
            run_dir / staging.REPORTS_DIR / "awards-00000.jsonl", [{"key": key, "status": "awarded"}]
        )

    stage("scheduled__1", "scheduled__1", "REAL:1")
    stage("planted", "planted", "PLANTED:1")
    stage("renamed", "scheduled__1", "PLANTED:2")

    with caplog.at_level(logging.WARNING):
        keys = staging.settled_keys(
            root,
            "dag",
            days=["2026-11-20"],
            statuses=("awarded",),
            known_run=lambda run_id: run_id == "scheduled__1",
        )

    assert keys == {"REAL:1"}
    assert "planted" in caplog.text
    assert "renamed" in caplog.text
