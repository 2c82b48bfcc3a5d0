"""POST /v2/transactions/: points, idempotency by trans_source_id, the daily limit, and bad input."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pendulum
import pytest

from perkville_provider.sandbox import seed
from tests.helpers.api import Api, connection_of, error_codes

CASEY = seed.CUSTOMER_USERNAME
ROBIN = seed.IMPORTED_CUSTOMER_USERNAME
NEW_YORK = "America/New_York"
LOS_ANGELES = "America/Los_Angeles"


def at(tz: str, *when: int) -> str:
    """An explicit pendulum datetime in ``tz``, sent as ISO 8601 with its offset."""
    return pendulum.datetime(*when, tz=tz).isoformat()


def test_an_award_adds_perk_points_times_quantity_to_the_balance(sandbox, admin_api):
    response = admin_api.award(user_email=CASEY, perk=seed.CLASS_PERK_ID, quantity=3, trans_source_id="t-1")

    assert response.status_code == 201
    txn = response.json()
    assert txn["points"] == 25
    assert txn["quantity"] == 3
    assert txn["classification"] == "EARN"
    assert txn["transaction_status"] == "ACTIVE"
    assert txn["user"] == f"/v2/users/{seed.CUSTOMER_USER_ID}/"
    assert txn["connection"] == f"/v2/connections/{seed.CUSTOMER_CONNECTION_ID}/"
    assert response.headers["Location"] == txn["resource_uri"]
    casey = connection_of(sandbox, CASEY)
    assert casey["point_balance"] == 120 + 75
    assert casey["lifetime_earned_points"] == 120 + 75
    assert casey["last_transaction_dt"] == txn["transaction_dt"]


def test_quantity_defaults_to_one(sandbox, admin_api):
    assert admin_api.award(user_email=CASEY, trans_source_id="t-q").json()["quantity"] == 1
    assert connection_of(sandbox, CASEY)["point_balance"] == 130


@pytest.mark.parametrize(
    "identifier",
    [
        {"user": f"/v2/users/{seed.IMPORTED_CUSTOMER_USER_ID}/"},
        {"user": seed.IMPORTED_CUSTOMER_USER_ID},
        {"user_email": "ROBIN@example.com"},
    ],
    ids=["user-uri", "user-id", "email-any-case"],
)
def test_the_customer_can_be_named_by_user_uri_id_or_email(sandbox, admin_api, identifier):
    response = admin_api.award(trans_source_id="t-id", **identifier)

    assert response.status_code == 201
    assert response.json()["user"] == f"/v2/users/{seed.IMPORTED_CUSTOMER_USER_ID}/"


def test_the_customer_can_be_named_by_external_member_id_with_its_system(sandbox, admin_api):
    admin_api.upsert_member(external_member_id="M-7", user_email="seven@example.com")

    response = admin_api.award(
        external_member_id="M-7", external_system_id="ABC_IGNITE", trans_source_id="t-m"
    )

    assert response.status_code == 201
    assert connection_of(sandbox, "seven@example.com")["point_balance"] == 10


def test_an_external_member_id_without_its_system_names_the_missing_field(admin_api):
    response = admin_api.award(external_member_id="M-7", trans_source_id="t-m")

    assert error_codes(response) == {"external_system_id": ["required"]}


def test_a_repeated_trans_source_id_is_refused_and_writes_nothing(sandbox, admin_api):
    first = admin_api.award(user_email=CASEY, trans_source_id="dup-1")
    again = admin_api.award(user_email=CASEY, trans_source_id="dup-1", quantity=5)

    assert first.status_code == 201
    assert again.status_code == 400
    assert error_codes(again) == {"trans_source_id": ["pv_duplicate_trans_source_id"]}
    assert [t["trans_source_id"] for t in sandbox.admin.ledger()["transactions"]] == ["dup-1"]
    assert connection_of(sandbox, CASEY)["point_balance"] == 130


def test_trans_source_id_is_unique_across_the_business_not_per_user(sandbox, admin_api):
    admin_api.award(user_email=CASEY, trans_source_id="shared")

    response = admin_api.award(user_email=ROBIN, trans_source_id="shared")

    assert error_codes(response) == {"trans_source_id": ["pv_duplicate_trans_source_id"]}
    assert connection_of(sandbox, ROBIN)["point_balance"] == 0


def test_in_return_existing_mode_a_repeat_answers_200_with_the_original_and_writes_nothing(
    sandbox, admin_api
):
    sandbox.admin.set_settings(duplicate_mode="return_existing")
    first = admin_api.award(user_email=CASEY, trans_source_id="dup-2")

    again = admin_api.award(user_email=CASEY, trans_source_id="dup-2", quantity=4)

    assert again.status_code == 200
    assert again.json() == first.json()
    assert len(sandbox.admin.ledger()["transactions"]) == 1
    assert connection_of(sandbox, CASEY)["point_balance"] == 130


def test_the_daily_limit_refuses_a_second_award_of_the_perk_on_the_same_day(sandbox, admin_api):
    once = {"user_email": CASEY, "location": 101, "limit_to_once_per_calendar_day": True}
    first = admin_api.award(trans_source_id="d-1", transaction_dt=at(NEW_YORK, 2026, 3, 2, 8, 0), **once)

    second = admin_api.award(trans_source_id="d-2", transaction_dt=at(NEW_YORK, 2026, 3, 2, 21, 0), **once)

    assert first.status_code == 201
    assert second.status_code == 400
    assert error_codes(second) == {"__all__": ["pv_perk_daily_limit_reached"]}
    assert len(sandbox.admin.ledger()["transactions"]) == 1


def test_the_daily_limit_is_per_perk(admin_api):
    once = {"user_email": CASEY, "limit_to_once_per_calendar_day": True}
    admin_api.award(trans_source_id="p-1", transaction_dt=at(NEW_YORK, 2026, 3, 2, 8), **once)

    other_perk = admin_api.award(
        trans_source_id="p-2", perk=seed.CLASS_PERK_ID, transaction_dt=at(NEW_YORK, 2026, 3, 2, 9), **once
    )

    assert other_perk.status_code == 201


def test_the_day_is_the_new_york_locations_day_near_midnight(admin_api):
    """23:30 and 00:30 in New York are two New York days (though one Los Angeles day)."""
    once = {"user_email": CASEY, "location": 101, "limit_to_once_per_calendar_day": True}
    late = admin_api.award(trans_source_id="ny-1", transaction_dt=at(NEW_YORK, 2026, 7, 1, 23, 30), **once)

    after_midnight = admin_api.award(
        trans_source_id="ny-2", transaction_dt=at(NEW_YORK, 2026, 7, 2, 0, 30), **once
    )
    same_day_again = admin_api.award(
        trans_source_id="ny-3", transaction_dt=at(NEW_YORK, 2026, 7, 2, 23, 59), **once
    )

    assert (late.status_code, after_midnight.status_code) == (201, 201)
    assert error_codes(same_day_again) == {"__all__": ["pv_perk_daily_limit_reached"]}


def test_the_day_is_the_los_angeles_locations_day_near_midnight(admin_api):
    """20:30 and 23:30 in Los Angeles are one Los Angeles day (though two New York days)."""
    once = {"user_email": CASEY, "location": 102, "limit_to_once_per_calendar_day": True}
    evening = admin_api.award(
        trans_source_id="la-1", transaction_dt=at(LOS_ANGELES, 2026, 7, 1, 20, 30), **once
    )

    late = admin_api.award(trans_source_id="la-2", transaction_dt=at(LOS_ANGELES, 2026, 7, 1, 23, 30), **once)
    next_day = admin_api.award(
        trans_source_id="la-3", transaction_dt=at(LOS_ANGELES, 2026, 7, 2, 0, 5), **once
    )

    assert evening.status_code == 201
    assert error_codes(late) == {"__all__": ["pv_perk_daily_limit_reached"]}
    assert next_day.status_code == 201


def test_without_a_location_the_day_is_the_home_locations_day(admin_api):
    """Robin's home location is Westside, Los Angeles."""
    once = {"user_email": ROBIN, "limit_to_once_per_calendar_day": True}
    admin_api.award(trans_source_id="h-1", transaction_dt=at(LOS_ANGELES, 2026, 7, 1, 20, 30), **once)

    late = admin_api.award(trans_source_id="h-2", transaction_dt=at(LOS_ANGELES, 2026, 7, 1, 23, 30), **once)

    assert error_codes(late) == {"__all__": ["pv_perk_daily_limit_reached"]}


def test_awards_without_the_flag_are_not_limited(sandbox, admin_api):
    for n in range(3):
        dt = at(NEW_YORK, 2026, 3, 2, 8 + n)
        assert (
            admin_api.award(user_email=CASEY, trans_source_id=f"free-{n}", transaction_dt=dt).status_code
            == 201
        )
    assert connection_of(sandbox, CASEY)["point_balance"] == 150


def test_the_duplicate_check_comes_before_the_daily_limit(admin_api):
    once = {
        "user_email": CASEY,
        "limit_to_once_per_calendar_day": True,
        "transaction_dt": "2026-03-02T08:00:00Z",
    }
    admin_api.award(trans_source_id="order-1", **once)

    response = admin_api.award(trans_source_id="order-1", **once)

    assert error_codes(response) == {"trans_source_id": ["pv_duplicate_trans_source_id"]}


def test_a_customer_without_a_connection_is_user_not_found(sandbox, admin_api):
    by_email = admin_api.award(user_email="stranger@example.com", trans_source_id="nf-1")
    staff_without_connection = admin_api.award(user=seed.ADMIN_USER_ID, trans_source_id="nf-2")

    assert error_codes(by_email) == {"user_email": ["pv_user_not_found"]}
    assert "stranger@example.com" in by_email.json()["errors"]["user_email"][0]["message"]
    assert error_codes(staff_without_connection) == {"user": ["pv_user_not_found"]}
    assert sandbox.admin.ledger()["transactions"] == []


def test_every_bad_field_is_reported_together_and_nothing_is_written(sandbox, admin_api):
    response = admin_api.award(
        user_email=CASEY,
        perk=999,
        quantity=0,
        location=555,
        transaction_dt="yesterday-ish",
        trans_source_id="",
    )

    assert response.status_code == 400
    assert response.json()["error_type"] == "validation_error"
    assert error_codes(response) == {
        "trans_source_id": ["required"],
        "perk": ["does_not_exist"],
        "quantity": ["invalid"],
        "location": ["does_not_exist"],
        "transaction_dt": ["invalid"],
    }
    for field, items in response.json()["errors"].items():
        assert field in items[0]["message"]
    assert sandbox.admin.ledger()["transactions"] == []
    assert connection_of(sandbox, CASEY)["point_balance"] == 120


def test_a_reward_perk_cannot_be_awarded(admin_api):
    response = admin_api.award(user_email=CASEY, perk=seed.REWARD_PERK_ID, trans_source_id="r-1")

    assert error_codes(response) == {"perk": ["pv_perk_not_earnable"]}


def test_two_user_identifiers_are_refused(admin_api):
    response = admin_api.award(user_email=CASEY, user=seed.CUSTOMER_USER_ID, trans_source_id="two")

    assert error_codes(response) == {"__all__": ["pv_user_identifier_required"]}


def test_a_missing_business_and_an_unknown_field_are_named(admin_api):
    no_business = admin_api.post(
        "/v2/transactions/", {"user_email": CASEY, "perk": 501, "trans_source_id": "b"}
    )
    typo = admin_api.award(user_email=CASEY, trans_source_id="u", quantiy=2)

    assert error_codes(no_business) == {"business": ["pv_business_required"]}
    assert error_codes(typo) == {"quantiy": ["unknown_field"]}


def test_a_trans_source_id_longer_than_255_characters_is_refused(admin_api):
    response = admin_api.award(user_email=CASEY, trans_source_id="x" * 256)

    assert error_codes(response) == {"trans_source_id": ["max_length"]}


def test_transaction_dt_accepts_iso_forms_and_answers_in_utc(admin_api):
    forms = {
        "2026-01-15T10:00:00Z": "2026-01-15 10:00:00+00:00",
        "2026-01-15 10:00:00+02:00": "2026-01-15 08:00:00+00:00",
        "2026-01-15 10:00Z": "2026-01-15 10:00:00+00:00",
        "2026-01-15T10:00:00": "2026-01-15 15:00:00+00:00",
    }
    for n, (sent, answered) in enumerate(forms.items()):
        response = admin_api.award(user_email=CASEY, trans_source_id=f"dt-{n}", transaction_dt=sent)
        assert response.json()["transaction_dt"] == answered, sent


def test_a_body_that_is_not_json_is_a_clear_400(sandbox, admin_api):
    response = admin_api.session.post(
        f"{sandbox.base_url}/v2/transactions/", data="{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert error_codes(response) == {"__all__": ["invalid_json"]}


def test_concurrent_posts_of_one_trans_source_id_create_exactly_one_transaction(sandbox, admin_api):
    def post(_: int) -> int:
        api = Api(sandbox.base_url, admin_api.token)
        return api.award(user_email=CASEY, trans_source_id="race-1").status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = sorted(pool.map(post, range(24)))

    assert codes == [201] + [400] * 23
    assert [t["trans_source_id"] for t in sandbox.admin.ledger()["transactions"]] == ["race-1"]
    assert connection_of(sandbox, CASEY)["point_balance"] == 130


def test_a_numeric_trans_source_id_is_taken_as_its_string(admin_api):
    first = admin_api.award(user_email=CASEY, trans_source_id=4711)
    again = admin_api.award(user_email=CASEY, trans_source_id="4711")

    assert first.json()["trans_source_id"] == "4711"
    assert error_codes(again) == {"trans_source_id": ["pv_duplicate_trans_source_id"]}
    assert error_codes(admin_api.award(user_email=CASEY, trans_source_id=["x"])) == {
        "trans_source_id": ["invalid"]
    }
