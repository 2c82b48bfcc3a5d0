"""The record validators: what a batch may send, and the error each bad field gets."""

from __future__ import annotations

import datetime as dt
import decimal

import pendulum
import pytest

from perkville_provider.records import (
    Award,
    Member,
    RecordValidationError,
    build_trans_source_id,
    validate_award,
    validate_connection_status,
    validate_email,
    validate_member,
)

AWARD = {"trans_source_id": "GYM:DT:CHECKIN:1", "user_email": "Casey@Example.com", "perk_id": 501}


def award_with(**changes):
    record = dict(AWARD)
    for field, value in changes.items():
        if value is ...:
            record.pop(field, None)
        else:
            record[field] = value
    return record


def rejected(func, *args, **kwargs) -> RecordValidationError:
    with pytest.raises(RecordValidationError) as info:
        func(*args, **kwargs)
    return info.value


def test_a_minimal_award_is_normalised_with_quantity_one_and_a_lower_cased_email():
    award = validate_award(AWARD)
    assert award == Award(
        trans_source_id="GYM:DT:CHECKIN:1", perk_id=501, quantity=1, user_email="casey@example.com"
    )


def test_the_default_perk_is_used_only_when_the_record_has_none():
    assert validate_award(award_with(perk_id=...), default_perk_id=502).perk_id == 502
    assert validate_award(award_with(perk_id=501), default_perk_id=502).perk_id == 501
    error = rejected(validate_award, award_with(perk_id=...))
    assert (error.field, error.code) == ("perk_id", "required")


@pytest.mark.parametrize("value", [None, "", "   "])
def test_an_award_without_trans_source_id_is_rejected_naming_the_field(value):
    error = rejected(validate_award, award_with(trans_source_id=value))
    assert error.field == "trans_source_id"
    assert error.code == "required"
    assert str(error).startswith("trans_source_id: ")


def test_a_trans_source_id_longer_than_255_characters_is_rejected():
    assert validate_award(award_with(trans_source_id="x" * 255)).trans_source_id == "x" * 255
    error = rejected(validate_award, award_with(trans_source_id="x" * 256))
    assert error.field == "trans_source_id"
    assert "256" in error.message


@pytest.mark.parametrize(
    ("value", "expected"), [(3, 3), ("4", 4), (5.0, 5), (decimal.Decimal("6"), 6), (None, 1)]
)
def test_quantity_accepts_integers_in_any_plain_form(value, expected):
    assert validate_award(award_with(quantity=value)).quantity == expected


@pytest.mark.parametrize("value", [0, -2, True, 1.5, "2.5", "two", [1], float("nan")])
def test_quantity_that_is_not_a_positive_integer_is_rejected_with_the_bad_value(value):
    error = rejected(validate_award, award_with(quantity=value))
    assert error.field == "quantity"
    assert repr(value) in error.message


def test_each_user_identifier_is_accepted_on_its_own():
    by_id = validate_award(award_with(user_email=..., user_id="42"))
    assert (by_id.user_id, by_id.user_email) == (42, None)
    by_member = validate_award(
        award_with(user_email=..., external_member_id=" M-1 ", external_system_id="ABC")
    )
    assert (by_member.external_member_id, by_member.external_system_id) == ("M-1", "ABC")


def test_an_award_without_any_user_identifier_is_rejected():
    error = rejected(validate_award, award_with(user_email=...))
    assert error.code == "required"
    assert "user_email, user_id, or external_member_id" in error.message


@pytest.mark.parametrize("blank", [None, "", "  "])
def test_an_award_whose_only_identifier_is_blank_names_that_field(blank):
    error = rejected(validate_award, award_with(user_email=blank))
    assert (error.field, error.code) == ("user_email", "required")
    assert error.message.startswith("is empty, and no other user identifier is given")


def test_an_award_with_two_user_identifiers_is_rejected():
    error = rejected(validate_award, award_with(user_id=7))
    assert error.field == "user_id"
    assert "exactly one" in error.message


def test_an_external_member_id_without_its_system_is_rejected():
    error = rejected(validate_award, award_with(user_email=..., external_member_id="M-1"))
    assert error.field == "external_system_id"


@pytest.mark.parametrize(
    "value", ["casey", "casey@", "@example.com", "ca sey@example.com", "casey@example", 5]
)
def test_a_malformed_email_is_rejected_with_the_value(value):
    error = rejected(validate_award, award_with(user_email=value))
    assert error.field == "user_email"
    assert repr(value) in error.message


def test_a_transaction_time_with_an_offset_is_kept_in_its_timezone():
    award = validate_award(award_with(transaction_dt="2024-05-01T07:30:00-04:00"))
    assert award.transaction_dt == pendulum.datetime(2024, 5, 1, 11, 30, tz="UTC")
    aware = dt.datetime(2024, 5, 1, 7, 30, tzinfo=dt.UTC)
    assert validate_award(award_with(transaction_dt=aware)).transaction_dt == aware


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-05-01T07:30:00", "must carry a timezone"),
        (dt.datetime(2024, 5, 1, 7, 30), "must carry a timezone"),
        ("2024-05-01", "must be a date and time with a timezone"),
        ("yesterday", "must be an ISO 8601 date or date-time"),
    ],
)
def test_a_transaction_time_without_a_timezone_is_rejected_clearly(value, message):
    error = rejected(validate_award, award_with(transaction_dt=value))
    assert error.field == "transaction_dt"
    assert error.message.startswith(message)


def test_location_must_be_a_positive_integer():
    assert validate_award(award_with(location_id="101")).location_id == 101
    assert rejected(validate_award, award_with(location_id="downtown")).field == "location_id"


def test_a_record_that_is_not_a_mapping_is_rejected():
    assert rejected(validate_award, ["GYM:1"]).field == "record"


def test_a_member_is_normalised_with_upper_case_status_and_dates():
    member = validate_member(
        {
            "external_member_id": 1001,
            "user_email": " New.Member@Example.com ",
            "first_name": "Nia",
            "external_membership_status": "active",
            "external_join_dt": "2024-02-01",
            "external_cancel_dt": "2025-02-01T00:00:00Z",
            "home_location_id": "101",
            "last_name": "",
        },
        external_system_id="MYGYM",
    )
    assert member == Member(
        external_system_id="MYGYM",
        external_member_id="1001",
        user_email="new.member@example.com",
        first_name="Nia",
        external_membership_status="ACTIVE",
        external_join_dt=pendulum.Date(2024, 2, 1),
        external_cancel_dt=pendulum.datetime(2025, 2, 1, tz="UTC"),
        home_location_id=101,
    )


@pytest.mark.parametrize("field", ["external_member_id", "user_email"])
def test_a_member_without_a_required_field_is_rejected(field):
    record = {"external_member_id": "1", "user_email": "a@example.com"}
    del record[field]
    error = rejected(validate_member, record, external_system_id="MYGYM")
    assert (error.field, error.code) == (field, "required")


def test_a_member_needs_an_external_system_from_the_record_or_the_batch():
    record = {"external_member_id": "1", "user_email": "a@example.com"}
    assert rejected(validate_member, record).field == "external_system_id"
    assert (
        validate_member({**record, "external_system_id": "ABC"}, external_system_id="X").external_system_id
        == "ABC"
    )


def test_a_member_join_date_time_without_a_timezone_is_rejected():
    record = {
        "external_member_id": "1",
        "user_email": "a@example.com",
        "external_join_dt": "2024-02-01 10:00",
    }
    error = rejected(validate_member, record, external_system_id="MYGYM")
    assert error.field == "external_join_dt"
    assert "timezone" in error.message


@pytest.mark.parametrize(("value", "expected"), [("ACTIVE", "ACTIVE"), (" inactive ", "INACTIVE")])
def test_connection_status_accepts_active_and_inactive_in_any_case(value, expected):
    assert validate_connection_status(value) == expected


@pytest.mark.parametrize("value", ["PENDING", "IMPORTED", "", None, 1])
def test_connection_status_refuses_every_other_value(value):
    error = rejected(validate_connection_status, value)
    assert error.field == "status"
    assert "ACTIVE, INACTIVE" in error.message


def test_validate_email_names_the_field_it_is_given():
    assert validate_email("A@B.io", field="email") == "a@b.io"
    assert rejected(validate_email, "nope", field="email").field == "email"


def test_trans_source_ids_are_built_like_perkvilles_own_integrations():
    assert build_trans_source_id("MYGYM", "DT", "CHECKIN", 12345) == "MYGYM:DT:CHECKIN:12345"


@pytest.mark.parametrize("parts", [(), ("MYGYM", ""), ("MYGYM", None), ("MY:GYM", 1), ("x" * 200, "y" * 60)])
def test_trans_source_id_parts_that_could_collide_or_overflow_are_rejected(parts):
    assert rejected(build_trans_source_id, *parts).field == "trans_source_id"
