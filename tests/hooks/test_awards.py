"""award_points: exactly once per trans_source_id, whatever shape Perkville's answer to a repeat takes."""

from __future__ import annotations

import pytest

from perkville_provider.bodies import award_request_body
from perkville_provider.exceptions import PerkvilleValidationError
from perkville_provider.records import Award, RecordValidationError, validate_award
from tests.helpers.hook_sandbox import BUSINESS_ID, CASEY, CHECKIN_PERK_ID, CLASS_PERK_ID

TRANSACTIONS = "POST /v2/transactions/"


def award(trans_source_id: str, **changes):
    return {"trans_source_id": trans_source_id, "user_email": CASEY, "perk_id": CHECKIN_PERK_ID, **changes}


def test_a_new_award_is_awarded_with_its_transaction_and_points(hook, sandbox_control):
    balance = sandbox_control.connection_of(CASEY)["point_balance"]
    result = hook.award_points(award("GYM:DT:CHECKIN:1", quantity=3, location_id=101))
    assert result.status == "awarded"
    assert result.points == 30
    assert result.transaction["trans_source_id"] == "GYM:DT:CHECKIN:1"
    assert result.recovered_after_lost_response is False
    assert sandbox_control.connection_of(CASEY)["point_balance"] == balance + 30


@pytest.mark.parametrize("duplicate_mode", ["error", "return_existing"])
def test_a_repeated_trans_source_id_is_reported_duplicate_not_failed(hook, sandbox_control, duplicate_mode):
    sandbox_control.settings(duplicate_mode=duplicate_mode)
    first = hook.award_points(award("GYM:DT:CHECKIN:2"))
    second = hook.award_points(award("GYM:DT:CHECKIN:2"))
    assert first.status == "awarded"
    assert (second.status, second.trans_source_id, second.points, second.recovered_after_lost_response) == (
        "duplicate",
        "GYM:DT:CHECKIN:2",
        0,
        False,
    )
    if duplicate_mode == "return_existing":
        assert second.transaction["transaction_id"] == first.transaction["transaction_id"]
    else:
        assert second.transaction is None
    assert len(sandbox_control.transactions("GYM:DT:CHECKIN:2")) == 1
    assert sandbox_control.requests_to(TRANSACTIONS) == 2
    assert sandbox_control.requests_to("GET /v2/transactions/") == 0  # a known answer needs no lookup


def test_a_repeat_answered_with_an_undocumented_code_is_confirmed_by_lookup(
    make_hook, sandbox_control, recording_proxy
):
    def unknown_duplicate_code(method, path, status, body):
        if method == "POST" and path == "/v2/transactions/" and status == 400:
            body["errors"]["trans_source_id"][0]["code"] = "unique"
        return status, body

    recording_proxy.rewrite = unknown_duplicate_code
    hook = make_hook("perkville_proxy", host=recording_proxy.url)
    hook.award_points(award("GYM:DT:CHECKIN:3"))
    result = hook.award_points(award("GYM:DT:CHECKIN:3"))
    assert result.status == "duplicate"
    assert result.transaction["trans_source_id"] == "GYM:DT:CHECKIN:3"
    assert len(sandbox_control.transactions("GYM:DT:CHECKIN:3")) == 1
    assert sandbox_control.requests_to("GET /v2/transactions/") == 1


def test_a_lost_award_whose_resend_is_refused_otherwise_is_confirmed_by_lookup(
    make_hook, sandbox_control, recording_proxy
):
    """A Perkville that checks the daily limit before the duplicate: the points are still there."""

    def lose_then_refuse_as_daily_limited(method, path, status, body):
        if method == "POST" and path == "/v2/transactions/":
            if status == 201:
                return 502, {"detail": "bad gateway"}
            if status == 400:
                return 400, {
                    "errors": {"__all__": [{"code": "pv_perk_daily_limit_reached", "message": "once"}]}
                }
        return status, body

    recording_proxy.rewrite = lose_then_refuse_as_daily_limited
    hook = make_hook("perkville_proxy", host=recording_proxy.url)
    result = hook.award_points(award("GYM:DT:CHECKIN:LOST"), limit_to_once_per_calendar_day=True)

    assert (result.status, result.recovered_after_lost_response) == ("duplicate", True)
    assert result.transaction["trans_source_id"] == "GYM:DT:CHECKIN:LOST"
    assert len(sandbox_control.transactions("GYM:DT:CHECKIN:LOST")) == 1


def test_a_trans_source_id_error_for_an_unknown_transaction_is_raised_not_hidden(hook, sandbox_control):
    too_long = Award(trans_source_id="X" * 300, perk_id=CHECKIN_PERK_ID, user_email=CASEY)
    with pytest.raises(PerkvilleValidationError) as info:
        hook.award_points(too_long)
    assert info.value.field == "trans_source_id"
    assert sandbox_control.requests_to("GET /v2/transactions/") == 1
    assert sandbox_control.transactions() == []


def test_a_second_award_of_a_perk_on_the_same_day_is_daily_limited(hook, sandbox_control):
    morning = award("GYM:DAY:1", transaction_dt="2024-05-01T08:00:00-04:00")
    evening = award("GYM:DAY:2", transaction_dt="2024-05-01T21:00:00-04:00")
    next_day = award("GYM:DAY:3", transaction_dt="2024-05-02T08:00:00-04:00")
    results = [
        hook.award_points(a, limit_to_once_per_calendar_day=True) for a in (morning, evening, next_day)
    ]
    assert [r.status for r in results] == ["awarded", "daily_limited", "awarded"]
    assert results[1].points == 0
    assert results[1].transaction is None
    assert sorted(row["trans_source_id"] for row in sandbox_control.transactions()) == [
        "GYM:DAY:1",
        "GYM:DAY:3",
    ]


def test_awards_by_user_id_and_by_external_member_reach_the_same_customer(hook, sandbox_control):
    hook.upsert_external_member(
        {"external_system_id": "MYGYM", "external_member_id": "M-77", "user_email": CASEY}
    )
    casey = hook.find_connection(email=CASEY)
    user_id = int(casey["user"].rstrip("/").rsplit("/", 1)[1])
    by_id = hook.award_points(award("BY:ID", user_email=None, user_id=user_id, perk_id=CLASS_PERK_ID))
    by_member = hook.award_points(
        validate_award(
            {"trans_source_id": "BY:MEMBER", "external_member_id": "M-77", "external_system_id": "MYGYM"},
            default_perk_id=CHECKIN_PERK_ID,
        ),
        business_id=BUSINESS_ID,
    )
    assert (by_id.status, by_id.points) == ("awarded", 25)
    assert (by_member.status, by_member.points) == ("awarded", 10)
    assert {row["connection"] for row in sandbox_control.transactions()} == {casey["resource_uri"]}


def test_an_invalid_award_record_is_refused_before_any_request(hook, sandbox_control):
    with pytest.raises(RecordValidationError, match="quantity"):
        hook.award_points(award("GYM:BAD:1", quantity=0))
    assert sandbox_control.stats()["requests"] == {}


def test_the_request_body_names_the_business_and_only_the_given_identifier():
    body = award_request_body(
        validate_award(award("GYM:1", location_id=101, transaction_dt="2024-05-01T08:00:00Z")),
        BUSINESS_ID,
        limit_to_once_per_calendar_day=True,
    )
    assert body == {
        "business": BUSINESS_ID,
        "perk": CHECKIN_PERK_ID,
        "quantity": 1,
        "trans_source_id": "GYM:1",
        "user_email": CASEY,
        "location": 101,
        "transaction_dt": "2024-05-01T08:00:00+00:00",
        "limit_to_once_per_calendar_day": True,
    }
