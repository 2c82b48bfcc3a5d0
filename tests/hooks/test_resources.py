"""The resource methods against the sandbox: reads, pagination, members, connections, agreements."""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit

import pytest

from perkville_provider import __version__
from perkville_provider.connection_settings import SETTING_EXTRAS
from perkville_provider.exceptions import (
    PerkvilleConfigurationError,
    PerkvilleError,
    PerkvilleValidationError,
)
from perkville_provider.hooks.perkville import (
    AGREEMENT_ACCEPT_PATH,
    MemberUpsertResult,
    PerkvilleHook,
)
from perkville_provider.records import RecordValidationError
from tests.helpers.hook_sandbox import ADMIN_USERNAME, BUSINESS_ID, CASEY, CHECKIN_PERK_ID, ROBIN


def test_business_locations_and_perks_are_read_for_the_connections_business(hook):
    assert hook.get_business()["business_id"] == BUSINESS_ID
    assert [location["location_id"] for location in hook.list_locations()] == [101, 102]
    assert [perk["perk_id"] for perk in hook.list_perks()] == [501, 502, 503, 504]
    assert [perk["perk_id"] for perk in hook.list_perks(classification="REDEEM")] == [503]


def test_pagination_walks_every_page_and_yields_each_object_once(hook, sandbox_control):
    for n in range(7):
        hook.award_points({"trans_source_id": f"PAGE:{n}", "user_email": CASEY, "perk_id": CHECKIN_PERK_ID})
    pages = hook.paginate("/v2/transactions/", {"business": BUSINESS_ID}, page_size=2)
    assert [row["trans_source_id"] for row in pages] == [f"PAGE:{n}" for n in range(7)]
    assert sandbox_control.requests_to("GET /v2/transactions/", "200") == 4


def test_pagination_walks_limit_and_offset_when_the_api_gives_no_next_link(
    make_hook, sandbox_control, recording_proxy
):
    def without_next_links(method, path, status, body):
        if isinstance(body, dict) and isinstance(body.get("meta"), dict):
            body["meta"] = {
                key: value for key, value in body["meta"].items() if key not in ("next", "previous")
            }
        return status, body

    recording_proxy.rewrite = without_next_links
    hook = make_hook("perkville_proxy", host=recording_proxy.url)
    for n in range(5):
        hook.award_points({"trans_source_id": f"OFFSET:{n}", "user_email": CASEY, "perk_id": CHECKIN_PERK_ID})
    rows = hook.paginate("/v2/transactions/", {"business": BUSINESS_ID}, page_size=2)
    assert [row["trans_source_id"] for row in rows] == [f"OFFSET:{n}" for n in range(5)]
    offsets = [path for method, path, _ in recording_proxy.seen if method == "GET"]
    assert len(offsets) == 3
    assert all("limit=2" in path for path in offsets)


def test_pagination_is_lazy_and_fetches_a_page_only_when_needed(hook, sandbox_control):
    hook.get_current_user()
    pages = hook.paginate("/v2/connections/", {"business": BUSINESS_ID}, page_size=1)
    assert sandbox_control.requests_to("GET /v2/connections/") == 0
    next(pages)
    assert sandbox_control.requests_to("GET /v2/connections/") == 1


def test_find_connection_by_email_or_user_id_and_none_when_missing(hook):
    casey = hook.find_connection(email="Casey@Example.com")
    assert casey["user_email"] == CASEY
    user_id = int(casey["user"].rstrip("/").rsplit("/", 1)[1])
    assert hook.find_connection(user_id=user_id)["connection_id"] == casey["connection_id"]
    assert hook.find_connection(email="nobody@example.com") is None
    with pytest.raises(PerkvilleConfigurationError, match="exactly one"):
        hook.find_connection(email=CASEY, user_id=user_id)


def test_iter_connections_passes_filters(hook):
    active = list(hook.iter_connections(status="ACTIVE"))
    assert [connection["user_email"] for connection in active] == [CASEY]


def test_an_invalid_connection_status_is_refused_before_sending(hook, sandbox_control):
    with pytest.raises(RecordValidationError, match="ACTIVE, INACTIVE"):
        hook.set_connection_status(1, "PENDING")
    assert sandbox_control.stats()["requests"] == {}


def test_joining_reports_each_failed_condition_with_its_customer_safe_message(hook, sandbox_control):
    robin = hook.find_connection(email=ROBIN)
    with pytest.raises(PerkvilleValidationError) as info:
        hook.set_connection_status(robin["resource_uri"], "active")
    error = info.value
    assert set(error.codes) == {"pv_connection_membership_not_active", "pv_agreement_required"}
    assert error.field == "status"
    assert error.customer_message(perkville_url="https://www.perkville.com/biz/9823/") in {
        "Your membership is not active. Please contact the business for help.",
        "Please review and accept the required terms to join at https://www.perkville.com/biz/9823/",
    }
    assert sandbox_control.connection_of(ROBIN)["status"] == "IMPORTED"


def test_the_join_flow_upsert_accept_then_activate(hook, sandbox_control):
    member = {
        "external_system_id": "MYGYM",
        "external_member_id": "R-1",
        "user_email": ROBIN,
        "external_membership_status": "active",
        "external_join_dt": "2024-02-01",
    }
    result = hook.upsert_external_member(member)
    robin = hook.find_connection(email=ROBIN)
    assert isinstance(result, MemberUpsertResult)
    assert (result.created, result.status) == (True, "created")
    assert result.connection_uri == robin["resource_uri"]
    user_id = int(robin["user"].rstrip("/").rsplit("/", 1)[1])
    agreements = hook.get_join_agreements(user_id)
    assert [(a["agreement_id"], a["is_accepted"]) for a in agreements] == [(701, False)]
    accepted = hook.accept_agreements(user_id, [a["agreement_id"] for a in agreements])
    assert [(a["agreement_id"], a["is_accepted"]) for a in accepted] == [(701, True)]
    assert hook.set_connection_status(robin["connection_id"], "ACTIVE")["status"] == "ACTIVE"
    assert sandbox_control.connection_of(ROBIN)["status"] == "ACTIVE"
    assert sandbox_control.requests_to(f"POST {AGREEMENT_ACCEPT_PATH}", "200") == 1


def test_a_second_upsert_of_the_same_member_updates_it(hook, sandbox_control):
    member = {"external_system_id": "MYGYM", "external_member_id": "N-1", "user_email": "new@example.com"}
    first = hook.upsert_external_member(member)
    second = hook.upsert_external_member({**member, "first_name": "Nia", "external_membership_type": "Gold"})
    assert (first.status, second.status) == ("created", "updated")
    assert first.connection_uri == second.connection_uri
    records = [
        row for row in sandbox_control.ledger()["external_members"] if row["external_member_id"] == "N-1"
    ]
    assert len(records) == 1
    assert records[0]["external_membership_type"] == "Gold"


def test_update_external_member_patches_the_given_fields(hook, sandbox_control):
    created = hook.upsert_external_member(
        {"external_system_id": "MYGYM", "external_member_id": "U-1", "user_email": "u1@example.com"}
    )
    updated = hook.update_external_member(created.external_member, {"external_membership_status": "INACTIVE"})
    assert updated["external_membership_status"] == "INACTIVE"


def test_a_call_without_any_business_says_where_to_set_one(make_hook, sandbox_control):
    hook = make_hook("perkville_no_business", extra={"business_id": None})
    with pytest.raises(
        PerkvilleConfigurationError, match="business_id extra of connection 'perkville_no_business'"
    ):
        hook.list_locations()
    assert hook.get_business(BUSINESS_ID)["business_id"] == BUSINESS_ID


def test_test_connection_says_which_check_ran_and_reports_failure_as_text(make_hook):
    ok, message = make_hook().test_connection()
    assert ok is True
    assert "read business 9823 (Demo Fitness Club)" in message
    ok, message = make_hook("perkville_no_business", extra={"business_id": None}).test_connection()
    assert ok is True
    assert "read users/me: admin@demo-fitness.example" in message
    ok, message = make_hook("perkville_wrong", password="wrong-password-9").test_connection()
    assert ok is False
    assert "username or password" in message
    assert "wrong-password-9" not in message


def test_setting_extras_never_become_headers_and_the_user_agent_names_provider_and_airflow(
    make_hook, recording_proxy
):
    import airflow

    hook = make_hook(
        "perkville_proxy",
        host=recording_proxy.url,
        extra={"scope": "PUBLIC ADMIN_CUSTOMER_INFO", "timeout": 20, "note": "ops team"},
    )
    hook.get_current_user()
    hook.get_business()
    assert len(recording_proxy.seen) == 2
    for _method, _path, headers in recording_proxy.seen:
        lower = {name.lower(): value for name, value in headers.items()}
        assert not {*SETTING_EXTRAS, "note"} & set(lower), "no extra, known or not, is a header"
        assert (
            lower["user-agent"]
            == f"airflow-provider-perkville/{__version__} apache-airflow/{airflow.__version__}"
        )
        assert lower["authorization"].startswith("Bearer ")
    assert hook.get_conn().get_adapter(recording_proxy.url)._pool_maxsize >= 16


def test_a_uri_connection_works_and_a_host_without_scheme_means_https(sandbox_control, monkeypatch):
    sandbox = urlsplit(sandbox_control.url)
    query = urlencode(
        {
            "client_id": "demo-client-id",
            "client_secret": "demo-client-secret",
            "business_id": BUSINESS_ID,
            "token_url": sandbox_control.url + "/api/token/",
        }
    )
    uri = f"perkville://{quote(ADMIN_USERNAME, safe='')}:admin-password@{sandbox.netloc}/http?{query}"
    monkeypatch.setenv("AIRFLOW_CONN_PERKVILLE_URI", uri)
    assert PerkvilleHook(perkville_conn_id="perkville_uri").get_business()["business_id"] == BUSINESS_ID

    monkeypatch.setenv(
        "AIRFLOW_CONN_PERKVILLE_PLAIN_HOST", "perkville://api.perkville.com/?token=abcdef123456"
    )
    plain = PerkvilleHook(perkville_conn_id="perkville_plain_host")
    plain.get_conn()
    assert plain.base_url == "https://api.perkville.com"


def test_every_refusal_before_sending_is_a_perkville_error(hook, sandbox_control):
    """A DAG that catches PerkvilleError catches bad arguments too, not only API answers."""
    calls = [
        lambda: hook.find_connection(email=CASEY, user_id=1),
        lambda: hook.set_connection_status(1, "PENDING"),
        lambda: hook.set_connection_status("not-an-id", "ACTIVE"),
        lambda: hook.update_external_member({"resource_uri": "/elsewhere/"}, {"first_name": "A"}),
        lambda: hook.award_points({"trans_source_id": "T:1", "perk_id": 501}),
        lambda: hook.upsert_external_member({"external_member_id": "1"}),
    ]
    for call in calls:
        with pytest.raises(PerkvilleError) as info:
            call()
        assert info.value.retriable is False
    assert sandbox_control.stats()["requests"] == {}
