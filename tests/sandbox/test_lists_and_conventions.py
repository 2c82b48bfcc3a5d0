"""The list envelope, paging, filters, trailing slashes, 404/405 and datetime formats."""

from __future__ import annotations

import re

import pytest
import requests

from perkville_provider.sandbox import seed
from tests.helpers.api import error_codes

BIZ = seed.BUSINESS_ID
API_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\+00:00$")


def make_members(api, count: int) -> None:
    for n in range(count):
        assert api.upsert_member(external_member_id=f"L{n:03}", user_email=f"list{n:03}@example.com").ok


def test_a_list_has_the_tastypie_envelope_with_default_limit_20(admin_api):
    make_members(admin_api, 23)

    body = admin_api.get("/v2/connections/", business=BIZ).json()

    assert set(body) == {"meta", "objects"}
    assert body["meta"]["limit"] == 20
    assert body["meta"]["offset"] == 0
    assert body["meta"]["total_count"] == 25
    assert body["meta"]["previous"] is None
    assert len(body["objects"]) == 20
    ids = [c["connection_id"] for c in body["objects"]]
    assert ids == sorted(ids)


def test_following_next_and_previous_walks_the_pages_and_keeps_the_filters(admin_api):
    make_members(admin_api, 12)

    first = admin_api.get("/v2/connections/", business=BIZ, status="IMPORTED", limit=5).json()
    pages, link = [first], first["meta"]["next"]
    while link:
        pages.append(admin_api.get(link).json())
        link = pages[-1]["meta"]["next"]

    assert "status=IMPORTED" in first["meta"]["next"]
    assert [len(p["objects"]) for p in pages] == [5, 5, 3]
    seen = [c["connection_id"] for p in pages for c in p["objects"]]
    assert len(seen) == len(set(seen)) == 13
    assert all(c["status"] == "IMPORTED" for p in pages for c in p["objects"])
    back = admin_api.get(pages[-1]["meta"]["previous"]).json()
    assert back["objects"] == pages[1]["objects"]


def test_limit_is_clamped_to_1000_and_zero_means_the_maximum(admin_api):
    assert admin_api.get("/v2/connections/", business=BIZ, limit=5000).json()["meta"]["limit"] == 1000
    assert admin_api.get("/v2/connections/", business=BIZ, limit=0).json()["meta"]["limit"] == 1000


def test_a_bad_limit_or_offset_names_the_parameter(admin_api):
    assert error_codes(admin_api.get("/v2/connections/", business=BIZ, limit="ten")) == {"limit": ["invalid"]}
    assert error_codes(admin_api.get("/v2/connections/", business=BIZ, offset=-1)) == {"offset": ["invalid"]}


def test_lists_need_a_business(admin_api):
    for path in (
        "/v2/connections/",
        "/v2/transactions/",
        "/v2/perks/",
        "/v2/locations/",
        "/v2/external-members/",
    ):
        response = admin_api.get(path)
        assert response.status_code == 400, path
        assert error_codes(response) == {"business": ["pv_business_required"]}, path


def test_connections_filter_by_user_id_email_and_status(admin_api):
    by_user = admin_api.get("/v2/connections/", business=BIZ, user_id=seed.IMPORTED_CUSTOMER_USER_ID).json()
    by_uri = admin_api.get(
        "/v2/connections/", business=BIZ, user_id=f"/v2/users/{seed.CUSTOMER_USER_ID}/"
    ).json()
    by_email = admin_api.get("/v2/connections/", business=BIZ, user__emails__email="Casey@Example.com").json()
    active = admin_api.get("/v2/connections/", business=BIZ, status="ACTIVE").json()

    assert [c["connection_id"] for c in by_user["objects"]] == [seed.IMPORTED_CUSTOMER_CONNECTION_ID]
    assert [c["connection_id"] for c in by_uri["objects"]] == [seed.CUSTOMER_CONNECTION_ID]
    assert [c["connection_id"] for c in by_email["objects"]] == [seed.CUSTOMER_CONNECTION_ID]
    assert [c["connection_id"] for c in active["objects"]] == [seed.CUSTOMER_CONNECTION_ID]


def test_connections_filter_by_last_modified_window(admin_api):
    admin_api.upsert_member(external_member_id="W-1", user_email=seed.IMPORTED_CUSTOMER_USERNAME)
    robin = admin_api.get(f"/v2/connections/{seed.IMPORTED_CUSTOMER_CONNECTION_ID}/").json()

    def ids(**window):
        body = admin_api.get("/v2/connections/", business=BIZ, **window).json()
        return [c["connection_id"] for c in body["objects"]]

    assert ids(last_mod_dt__gte="2999-01-01 00:00Z") == []
    assert ids(last_mod_dt__lt="2000-01-01T00:00:00+00:00") == []
    assert len(ids(last_mod_dt__gte="2000-01-01 00:00Z", last_mod_dt__lt="2999-01-01 00:00Z")) == 2
    assert seed.IMPORTED_CUSTOMER_CONNECTION_ID in ids(last_mod_dt__gte=robin["last_mod_dt"])
    assert seed.IMPORTED_CUSTOMER_CONNECTION_ID not in ids(last_mod_dt__lt=robin["last_mod_dt"])


def test_transactions_filter_by_user_email_and_trans_source_id(admin_api):
    admin_api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="f-1")
    admin_api.award(user_email=seed.IMPORTED_CUSTOMER_USERNAME, trans_source_id="f-2")
    admin_api.award(user_email=seed.IMPORTED_CUSTOMER_USERNAME, trans_source_id="f-3")

    def sources(**params):
        body = admin_api.get("/v2/transactions/", business=BIZ, **params).json()
        return [t["trans_source_id"] for t in body["objects"]]

    assert sources(user=f"/v2/users/{seed.IMPORTED_CUSTOMER_USER_ID}/") == ["f-2", "f-3"]
    assert sources(user=seed.CUSTOMER_USER_ID) == ["f-1"]
    assert sources(user__emails__email=seed.IMPORTED_CUSTOMER_USERNAME) == ["f-2", "f-3"]
    assert sources(trans_source_id="f-3") == ["f-3"]
    assert sources() == ["f-1", "f-2", "f-3"]


def test_perks_filter_by_classification_and_users_by_email(admin_api):
    redeem = admin_api.get("/v2/perks/", business=BIZ, classification="REDEEM").json()["objects"]
    users = admin_api.get("/v2/users/", emails__email=seed.IMPORTED_CUSTOMER_USERNAME).json()["objects"]

    assert [p["perk_id"] for p in redeem] == [seed.REWARD_PERK_ID]
    assert [u["user_id"] for u in users] == [seed.IMPORTED_CUSTOMER_USER_ID]


def test_a_bad_filter_value_names_the_filter(admin_api):
    assert error_codes(admin_api.get("/v2/connections/", business=BIZ, user_id="casey")) == {
        "user_id": ["invalid"]
    }
    assert error_codes(admin_api.get("/v2/connections/", business=BIZ, status="GONE")) == {
        "status": ["invalid"]
    }
    assert error_codes(admin_api.get("/v2/connections/", business=BIZ, last_mod_dt__gte="later")) == {
        "last_mod_dt__gte": ["invalid"]
    }


def test_a_get_without_the_trailing_slash_is_redirected_with_301(sandbox, admin_api):
    response = admin_api.get("/v2/connections", business=BIZ)

    assert response.status_code == 301
    assert response.headers["Location"] == f"/v2/connections/?business={BIZ}"
    followed = admin_api.session.get(f"{sandbox.base_url}/v2/connections?business={BIZ}", timeout=10)
    assert followed.status_code == 200


def test_a_post_without_the_trailing_slash_is_404(admin_api):
    response = admin_api.post("/v2/transactions", {"business": BIZ})

    assert response.status_code == 404
    assert "/v2/transactions/" in response.json()["errors"]["__all__"][0]["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", f"/v2/connections/{seed.CUSTOMER_CONNECTION_ID}/"),
        ("POST", "/v2/connections/"),
        ("PUT", "/v2/transactions/"),
        ("PATCH", "/v2/transactions/"),
        ("GET", "/v2/agreements-batch/"),
    ],
)
def test_a_method_the_resource_does_not_allow_is_405(sandbox, admin_api, method, path):
    response = admin_api.session.request(method, sandbox.base_url + path, json={}, timeout=10)

    assert response.status_code == 405
    assert error_codes(response) == {"__all__": ["method_not_allowed"]}
    assert "Allow" in response.headers


def test_an_unknown_resource_or_id_is_404(admin_api):
    assert admin_api.get("/v2/vouchers/").status_code == 404
    assert admin_api.get("/v2/connections/424242/").status_code == 404
    assert error_codes(admin_api.get("/v2/perks/424242/")) == {"__all__": ["not_found"]}


def test_datetimes_come_out_as_utc_with_a_space_and_offset(sandbox, admin_api):
    admin_api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="fmt")
    ledger = sandbox.admin.ledger()

    stamps = [ledger["transactions"][0]["transaction_dt"], ledger["connections"][0]["last_mod_dt"]]
    stamps += [u["last_mod_dt"] for u in ledger["users"]]
    assert all(API_DATETIME.match(s) for s in stamps), stamps


def test_relations_are_relative_uris_and_objects_carry_their_ids(admin_api):
    connection = admin_api.get(f"/v2/connections/{seed.CUSTOMER_CONNECTION_ID}/").json()

    assert connection["connection_id"] == seed.CUSTOMER_CONNECTION_ID
    assert connection["resource_uri"] == f"/v2/connections/{seed.CUSTOMER_CONNECTION_ID}/"
    assert connection["business"] == f"/v2/businesses/{BIZ}/"
    assert connection["user"] == f"/v2/users/{seed.CUSTOMER_USER_ID}/"
    assert connection["home_location"] == "/v2/locations/101/"
    assert connection["user_email"] == seed.CUSTOMER_USERNAME


def test_the_admin_api_needs_no_token(sandbox):
    assert requests.get(f"{sandbox.base_url}/_sandbox/health", timeout=10).json()["status"] == "ok"
