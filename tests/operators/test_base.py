"""The shared operator base without a DAG run: parameter checks after rendering, and the verdict."""

from __future__ import annotations

import pytest
from airflow.exceptions import AirflowProviderDeprecationWarning
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from perkville_provider.operators._settings import as_records
from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator
from perkville_provider.operators.base import BatchSettings, judge_batch, raise_for_failure_ratio


def _summary(**counts: int) -> dict:
    return {
        "operation": "award_points",
        "total": 10,
        "invalid": 0,
        "failed": 0,
        "retriable_failures": 0,
        **counts,
    }


def test_transient_failures_over_the_ratio_raise_a_retriable_error_with_the_summary():
    with pytest.raises(AirflowException) as raised:
        raise_for_failure_ratio(_summary(failed=2, retriable_failures=1), 0.1)
    assert not isinstance(raised.value, AirflowFailException)
    assert "2 of 10 records failed" in str(raised.value)
    assert "Perkville award_points" in str(raised.value)


def test_permanent_failures_over_the_ratio_fail_without_retry():
    with pytest.raises(AirflowFailException, match="more than max_failure_ratio=0"):
        raise_for_failure_ratio(_summary(invalid=1), 0.0)


def test_failures_within_the_ratio_pass():
    raise_for_failure_ratio(_summary(invalid=1, failed=1, retriable_failures=1), 0.2)


def _settings(**changes) -> BatchSettings:
    base = {
        "perkville_conn_id": "perkville_default",
        "business_id": 9823,
        "max_workers": 8,
        "max_requests_per_second": None,
        "max_failure_ratio": 0.5,
        "dry_run": False,
        "report_path": None,
    }
    return BatchSettings(**{**base, **changes})


def test_transient_failures_within_the_ratio_ask_for_a_retry_only_when_told_to():
    summary = _summary(invalid=2, failed=1, retriable_failures=1)
    judge_batch(summary, _settings())
    with pytest.raises(AirflowException, match="1 records failed transiently") as raised:
        judge_batch(summary, _settings(retry_transient_failures=True))
    assert not isinstance(raised.value, AirflowFailException)


def test_permanent_failures_within_the_ratio_never_ask_for_a_retry():
    judge_batch(_summary(invalid=2, failed=1), _settings(retry_transient_failures=True))


def test_a_stopped_batch_asks_for_a_retry_even_without_failures():
    with pytest.raises(AirflowException, match="stopped before the end") as raised:
        judge_batch(_summary(stopped=True), _settings())
    assert not isinstance(raised.value, AirflowFailException)


def test_rendered_template_strings_are_read_back_as_typed_settings():
    operator = PerkvilleAwardPointsOperator(
        task_id="t",
        awards="[{'trans_source_id': 'a', 'user_id': 1}]",
        business_id="9823",
        max_workers="4",
        max_requests_per_second="20",
        max_failure_ratio="0.25",
        validate_only="False",
        report_path="file:///tmp/perkville/report.jsonl",
    )
    settings = operator.settings()
    assert (settings.business_id, settings.max_workers, settings.max_requests_per_second) == (9823, 4, 20.0)
    assert (settings.max_failure_ratio, settings.dry_run) == (0.25, False)
    assert str(settings.report_path) == "file:///tmp/perkville/report.jsonl"
    assert list(operator.records()) == [{"trans_source_id": "a", "user_id": 1}]


@pytest.mark.parametrize(
    ("parameter", "value", "message"),
    [
        ("max_workers", "0", "max_workers: must be a positive integer"),
        ("max_failure_ratio", "1.5", "max_failure_ratio: must be a number from 0 to 1"),
        ("validate_only", "maybe", "validate_only: must be true or false"),
        ("max_requests_per_second", -1, "max_requests_per_second: must be a positive number"),
        ("business_id", "biz", "business_id: must be a positive integer"),
    ],
)
def test_a_bad_shared_parameter_fails_the_task_naming_it(parameter, value, message):
    operator = PerkvilleAwardPointsOperator(task_id="t", awards=[], **{parameter: value})
    with pytest.raises(AirflowFailException, match=message):
        operator.settings()


def test_records_must_be_a_list_not_a_single_mapping_or_prose():
    with pytest.raises(AirflowFailException, match="awards: must be a list of records"):
        as_records({"trans_source_id": "a"}, "awards")
    with pytest.raises(AirflowFailException, match="awards: is text"):
        as_records("awards from yesterday", "awards")
    assert as_records("", "awards") == []


def test_validate_only_leaves_airflows_own_dry_run_method_callable():
    operator = PerkvilleAwardPointsOperator(task_id="t", awards=[], validate_only=True)

    operator.dry_run()  # BaseOperator's: renders the template fields; an attribute once hid it

    assert operator.settings().dry_run is True


def test_the_old_dry_run_keyword_still_works_with_a_deprecation_warning():
    with pytest.warns(AirflowProviderDeprecationWarning, match="use validate_only="):
        operator = PerkvilleAwardPointsOperator(task_id="t", awards=[], dry_run="true")

    assert callable(operator.dry_run)
    assert operator.settings().dry_run is True
