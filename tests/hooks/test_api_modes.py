"""The hook against every way the real API may answer where it is undocumented (issue: API unknowns).

Each mode set is a sandbox setting (``PUT /_sandbox/settings``) and, where the client has to be
told, the connection extra that matches it. Every test runs against every mode set, including the
combination closest to stock django-tastypie, and proves exactly-once from the sandbox's ledger.
One sandbox serves them all: it is reset, then switched, before each test.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from perkville_provider.sandbox.modes import STOCK_TASTYPIE
from tests.helpers.hook_sandbox import BUSINESS_ID, CASEY, CHECKIN_PERK_ID, ROBIN

MOVED_PATHS = {
    "transactions": "/v2/transaction/",
    "external_members": "/v2/external_members/",
    "connections": "/v2/customer-connections/",
    "agreements_batch": "/v2/agreements/accept/",
}

#: name -> (sandbox settings, connection extras)
MODE_SETS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "sandbox_defaults": ({}, {}),
    "uri_relations_only": ({"relations": "uri"}, {}),
    "id_relations_only": ({"relations": "id"}, {"relations": "id"}),
    "moved_paths": ({"paths": MOVED_PATHS}, {"paths": MOVED_PATHS}),
    "ignored_filters": ({"ignored_filters": STOCK_TASTYPIE["ignored_filters"]}, {}),
    "duplicate_answered_200": ({"duplicate_mode": "return_existing"}, {}),
    "duplicate_answered_201": ({"duplicate_mode": "created_existing"}, {}),
    "empty_write_answers": ({"always_return_data": False}, {}),
    "quantities_as_strings": ({}, {"quantity_format": "string"}),
    "api_datetimes_only": ({"datetime_input": "api"}, {}),
    "iso_datetimes_only": ({"datetime_input": "iso"}, {"datetime_format": "iso"}),
    "unknown_fields_ignored": ({"unknown_fields": "ignore"}, {}),
    "stock_tastypie": (STOCK_TASTYPIE, {}),
    "stock_tastypie_201_duplicates": ({**STOCK_TASTYPIE, "duplicate_mode": "created_existing"}, {}),
}


@pytest.fixture(params=list(MODE_SETS))
def moded(request, sandbox_control, make_hook):
    """(hook, sandbox control) with the sandbox switched to one mode set and the hook told to match."""
    settings, extras = MODE_SETS[request.param]
    if settings:
        sandbox_control.settings(**settings)
    return make_hook(extra=extras), sandbox_control


def object_id(uri: str) -> str:
    """The id at the end of a resource URI (the ledger spells URIs with the default paths)."""
    return uri.rstrip("/").rsplit("/", 1)[-1]


def ledger_transactions(control, trans_source_id):
    return [row for row in control.ledger()["transactions"] if row["trans_source_id"] == trans_source_id]


def test_an_award_is_written_once_with_every_field_and_its_repeat_is_a_duplicate(moded):
    hook, control = moded
    award = {
        "trans_source_id": "MODES:1",
        "user_email": CASEY,
        "perk_id": CHECKIN_PERK_ID,
        "quantity": 2,
        "location_id": 102,
        "transaction_dt": "2026-03-01T07:30:00-05:00",
    }
    first = hook.award_points(award)
    again = hook.award_points(award)

    assert (first.status, first.points) == ("awarded", 20)
    assert (again.status, again.points) == ("duplicate", 0)
    [row] = ledger_transactions(control, "MODES:1")
    assert (row["quantity"], row["points"], row["perk"]) == (2, 10, f"/v2/perks/{CHECKIN_PERK_ID}/")
    assert row["location"].endswith("/102/")
    assert row["transaction_dt"] == "2026-03-01 12:30:00+00:00"
    assert first.transaction["transaction_id"] == row["transaction_id"]


def test_awards_whose_answers_are_lost_are_settled_exactly_once(moded):
    hook, control = moded
    control.faults(lost_after_commit_rate=0.5, seed=3)
    results = [
        hook.award_points({"trans_source_id": f"LOST:{n}", "user_id": 1003, "perk_id": CHECKIN_PERK_ID})
        for n in range(4)
    ]
    control.faults()

    assert {result.status for result in results} <= {"awarded", "duplicate"}
    for n in range(4):
        assert len(ledger_transactions(control, f"LOST:{n}")) == 1
    reported = sum(result.points for result in results)
    assert reported <= 10 * 4
    assert control.stats()["faults_injected"].get("lost_after_commit", 0) >= 1


def test_a_decimal_quantity_is_awarded_exactly(moded):
    hook, control = moded
    result = hook.award_points(
        {"trans_source_id": "REVENUE:1", "user_email": CASEY, "perk_id": CHECKIN_PERK_ID, "quantity": "9.99"}
    )
    assert (result.status, result.points) == ("awarded", 100)
    [row] = ledger_transactions(control, "REVENUE:1")
    assert Decimal(str(row["quantity"])) == Decimal("9.99")


def test_a_member_upsert_creates_then_updates_one_record(moded):
    hook, control = moded
    member = {
        "external_system_id": "GYM",
        "external_member_id": "M-77",
        "user_email": "Avery@Example.com",
        "last_name": "Stone",
        "external_membership_status": "active",
        "external_join_dt": "2026-01-02T09:00:00+01:00",
        "external_home_location_id": "WS",
    }
    created = hook.upsert_external_member(member)
    updated = hook.upsert_external_member({**member, "last_name": "Stone-Hill", "home_location_id": None,
                                           "external_home_location_id": None})  # fmt: skip

    assert (created.status, updated.status) == ("created", "updated")
    [record] = [row for row in control.ledger()["external_members"] if row["external_member_id"] == "M-77"]
    assert record["last_name"] == "Stone-Hill"
    assert record["external_join_dt"] == "2026-01-02 08:00:00+00:00"
    assert record["home_location"].endswith("/102/")
    assert record["user_email"] == "avery@example.com"
    assert created.connection_uri == updated.connection_uri
    assert object_id(created.connection_uri) == object_id(record["connection"])


def test_look_ups_return_the_object_asked_for_or_none(moded):
    hook, _ = moded
    for n in (1, 2):
        hook.award_points({"trans_source_id": f"FIND:{n}", "user_email": ROBIN if n == 2 else CASEY,
                           "perk_id": CHECKIN_PERK_ID})  # fmt: skip

    robin = hook.find_connection(email=ROBIN.upper())
    assert robin is not None
    assert robin["user_email"] == ROBIN
    by_id = hook.find_connection(user_id=1004)
    assert by_id is not None
    assert by_id["connection_id"] == robin["connection_id"]
    assert hook.find_connection(email="nobody@example.com") is None
    found = hook.find_transaction("FIND:2")
    assert found is not None
    assert found["trans_source_id"] == "FIND:2"
    assert hook.find_transaction("FIND:3") is None


def test_joining_activates_the_customer_asked_for_and_nobody_else(moded):
    hook, control = moded
    hook.upsert_external_member(
        {"external_system_id": "GYM", "external_member_id": "R-1", "user_email": ROBIN,
         "external_membership_status": "ACTIVE"}
    )  # fmt: skip
    connection = hook.find_connection(email=ROBIN)
    pending = [a["agreement_id"] for a in hook.get_join_agreements(1004) if not a["is_accepted"]]
    accepted = hook.accept_agreements(1004, pending)
    joined = hook.set_connection_status(connection, "ACTIVE")

    assert [a["agreement_id"] for a in accepted] == pending
    assert joined["status"] == "ACTIVE"
    statuses = {row["user_email"]: row["status"] for row in control.ledger()["connections"]}
    assert statuses[ROBIN] == "ACTIVE"
    assert statuses[CASEY] == "ACTIVE"
    assert sum(status == "ACTIVE" for status in statuses.values()) == 2
    assert all(a["is_accepted"] for a in hook.get_join_agreements(1004, business_id=BUSINESS_ID))
