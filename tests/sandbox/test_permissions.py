"""403s: scopes and staff roles, and what a customer token may see and change."""

from __future__ import annotations

from perkville_provider.sandbox import seed
from tests.helpers.api import Api, connection_of, error_codes


def test_front_desk_staff_cannot_award_points(sandbox, frontdesk_api):
    response = frontdesk_api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="fd-1")

    assert response.status_code == 403
    assert response.json()["error_type"] == "permission_denied"
    assert error_codes(response) == {"__all__": ["pv_staff_role_required"]}
    assert sandbox.admin.ledger()["transactions"] == []


def test_a_customer_token_cannot_award_points(sandbox, customer_api):
    response = customer_api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="c-1")

    assert response.status_code == 403
    assert error_codes(response) == {"__all__": ["pv_staff_role_required"]}


def test_front_desk_staff_cannot_upsert_external_members(frontdesk_api):
    response = frontdesk_api.upsert_member(external_member_id="M1", user_email="m1@example.com")

    assert response.status_code == 403
    assert error_codes(response) == {"__all__": ["pv_staff_role_required"]}


def test_front_desk_staff_can_list_the_business_connections(frontdesk_api):
    response = frontdesk_api.get("/v2/connections/", business=seed.BUSINESS_ID)

    assert response.status_code == 200
    assert response.json()["meta"]["total_count"] == 2


def test_a_customer_token_lists_only_its_own_connection_not_the_business(customer_api):
    response = customer_api.get("/v2/connections/", business=seed.BUSINESS_ID)

    assert response.status_code == 200
    assert [c["connection_id"] for c in response.json()["objects"]] == [seed.CUSTOMER_CONNECTION_ID]


def test_a_token_with_neither_customer_info_scope_cannot_list_connections(sandbox):
    api = Api(sandbox.base_url, sandbox.token(scope="PUBLIC"))

    response = api.get("/v2/connections/", business=seed.BUSINESS_ID)

    assert response.status_code == 403
    assert error_codes(response) == {"__all__": ["pv_insufficient_scope"]}


def test_a_customer_token_cannot_read_another_users_connection(customer_api):
    response = customer_api.get(f"/v2/connections/{seed.IMPORTED_CUSTOMER_CONNECTION_ID}/")

    assert response.status_code == 403


def test_a_customer_with_user_customer_info_can_patch_its_own_connection(own_info_api):
    response = own_info_api.patch(f"/v2/connections/{seed.CUSTOMER_CONNECTION_ID}/", {"status": "INACTIVE"})

    assert response.status_code == 200
    assert response.json()["status"] == "INACTIVE"


def test_a_customer_with_user_customer_info_cannot_patch_another_users_connection(sandbox, own_info_api):
    response = own_info_api.patch(
        f"/v2/connections/{seed.IMPORTED_CUSTOMER_CONNECTION_ID}/", {"status": "INACTIVE"}
    )

    assert response.status_code == 403
    assert connection_of(sandbox, seed.IMPORTED_CUSTOMER_USERNAME)["status"] == "IMPORTED"


def test_staff_with_admin_customer_info_can_patch_a_customers_connection(admin_api):
    response = admin_api.patch(f"/v2/connections/{seed.CUSTOMER_CONNECTION_ID}/", {"status": "INACTIVE"})

    assert (response.status_code, response.json()["status"]) == (200, "INACTIVE")


def test_a_customer_sees_only_itself_in_the_users_list_and_staff_see_their_customers(customer_api, admin_api):
    mine = customer_api.get("/v2/users/").json()["objects"]
    staff_view = admin_api.get("/v2/users/").json()["objects"]

    assert [u["user_id"] for u in mine] == [seed.CUSTOMER_USER_ID]
    assert [u["user_id"] for u in staff_view] == [
        seed.ADMIN_USER_ID,
        seed.CUSTOMER_USER_ID,
        seed.IMPORTED_CUSTOMER_USER_ID,
    ]
    assert customer_api.get(f"/v2/users/{seed.IMPORTED_CUSTOMER_USER_ID}/").status_code == 404


def test_any_token_may_read_the_business_its_locations_and_perks(customer_api):
    assert customer_api.get(f"/v2/businesses/{seed.BUSINESS_ID}/").json()["timezone"] == "America/New_York"
    locations = customer_api.get("/v2/locations/", business=seed.BUSINESS_ID).json()["objects"]
    assert {loc["location_id"]: loc["timezone"] for loc in locations} == {
        101: "America/New_York",
        102: "America/Los_Angeles",
    }
    perks = customer_api.get("/v2/perks/", business=seed.BUSINESS_ID).json()["objects"]
    assert [(p["perk_id"], p["classification"], p["points"]) for p in perks] == [
        (501, "EARN", 10),
        (502, "EARN", 25),
        (503, "REDEEM", 500),
        (504, "EARN", 1),  # a point a dollar: the per-dollar purchase with a fractional quantity
    ]


def test_a_customer_lists_and_reads_only_its_own_transactions(admin_api, customer_api):
    mine = admin_api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="own-1").json()
    theirs = admin_api.award(user_email=seed.IMPORTED_CUSTOMER_USERNAME, trans_source_id="other-1").json()

    listed = customer_api.get("/v2/transactions/", business=seed.BUSINESS_ID).json()["objects"]

    assert [t["trans_source_id"] for t in listed] == ["own-1"]
    assert customer_api.get(mine["resource_uri"]).status_code == 200
    assert customer_api.get(theirs["resource_uri"]).status_code == 404
    assert admin_api.get(theirs["resource_uri"]).json()["trans_source_id"] == "other-1"
