"""Token auth against the sandbox: pre-issued tokens, one grant per process, 401s, secrets."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from perkville_provider.exceptions import PerkvilleAuthenticationError, PerkvilleError
from perkville_provider.hooks.perkville import PerkvilleHook
from tests.helpers.hook_sandbox import ADMIN_PASSWORD, ADMIN_USERNAME, CLIENT_SECRET, FAST_RETRIES

ME = "GET /v2/users/me/"


def test_a_password_grant_runs_once_and_its_token_serves_every_request(hook, sandbox_control):
    first = hook.get_current_user()
    hook.get_current_user()
    hook.get_business()
    assert first["user_id"] > 0
    assert sandbox_control.token_grants() == 1
    assert sandbox_control.requests_to(ME, "200") == 2


def test_a_pre_issued_token_is_used_as_it_is_without_any_grant(make_hook, hook, sandbox_control):
    token = hook.grant_token()
    grants_before = sandbox_control.token_grants()
    pre_issued = make_hook(
        "perkville_token_only", login=None, password=None, extra={"token": token, "client_secret": None}
    )
    user = pre_issued.get_current_user()
    assert user["emails"][0]["email"] == ADMIN_USERNAME
    assert pre_issued.get_token() == token
    assert sandbox_control.token_grants() == grants_before == 1


def test_sixteen_threads_with_their_own_hooks_share_one_grant(define_connection, sandbox_control):
    conn_id = define_connection()
    barrier = threading.Barrier(16)

    def call(_: int) -> int:
        hook = PerkvilleHook(perkville_conn_id=conn_id, retry_policy=FAST_RETRIES)
        barrier.wait()
        return hook.get_current_user()["user_id"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        user_ids = set(pool.map(call, range(16)))
    assert len(user_ids) == 1
    assert sandbox_control.token_grants() == 1
    assert sandbox_control.requests_to(ME, "200") == 16


def test_sixteen_threads_sharing_one_hook_share_one_grant(hook, sandbox_control):
    barrier = threading.Barrier(16)

    def call(_: int) -> str:
        barrier.wait()
        return hook.get_current_user()["resource_uri"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert len(set(pool.map(call, range(16)))) == 1
    assert sandbox_control.token_grants() == 1


def test_a_revoked_granted_token_is_replaced_by_one_new_grant_and_the_call_succeeds(hook, sandbox_control):
    hook.get_current_user()
    old_token = hook.get_token()
    sandbox_control.revoke(old_token)

    assert hook.get_current_user()["emails"][0]["email"] == ADMIN_USERNAME
    assert hook.get_token() != old_token
    assert sandbox_control.token_grants() == 2
    assert sandbox_control.requests_to(ME, "401") == 1


def test_a_revoked_token_seen_by_many_threads_is_granted_again_only_once(hook, sandbox_control):
    hook.get_current_user()
    sandbox_control.revoke(hook.get_token())
    barrier = threading.Barrier(8)

    def call(_: int) -> int:
        barrier.wait()
        return hook.get_current_user()["user_id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert len(set(pool.map(call, range(8)))) == 1
    assert sandbox_control.token_grants() == 2


def test_a_refused_pre_issued_token_fails_at_once_with_a_clear_message(make_hook, sandbox_control):
    hook = make_hook(login=None, password=None, extra={"token": "not-a-real-token-0123456789"})
    with pytest.raises(PerkvilleAuthenticationError) as info:
        hook.get_current_user()
    error = info.value
    assert error.status == 401
    assert error.codes == ("invalid_token",)
    assert "pre-issued token" in str(error)
    assert "perkville-provider token --conn-id perkville_default" in str(error)
    assert "not-a-real-token-0123456789" not in str(error)
    assert sandbox_control.requests_to(ME) == 1
    assert sandbox_control.token_grants() == 0


def test_a_wrong_password_fails_the_grant_naming_the_cause_not_the_password(make_hook, sandbox_control):
    hook = make_hook(password="wrong-password-42")
    with pytest.raises(PerkvilleAuthenticationError) as info:
        hook.get_current_user()
    assert info.value.codes == ("invalid_grant",)
    assert "username or password" in str(info.value)
    assert "wrong-password-42" not in str(info.value)
    assert sandbox_control.requests_to("POST /api/token/") == 1
    assert sandbox_control.requests_to(ME) == 0


def test_a_wrong_client_secret_fails_the_grant_naming_the_client(make_hook):
    hook = make_hook(extra={"client_secret": "wrong-client-secret-42"})
    with pytest.raises(PerkvilleAuthenticationError) as info:
        hook.get_current_user()
    assert info.value.codes == ("invalid_client",)
    assert "client_id and client_secret" in str(info.value)
    assert "wrong-client-secret-42" not in str(info.value)


def test_a_connection_without_token_or_credentials_says_what_is_missing(make_hook, sandbox_control):
    hook = make_hook(login=None, password=None)
    with pytest.raises(PerkvilleAuthenticationError, match=r"missing login \(username\), password"):
        hook.get_current_user()
    assert sandbox_control.stats()["requests"] == {}


def test_changing_the_password_in_the_connection_starts_a_new_grant(make_hook, sandbox_control):
    make_hook().get_current_user()
    with pytest.raises(PerkvilleAuthenticationError):
        make_hook(password="changed-password").get_current_user()
    assert sandbox_control.token_grants() == 1
    assert sandbox_control.requests_to("POST /api/token/", "400") == 1


def test_no_secret_reaches_a_log_line_or_an_exception(make_hook, hook, sandbox_control, caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[PerkvilleError] = []
    hook.get_current_user()
    token = hook.get_token()
    sandbox_control.revoke(token)
    hook.get_current_user()
    new_token = hook.get_token()
    sandbox_control.faults(error_rate=0.5, seed=3)
    for _ in range(4):
        hook.get_business()
    sandbox_control.faults(error_rate=0)
    for broken in (
        make_hook("perkville_bad_pw", password="bad-password-77"),
        make_hook("perkville_bad_token", login=None, password=None, extra={"token": "bad-token-777777"}),
    ):
        with pytest.raises(PerkvilleError) as info:
            broken.get_current_user()
        errors.append(info.value)
    secrets = [token, new_token, ADMIN_PASSWORD, CLIENT_SECRET, "bad-password-77", "bad-token-777777"]
    logged = caplog.text + "".join(repr(record.args) for record in caplog.records)
    assert "retrying" in caplog.text  # the log did record the faults
    for secret in secrets:
        assert secret not in logged
        for error in errors:
            assert secret not in str(error)
            assert secret not in repr(error.details)
