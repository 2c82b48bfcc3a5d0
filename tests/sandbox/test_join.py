"""Joining: PATCH status=ACTIVE with its two checks, the agreements view and the batch acceptance."""

from __future__ import annotations

from perkville_provider.sandbox import seed
from tests.helpers.api import error_codes

ROBIN_CONNECTION = f"/v2/connections/{seed.IMPORTED_CUSTOMER_CONNECTION_ID}/"


def accept_terms(api, user_id: int = seed.IMPORTED_CUSTOMER_USER_ID):
    return api.post(
        "/v2/agreements-batch/",
        {"business": seed.BUSINESS_ID, "user_id": user_id, "agreement_ids": [seed.JOIN_AGREEMENT_ID]},
    )


def test_joining_without_membership_or_terms_reports_both_codes_with_customer_safe_copy(sandbox, admin_api):
    response = admin_api.patch(ROBIN_CONNECTION, {"status": "ACTIVE"})

    assert response.status_code == 400
    assert error_codes(response) == {
        "status": ["pv_connection_membership_not_active"],
        "__all__": ["pv_agreement_required"],
    }
    errors = response.json()["errors"]
    assert (
        errors["status"][0]["message"]
        == "Your membership is not active. Please contact the business for help."
    )
    assert errors["__all__"][0]["message"] == (
        "Please review and accept the required terms to join at https://www.perkville.com/biz/9823/"
    )
    assert admin_api.get(ROBIN_CONNECTION).json()["status"] == "IMPORTED"


def test_joining_succeeds_once_terms_are_accepted_and_membership_is_active(admin_api):
    accept_terms(admin_api)
    only_membership_missing = admin_api.patch(ROBIN_CONNECTION, {"status": "ACTIVE"})
    admin_api.upsert_member(
        external_member_id="R-1", user_email=seed.IMPORTED_CUSTOMER_USERNAME, membership_status="ACTIVE"
    )

    joined = admin_api.patch(ROBIN_CONNECTION, {"status": "ACTIVE"})

    assert error_codes(only_membership_missing) == {"status": ["pv_connection_membership_not_active"]}
    assert joined.status_code == 200
    assert joined.json()["status"] == "ACTIVE"


def test_without_the_membership_setting_only_the_terms_are_checked(sandbox, admin_api):
    sandbox.admin.set_settings(join_requires_active_membership=False)

    before = admin_api.patch(ROBIN_CONNECTION, {"status": "ACTIVE"})
    accept_terms(admin_api)
    after = admin_api.patch(ROBIN_CONNECTION, {"status": "ACTIVE"})

    assert error_codes(before) == {"__all__": ["pv_agreement_required"]}
    assert after.json()["status"] == "ACTIVE"


def test_only_status_active_or_inactive_can_be_patched(admin_api):
    pending = admin_api.patch(ROBIN_CONNECTION, {"status": "PENDING"})
    balance = admin_api.patch(ROBIN_CONNECTION, {"status": "INACTIVE", "point_balance": 10_000})

    assert error_codes(pending) == {"status": ["invalid"]}
    assert error_codes(balance) == {"point_balance": ["read_only"]}
    assert admin_api.get(ROBIN_CONNECTION).json()["point_balance"] == 0


def test_the_agreements_view_shows_join_agreements_and_whether_the_user_accepted(admin_api):
    params = {"business": seed.BUSINESS_ID, "apply_to_join_flow": "true"}
    robin = admin_api.get("/v2/agreements-view/", user_id=seed.IMPORTED_CUSTOMER_USER_ID, **params).json()
    casey = admin_api.get("/v2/agreements-view/", user_id=seed.CUSTOMER_USER_ID, **params).json()

    [agreement] = robin["objects"]
    assert agreement["agreement_id"] == seed.JOIN_AGREEMENT_ID
    assert agreement["required"] is True
    assert agreement["apply_to_join_flow"] is True
    assert "[loyalty program terms](https://" in agreement["text"]
    assert agreement["is_accepted"] is False
    assert casey["objects"][0]["is_accepted"] is True


def test_batch_acceptance_records_once_and_is_idempotent(admin_api):
    first = accept_terms(admin_api)
    second = accept_terms(admin_api)

    assert first.status_code == 200
    [accepted] = first.json()["objects"]
    assert accepted["agreement_id"] == seed.JOIN_AGREEMENT_ID
    assert accepted["is_accepted"] is True
    assert second.json()["objects"] == first.json()["objects"]
    view = admin_api.get(
        "/v2/agreements-view/", business=seed.BUSINESS_ID, user_id=seed.IMPORTED_CUSTOMER_USER_ID
    )
    assert view.json()["objects"][0]["is_accepted"] is True


def test_batch_acceptance_of_an_unknown_agreement_names_it(admin_api):
    response = admin_api.post(
        "/v2/agreements-batch/",
        {
            "business": seed.BUSINESS_ID,
            "user_id": seed.IMPORTED_CUSTOMER_USER_ID,
            "agreement_ids": [701, 999],
        },
    )

    assert error_codes(response) == {"agreement_ids": ["does_not_exist"]}
    assert "999" in response.json()["errors"]["agreement_ids"][0]["message"]


def test_a_customer_may_accept_for_itself_but_not_for_another_user(sandbox):
    from tests.helpers.api import Api

    robin = Api(
        sandbox.base_url,
        sandbox.token(
            seed.IMPORTED_CUSTOMER_USERNAME, seed.IMPORTED_CUSTOMER_PASSWORD, scope="USER_CUSTOMER_INFO"
        ),
    )

    assert accept_terms(robin).status_code == 200
    assert accept_terms(robin, user_id=seed.CUSTOMER_USER_ID).status_code == 403
