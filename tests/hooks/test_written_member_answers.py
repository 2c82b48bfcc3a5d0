"""A member write answered without a usable body or ``Location``: settled by looking the member up."""

from __future__ import annotations

from tests.helpers.hook_sandbox import ROBIN

MEMBER = {
    "external_system_id": "MYGYM",
    "external_member_id": "R-77",
    "user_email": ROBIN,
    "external_membership_status": "active",
}


def test_a_member_write_answered_with_an_empty_body_and_no_location_is_read_back_by_look_up(
    make_hook, sandbox_control, recording_proxy
):
    def empty_write_answers(method, path, status, body):
        return (status, b"") if method == "POST" and path == "/v2/external-members/" else (status, body)

    recording_proxy.rewrite = empty_write_answers
    hook = make_hook("perkville_proxy", host=recording_proxy.url)

    result = hook.upsert_external_member(MEMBER)

    stored = [m for m in sandbox_control.ledger()["external_members"] if m["external_member_id"] == "R-77"]
    assert len(stored) == 1
    assert result.external_member["external_member_id"] == "R-77"
    assert result.connection_uri == sandbox_control.connection_of(ROBIN)["resource_uri"]
