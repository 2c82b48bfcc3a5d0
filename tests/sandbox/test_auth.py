"""The OAuth password grant at /api/token/ and bearer-token auth on /v2/."""

from __future__ import annotations

import requests

from perkville_provider.sandbox import seed
from tests.helpers.api import Api, error_codes

ALL_SCOPES = seed.CLIENT_SCOPES.split()


def grant(sandbox, auth=None, **form):
    data = {"grant_type": "password", "username": sandbox.admin_username, "password": sandbox.admin_password}
    data.update(form)
    data = {k: v for k, v in data.items() if v is not None}
    return requests.post(sandbox.token_url, data=data, auth=auth, timeout=10)


def test_a_client_authenticated_by_basic_auth_gets_a_bearer_token_with_all_its_scopes(sandbox):
    response = grant(sandbox, auth=(sandbox.client_id, sandbox.client_secret))

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"].split() == ALL_SCOPES
    assert "expires_in" not in body
    assert "refresh_token" not in body
    me = Api(sandbox.base_url, body["access_token"]).get("/v2/users/me/")
    assert me.json()["user_id"] == seed.ADMIN_USER_ID


def test_a_client_authenticated_in_the_form_body_gets_a_token_too(sandbox):
    response = grant(sandbox, client_id=sandbox.client_id, client_secret=sandbox.client_secret)

    assert response.status_code == 200
    assert Api(sandbox.base_url, response.json()["access_token"]).get("/v2/users/me/").status_code == 200


def test_each_grant_mints_a_new_token_and_is_counted(sandbox):
    first = grant(sandbox, auth=(sandbox.client_id, sandbox.client_secret)).json()["access_token"]
    second = grant(sandbox, auth=(sandbox.client_id, sandbox.client_secret)).json()["access_token"]

    assert first != second
    assert sandbox.admin.stats()["token_grants"] == 2


def test_a_wrong_password_is_invalid_grant(sandbox):
    response = grant(sandbox, auth=(sandbox.client_id, sandbox.client_secret), password="nope")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "nope" not in response.text


def test_an_unknown_username_is_invalid_grant(sandbox):
    response = grant(sandbox, auth=(sandbox.client_id, sandbox.client_secret), username="who@example.com")

    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_a_wrong_client_secret_is_invalid_client_with_401(sandbox):
    response = grant(sandbox, auth=(sandbox.client_id, "wrong-secret"))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "wrong-secret" not in response.text


def test_an_unknown_client_or_no_client_is_invalid_client(sandbox):
    assert grant(sandbox, auth=("someone-else", "x")).json()["error"] == "invalid_client"
    assert grant(sandbox).status_code == 401


def test_other_grant_types_are_unsupported(sandbox):
    response = grant(
        sandbox, auth=(sandbox.client_id, sandbox.client_secret), grant_type="client_credentials"
    )

    assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")


def test_a_missing_password_is_invalid_request(sandbox):
    response = grant(sandbox, auth=(sandbox.client_id, sandbox.client_secret), password=None)

    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_asking_for_fewer_scopes_narrows_the_token(sandbox):
    response = grant(
        sandbox, auth=(sandbox.client_id, sandbox.client_secret), scope="PUBLIC ADMIN_CUSTOMER_INFO"
    )

    assert response.json()["scope"] == "PUBLIC ADMIN_CUSTOMER_INFO"
    api = Api(sandbox.base_url, response.json()["access_token"])
    refused = api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="narrow-1")
    assert refused.status_code == 403
    assert error_codes(refused) == {"__all__": ["pv_insufficient_scope"]}


def test_asking_for_a_scope_the_client_was_not_granted_is_invalid_scope(sandbox):
    response = grant(sandbox, auth=(sandbox.client_id, sandbox.client_secret), scope="PUBLIC USER_REDEEM")

    assert (response.status_code, response.json()["error"]) == (400, "invalid_scope")


def test_a_request_without_a_token_is_401_with_the_oauth_error_shape(sandbox):
    response = requests.get(f"{sandbox.base_url}/v2/users/me/", timeout=10)

    assert response.status_code == 401
    assert response.json()["error_type"] == "oauth_error"
    assert error_codes(response) == {"__all__": ["invalid_token"]}


def test_an_unknown_token_is_401(sandbox):
    assert Api(sandbox.base_url, "not-a-token").get("/v2/users/me/").status_code == 401


def test_a_revoked_token_is_401_on_its_next_use(sandbox, admin_api):
    assert admin_api.get("/v2/users/me/").status_code == 200

    assert sandbox.admin.revoke_token(admin_api.token) is True

    response = admin_api.get("/v2/users/me/")
    assert response.status_code == 401
    assert error_codes(response) == {"__all__": ["invalid_token"]}


def test_a_token_acts_as_its_user(sandbox, customer_api):
    me = customer_api.get("/v2/users/me/").json()

    assert me["user_id"] == seed.CUSTOMER_USER_ID
    assert me["emails"] == [{"email": seed.CUSTOMER_USERNAME, "primary": True}]
    assert me["connections"] == [f"/v2/connections/{seed.CUSTOMER_CONNECTION_ID}/"]
