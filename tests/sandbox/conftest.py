"""Helpers for the sandbox's own tests: a bearer-token client per demo user, over real HTTP.

Every test starts from the ``sandbox`` fixture (the session server, reset and reseeded).
"""

from __future__ import annotations

import pytest

from tests.helpers.api import Api


@pytest.fixture
def admin_api(sandbox) -> Api:
    return Api(sandbox.base_url, sandbox.token())


@pytest.fixture
def frontdesk_api(sandbox) -> Api:
    return Api(sandbox.base_url, sandbox.token(sandbox.frontdesk_username, sandbox.frontdesk_password))


@pytest.fixture
def customer_api(sandbox) -> Api:
    return Api(sandbox.base_url, sandbox.token(sandbox.customer_username, sandbox.customer_password))


@pytest.fixture
def own_info_api(sandbox) -> Api:
    """Casey, the customer, with a token limited to ``USER_CUSTOMER_INFO`` (its own data only)."""
    token = sandbox.token(sandbox.customer_username, sandbox.customer_password, scope="USER_CUSTOMER_INFO")
    return Api(sandbox.base_url, token)
