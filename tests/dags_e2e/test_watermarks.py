"""Watermarks and the day Param are checked before they are trusted (the example DAGs' windows).

Pure functions of what the asset state store holds and of an explicit ``now``: a future
watermark is read as now with a WARNING, a garbage one is an error naming the asset and its key,
and a ``day`` Param in the future is refused before anything is read or sent.
"""

from __future__ import annotations

import logging
import sys

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowFailException

from tests.helpers.dags import EXAMPLE_DAGS

sys.path.insert(0, str(EXAMPLE_DAGS))

from perkville_example_windows import (
    award_day,
    award_window,
    checked_watermark,
    member_window,
)

NOW = pendulum.datetime(2026, 11, 21, 9, 0, tz="America/New_York")
WHERE = "the asset perkville://9823/checkin_awards state key 'awarded_through'"


def test_a_future_awarded_through_is_read_as_today_and_the_gap_since_the_last_real_run_is_reported(caplog):
    with caplog.at_level(logging.WARNING):
        awarded_through = checked_watermark("2027-06-01", where=WHERE, now=NOW)

    assert awarded_through == "2026-11-21"
    assert "in the future" in caplog.text
    assert WHERE in caplog.text


def test_a_future_synced_until_is_clamped_so_the_window_is_not_empty():
    synced_until = checked_watermark("2030-01-01T00:00:00+00:00", where=WHERE, now=NOW)

    window = member_window(
        full_sync=False, synced_until=synced_until, data_interval_start=None, until=NOW.in_timezone("UTC")
    )

    assert window.since < window.until


@pytest.mark.parametrize("garbage", ["yesterday", "2026-13-40", "{'a': 1}", "12"])
def test_a_garbage_watermark_is_an_error_naming_the_asset_and_its_key(garbage):
    with pytest.raises(
        AirflowFailException, match=r"perkville://9823/checkin_awards state key 'awarded_through'"
    ):
        checked_watermark(garbage, where=WHERE, now=NOW)


def test_a_past_watermark_is_kept_as_it_is_and_an_empty_one_means_none():
    assert checked_watermark("2026-11-19", where=WHERE, now=NOW) == "2026-11-19"
    assert checked_watermark("2026-11-20T05:00:00+00:00", where=WHERE, now=NOW) == "2026-11-20T05:00:00+00:00"
    assert checked_watermark(None, where=WHERE, now=NOW) is None
    assert checked_watermark("", where=WHERE, now=NOW) is None


def test_after_a_clamped_future_watermark_an_outage_longer_than_the_lookback_is_still_caught():
    awarded_through = checked_watermark("2027-06-01", where=WHERE, now=NOW)
    # the next real run, 10 days later, must not see the clamped day as "covered" beyond today
    window = award_window(
        pendulum.Date(2026, 12, 1), lookback_days=2, max_catchup_days=30, awarded_through=awarded_through
    )

    assert window.first_day == pendulum.Date(2026, 11, 22)


def test_a_day_param_in_the_future_is_refused_before_anything_is_read():
    with pytest.raises(AirflowFailException, match="day Param 2026-11-22 is in the future"):
        award_day("2026-11-22", None, NOW, "America/New_York", now=NOW)


def test_today_and_earlier_days_are_accepted_and_a_non_date_is_named():
    assert award_day("2026-11-21", None, NOW, "America/New_York", now=NOW)[0] == pendulum.Date(2026, 11, 21)
    with pytest.raises(AirflowFailException, match="day Param must be a date"):
        award_day("21/11/2026", None, NOW, "America/New_York", now=NOW)
