"""The doctor from the command line and from Python: its guard, its outputs, its extras."""

from __future__ import annotations

import json

import pytest

from perkville_provider.auth import clear_token_cache
from perkville_provider.cli import main
from perkville_provider.doctor import HOLDS, WriteRefused, guarded_hook, quick_summary, run_doctor
from perkville_provider.doctor.findings import NOT_SEEN
from perkville_provider.hooks.perkville import PerkvilleHook
from perkville_provider.sandbox.seed import CLIENT_SECRET
from tests.helpers.hook_sandbox import connection_value

MOVED = {"paths": {"external_members": "/v2/external_members/"}}


def test_the_guard_refuses_a_write_before_sending_it(sandbox_control, define_connection):
    define_connection("perkville_guarded")
    hook, guard = guarded_hook("perkville_guarded")
    hook.get_current_user()
    for method in ("POST", "PATCH", "PUT", "DELETE"):
        with pytest.raises(WriteRefused, match=f"refused {method} /v2/transactions/"):
            hook.request(method, "/v2/transactions/", json={"trans_source_id": "X"})

    sent = sandbox_control.stats()["requests"]
    assert sorted(sent) == ["GET /v2/users/me/", "POST /api/token/"]
    assert [e.method for e in guard.exchanges] == ["POST", "GET"]
    assert [e.grant for e in guard.exchanges] == [True, False]


def test_a_write_refused_by_the_guard_ends_the_doctor_before_it_reaches_the_api(
    sandbox_control, define_connection, monkeypatch
):
    """Were a probe ever to write, the guard, not the probe, stops it."""
    from perkville_provider.doctor import probes

    def writing_probe(p, *args):
        p.hook.request("POST", "/v2/transactions/", json={})

    monkeypatch.setattr(probes, "probe_business", writing_probe)
    define_connection("perkville_doctor")
    with pytest.raises(WriteRefused):
        run_doctor("perkville_doctor")
    assert not [e for e in sandbox_control.stats()["requests"] if e.startswith("POST /v2/")]


def test_the_doctor_prints_its_table_and_the_extras_that_fit(sandbox_control, define_connection, capsys):
    sandbox_control.settings(paths=MOVED["paths"])
    define_connection("perkville_doctor")

    assert main(["doctor", "--conn-id", "perkville_doctor", "--write-extras"]) == 0

    out = capsys.readouterr().out
    assert "path of external_members" in out
    assert 'Extras that fit what was seen: {"paths": {"external_members": "/v2/external_members/"}}' in out
    assert "1 token grant (POST to the token URL, the only request that was not a read)" in out
    printed = out.split("# Extras to set on the connection (the rest stay at their defaults):\n", 1)[1]
    assert json.loads(printed) == MOVED
    assert CLIENT_SECRET not in out
    assert sandbox_control.handle.admin_password not in out


def test_the_json_report_lists_every_request_and_no_secret(sandbox_control, define_connection, capsys):
    define_connection("perkville_doctor")
    assert main(["doctor", "--conn-id", "perkville_doctor", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["writes"] == 0
    assert report["token_grants"] == 1
    assert report["suggested_extras"] == {}
    assert {r["method"] for r in report["requests"]} == {"GET", "POST"}
    assert sum(r["grant"] for r in report["requests"]) == 1
    counted = sandbox_control.stats()["requests"]
    gets = sum(sum(counts.values()) for endpoint, counts in counted.items() if endpoint.startswith("GET "))
    assert report["reads"] == gets
    token = PerkvilleHook(perkville_conn_id="perkville_doctor").get_token()
    assert token not in out
    assert CLIENT_SECRET not in out


def test_save_refuses_a_connection_defined_outside_the_metadata_database(
    airflow_db, sandbox_control, define_connection, capsys
):
    sandbox_control.settings(paths=MOVED["paths"])
    define_connection("perkville_doctor")
    assert main(["doctor", "--conn-id", "perkville_doctor", "--write-extras", "--save"]) == 1
    assert "not in Airflow's metadata database" in capsys.readouterr().err


def test_save_stores_the_extras_on_the_connection_so_a_second_run_finds_nothing_to_change(
    airflow_db, sandbox_control, capsys
):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    sandbox_control.settings(paths=MOVED["paths"])
    value = connection_value(sandbox_control, extra={"verify": True})
    with create_session() as session:
        session.add(Connection(conn_id="perkville_saved", **{**value, "extra": json.dumps(value["extra"])}))
    try:
        assert main(["doctor", "--conn-id", "perkville_saved", "--write-extras", "--save"]) == 0
        assert "Saved paths on connection 'perkville_saved'" in capsys.readouterr().err
        with create_session() as session:
            stored = session.query(Connection).filter(Connection.conn_id == "perkville_saved").one()
            assert stored.extra_dejson == {**value["extra"], **MOVED}, "the other extras stay as they were"
        assert main(["doctor", "--conn-id", "perkville_saved", "--json"]) == 0
        again = json.loads(capsys.readouterr().out)
        assert again["suggested_extras"] == {}
        [paths] = [found for found in again["findings"] if found["key"] == "paths.external_members"]
        assert paths["conclusion"] == HOLDS
    finally:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == "perkville_saved").delete()


def test_an_empty_list_or_a_stored_token_is_said_plainly_not_guessed(sandbox_control, define_connection):
    token = sandbox_control.handle.token()
    clear_token_cache()
    define_connection("perkville_stored", extra={"token": token})

    report = run_doctor("perkville_stored")

    assert report.grants == 0
    assert report.finding("token.scopes").conclusion == NOT_SEEN
    assert report.finding("filter.transactions.trans_source_id").conclusion == NOT_SEEN
    assert "empty" in report.finding("filter.transactions.trans_source_id").observed
    assert report.finding("filter.connections.user_id").conclusion == HOLDS


def test_the_quick_summary_is_one_line_naming_what_differs(sandbox_control, define_connection):
    sandbox_control.settings(paths=MOVED["paths"])
    define_connection("perkville_doctor")
    line = quick_summary(PerkvilleHook(perkville_conn_id="perkville_doctor"))
    assert "\n" not in line
    assert "differ: paths.external_members" in line
    assert '"/v2/external_members/"' in line
    assert not [
        e for e in sandbox_control.stats()["requests"] if not e.startswith(("GET ", "POST /api/token/"))
    ]
