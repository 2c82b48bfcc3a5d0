"""The hook's fence around HttpHook: no private method of it is overridden or called, and its
public request methods, which would bypass the rate limiter, the retries and the token re-grant,
are refused with a typed error that says what to call instead."""

from __future__ import annotations

import inspect

import pytest
from airflow.providers.http.hooks.http import HttpHook

from perkville_provider.exceptions import PerkvilleConfigurationError
from perkville_provider.hooks import perkville as hook_module
from perkville_provider.hooks.perkville import PerkvilleHook

#: The HttpHook members the hook overrides or calls, with the shape it relies on.
RELIED_ON = {
    "__init__": [
        "self",
        "method",
        "http_conn_id",
        "auth_type",
        "tcp_keep_alive",
        "tcp_keep_alive_idle",
        "tcp_keep_alive_count",
        "tcp_keep_alive_interval",
        "adapter",
    ],
    "get_conn": ["self", "headers", "extra_options"],
    "check_response": ["self", "response"],
    "test_connection": ["self"],
}


def _private_names(cls: type) -> set[str]:
    return {name for name in vars(cls) if name.startswith("_") and not name.startswith("__")}


def test_httphook_members_the_hook_relies_on_keep_their_shape():
    for name, parameters in RELIED_ON.items():
        assert list(inspect.signature(getattr(HttpHook, name)).parameters) == parameters, name


def test_the_hook_overrides_and_calls_no_private_httphook_method():
    httphook_private = set()
    for cls in HttpHook.__mro__:
        httphook_private |= _private_names(cls)
    assert not _private_names(PerkvilleHook) & httphook_private
    source = inspect.getsource(hook_module)
    assert [name for name in sorted(_private_names(HttpHook)) if f".{name}(" in source] == []


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("run", ("/v2/users/me/",)),
        ("run_and_check", (None, "/v2/users/me/", {})),
        ("run_with_advanced_retry", ({},)),
    ],
)
def test_httphooks_public_request_methods_are_refused_and_send_nothing(hook, sandbox_control, method, args):
    with pytest.raises(PerkvilleConfigurationError, match=r"call hook\.request\(method, path"):
        getattr(hook, method)(*args)
    assert sandbox_control.stats()["requests"] == {}


def test_a_session_asked_for_with_headers_signs_with_the_token_and_sends_no_extra(hook, sandbox_control):
    session = hook.get_conn(headers={"X-Trace": "1"})
    response = session.get(sandbox_control.url + "/v2/users/me/", timeout=10)
    assert response.status_code == 200
    sent = {name.lower() for name in response.request.headers}
    assert {"authorization", "x-trace", "user-agent"} <= sent
    assert not {"client_id", "client_secret", "business_id", "token_url"} & sent
    assert response.request.headers["Authorization"].startswith("Bearer ")
