"""The installed package registers itself with Airflow: provider listed, connection type and hook known."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path

import airflow
import jsonschema
import pytest

from perkville_provider import api_conventions, auth, connection_settings, rate_budget
from perkville_provider import get_provider_info as provider_info_module
from perkville_provider.api_conventions import API_EXTRAS
from perkville_provider.connection_settings import SETTING_EXTRAS
from perkville_provider.get_provider_info import get_provider_info
from perkville_provider.hooks.perkville import PerkvilleHook

AIRFLOW = str(Path(sys.executable).parent / "airflow")


def airflow_json(*args: str) -> list[dict]:
    result = subprocess.run(  # noqa: S603 (our own airflow CLI)
        [AIRFLOW, *args, "-o", "json"], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def cli_view() -> dict[str, list[dict]]:
    """What `airflow providers list` and `airflow providers hooks` say, asked once."""
    return {"providers": airflow_json("providers", "list"), "hooks": airflow_json("providers", "hooks")}


def test_get_provider_info_matches_airflows_provider_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


@pytest.mark.slow  # Airflow's CLI, twice
def test_airflow_lists_the_package(cli_view):
    listed = [p for p in cli_view["providers"] if p["package_name"] == "airflow-provider-perkville"]
    assert len(listed) == 1
    assert "Perkville" in listed[0]["description"]


@pytest.mark.slow
def test_airflow_knows_the_perkville_connection_type_and_its_hook(cli_view):
    hooks = [h for h in cli_view["hooks"] if h["connection_type"] == "perkville"]
    assert hooks == [
        {
            "connection_type": "perkville",
            "class": "perkville_provider.hooks.perkville.PerkvilleHook",
            "conn_id_attribute_name": PerkvilleHook.conn_name_attr,
            "package_name": "airflow-provider-perkville",
            "hook_name": PerkvilleHook.hook_name,
        }
    ]


def test_the_connection_form_masks_every_secret_field():
    (connection_type,) = get_provider_info()["connection-types"]
    fields = connection_type["conn-fields"]
    secret = {name for name, spec in fields.items() if spec["schema"].get("format") == "password"}
    assert secret == {"client_secret", "token", "rate_limit_redis_url"}


def test_the_form_has_a_field_for_each_setting_the_readme_lists_and_airflow_masks_only_secrets():
    """``token_url`` was shown as ``***``: Airflow masks any extra named like a secret, password
    format or not; the endpoint is ``oauth_url`` now (``token_url`` is still read)."""
    from airflow._shared.secrets_masker import should_hide_value_for_key

    (connection_type,) = get_provider_info()["connection-types"]
    fields = connection_type["conn-fields"]
    settings = (set(SETTING_EXTRAS) - {"token_url"}) | set(API_EXTRAS) | {"verify"}
    settings |= {"max_requests_per_second", "rate_limit_sharing", "rate_limit_redis_url"}
    settings |= {"adaptive_pacing", "rate_limit_dir"}
    assert set(fields) == settings
    for name, spec in fields.items():
        secret = spec["schema"].get("format") == "password"
        assert secret or not should_hide_value_for_key(name), f"{name} would show as ***"
    assert fields["business_id"]["schema"]["type"] == ["integer", "null"]  # a number field, not text
    assert "port" not in connection_type["ui-field-behaviour"]["hidden-fields"]


def test_the_forms_written_out_defaults_are_the_hooks():
    info = provider_info_module
    assert info.DEFAULT_TOKEN_URL == auth.DEFAULT_TOKEN_URL
    assert info.DEFAULT_READ_TIMEOUT == connection_settings.DEFAULT_READ_TIMEOUT
    assert info.DEFAULT_MAX_RESPONSE_BYTES == connection_settings.DEFAULT_MAX_RESPONSE_BYTES
    assert info.DEFAULT_MAX_PAGES == connection_settings.DEFAULT_MAX_PAGES
    assert info.DEFAULT_OUTAGE_SECONDS == connection_settings.DEFAULT_OUTAGE_SECONDS
    assert info.SHARINGS == rate_budget.SHARINGS
    assert typing.get_args(api_conventions.Relations) == info.RELATIONS
    assert typing.get_args(api_conventions.QuantityFormat) == info.QUANTITY_FORMATS
    assert typing.get_args(api_conventions.DatetimeFormat) == info.DATETIME_FORMATS
