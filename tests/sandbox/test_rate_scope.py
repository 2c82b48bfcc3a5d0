"""The sandbox's rate limit counted per token, per API client or per business (``rate_limit_scope``)."""

from __future__ import annotations

import pytest
import requests

from perkville_provider.sandbox import seed
from tests.helpers.api import Api

# Real-time rate limits: these tests run one at a time on one xdist worker (make test's loadgroup).
pytestmark = pytest.mark.xdist_group("realtime")

PERKS = f"/v2/perks/?business={seed.BUSINESS_ID}"


def statuses(api: Api, count: int) -> list[int]:
    return [api.get(PERKS).status_code for _ in range(count)]


def test_per_client_every_token_of_the_client_draws_on_one_limit(sandbox, admin_api, frontdesk_api):
    second_admin = Api(sandbox.base_url, sandbox.token())
    sandbox.admin.set_faults(rate_limit_per_second=3, rate_limit_scope="client")

    assert statuses(admin_api, 2) == [200, 200]
    assert statuses(second_admin, 1) == [200]
    assert statuses(frontdesk_api, 1) == [429]


def test_per_client_the_token_grants_count_against_the_same_limit(sandbox, admin_api):
    sandbox.admin.set_faults(rate_limit_per_second=2, rate_limit_scope="client")

    assert statuses(admin_api, 2) == [200, 200]
    grant = requests.post(
        sandbox.token_url,
        data={"grant_type": "password", "username": seed.ADMIN_USERNAME, "password": seed.ADMIN_PASSWORD},
        auth=(seed.CLIENT_ID, seed.CLIENT_SECRET),
        timeout=10,
    )
    assert grant.status_code == 429


def test_per_business_the_staff_of_the_business_share_one_limit_and_others_count_per_client(
    sandbox, admin_api, frontdesk_api, customer_api
):
    sandbox.admin.set_faults(rate_limit_per_second=2, rate_limit_scope="business")

    assert statuses(admin_api, 1) == [200]
    assert statuses(frontdesk_api, 2) == [200, 429]
    assert statuses(customer_api, 2) == [200, 200]


def test_per_token_each_token_has_its_own_limit_as_before(sandbox, admin_api):
    second_admin = Api(sandbox.base_url, sandbox.token())
    sandbox.admin.set_faults(rate_limit_per_second=2, rate_limit_scope="token")

    assert statuses(admin_api, 3) == [200, 200, 429]
    assert statuses(second_admin, 2) == [200, 200]


def test_an_unknown_scope_is_refused_naming_the_setting(sandbox):
    response = requests.put(
        f"{sandbox.base_url}/_sandbox/faults", json={"rate_limit_scope": "tenant"}, timeout=10
    )
    assert response.status_code == 400
    assert "rate_limit_scope" in response.text


@pytest.mark.parametrize("scope", ["client", "business"])
def test_an_unknown_token_is_counted_on_its_own_and_still_refused_by_auth(sandbox, admin_api, scope):
    sandbox.admin.set_faults(rate_limit_per_second=1, rate_limit_scope=scope)
    stranger = Api(sandbox.base_url, "not-a-token")

    assert statuses(admin_api, 1) == [200]
    assert statuses(stranger, 1) == [401]
