"""The connection's answers to the API's unknowns: stock tastypie's by default, each overridable."""

from __future__ import annotations

from decimal import Decimal

import pendulum
import pytest

from perkville_provider.api_conventions import DEFAULT_PATHS, ApiConventions, ConventionError


def test_the_defaults_are_stock_tastypies():
    api = ApiConventions.from_extras({})
    assert api.relation("perks", 501) == "/v2/perks/501/"
    assert (
        api.temporal(pendulum.datetime(2026, 5, 1, 7, 30, tz="America/New_York"))
        == "2026-05-01 11:30:00+00:00"
    )
    assert api.temporal(pendulum.date(2026, 5, 1)) == "2026-05-01"
    assert api.quantity(Decimal("9.99")) == 9.99
    assert api.path("external_members") == "/v2/external-members/"


def test_each_default_is_overridable_from_the_extras():
    api = ApiConventions.from_extras(
        {
            "relations": "id",
            "datetime_format": "iso",
            "quantity_format": "string",
            "paths": {"external_members": "/v2/external_members/"},
        }
    )
    assert api.relation("perks", 501) == 501
    assert (
        api.temporal(pendulum.datetime(2026, 5, 1, 7, 30, tz="America/New_York"))
        == "2026-05-01T07:30:00-04:00"
    )
    assert api.quantity(Decimal("9.99")) == "9.99"
    assert api.path("external_members") == "/v2/external_members/"
    assert api.path("transactions") == DEFAULT_PATHS["transactions"]


def test_relations_follow_an_overridden_path():
    api = ApiConventions.from_extras({"paths": '{"perks": "/v3/perk/"}'})
    assert api.relation("perks", 7) == "/v3/perk/7/"
    assert api.relation_id("/v3/perk/7/", "perks") == 7


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"paths": {"external_member": "/v2/x/"}}, "paths"),
        ({"paths": {"transactions": "v2/transactions"}}, "paths"),
        ({"paths": {"transactions": "https://evil.example/v2/"}}, "paths"),
        ({"paths": ["transactions"]}, "paths"),
        ({"paths": "not json"}, "paths"),
        ({"relations": "pk"}, "relations"),
        ({"quantity_format": 3}, "quantity_format"),
        ({"datetime_format": "rfc2822"}, "datetime_format"),
    ],
)
def test_a_bad_convention_extra_is_refused_naming_the_setting(extra, named):
    with pytest.raises(ConventionError) as info:
        ApiConventions.from_extras(extra)
    assert info.value.setting == named
    assert named in str(info.value)


def test_an_integral_decimal_quantity_goes_out_as_an_integer():
    assert ApiConventions().quantity(Decimal("3")) == 3
    assert isinstance(ApiConventions().quantity(Decimal("3")), int)
