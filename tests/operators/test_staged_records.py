"""Operators reading staged JSON Lines files (issue 11), in a real mapped DAG against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perkville_provider import staging
from perkville_provider.operators._settings import as_records
from tests.helpers.dag_runs import task_states, transactions_by_source, xcom_values


def _write(path: Path, lines: list[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def _award(n: int, email: str = "casey@example.com") -> str:
    return json.dumps({"trans_source_id": f"GYM:DT:CHECKIN:{n}", "user_email": email})


def test_a_mapped_run_reads_its_staged_chunks_bad_lines_are_invalid_and_a_rerun_awards_nothing_new(
    run_dag, sandbox, tmp_path
):
    first = _write(
        tmp_path / "chunks" / "00000.jsonl", [_award(1), "{not json", _award(2, "robin@example.com")]
    )
    second = _write(tmp_path / "chunks" / "00001.jsonl", [_award(3), "", '["a list"]', _award(4)])
    url = "file://" + second  # a URL and a plain path are both accepted

    run = run_dag("operators_awards", awards=[first, url], chunk_size=1, max_failure_ratio=0.5)

    assert run.state == "success"
    chunks = xcom_values(run, "award_points")
    assert [chunks[i]["total"] for i in (0, 1)] == [3, 3]
    failures = {
        (entry["chunk"], entry["field"], entry["code"]): entry
        for entry in xcom_values(run, "merged")[-1]["failures"]
    }
    assert set(failures) == {(0, "line", "bad_line"), (1, "line", "bad_line")}
    assert f"line 2 of file://{first}" in failures[(0, "line", "bad_line")]["message"]
    assert f"line 3 of {url}" in failures[(1, "line", "bad_line")]["message"]
    expected = {f"GYM:DT:CHECKIN:{n}": 1 for n in (1, 2, 3, 4)}
    assert transactions_by_source(sandbox) == expected

    rerun = run_dag("operators_awards", awards=[first, url], chunk_size=1, max_failure_ratio=0.5)

    assert rerun.state == "success"
    merged = xcom_values(rerun, "merged")[-1]
    assert (merged["awarded"], merged["duplicate"], merged["invalid"]) == (0, 4, 2)
    assert transactions_by_source(sandbox) == expected


def test_a_missing_staged_file_fails_its_task_naming_the_path_and_sends_nothing(run_dag, sandbox, tmp_path):
    present = _write(tmp_path / "00000.jsonl", [_award(7)])
    missing = str(tmp_path / "gone" / "00001.jsonl")

    run = run_dag("operators_awards", awards=[present, missing], chunk_size=1)

    states = task_states(run)
    assert states[("award_points", 0)] == "success"
    assert states[("award_points", 1)] == "failed"
    assert transactions_by_source(sandbox) == {"GYM:DT:CHECKIN:7": 1}
    with pytest.raises(Exception, match=f"awards: staged records file not found: file://{missing}"):
        as_records(missing, "awards")


def test_staged_records_are_read_lazily_one_line_at_a_time(tmp_path):
    path = _write(tmp_path / "big.jsonl", [_award(n) for n in range(1000)])

    records = as_records([path, path], "awards")

    assert not isinstance(records, list | tuple), "read from the files, not a list held in memory"
    lines = iter(records)
    assert iter(lines) is lines, "a generator over the lines"
    assert next(lines)["trans_source_id"] == "GYM:DT:CHECKIN:0"
    assert sum(1 for _ in lines) == 1999
    assert len(records) == 2000, "counted (for progress) without parsing or keeping them"


@pytest.mark.parametrize(
    ("value", "staged"),
    [
        ("/shared/staging/x.jsonl", True),
        ("s3://bucket/x.jsonl", True),
        ("relative/x.jsonl", True),
        (["a@example.com", "b@example.com"], False),
        ('[{"trans_source_id": "A:1"}]', False),
        ([{"trans_source_id": "A:1"}], False),
        ([], False),
    ],
)
def test_what_names_a_staged_file_and_what_is_records(value, staged):
    assert staging.is_staged_reference(value) is staged
