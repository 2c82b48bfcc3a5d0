"""The batch engine with plain Python callables: no HTTP, no Airflow."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from perkville_provider.batch import (
    MAX_FAILURES_SHOWN,
    SUMMARY_MAX_BYTES,
    BatchJob,
    Outcome,
    chunked,
    exceeds_failure_ratio,
    failures_are_retriable,
    format_summary,
    merge_summaries,
    run_batch,
)
from perkville_provider.records import RecordValidationError


class TransientError(Exception):
    """Stands for a 5xx or lost connection: a retry may succeed."""

    code = "server_error"
    status = 503


class RefusedError(Exception):
    """Stands for a typed 400 from the API: a retry cannot help."""

    status = 400

    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: refused ({code})")
        self.field = field
        self.code = code


def _prepare(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record.get("n"), int):
        raise RecordValidationError("n", f"must be an integer, got {record.get('n')!r}")
    return record


def _job(process=None, **overrides: Any) -> BatchJob[dict[str, Any]]:
    def award(record: dict[str, Any]) -> Outcome:
        return Outcome("awarded", detail={"n": record["n"]}, metrics={"points": record["n"]})

    settings: dict[str, Any] = {
        "name": "test_awards",
        "prepare": _prepare,
        "process": process or award,
        "key_fields": ("id",),
        "statuses": ("awarded", "duplicate"),
        "metrics": ("points",),
        "preview": lambda record: {"would_award": record["n"]},
    }
    settings.update(overrides)
    return BatchJob(**settings)


def _records(count: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "n": i} for i in range(count)]


def test_every_record_gets_exactly_one_outcome_and_the_counts_add_up():
    records = [*_records(10), {"id": "bad", "n": "x"}]
    summary = run_batch(records, _job(), max_workers=4)
    assert summary["total"] == 11
    assert summary["awarded"] == 10
    assert summary["duplicate"] == 0
    assert summary["invalid"] == 1
    assert summary["failed"] == 0
    assert summary["points"] == sum(range(10))
    assert summary["failures"] == [
        {
            "index": 10,
            "key": "bad",
            "status": "invalid",
            "field": "n",
            "code": "invalid",
            "message": "must be an integer, got 'x'",
        }
    ]


def test_an_invalid_record_is_never_processed():
    sent: list[int] = []

    def process(record: dict[str, Any]) -> Outcome:
        sent.append(record["n"])
        return Outcome("awarded")

    run_batch([{"id": "a", "n": None}, {"id": "b", "n": 2}], _job(process), max_workers=2)
    assert sent == [2]


def test_an_exception_fails_only_its_record_with_its_code_field_and_message():
    def process(record: dict[str, Any]) -> Outcome:
        if record["n"] == 3:
            raise RefusedError("user_email", "pv_user_not_found")
        if record["n"] == 5:
            raise KeyError("boom")
        return Outcome("awarded")

    summary = run_batch(_records(8), _job(process), max_workers=3)
    assert summary["awarded"] == 6
    assert summary["failed"] == 2
    refused, unexpected = summary["failures"]
    assert (refused["index"], refused["key"], refused["field"], refused["code"]) == (
        3,
        "r3",
        "user_email",
        "pv_user_not_found",
    )
    assert unexpected["code"] == "KeyError"
    assert "boom" in unexpected["message"]


def test_records_are_sent_concurrently_up_to_max_workers():
    """Each record waits for four others to be in flight with it: only five at once get through."""
    active = 0
    peak = 0
    lock = threading.Lock()
    five_at_once = threading.Barrier(5)

    def process(record: dict[str, Any]) -> Outcome:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            five_at_once.wait(timeout=10)
        finally:
            with lock:
                active -= 1
        return Outcome("awarded")

    summary = run_batch(_records(40), _job(process), max_workers=5)
    assert summary["awarded"] == 40, "fewer than five records were ever in flight together"
    assert peak == 5


def test_the_input_is_consumed_lazily_with_a_bounded_window():
    produced = 0
    most_ahead = 0
    finished = 0
    lock = threading.Lock()

    def generate() -> Iterator[dict[str, Any]]:
        nonlocal produced, most_ahead
        for record in _records(500):
            produced += 1
            with lock:
                most_ahead = max(most_ahead, produced - finished)
            yield record

    def process(record: dict[str, Any]) -> Outcome:
        nonlocal finished
        with lock:
            finished += 1
        return Outcome("awarded")

    summary = run_batch(generate(), _job(process), max_workers=4)
    assert summary["total"] == 500
    assert most_ahead <= 4 * 4 + 1


def test_a_dry_run_validates_and_previews_but_never_processes():
    def process(record: dict[str, Any]) -> Outcome:
        raise AssertionError("a dry run must not send")

    summary = run_batch([*_records(3), {"id": "bad"}], _job(process), dry_run=True)
    assert summary["dry_run"] is True
    assert summary["would_send"] == 3
    assert summary["invalid"] == 1
    assert "awarded" not in summary


def test_the_report_has_one_json_line_per_record_with_its_outcome(tmp_path):
    report = tmp_path / "nested" / "report.jsonl"
    records = [*_records(4), {"id": "bad", "n": "?"}]
    summary = run_batch(records, _job(), report_path=str(report), max_workers=2)
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert summary["report_path"] == str(report)
    assert sorted(line["index"] for line in lines) == [0, 1, 2, 3, 4]
    by_key = {line["key"]: line for line in lines}
    assert by_key["r2"] == {"index": 2, "key": "r2", "status": "awarded", "n": 2, "metrics": {"points": 2}}
    assert by_key["bad"]["status"] == "invalid"
    assert by_key["bad"]["field"] == "n"


def test_a_dry_run_report_says_what_would_be_sent(tmp_path):
    report = tmp_path / "dry.jsonl"
    run_batch(_records(2), _job(), dry_run=True, report_path=report)
    lines = sorted((json.loads(line) for line in report.read_text().splitlines()), key=lambda x: x["index"])
    assert [line["request"] for line in lines] == [{"would_award": 0}, {"would_award": 1}]


def test_the_summary_keeps_the_first_hundred_failures_and_stays_small_for_huge_batches():
    """Twenty times the failures shown, each about 1 KB: uncapped, the summary would be 2 MB."""
    count = 20 * MAX_FAILURES_SHOWN

    def records() -> Iterator[dict[str, Any]]:
        for i in range(count):
            yield {"id": f"member-{i:06d}-" + "x" * 200, "n": "not a number " * 50}

    summary = run_batch(records(), _job(), max_workers=2)
    assert summary["invalid"] == count
    assert len(summary["failures"]) == MAX_FAILURES_SHOWN
    assert [entry["index"] for entry in summary["failures"]] == list(range(MAX_FAILURES_SHOWN))
    assert summary["failures_not_shown"] == count - MAX_FAILURES_SHOWN
    assert len(json.dumps(summary)) < SUMMARY_MAX_BYTES


def test_the_first_failures_are_the_lowest_indexes_even_when_they_finish_last():
    def process(record: dict[str, Any]) -> Outcome:
        time.sleep(0.001 * (300 - record["n"]) / 30)
        raise RefusedError("n", "pv_nope")

    summary = run_batch(_records(300), _job(process), max_workers=8)
    assert [entry["index"] for entry in summary["failures"]] == list(range(MAX_FAILURES_SHOWN))


def test_inline_results_are_capped_and_point_to_the_report():
    job = _job(inline_results=5)
    summary = run_batch(_records(12), job, max_workers=3)
    assert [entry["key"] for entry in summary["results"]] == ["r0", "r1", "r2", "r3", "r4"]
    assert summary["results"][1] == {"index": 1, "key": "r1", "status": "awarded", "n": 1}
    assert summary["results_not_shown"] == 7


def test_progress_is_logged_with_done_total_rate_and_time_left(caplog):
    def process(record: dict[str, Any]) -> Outcome:
        time.sleep(0.01)
        return Outcome("awarded")

    with caplog.at_level(logging.INFO, logger="perkville-test"):
        run_batch(
            _records(60),
            _job(process),
            max_workers=2,
            progress_interval=0.05,
            logger=logging.getLogger("perkville-test"),
        )
    progress = [
        r.getMessage() for r in caplog.records if "records/s" in r.getMessage() and "/60" in r.getMessage()
    ]
    assert progress, "expected progress lines on a batch longer than the interval"
    assert "records/s" in progress[0]
    assert "s left" in progress[0]


def test_the_failure_ratio_counts_invalid_and_failed_but_not_duplicates():
    summary = {"total": 10, "awarded": 5, "duplicate": 3, "invalid": 1, "failed": 1}
    assert not exceeds_failure_ratio(summary, 0.2)
    assert exceeds_failure_ratio(summary, 0.1)
    assert not exceeds_failure_ratio({"total": 4, "duplicate": 4, "invalid": 0, "failed": 0}, 0)


def test_only_transient_failures_make_a_retry_worthwhile():
    def process(record: dict[str, Any]) -> Outcome:
        if record["n"] == 0:
            raise TransientError("503 from the API")
        raise RefusedError("perk", "pv_bad_perk")

    transient = run_batch(_records(3), _job(process))
    assert failures_are_retriable(transient)
    refused = run_batch(_records(3)[1:], _job(process))
    assert not failures_are_retriable(refused)
    invalid_only = run_batch([{"id": "x"}], _job())
    assert not failures_are_retriable(invalid_only)


def test_chunked_splits_any_iterable_into_lists_for_expand():
    assert chunked(iter(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert chunked([], 3) == []
    with pytest.raises(ValueError, match="chunk size"):
        chunked([1], 0)


def test_merged_summaries_add_up_counts_and_keep_the_failure_cap():
    bad = [{"id": f"b{i}"} for i in range(80)]
    first = run_batch([*_records(5), *bad], _job(), report_path=None)
    second = run_batch([*bad, *_records(3)], _job())
    merged = merge_summaries([first, None, second])
    assert merged["total"] == 168
    assert merged["awarded"] == 8
    assert merged["invalid"] == 160
    assert merged["points"] == sum(range(5)) + sum(range(3))
    assert len(merged["failures"]) == MAX_FAILURES_SHOWN
    assert merged["failures_not_shown"] == 60
    assert merged["failures"][0]["chunk"] == 0
    assert merged["failures"][-1]["chunk"] == 2
    assert merged["failures"][-1]["key"] == "b19"


def test_format_summary_shows_the_counts_and_the_first_failures():
    summary = run_batch([*_records(2), {"id": "bad", "n": "?"}], _job())
    text = format_summary(summary)
    assert "Perkville test_awards" in text
    assert "awarded" in text
    assert "invalid" in text
    assert "bad  n  invalid: must be an integer" in text
    assert "failure ratio" in text


def test_a_stop_signal_takes_no_new_record_and_counts_every_one_already_sent():
    stop = threading.Event()
    sent: list[int] = []
    lock = threading.Lock()

    def award(record: dict[str, Any]) -> Outcome:
        with lock:
            sent.append(record["n"])
            if len(sent) == 5:
                stop.set()
        return Outcome("awarded", metrics={"points": 1})

    records = iter(_records(1000))
    summary = run_batch(records, _job(award), max_workers=2, stop=stop)

    assert summary["stopped"] is True
    assert summary["total"] == summary["awarded"] == len(sent) < 1000
    assert sorted(sent) == list(range(len(sent))), "records are taken in order, none skipped"
    assert next(records)["n"] == len(sent), "the input was not consumed past the stop"
    assert "stopped early" in format_summary(summary)


def test_a_batch_that_is_not_stopped_says_so():
    assert run_batch(_records(3), _job())["stopped"] is False
