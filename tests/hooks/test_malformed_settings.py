"""Malformed URLs and extras are configuration errors naming the connection and the setting."""

from __future__ import annotations

import json

import pytest

from perkville_provider.exceptions import PerkvilleConfigurationError
from perkville_provider.hooks.perkville import PerkvilleHook


def _hook(monkeypatch, **conn) -> PerkvilleHook:
    monkeypatch.setenv("AIRFLOW_CONN_PERKVILLE_ODD", json.dumps({"conn_type": "perkville", **conn}))
    return PerkvilleHook("perkville_odd")


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        (
            {
                "host": "https://api.example.com",
                "extra": {"token": "t0k3n-value", "token_url": "auth.example.com/t/"},
            },
            ("the token_url", "is not a URL: it must start with https://"),
        ),
        (
            {"host": "https://api example.com", "extra": {"token": "t0k3n-value"}},
            ("the host 'https://api example.com'", "is not a URL: the host name holds spaces"),
        ),
    ],
)
def test_a_malformed_url_names_the_setting(monkeypatch, conn, message):
    with pytest.raises(PerkvilleConfigurationError, match="connection 'perkville_odd'") as raised:
        _hook(monkeypatch, **conn).conventions()

    setting, problem = message
    assert setting in str(raised.value)
    assert problem in str(raised.value)


def test_an_extra_that_is_not_json_is_refused_not_taken_as_empty(monkeypatch):
    hook = _hook(monkeypatch, host="https://api.example.com", extra="{'token': 'single-quoted'}")

    with pytest.raises(
        PerkvilleConfigurationError, match="connection 'perkville_odd': the extra is not JSON"
    ):
        hook.conventions()
