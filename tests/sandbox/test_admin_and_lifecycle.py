"""/_sandbox/ stats, ledger and reset; restart persistence with a file DB; the handle."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter

import requests

from perkville_provider.sandbox import seed
from perkville_provider.sandbox.launcher import run_sandbox
from perkville_provider.sandbox.modes import MODE_DEFAULTS
from tests.helpers.api import Api, connection_of


def test_stats_count_requests_by_endpoint_template_and_status(sandbox, admin_api):
    admin_api.get(f"/v2/connections/{seed.CUSTOMER_CONNECTION_ID}/")
    admin_api.get(f"/v2/connections/{seed.IMPORTED_CUSTOMER_CONNECTION_ID}/")
    admin_api.get("/v2/connections/424242/")
    admin_api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="s-1")
    admin_api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="s-1")

    stats = sandbox.admin.stats()

    assert stats["requests"]["GET /v2/connections/{id}/"] == {"200": 2, "404": 1}
    assert stats["requests"]["POST /v2/transactions/"] == {"201": 1, "400": 1}
    assert stats["requests"]["POST /api/token/"] == {"200": 1}
    assert stats["token_grants"] == 1
    assert not any(key.startswith("GET /_sandbox") for key in stats["requests"])


def test_the_ledger_exports_transactions_members_connections_and_users(sandbox, admin_api):
    admin_api.upsert_member(external_member_id="X-1", user_email="ledger@example.com")
    admin_api.award(user_email="ledger@example.com", trans_source_id="lg-1", quantity=2)

    ledger = sandbox.admin.ledger()

    assert set(ledger) == {"transactions", "external_members", "connections", "users"}
    assert [(t["trans_source_id"], t["points"], t["quantity"]) for t in ledger["transactions"]] == [
        ("lg-1", 10, 2)
    ]
    assert [m["external_member_id"] for m in ledger["external_members"]] == ["X-1"]
    assert connection_of(sandbox, "ledger@example.com")["point_balance"] == 20
    assert len(ledger["users"]) == 5


def test_stats_count_the_requests_still_in_flight(sandbox, admin_api):
    """What a test that cut a client's requests waits on before it reads the ledger as final."""
    before = sandbox.admin.stats()["in_flight"]  # an earlier test's cut trickle may still run here
    sandbox.admin.set_faults(latency_ms=1_000)
    slow = threading.Thread(target=admin_api.get, args=(f"/v2/connections/{seed.CUSTOMER_CONNECTION_ID}/",))
    slow.start()
    deadline = time.monotonic() + 10
    while sandbox.admin.stats()["in_flight"] <= before and time.monotonic() < deadline:
        time.sleep(0.01)
    in_flight = sandbox.admin.stats()["in_flight"]
    slow.join(timeout=10)

    assert in_flight >= 1
    assert in_flight > sandbox.admin.stats()["in_flight"]  # answered: the count went down again


def test_reset_reseeds_forgets_tokens_clears_stats_faults_and_settings(sandbox, admin_api):
    admin_api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="r-1")
    sandbox.admin.set_faults(latency_ms=1)
    sandbox.admin.set_settings(duplicate_mode="return_existing", join_requires_active_membership=False)

    sandbox.admin.reset()

    stats = sandbox.admin.stats()
    assert isinstance(stats.pop("in_flight"), int)  # a live count, not state a reset clears
    assert stats == {
        "requests": {},
        "faults_injected": dict.fromkeys(stats["faults_injected"], 0),
        "token_grants": 0,
    }
    ledger = sandbox.admin.ledger()
    assert ledger["transactions"] == []
    assert connection_of(sandbox, seed.CUSTOMER_USERNAME)["point_balance"] == 120
    assert admin_api.get("/v2/users/me/").status_code == 401
    assert sandbox.admin.faults()["latency_ms"] == 0
    assert sandbox.admin.settings() == {
        "duplicate_mode": "error",
        "join_requires_active_membership": True,
        **MODE_DEFAULTS,
    }
    fresh = Api(sandbox.base_url, sandbox.token())
    assert (
        fresh.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="r-1").json()["transaction_id"]
        == 20001
    )


def test_a_bad_setting_is_refused(sandbox):
    response = requests.put(
        f"{sandbox.base_url}/_sandbox/settings", json={"duplicate_mode": "ignore"}, timeout=10
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["duplicate_mode"]


def test_a_file_database_keeps_its_data_and_tokens_across_a_restart(tmp_path):
    db = tmp_path / "sandbox.db"
    with run_sandbox(db=db, settings={"duplicate_mode": "return_existing"}) as first:
        token = first.token()
        api = Api(first.base_url, token)
        assert api.award(user_email=seed.CUSTOMER_USERNAME, trans_source_id="keep-1").status_code == 201

    with run_sandbox(db=db) as second:
        api = Api(second.base_url, token)
        [txn] = second.admin.ledger()["transactions"]
        assert txn["trans_source_id"] == "keep-1"
        assert connection_of(second, seed.CUSTOMER_USERNAME)["point_balance"] == 130
        assert api.get("/v2/users/me/").status_code == 200
        assert second.admin.settings()["duplicate_mode"] == "return_existing"


def test_the_server_process_is_gone_after_the_context_exits():
    with run_sandbox() as sandbox:
        process = sandbox.process
        assert process.poll() is None

    assert process.poll() is not None


def test_the_handle_builds_airflow_connections_with_overrides(sandbox):
    conn = sandbox.airflow_connection(login="frontdesk@demo-fitness.example", extra={"business_id": 1})

    assert conn["login"] == "frontdesk@demo-fitness.example"
    assert conn["extra"]["business_id"] == 1
    assert conn["extra"]["client_id"] == seed.CLIENT_ID


def test_the_sandbox_fixture_points_the_default_connection_at_this_sandbox_as_its_admin(sandbox):
    env = json.loads(os.environ["AIRFLOW_CONN_PERKVILLE_DEFAULT"])

    assert (env["conn_type"], env["host"]) == ("perkville", sandbox.base_url)
    assert (env["login"], env["password"]) == (seed.ADMIN_USERNAME, seed.ADMIN_PASSWORD)
    assert env["extra"]["oauth_url"] == f"{sandbox.base_url}/api/token/"


def test_stats_per_second_count_each_seconds_requests_by_status_and_429s(sandbox):
    started = time.time()
    api = Api(sandbox.base_url, sandbox.token())
    sandbox.admin.set_faults(rate_limit_per_second=2, rate_limit_scope="client")
    answered = [api.get(f"/v2/connections/{seed.CUSTOMER_CONNECTION_ID}/").status_code for _ in range(5)]
    finished = time.time()

    seconds = sandbox.admin.stats_per_second()

    totals: Counter[tuple[str, str]] = Counter()
    for entry in seconds:
        assert int(started) <= entry["second"] <= int(finished)
        for endpoint, statuses in entry["requests"].items():
            totals.update({(endpoint, status): n for status, n in statuses.items()})
    gets = Counter(("GET /v2/connections/{id}/", str(status)) for status in answered)
    assert totals == gets + Counter({("POST /api/token/", "200"): 1})
    assert gets[("GET /v2/connections/{id}/", "429")] >= 2
    assert [entry["second"] for entry in seconds] == sorted({entry["second"] for entry in seconds})


def test_stats_per_second_take_a_span_and_refuse_a_bad_bound(sandbox, admin_api):
    admin_api.get(f"/v2/connections/{seed.CUSTOMER_CONNECTION_ID}/")
    url = f"{sandbox.base_url}/_sandbox/stats/per-second"

    later = requests.get(url, params={"since": time.time() + 5}, timeout=10)
    earlier = requests.get(url, params={"until": time.time() - 3_600}, timeout=10)
    bad = requests.get(url, params={"since": "yesterday"}, timeout=10)

    assert later.json() == {"seconds": []}
    assert earlier.json() == {"seconds": []}
    assert [entry["requests"] for entry in sandbox.admin.stats_per_second()] in (
        [{"GET /v2/connections/{id}/": {"200": 1}, "POST /api/token/": {"200": 1}}],
        [{"POST /api/token/": {"200": 1}}, {"GET /v2/connections/{id}/": {"200": 1}}],  # a second apart
    )
    assert bad.status_code == 400
    assert "since" in bad.text
    sandbox.admin.reset()
    assert sandbox.admin.stats_per_second() == []
