"""Secrets, settings and TLS against a hostile server: every secret stays in, every bad setting is named.

Items 2, 4, 7, 17 and 18 of the hostile-answers issue: whitespace around secrets, derived secret
forms, the re-grant circuit breaker, settings checked before any request, and plain HTTP refused
off loopback.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote_plus

import pytest
from airflow.sdk.log import redact

from perkville_provider.exceptions import (
    PerkvilleAuthenticationError,
    PerkvilleConfigurationError,
    PerkvilleError,
    PerkvilleNetworkError,
)
from perkville_provider.get_provider_info import get_provider_info
from tests.helpers.hostile_conn import (
    GRANTED,
    PASSWORD,
    QUICK,
    TOKEN,
    derived_forms,
    grant_script,
    hostile_connection,
)
from tests.helpers.hostile_server import HostileServer, echo_everything
from tests.helpers.tls import self_signed_context

BUSINESS = {"business_id": 9823, "name": "Hostile Gym"}


def assert_no_secret(text: str) -> None:
    for form in derived_forms():
        assert form not in text, f"{form!r} leaked"


# -- 2: whitespace around secrets ------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\t"])
def test_a_pre_issued_token_with_surrounding_whitespace_is_sent_stripped(
    hostile_server, hostile_hook, suffix
):
    hostile_server.script = lambda exchange: exchange.json(200, BUSINESS)
    hostile_hook(extra={"token": f" {TOKEN}{suffix}"}).get_business()
    assert hostile_server.seen[0].header("Authorization") == f"Bearer {TOKEN}"


def test_a_granted_token_and_a_password_with_trailing_newlines_are_stripped(hostile_server, hostile_hook):
    hostile_server.route("POST", "/api/token/", grant_script(GRANTED + "\r\n"))
    hostile_server.script = lambda exchange: exchange.json(200, BUSINESS)
    hostile_hook(grant=True, password=PASSWORD + "\n").get_business()
    grant, call = hostile_server.seen
    assert quote_plus(PASSWORD) + "&" in grant.body.decode() + "&"
    assert call.header("Authorization") == f"Bearer {GRANTED}"


@pytest.mark.parametrize("inner", ["\n", "\r", "\x00", "\x7f"], ids=["lf", "cr", "nul", "del"])
def test_a_token_with_an_inner_control_character_is_a_configuration_error_without_the_token(
    hostile_server, hostile_hook, inner
):
    secret = TOKEN[:6] + inner + TOKEN[6:]
    hook = hostile_hook(extra={"token": secret})
    with pytest.raises(PerkvilleConfigurationError) as info:
        hook.get_business()
    assert "token" in str(info.value)
    assert TOKEN[:6] not in str(info.value)
    assert TOKEN[6:] not in str(info.value)
    ok, message = hook.test_connection()
    assert not ok
    assert TOKEN[6:] not in message
    assert hostile_server.seen == []


def test_a_granted_token_with_an_inner_control_character_is_refused_without_the_token(
    hostile_server, hostile_hook
):
    hostile_server.route("POST", "/api/token/", grant_script(GRANTED[:5] + "\n" + GRANTED[5:]))
    with pytest.raises(PerkvilleError) as info:
        hostile_hook(grant=True).get_business()
    assert "access_token" in str(info.value)
    assert GRANTED[5:] not in str(info.value)
    assert len(hostile_server.seen) == 1


# -- 4: derived forms --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 500])
def test_a_token_endpoint_echoing_the_request_leaks_no_derived_form(
    hostile_server, hostile_hook, caplog, status
):
    hostile_server.route("POST", "/api/token/", echo_everything(status))
    hook = hostile_hook(grant=True)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PerkvilleError) as info:
        hook.get_business()
    ok, message = hook.test_connection()
    assert not ok
    assert "Basic" in hostile_server.seen[0].header("Authorization")
    assert_no_secret(str(info.value))
    assert_no_secret(repr(info.value.details))
    assert_no_secret(message)
    assert_no_secret(caplog.text)


def test_derived_forms_are_registered_with_airflows_masker(hostile_server, hostile_hook):
    hostile_server.route("POST", "/api/token/", grant_script())
    hostile_server.script = lambda exchange: exchange.json(200, BUSINESS)
    hostile_hook(grant=True).get_business()
    hostile_hook("perkville_pre_issued").get_business()  # the pre-issued token's forms too
    for form in derived_forms():
        assert form not in str(redact(f"seen: {form} ."))


# -- 7: one re-grant, then the circuit breaker -------------------------------------------------------


def test_a_refused_new_token_opens_the_breaker_after_one_re_grant(hostile_server, hostile_hook):
    grants = iter(f"{GRANTED}-{n}" for n in range(1000))
    hostile_server.route("POST", "/api/token/", lambda exchange: grant_script(next(grants))(exchange))
    hostile_server.script = lambda exchange: exchange.json(401, {"detail": "Invalid token."})
    hook = hostile_hook(grant=True)
    errors: list[PerkvilleError] = []
    barrier = threading.Barrier(8)

    def call(_: int) -> None:
        barrier.wait()
        for _ in range(5):
            try:
                hook.get_business()
            except PerkvilleError as error:
                errors.append(error)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(call, range(8)))

    assert len(hostile_server.requests_to("/api/token/")) == 2
    assert len(errors) == 40
    assert all(isinstance(error, PerkvilleAuthenticationError) for error in errors)
    assert all(getattr(error, "stops_batch", False) for error in errors)
    assert len(hostile_server.requests_to("/v2/businesses/9823/")) <= 16


def test_a_refused_grant_is_not_retried_by_every_caller(hostile_server, hostile_hook):
    hostile_server.route(
        "POST", "/api/token/", lambda exchange: exchange.json(400, {"error": "invalid_grant"})
    )
    hook = hostile_hook(grant=True)
    for _ in range(5):
        with pytest.raises(PerkvilleAuthenticationError, match="username or password"):
            hook.get_business()
    assert len(hostile_server.seen) == 1


# -- 17: settings errors name the setting, before any request --------------------------------------


@pytest.mark.parametrize("timeout", [-1, 0, "abc", "nan", "inf", True, [1, "x"], [1, 2, 3]])
def test_a_bad_timeout_extra_is_a_configuration_error_naming_it(hostile_server, hostile_hook, timeout):
    with pytest.raises(PerkvilleConfigurationError, match="timeout") as info:
        hostile_hook(extra={"timeout": timeout}).get_business()
    assert "perkville_hostile" in str(info.value)
    assert hostile_server.seen == []


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"max_pages": 0}, "max_pages"),
        ({"max_response_bytes": "lots"}, "max_response_bytes"),
        ({"request_deadline": -2}, "request_deadline"),
        ({"allow_insecure_http": "perhaps"}, "allow_insecure_http"),
        ({"token": "   "}, "token"),
        ({"token": 12345}, "token"),
        ({"client_secret": "a\nb"}, "client_secret"),
    ],
)
def test_a_bad_extra_is_a_configuration_error_naming_it(hostile_server, hostile_hook, extra, setting):
    with pytest.raises(PerkvilleConfigurationError, match=setting):
        hostile_hook(extra=extra).get_business()
    assert hostile_server.seen == []


def test_an_extra_that_is_a_json_list_is_a_configuration_error(hostile_server, hostile_hook, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_PERKVILLE_LISTED",
        f'{{"conn_type": "perkville", "host": "{hostile_server.url}", "extra": "[1, 2]"}}',
    )
    from perkville_provider.hooks.perkville import PerkvilleHook

    with pytest.raises(PerkvilleConfigurationError, match="extra"):
        PerkvilleHook(perkville_conn_id="perkville_listed").get_business()
    assert hostile_server.seen == []


def test_a_hook_timeout_argument_is_checked_too(hostile_server, hostile_hook):
    with pytest.raises(PerkvilleConfigurationError, match="timeout"):
        hostile_hook(hook_kwargs={"timeout": float("nan")}).get_business()


@pytest.mark.parametrize(
    "access_token", [None, "", "  ", 42, ["x"]], ids=["null", "empty", "blank", "int", "list"]
)
def test_a_token_answer_without_a_usable_access_token_is_refused_before_any_api_call(
    hostile_server, hostile_hook, access_token
):
    hostile_server.route(
        "POST", "/api/token/", lambda exchange: exchange.json(200, {"access_token": access_token})
    )
    with pytest.raises(PerkvilleConfigurationError, match="access_token"):
        hostile_hook(grant=True).get_business()
    assert [seen.path for seen in hostile_server.seen] == ["/api/token/"]


# -- 18: TLS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"host": "http://api.perkville.example"},
        {"extra": {"token_url": "http://auth.perkville.example/api/token/"}},
    ],
    ids=["api-host", "token-url"],
)
def test_plain_http_off_loopback_is_refused_unless_allowed(hostile_hook, overrides):
    grant = "extra" in overrides
    with pytest.raises(PerkvilleConfigurationError, match="allow_insecure_http"):
        hostile_hook(grant=grant, **overrides).get_conn()
    extra = {**overrides.get("extra", {}), "allow_insecure_http": True}
    hostile_hook(grant=grant, **{**overrides, "extra": extra}).get_conn()


def test_a_token_url_on_another_registrable_domain_is_warned_about(hostile_hook, caplog):
    caplog.set_level(logging.WARNING)
    hostile_hook(
        grant=True, host="https://api.perkville.com", extra={"token_url": "https://login.example.net/token/"}
    ).get_conn()
    assert "example.net" in caplog.text
    assert "perkville.com" in caplog.text
    caplog.clear()
    hostile_hook(
        grant=True,
        host="https://api.perkville.com",
        extra={"token_url": "https://www.perkville.com/api/token/"},
    ).get_conn()
    assert "registrable domain" not in caplog.text


@pytest.mark.parametrize("verify", [None, True], ids=["null", "true"])
def test_a_verify_extra_left_null_still_verifies_the_servers_certificate(
    tmp_path, monkeypatch, caplog, verify
):
    """A null ``verify`` once reached requests as None, which checks no certificate at all.

    A refused certificate is refused again on every retry: it fails at once, saying so.

    requests lets ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` override the session's ``verify``;
    most machines set neither, so neither is set here.
    """
    from perkville_provider.hooks.perkville import PerkvilleHook

    for bundle in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(bundle, raising=False)
    context, certificate = self_signed_context(tmp_path)
    server = HostileServer(tls=context)
    try:
        server.script = lambda exchange: exchange.json(200, BUSINESS)

        def hook(conn_id: str, verify: bool | str | None) -> PerkvilleHook:
            value = hostile_connection(server)
            value["extra"]["verify"] = verify
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
            return PerkvilleHook(perkville_conn_id=conn_id, retry_policy=QUICK)

        with pytest.raises(PerkvilleNetworkError, match=r"TLS certificate was refused \(self.signed"):
            hook("perkville_tls", verify).get_business()
        assert server.seen == []
        assert "retrying" not in caplog.text
        assert hook("perkville_ca", str(certificate)).get_business() == BUSINESS
    finally:
        server.close()


def test_a_new_token_that_served_calls_may_be_replaced_again_when_revoked_later(hostile_server, hostile_hook):
    grants = iter(f"{GRANTED}-{n}" for n in range(10))
    revoked: set[str] = {f"Bearer {GRANTED}-0"}
    hostile_server.route("POST", "/api/token/", lambda exchange: grant_script(next(grants))(exchange))

    def api(exchange) -> None:
        refused = exchange.request.header("Authorization") in revoked
        exchange.json(401, {"detail": "Invalid token."}) if refused else exchange.json(200, BUSINESS)

    hostile_server.script = api
    hook = hostile_hook(grant=True)
    hook.get_business()
    revoked.add(f"Bearer {GRANTED}-1")
    hook.get_business()
    assert hook.get_token() == f"{GRANTED}-2"
    assert len(hostile_server.requests_to("/api/token/")) == 3


def test_extras_left_empty_in_the_connection_form_are_not_set(perkville_sandbox, monkeypatch):
    """Airflow's connection form saves every field left empty as null (the browser test found it:
    ``allow_insecure_http`` null was refused as "must be true or false")."""
    value = perkville_sandbox.airflow_connection()
    form_fields = get_provider_info()["connection-types"][0]["conn-fields"]
    rate_and_session = ("max_requests_per_second", "adaptive_pacing", "rate_limit_sharing", "rate_limit_dir")
    rate_and_session += ("proxies", "verify", "stream", "cert", "max_redirects", "trust_env")
    value["extra"] = {**dict.fromkeys(form_fields), **value["extra"], **dict.fromkeys(rate_and_session)}
    value["extra"]["allow_insecure_http"] = None
    monkeypatch.setenv("AIRFLOW_CONN_PERKVILLE_FORM", json.dumps(value))
    from perkville_provider.hooks.perkville import PerkvilleHook

    assert PerkvilleHook(perkville_conn_id="perkville_form").get_business()["business_id"] == 9823
