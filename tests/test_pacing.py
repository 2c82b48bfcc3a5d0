"""The pacing rules: a 429 halves the pace once per congestion, success brings it back, a budget caps it."""

from __future__ import annotations

import pytest

from perkville_provider.pacing import Pace, PaceRules


def test_with_a_budget_starts_are_spaced_at_the_ceiling():
    rules = PaceRules(ceiling=10.0)
    pace = Pace()
    starts = [rules.reserve(pace, 100.0) for _ in range(3)]
    assert starts == pytest.approx([100.0, 100.1, 100.2])


def test_without_a_budget_nothing_is_paced_until_a_429():
    rules = PaceRules(ceiling=None)
    pace = Pace()
    assert [rules.reserve(pace, 100.0 + i * 0.01) for i in range(5)] == pytest.approx(
        [100.0 + i * 0.01 for i in range(5)]
    )
    assert rules.rate(pace, 100.05) is None


def test_a_second_429_within_a_second_cuts_the_pace_and_the_next_start_waits_for_the_new_spacing():
    rules = PaceRules(ceiling=20.0)
    pace = Pace()
    sent = rules.reserve(pace, 100.0)
    assert rules.throttled(pace, sent, 100.05) is None  # a lone 429: a late start, not a limit
    assert rules.rate(pace, 100.05) == 20.0
    change = rules.throttled(pace, sent, 100.3)
    assert (change.before, change.after) == pytest.approx((20.0, 14.0))
    assert rules.rate(pace, 100.3) == pytest.approx(14.0)
    assert rules.reserve(pace, 100.31) == pytest.approx(100.3 + 1 / 14)


def test_a_decrease_holds_new_starts_back_for_the_retry_after():
    rules = PaceRules(ceiling=20.0, confirm_seconds=0)
    pace = Pace()
    rules.throttled(pace, 100.0, 100.05, retry_after=1.0)
    assert rules.reserve(pace, 100.1) == pytest.approx(101.05)


def test_429s_more_than_a_second_and_a_retry_after_apart_are_each_a_lone_429():
    rules = PaceRules(ceiling=20.0)
    pace = Pace()
    lone = [rules.throttled(pace, t, t + 0.05, retry_after=1.0) for t in (100.0, 102.5, 105.0)]
    assert lone == [None, None, None]
    assert rules.rate(pace, 106.0) == 20.0


def test_the_retry_of_a_throttled_request_answered_429_again_confirms_the_congestion():
    rules = PaceRules(ceiling=20.0)
    pace = Pace()
    assert rules.throttled(pace, 100.0, 100.05, retry_after=1.0) is None
    assert rules.throttled(pace, 101.1, 101.15, retry_after=1.0) is not None


def test_without_a_budget_the_first_decrease_cuts_the_rate_measured_over_the_last_second():
    rules = PaceRules(ceiling=None, confirm_seconds=0)
    pace = Pace()
    for i in range(400):  # 40 starts a second for ten seconds
        rules.reserve(pace, 100.0 + i / 40)
    change = rules.throttled(pace, 109.9, 110.0)
    assert change.before == pytest.approx(40.0, rel=0.05)
    assert change.after == pytest.approx(28.0, rel=0.05)


def test_429s_to_requests_sent_before_the_decrease_or_within_its_retry_after_change_nothing():
    rules = PaceRules(ceiling=20.0, confirm_seconds=0)
    pace = Pace()
    assert rules.throttled(pace, 100.0, 100.1, retry_after=2.0) is not None
    assert rules.throttled(pace, 100.05, 100.2) is None  # sent before the decrease
    assert rules.throttled(pace, 100.3, 101.6) is None  # the server's window is still full
    again = rules.throttled(pace, 100.3, 102.2)  # a new congestion: cut again
    assert again.before > 14.0  # it had begun to climb back
    assert rules.rate(pace, 102.2) == pytest.approx(again.before * 0.7)


def test_a_429_below_the_last_throttled_rate_lowers_that_mark_so_the_pace_settles_under_it():
    rules = PaceRules(ceiling=40.0, confirm_seconds=0)
    pace = Pace()
    rules.throttled(pace, 100.0, 100.0)  # at 40: the mark is 40
    rules.throttled(pace, 100.5, 101.0)  # climbing back, still under 40: the mark drops
    assert pace.throttled_rate < 40.0
    assert rules.rate(pace, 101.0 + rules.recovery_seconds) == pytest.approx(pace.throttled_rate)


def test_success_brings_the_pace_back_to_the_throttled_rate_and_never_above_the_budget():
    rules = PaceRules(ceiling=20.0, recovery_seconds=5.0, confirm_seconds=0)
    pace = Pace()
    rules.throttled(pace, 100.0, 100.0)
    rates = [rules.rate(pace, 100.0 + t) for t in (0, 1, 2.5, 4, 5, 8, 60)]
    assert rates[0] == pytest.approx(14.0)
    assert rates == sorted(rates)
    assert rates[2] > 18.0  # most of the way back in half the recovery time
    assert rates[4:] == pytest.approx([20.0, 20.0, 20.0])
    assert not rules.recovered(pace, 104.0)
    assert rules.recovered(pace, 105.0)


def test_without_a_budget_the_pace_climbs_past_the_throttled_rate_and_then_stops_pacing():
    rules = PaceRules(ceiling=None, recovery_seconds=5.0)
    pace = Pace(throttled_rate=40.0, decreased_at=100.0, resumed_rate=28.0)
    assert rules.rate(pace, 105.0) == pytest.approx(40.0)
    assert rules.rate(pace, 108.0) > 40.0
    assert rules.rate(pace, 200.0) is None


def test_a_fixed_pace_ignores_429s():
    rules = PaceRules(ceiling=10.0, adaptive=False)
    pace = Pace()
    assert rules.throttled(pace, 100.0, 100.1) is None
    assert rules.rate(pace, 100.1) == 10.0


def test_the_pace_never_falls_below_the_floor():
    rules = PaceRules(ceiling=1.0, floor=0.5, refractory_seconds=0.0, confirm_seconds=0)
    pace = Pace()
    for step in range(5):
        rules.throttled(pace, 100.0 + step, 100.0 + step)
    assert rules.rate(pace, 104.0) == 0.5


def test_the_state_round_trips_as_plain_numbers():
    pace = Pace(next_start=1.5, throttled_rate=3.0, decreased_at=2.0, starts=4.0, counted_at=5.0)
    pace.quiet_until, pace.resumed_rate, pace.suspect_until = 6.0, 2.0, 7.0
    assert Pace.from_dict({**pace.as_dict(), "unknown": 1}) == pace
    assert Pace.from_dict(None) == Pace()
