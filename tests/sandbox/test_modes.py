"""The sandbox's switchable answers for the API's unknowns (``PUT /_sandbox/settings``), over HTTP."""

from __future__ import annotations

import pytest
import requests

from perkville_provider.sandbox import seed
from perkville_provider.sandbox.modes import STOCK_TASTYPIE
from tests.helpers.api import error_codes

CASEY = seed.CUSTOMER_USERNAME
PERK_URI = f"/v2/perks/{seed.CHECKIN_PERK_ID}/"
BUSINESS_URI = f"/v2/businesses/{seed.BUSINESS_ID}/"


def award_body(**fields):
    return {
        "business": BUSINESS_URI,
        "perk": PERK_URI,
        "user_email": CASEY,
        "trans_source_id": "M:1",
        **fields,
    }


def test_stock_relations_refuse_a_bare_id_in_tastypies_words(sandbox, admin_api):
    sandbox.admin.set_settings(relations="uri")
    refused = admin_api.post("/v2/transactions/", award_body(perk=seed.CHECKIN_PERK_ID))
    assert refused.status_code == 400
    assert "was given data that was not a URI" in refused.json()["errors"]["perk"][0]["message"]
    assert admin_api.post("/v2/transactions/", award_body()).status_code == 201


def test_id_relations_refuse_a_uri(sandbox, admin_api):
    sandbox.admin.set_settings(relations="id")
    assert error_codes(admin_api.post("/v2/transactions/", award_body())) == {"business": ["invalid"]}
    assert error_codes(admin_api.post("/v2/transactions/", award_body(business=seed.BUSINESS_ID))) == {
        "perk": ["invalid"]
    }
    body = award_body(business=seed.BUSINESS_ID, perk=seed.CHECKIN_PERK_ID)
    assert admin_api.post("/v2/transactions/", body).status_code == 201


def test_moved_paths_answer_at_the_new_path_with_uris_there_and_404_at_the_old(sandbox, admin_api):
    sandbox.admin.set_settings(paths={"transactions": "/v2/transaction/"})
    created = admin_api.post("/v2/transaction/", award_body())
    assert created.status_code == 201
    assert created.json()["resource_uri"].startswith("/v2/transaction/")
    assert created.headers["Location"].startswith("/v2/transaction/")
    assert admin_api.get(created.json()["resource_uri"]).json()["trans_source_id"] == "M:1"
    assert admin_api.get("/v2/transactions/", business=seed.BUSINESS_ID).status_code == 404
    page = admin_api.get("/v2/transaction/", business=seed.BUSINESS_ID, limit=1).json()
    assert page["objects"][0]["resource_uri"].startswith("/v2/transaction/")


def test_ignored_filters_are_dropped_silently(sandbox, admin_api):
    for n in (1, 2):
        admin_api.post("/v2/transactions/", award_body(trans_source_id=f"F:{n}"))
    sandbox.admin.set_settings(ignored_filters=["trans_source_id"])
    page = admin_api.get("/v2/transactions/", business=seed.BUSINESS_ID, trans_source_id="F:2").json()
    assert [row["trans_source_id"] for row in page["objects"]] == ["F:1", "F:2"]


def test_a_repeat_can_be_answered_201_with_the_existing_transaction(sandbox, admin_api):
    sandbox.admin.set_settings(duplicate_mode="created_existing")
    first = admin_api.post("/v2/transactions/", award_body())
    again = admin_api.post("/v2/transactions/", award_body())
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["transaction_id"] == first.json()["transaction_id"]
    assert again.json()["created_dt"] == first.json()["created_dt"]
    assert len(sandbox.admin.ledger()["transactions"]) == 1


def test_without_always_return_data_writes_answer_empty_with_a_location(sandbox, admin_api):
    sandbox.admin.set_settings(always_return_data=False)
    created = admin_api.post("/v2/transactions/", award_body())
    assert (created.status_code, created.content) == (201, b"")
    assert admin_api.get(created.headers["Location"]).json()["trans_source_id"] == "M:1"
    member = admin_api.upsert_member(external_member_id="X-1", user_email="x1@example.com")
    assert (member.status_code, member.content) == (201, b"")
    assert admin_api.get(member.headers["Location"]).json()["external_member_id"] == "X-1"
    patched = admin_api.patch("/v2/connections/5001/", {"status": "ACTIVE"})
    assert (patched.status_code, patched.content) == (202, b"")


def test_quantities_may_have_two_decimal_places_unless_integers_only(sandbox, admin_api):
    created = admin_api.post("/v2/transactions/", award_body(quantity="9.99"))
    assert created.status_code == 201
    assert created.json()["quantity"] == 9.99
    for bad in (9.999, 2**63, -1):
        assert error_codes(
            admin_api.post("/v2/transactions/", award_body(trans_source_id="Q", quantity=bad))
        ) == {"quantity": ["invalid"]}
    sandbox.admin.set_settings(quantities="integer")
    assert (
        admin_api.post("/v2/transactions/", award_body(trans_source_id="Q", quantity=9.5)).status_code == 400
    )


@pytest.mark.parametrize(
    ("mode", "refused"), [("api", "2026-03-01T12:30:00Z"), ("iso", "2026-03-01 12:30:00+00:00")]
)
def test_datetime_input_can_be_limited_to_one_form(sandbox, admin_api, mode, refused):
    sandbox.admin.set_settings(datetime_input=mode)
    assert error_codes(admin_api.post("/v2/transactions/", award_body(transaction_dt=refused))) == {
        "transaction_dt": ["invalid"]
    }


def test_unknown_body_fields_are_refused_by_default_and_ignored_when_lenient(sandbox, admin_api):
    assert error_codes(admin_api.post("/v2/transactions/", award_body(quantitty=3))) == {
        "quantitty": ["unknown_field"]
    }
    sandbox.admin.set_settings(unknown_fields="ignore")
    created = admin_api.post("/v2/transactions/", award_body(quantitty=3))
    assert (created.status_code, created.json()["quantity"]) == (201, 1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("perk", 2**63),
        ("location", "/v2/locations/99999999999999999999/"),
        ("transaction_dt", "9999-12-31T23:59:59-05:00"),
        ("transaction_dt", "0001-01-01T00:00:00+05:00"),
    ],
)
def test_out_of_range_values_are_a_400_naming_the_field_not_a_500(admin_api, field, value):
    answer = admin_api.post("/v2/transactions/", award_body(**{field: value}))
    assert answer.status_code == 400
    assert field in answer.json()["errors"]


def test_an_offset_beyond_64_bits_is_a_400(admin_api):
    assert admin_api.get("/v2/transactions/", business=seed.BUSINESS_ID, offset=2**64).status_code == 400


def test_stock_tastypie_is_one_settings_call_and_a_reset_undoes_it(sandbox):
    assert sandbox.admin.set_settings(**STOCK_TASTYPIE)["relations"] == "uri"
    sandbox.admin.reset()
    assert sandbox.admin.settings()["relations"] == "any"


@pytest.mark.parametrize(
    "change",
    [
        {"relations": "pk"},
        {"paths": {"nope": "/v2/x/"}},
        {"paths": {"transactions": "v2"}},
        {"ignored_filters": "x"},
    ],
)
def test_a_bad_mode_setting_is_refused_naming_it(sandbox, change):
    answer = requests.put(f"{sandbox.base_url}/_sandbox/settings", json=change, timeout=10)
    assert answer.status_code == 400
    assert next(iter(change)) in answer.json()["errors"]
