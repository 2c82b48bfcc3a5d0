"""The sandbox's hostile modes (``echo_request_in_errors``, ``foreign_next_origin``, ``trickle_ms``),
seen raw and through the hook: the hook refuses, cuts short, and leaks nothing."""

from __future__ import annotations

import pytest
import requests

from perkville_provider.exceptions import (
    PerkvilleForeignLinkError,
    PerkvilleNetworkError,
    PerkvilleValidationError,
)
from tests.helpers.hook_sandbox import ADMIN_PASSWORD, CASEY, CHECKIN_PERK_ID, CLIENT_SECRET


def test_echoing_errors_carry_the_request_in_every_part_but_not_into_the_hooks_error(hook, sandbox_control):
    token = hook.get_token()
    sandbox_control.faults(echo_request_in_errors=True)
    raw = requests.get(
        f"{sandbox_control.url}/v2/businesses/1/", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert raw.status_code == 404
    assert token in raw.text

    with pytest.raises(PerkvilleValidationError) as info:
        hook.award_points({"trans_source_id": "ECHO:1", "user_email": "nobody@example.com", "perk_id": 1})
    text = f"{info.value} {info.value.details!r}"
    for secret in (token, ADMIN_PASSWORD, CLIENT_SECRET):
        assert secret not in text


def test_a_foreign_next_link_from_the_sandbox_is_refused(hook, sandbox_control):
    for n in range(2):
        hook.award_points(
            {"trans_source_id": f"FOREIGN:{n}", "user_email": CASEY, "perk_id": CHECKIN_PERK_ID}
        )
    sandbox_control.faults(foreign_next_origin="http://elsewhere.example:8080")
    with pytest.raises(PerkvilleForeignLinkError, match=r"elsewhere\.example:8080"):
        list(hook.paginate("/v2/transactions/", {"business": 9823}, page_size=1))


def test_a_foreign_next_link_rewrites_only_list_answers_that_have_a_next(hook, sandbox_control):
    hook.award_points({"trans_source_id": "NEXT:1", "user_email": CASEY, "perk_id": CHECKIN_PERK_ID})
    sandbox_control.faults(foreign_next_origin="http://elsewhere.example:8080")
    assert [t["trans_source_id"] for t in hook.iter_transactions(trans_source_id="NEXT:1")] == ["NEXT:1"]


@pytest.mark.timeout(60)
def test_a_trickling_sandbox_answer_ends_at_the_hooks_deadline(make_hook, sandbox_control):
    hook = make_hook(extra={"timeout": 0.3, "request_deadline": 0.5})
    hook.get_current_user()
    sandbox_control.faults(trickle_ms=5)
    raw = requests.get(
        f"{sandbox_control.url}/v2/users/me/",
        headers={"Authorization": f"Bearer {hook.get_token()}"},
        timeout=30,
    )
    assert raw.json()["user_id"] > 0
    with pytest.raises(PerkvilleNetworkError, match="deadline"):
        hook.get_current_user()
