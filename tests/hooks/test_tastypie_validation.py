"""Stock tastypie's form-validation envelope ``{resource_name: {field: [messages]}}`` names its field."""

from __future__ import annotations

from perkville_provider.exceptions import error_details
from tests.helpers.hook_sandbox import CASEY, CHECKIN_PERK_ID


def test_the_form_validation_envelope_is_read_field_by_field():
    body = {"transactions": {"trans_source_id": ["Transaction with this Trans source id already exists."]}}

    [detail] = error_details(body)

    assert (detail.field, detail.message) == (
        "trans_source_id",
        "Transaction with this Trans source id already exists.",
    )


def test_a_repeated_trans_source_id_refused_in_that_shape_is_settled_as_duplicate_by_look_up(
    hook, sandbox_control
):
    sandbox_control.settings(duplicate_mode="tastypie_form")
    award = {"trans_source_id": "FORM:1", "user_email": CASEY, "perk_id": CHECKIN_PERK_ID}

    first = hook.award_points(award)
    again = hook.award_points(award)

    assert (first.status, again.status) == ("awarded", "duplicate")
    assert again.transaction is not None
    assert len(sandbox_control.transactions("FORM:1")) == 1
    assert sandbox_control.requests_to("POST /v2/transactions/", "400") == 1
