"""/v2/external-members/: the upsert on (business, system, member id), its user and connection."""

from __future__ import annotations

from perkville_provider.sandbox import seed
from tests.helpers.api import connection_of, error_codes


def test_a_new_member_creates_a_user_and_an_imported_connection_with_201(sandbox, admin_api):
    response = admin_api.upsert_member(
        external_member_id="M-1",
        user_email="new.member@example.com",
        first_name="Nova",
        last_name="Member",
        external_membership_type="Annual",
        external_membership_status="ACTIVE",
        external_join_dt="2026-01-10",
        home_location=seed.WESTSIDE_LOCATION_ID,
    )

    assert response.status_code == 201
    record = response.json()
    assert record["created"] is True
    assert response.headers["Location"] == record["connection"]
    ledger = sandbox.admin.ledger()
    user = next(u for u in ledger["users"] if u["resource_uri"] == record["user"])
    assert user["emails"] == [{"email": "new.member@example.com", "primary": True}]
    assert (user["first_name"], user["last_name"]) == ("Nova", "Member")
    connection = next(c for c in ledger["connections"] if c["resource_uri"] == record["connection"])
    assert connection["status"] == "IMPORTED"
    assert connection["external_membership_status"] == "ACTIVE"
    assert connection["external_membership_type"] == "Annual"
    assert connection["external_join_dt"] == "2026-01-10 05:00:00+00:00"
    assert connection["home_location"] == "/v2/locations/102/"


def test_posting_the_same_member_again_updates_it_with_200_and_creates_nothing(sandbox, admin_api):
    created = admin_api.upsert_member(external_member_id="M-2", user_email="m2@example.com").json()

    again = admin_api.upsert_member(external_member_id="M-2", external_membership_status="INACTIVE")

    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["external_member_record_id"] == created["external_member_record_id"]
    assert again.json()["connection"] == created["connection"]
    ledger = sandbox.admin.ledger()
    assert len(ledger["external_members"]) == 1
    assert len(ledger["users"]) == 5
    assert connection_of(sandbox, "m2@example.com")["external_membership_status"] == "INACTIVE"


def test_a_changed_email_updates_the_users_primary_email(sandbox, admin_api):
    admin_api.upsert_member(external_member_id="M-3", user_email="old@example.com")

    response = admin_api.upsert_member(external_member_id="M-3", user_email="New@Example.com")

    assert response.json()["user_email"] == "new@example.com"
    emails = [e for u in sandbox.admin.ledger()["users"] for e in u["emails"]]
    assert {"email": "new@example.com", "primary": True} in emails
    assert all(e["email"] != "old@example.com" for e in emails)


def test_an_email_another_user_has_is_refused_and_nothing_else_changes(sandbox, admin_api):
    admin_api.upsert_member(
        external_member_id="M-4", user_email="m4@example.com", external_membership_type="A"
    )

    response = admin_api.upsert_member(
        external_member_id="M-4", user_email=seed.CUSTOMER_USERNAME, external_membership_type="B"
    )

    assert response.status_code == 400
    assert error_codes(response) == {"user_email": ["pv_email_in_use"]}
    assert connection_of(sandbox, "m4@example.com")["external_membership_type"] == "A"


def test_a_member_with_an_existing_users_email_attaches_to_that_user(sandbox, admin_api):
    response = admin_api.upsert_member(external_member_id="M-5", user_email=seed.IMPORTED_CUSTOMER_USERNAME)

    assert response.status_code == 201
    assert response.json()["user"] == f"/v2/users/{seed.IMPORTED_CUSTOMER_USER_ID}/"
    assert response.json()["connection"] == f"/v2/connections/{seed.IMPORTED_CUSTOMER_CONNECTION_ID}/"
    assert len(sandbox.admin.ledger()["connections"]) == 2


def test_one_user_may_have_several_external_member_records(sandbox, admin_api):
    a = admin_api.upsert_member(external_member_id="A-1", user_email="two@example.com").json()
    b = admin_api.upsert_member(
        external_system_id="CSI_SPECTRUM", external_member_id="C-1", user_email="two@example.com"
    )

    assert b.status_code == 201
    assert b.json()["user"] == a["user"]
    assert b.json()["external_member_record_id"] != a["external_member_record_id"]


def test_the_unprefixed_spellings_are_accepted(sandbox, admin_api):
    response = admin_api.post(
        "/v2/external-members/",
        {
            "business": seed.BUSINESS_ID,
            "system_id": "ABC_IGNITE",
            "member_id": "U-1",
            "user_email": "unprefixed@example.com",
            "membership_type": "Monthly",
            "membership_status": "active",
            "join_dt": "2026-02-01T12:00:00Z",
            "cancel_dt": "2026-12-01T12:00:00Z",
            "external_home_location_id": "DT",
        },
    )

    assert response.status_code == 201
    record = response.json()
    assert (record["external_system_id"], record["external_member_id"]) == ("ABC_IGNITE", "U-1")
    assert record["external_membership_type"] == "Monthly"
    assert record["external_membership_status"] == "ACTIVE"
    assert record["external_join_dt"] == "2026-02-01 12:00:00+00:00"
    assert record["external_cancel_dt"] == "2026-12-01 12:00:00+00:00"
    assert record["home_location"] == "/v2/locations/101/"


def test_a_new_member_without_an_email_names_the_field(sandbox, admin_api):
    response = admin_api.upsert_member(external_member_id="M-6")

    assert error_codes(response) == {"user_email": ["required"]}
    assert sandbox.admin.ledger()["external_members"] == []


def test_bad_member_fields_are_reported_together(admin_api):
    response = admin_api.post(
        "/v2/external-members/",
        {
            "business": seed.BUSINESS_ID,
            "user_email": "not-an-email",
            "external_join_dt": "soon",
            "external_home_location_id": "NOPE",
            "favourite_colour": "blue",
        },
    )

    assert error_codes(response) == {"favourite_colour": ["unknown_field"]}
    response = admin_api.post(
        "/v2/external-members/",
        {
            "business": seed.BUSINESS_ID,
            "user_email": "not-an-email",
            "external_join_dt": "soon",
            "external_home_location_id": "NOPE",
        },
    )
    assert error_codes(response) == {
        "external_system_id": ["required"],
        "external_member_id": ["required"],
        "user_email": ["invalid"],
        "external_join_dt": ["invalid"],
        "external_home_location_id": ["does_not_exist"],
    }


def test_patch_updates_a_record_and_the_connection_it_drives(sandbox, admin_api):
    record = admin_api.upsert_member(external_member_id="P-1", user_email="p1@example.com").json()

    response = admin_api.patch(
        record["resource_uri"], {"membership_status": "ACTIVE", "first_name": "Pat", "home_location": 101}
    )

    assert response.status_code == 200
    assert response.json()["external_membership_status"] == "ACTIVE"
    assert response.json()["first_name"] == "Pat"
    connection = connection_of(sandbox, "p1@example.com")
    assert connection["external_membership_status"] == "ACTIVE"
    assert connection["home_location"] == "/v2/locations/101/"


def test_patch_cannot_change_the_records_key(admin_api):
    record = admin_api.upsert_member(external_member_id="P-2", user_email="p2@example.com").json()

    response = admin_api.patch(record["resource_uri"], {"external_member_id": "P-3"})

    assert error_codes(response) == {"external_member_id": ["read_only"]}


def test_members_are_listed_and_filtered_and_read_by_id(admin_api):
    admin_api.upsert_member(external_member_id="L-1", user_email="l1@example.com")
    admin_api.upsert_member(external_member_id="L-2", user_email="l2@example.com")
    admin_api.upsert_member(
        external_system_id="CSI_SPECTRUM", external_member_id="L-1", user_email="l3@example.com"
    )

    everything = admin_api.get("/v2/external-members/", business=seed.BUSINESS_ID).json()
    abc_l1 = admin_api.get(
        "/v2/external-members/",
        business=seed.BUSINESS_ID,
        external_system_id="ABC_IGNITE",
        external_member_id="L-1",
    ).json()["objects"]

    assert everything["meta"]["total_count"] == 3
    assert [m["user_email"] for m in abc_l1] == ["l1@example.com"]
    detail = admin_api.get(abc_l1[0]["resource_uri"])
    assert detail.json()["external_member_id"] == "L-1"
    assert admin_api.get("/v2/external-members/99999/").status_code == 404
