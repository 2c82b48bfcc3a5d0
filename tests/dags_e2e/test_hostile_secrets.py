"""No secret, nor any form derived from one, leaves the provider on any error path a hostile server
can provoke: exception texts, ``test_connection()`` answers, log lines (the raw ``dag.test()``
console output at DEBUG, which Airflow does not mask: stricter than a task log), XCom values and
reports. Secrets: the connection password, the client secret, a pre-issued token, granted tokens.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from perkville_provider.auth import clear_token_cache
from tests.helpers.dag_runs import xcom_values
from tests.helpers.dags import TEST_DAGS, load_dag
from tests.helpers.hostile_conn import GRANTED, TOKEN, derived_forms, grant_script, hostile_connection
from tests.helpers.hostile_server import Exchange, HostileServer, echo_everything, page

BUSINESS = {"business_id": 9823, "name": "Hostile Gym", "resource_uri": "/v2/businesses/9823/"}
PADDING = "x" * 200_000


def _echo_with_padding(status: int):
    echo = echo_everything(status)

    def script(exchange: Exchange) -> None:
        exchange.request.headers["X-Padding"] = PADDING
        echo(exchange)

    return script


def _route(server: HostileServer):
    """Dispatch on the path prefix: ``/<path name>/...``; each prefix answers one hostile way."""
    granted = iter(f"{GRANTED}-{n}" for n in range(10_000))

    def script(exchange: Exchange) -> None:
        name, _, rest = exchange.request.path.strip("/").partition("/")
        rest = f"/{rest}/"
        if name == "bad_token_url" and rest == "/wrong/path/":
            _echo_with_padding(404)(exchange)
        elif rest == "/api/token/":
            if name.startswith("grant_echo_"):
                _echo_with_padding(int(name.rsplit("_", 1)[1]))(exchange)
            else:
                grant_script(next(granted))(exchange)
        elif name == "regrant_refused":
            _echo_with_padding(401)(exchange)
        elif rest.startswith("/v2/businesses/") or rest == "/v2/users/me/":
            exchange.json(200, {**BUSINESS, "user_id": 1, "emails": []})
        elif rest == "/v2/perks/":
            foreign = "http://elsewhere.example/v2/perks/?offset=100" if name == "foreign_next" else None
            exchange.json(200, page([{"perk_id": 501}], next_url=foreign))
        elif name == "echo_500":
            _echo_with_padding(500)(exchange)
        else:
            _echo_with_padding(400)(exchange)

    server.script = script


def _connections(server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def define(name: str, *, grant: bool = False, **overrides) -> None:
        value = hostile_connection(server, grant=grant, host=f"{server.url}/{name}", **overrides)
        if grant and "token_url" not in overrides.get("extra", {}):
            value["extra"]["token_url"] = f"{server.url}/{name}/api/token/"
        monkeypatch.setenv(f"AIRFLOW_CONN_PV_{name.upper()}", json.dumps(value))

    define("echo_400")
    define("echo_500")
    define("grant_echo_500", grant=True)
    define("grant_echo_401", grant=True)
    define("regrant_refused", grant=True)
    define("bad_token_url", grant=True, extra={"token_url": f"{server.url}/bad_token_url/wrong/path/"})
    define("inner_newline", extra={"token": TOKEN[:5] + "\n" + TOKEN[5:]})
    define("foreign_next")


def test_no_secret_or_derived_form_leaves_the_provider_on_any_hostile_path(
    airflow_db, hostile_server, monkeypatch, tmp_path: Path, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_LEVEL", "DEBUG")
    clear_token_cache()
    _route(hostile_server)
    _connections(hostile_server, monkeypatch)
    dag = load_dag(TEST_DAGS / "hostile_secrets.py", "hostile_secrets")

    run = dag.test(run_conf={"report_dir": str(tmp_path)})

    captured = capfd.readouterr()
    xcoms = {task.task_id: xcom_values(run, task.task_id) for task in dag.tasks}
    reports = {path.name: path.read_text() for path in tmp_path.glob("*.jsonl")}
    places = {
        "console": captured.out + captured.err,
        "log records": caplog.text,
        "xcom": json.dumps(xcoms, default=str),
        "reports": "\n".join(reports.values()),
    }
    seen = [seen.header("Authorization") or "" for seen in hostile_server.seen]
    assert any(TOKEN in header for header in seen), "the pre-issued token was really sent"
    assert any(GRANTED in header for header in seen), "granted tokens were really sent"
    assert any("Basic" in header for header in seen), "the client credentials were really sent"
    assert set(reports) >= {"echo_400.jsonl", "echo_500.jsonl"}
    assert "ForeignLink" in places["xcom"] or "ForeignLink" in places["console"]
    granted = [header.removeprefix("Bearer ") for header in seen if GRANTED in header]
    for where, text in places.items():
        for form in [*derived_forms(), *granted]:
            assert form not in text, f"{form!r} found in {where}"
        assert PADDING not in text, f"an unbounded server text reached {where}"
