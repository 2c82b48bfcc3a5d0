"""Answers the hook must not take on faith: an ignored filter, a 201 for an existing transaction, a
2xx body that cannot be read; and the connection's conventions checked before any request."""

from __future__ import annotations

import logging

import pytest

from perkville_provider.exceptions import (
    PerkvilleAnswerError,
    PerkvilleConfigurationError,
    PerkvilleValidationError,
)
from tests.helpers.hook_sandbox import CASEY, CHECKIN_PERK_ID


def award(trans_source_id: str, **fields):
    return {"trans_source_id": trans_source_id, "user_email": CASEY, "perk_id": CHECKIN_PERK_ID, **fields}


def test_a_201_with_an_existing_transaction_is_a_duplicate_even_in_a_new_hook(make_hook, sandbox_control):
    sandbox_control.settings(duplicate_mode="created_existing")
    first_run = make_hook("perkville_first")
    assert first_run.award_points(award("OLD:1")).status == "awarded"

    rerun = make_hook("perkville_rerun")
    fresh = rerun.award_points(award("NEW:1"))
    repeat = rerun.award_points(award("OLD:1"))

    assert (fresh.status, fresh.points) == ("awarded", 10)
    assert (repeat.status, repeat.points) == ("duplicate", 0)
    assert len(sandbox_control.transactions("OLD:1")) == 1


def test_a_refusal_is_never_taken_for_a_duplicate_through_an_ignored_filter(
    make_hook, sandbox_control, recording_proxy, caplog
):
    """Issue 8.9: the look-up by trans_source_id answered with somebody else's transaction."""
    sandbox_control.settings(ignored_filters=["trans_source_id"])

    def refuse_on_trans_source_id(method, path, status, body):
        if method == "POST" and path == "/v2/transactions/" and status == 400:
            body["errors"] = {"trans_source_id": [{"code": "unique", "message": "refused"}]}
        return status, body

    hook = make_hook("perkville_proxy", host=recording_proxy.url)
    hook.award_points(award("REAL:1"))
    recording_proxy.rewrite = refuse_on_trans_source_id
    caplog.set_level(logging.WARNING, logger="perkville_provider.answers")
    for attempt in ("REFUSED:1", "REFUSED:2"):
        with pytest.raises(PerkvilleValidationError):
            hook.award_points(award(attempt, user_email="nobody@example.com"))

    assert [row["trans_source_id"] for row in sandbox_control.transactions()] == ["REAL:1"]
    said = [
        record.getMessage()
        for record in caplog.records
        if "ignored the trans_source_id" in record.getMessage()
    ]
    assert len(said) == 1
    assert "/v2/transactions/" in said[0]


@pytest.mark.parametrize(
    "unreadable", [b"<html><body>Created</body></html>", b"[]", b""], ids=["html", "json-list", "empty"]
)
def test_a_2xx_award_whose_body_is_not_json_is_settled_by_look_up(
    make_hook, sandbox_control, recording_proxy, unreadable
):
    """Issue 8.8 and 8.11: the award exists; reporting it failed (or an AttributeError) was wrong."""

    def unreadable_instead_of_json(method, path, status, body):
        if method == "POST" and status == 201:
            return status, unreadable
        return status, body

    recording_proxy.rewrite = unreadable_instead_of_json
    result = make_hook("perkville_proxy", host=recording_proxy.url).award_points(award("HTML:1"))

    [row] = sandbox_control.transactions("HTML:1")
    assert (result.status, result.points) == ("awarded", 10)
    assert result.transaction["transaction_id"] == row["transaction_id"]


def test_an_unreadable_answer_elsewhere_is_a_typed_error_with_status_method_and_path(
    make_hook, recording_proxy
):
    recording_proxy.rewrite = lambda method, path, status, body: (status, b"\x00not json")
    hook = make_hook("perkville_proxy", host=recording_proxy.url)
    with pytest.raises(PerkvilleAnswerError) as info:
        hook.find_connection(email=CASEY)
    error = info.value
    assert (error.status, error.method, error.path) == (200, "GET", "/v2/connections/")
    assert "not JSON" in str(error)


def test_a_bad_paths_extra_is_refused_naming_the_setting_before_any_request(make_hook, sandbox_control):
    hook = make_hook(extra={"paths": {"external_member": "/v2/external_members/"}})
    with pytest.raises(PerkvilleConfigurationError) as info:
        hook.get_business()
    assert "paths" in str(info.value)
    assert "external_member" in str(info.value)
    assert sandbox_control.stats()["requests"] == {}


def test_records_and_parameters_may_name_relations_by_uri(make_hook, sandbox_control):
    hook = make_hook(extra={"relations": "id"})
    result = hook.award_points(
        award("URI:1", perk_id="/v2/perks/502/", location_id="/v2/locations/101/"),
        business_id="/v2/businesses/9823/",
    )
    [row] = sandbox_control.transactions("URI:1")
    assert (result.status, row["perk"], row["location"]) == (
        "awarded",
        "/v2/perks/502/",
        "/v2/locations/101/",
    )
