"""Records are checked exactly before anything is sent: quantities, id and date ranges, unknown
fields, control characters, and relations given as ids or URIs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from perkville_provider.records import (
    MAX_ID,
    RecordValidationError,
    validate_award,
    validate_max_quantity,
    validate_member,
    validate_quantity,
)


def award(**fields):
    record = {"trans_source_id": "GYM:1", "user_email": "casey@example.com", "perk_id": 501}
    record.update(fields)
    return {name: value for name, value in record.items() if value is not ...}


def member(**fields):
    record = {"external_system_id": "GYM", "external_member_id": "M-1", "user_email": "casey@example.com"}
    record.update(fields)
    return record


def refused(func, *args, **kwargs) -> RecordValidationError:
    with pytest.raises(RecordValidationError) as info:
        func(*args, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (9.99, Decimal("9.99")),
        ("9.99", Decimal("9.99")),
        (Decimal("0.50"), Decimal("0.5")),
        (3, 3),
        ("3.00", 3),
    ],
)
def test_a_quantity_keeps_up_to_two_decimal_places_exactly_never_as_a_float(given, kept):
    quantity = validate_award(award(quantity=given)).quantity
    assert quantity == kept
    assert type(quantity) is type(kept)


def test_a_float_quantity_of_1e9_is_invalid_not_ten_billion_points():
    error = refused(validate_award, award(quantity=1e9))
    assert (error.field, error.code) == ("quantity", "max_quantity")
    assert "10000" in error.message


@pytest.mark.parametrize("given", [1.005, "0.001", "1e-3", "inf", float("nan"), "-1", 0])
def test_a_quantity_with_more_than_two_places_or_not_positive_is_invalid(given):
    assert refused(validate_award, award(quantity=given)).field == "quantity"


def test_max_quantity_is_configurable():
    assert validate_award(award(quantity=50_000), max_quantity=100_000).quantity == 50_000
    assert refused(validate_award, award(quantity=11), max_quantity=10).code == "max_quantity"
    assert validate_max_quantity(None) == Decimal(10_000)
    assert refused(validate_max_quantity, "-3").field == "max_quantity"


@pytest.mark.parametrize("field", ["perk_id", "location_id", "user_id"])
def test_an_id_beyond_64_bits_is_invalid_before_it_reaches_the_server(field):
    record = award(**{field: MAX_ID + 1}, **({"user_email": ...} if field == "user_id" else {}))
    error = refused(validate_award, record)
    assert error.field == field
    assert "64-bit" in error.message
    assert validate_award(award(perk_id=MAX_ID)).perk_id == MAX_ID


@pytest.mark.parametrize(
    "when",
    ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "1969-12-31T23:59:59Z", "2100-01-01T00:00Z"],
)
def test_a_datetime_outside_1970_to_2100_in_utc_is_invalid(when):
    error = refused(validate_award, award(transaction_dt=when))
    assert error.field == "transaction_dt"
    assert "1970" in error.message


def test_a_member_date_outside_the_range_is_invalid():
    assert refused(validate_member, member(external_join_dt="1900-01-01")).field == "external_join_dt"


def test_an_unknown_record_field_is_invalid_naming_the_field():
    error = refused(validate_award, award(quantitty=5))
    assert (error.field, error.code) == ("quantitty", "unknown_field")
    assert "ignore_unknown_fields" in error.message
    assert refused(validate_member, member(home_club="DT")).field == "home_club"


def test_unknown_fields_are_ignored_when_asked():
    assert validate_award(award(quantitty=5), ignore_unknown_fields=True).quantity == 1
    assert validate_member(member(home_club="DT"), ignore_unknown_fields=True).external_member_id == "M-1"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (award(trans_source_id="GYM:\x001"), "trans_source_id"),
        (award(user_email=..., external_member_id="M\x07", external_system_id="GYM"), "external_member_id"),
        (award(user_email="casey\x00@example.com"), "user_email"),
        (award(user_email="c" * 250 + "@example.com"), "user_email"),
    ],
)
def test_control_characters_in_ids_and_emails_and_overlong_emails_are_invalid(record, field):
    assert refused(validate_award, record).field == field


def test_relations_are_accepted_as_ids_or_as_resource_uris():
    checked = validate_award(
        award(perk_id="/v2/perks/502/", location_id="https://api.perkville.com/v2/locations/101/")
    )
    assert (checked.perk_id, checked.location_id) == (502, 101)
    by_user = validate_award(award(user_email=..., user_id="/v2/users/1003/"))
    assert by_user.user_id == 1003
    assert validate_member(member(home_location_id="/v2/locations/102/")).home_location_id == 102


def test_a_uri_of_another_collection_is_not_taken_for_the_relation():
    error = refused(validate_award, award(perk_id="/v2/users/502/"))
    assert error.field == "perk_id"
    assert "/v2/perks/<id>/" in error.message


def test_a_member_may_name_its_home_by_the_source_systems_location_id():
    assert validate_member(member(external_home_location_id="DT")).external_home_location_id == "DT"
    error = refused(validate_member, member(external_home_location_id="DT", home_location_id=101))
    assert error.field == "external_home_location_id"


def test_a_quantity_too_large_for_any_arithmetic_says_it_is_too_large():
    with pytest.raises(RecordValidationError) as raised:
        validate_quantity(10**30)

    assert raised.value.field == "quantity"
    assert "is too large: must be less than 10000000000" in str(raised.value)
