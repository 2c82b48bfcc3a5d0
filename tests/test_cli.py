"""`perkville-provider token`: mint a token once and get a connection value that stores it."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

from perkville_provider.auth import clear_token_cache
from perkville_provider.cli import main
from perkville_provider.hooks.perkville import PerkvilleHook


def printed_lines(capsys) -> dict[str, str]:
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if not line.startswith("#")]
    return {line.split("=", 1)[0].split(":", 1)[0].split(" ", 1)[0]: line for line in lines}


def test_the_token_command_prints_a_token_and_a_connection_value_that_works_alone(
    sandbox, monkeypatch, capsys
):
    clear_token_cache()
    monkeypatch.setenv(
        "AIRFLOW_CONN_PERKVILLE_DEFAULT", sandbox.airflow_conn_env_value(extra={"verify": True})
    )
    assert main(["token", "--conn-id", "perkville_default"]) == 0
    lines = printed_lines(capsys)
    token = lines["token"].removeprefix("token: ")
    env_value = shlex.split(lines["AIRFLOW_CONN_PERKVILLE_DEFAULT"].split("=", 1)[1])[0]
    stored = json.loads(env_value)
    assert stored["extra"]["token"] == token
    assert "password" not in stored
    assert "login" not in stored
    assert "client_secret" not in stored["extra"]
    assert stored["extra"]["business_id"] == sandbox.business_id
    assert stored["extra"]["verify"] is True, "extras such as TLS or proxy settings stay"
    assert shlex.split(lines["airflow"])[:4] == ["airflow", "connections", "add", "perkville_default"]
    assert sandbox.admin.stats()["token_grants"] == 1

    monkeypatch.setenv("AIRFLOW_CONN_PERKVILLE_STORED", env_value)
    clear_token_cache()
    user = PerkvilleHook(perkville_conn_id="perkville_stored").get_current_user()
    assert user["emails"][0]["email"] == sandbox.admin_username
    assert sandbox.admin.stats()["token_grants"] == 1


def test_the_token_command_explains_a_refused_password_without_printing_it(sandbox, monkeypatch, capsys):
    clear_token_cache()
    monkeypatch.setenv(
        "AIRFLOW_CONN_PERKVILLE_BAD", sandbox.airflow_conn_env_value(password="bad-secret-password")
    )
    assert main(["token", "--conn-id", "perkville_bad"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "could not mint a token for 'perkville_bad'" in captured.err
    assert "username or password" in captured.err
    assert "bad-secret-password" not in captured.err


def test_perkville_sandbox_without_the_sandbox_extra_names_the_extra_in_one_line():
    # uvicorn and starlette come with Airflow itself: hide one as an install without them would.
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "from perkville_provider.cli import sandbox_main\n"
        "sys.exit(sandbox_main(['serve', '--port', '0']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)  # noqa: S603

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "perkville-sandbox: The Perkville sandbox needs the [sandbox] extra (uvicorn not installed): "
        "pip install 'airflow-provider-perkville[sandbox]'"
    ]
