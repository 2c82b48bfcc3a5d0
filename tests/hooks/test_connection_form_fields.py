"""What the Airflow connection form saves, as the hook reads it: the Port field, ``oauth_url``, and the
Test button's message for a connection that Airflow tests under a random id."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from perkville_provider.exceptions import PerkvilleConfigurationError
from perkville_provider.session import base_url_of


def _conn(host: str | None, port: object = None, schema: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(conn_id="perkville_form", host=host, port=port, schema=schema)


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("https://api.perkville.com", 443, "https://api.perkville.com"),
        ("https://api.perkville.com", 0, "https://api.perkville.com"),
        ("https://api.perkville.com", None, "https://api.perkville.com"),
        ("http://127.0.0.1:8765", 8765, "http://127.0.0.1:8765"),
        ("http://127.0.0.1", 8765, "http://127.0.0.1:8765"),
        ("https://gw.example.com/perkville", 8443, "https://gw.example.com:8443/perkville"),
        ("api.perkville.com", "443", "https://api.perkville.com"),
    ],
)
def test_the_port_field_goes_into_the_urls_authority_and_a_default_or_zero_port_changes_nothing(
    host, port, expected
):
    assert base_url_of(_conn(host, port)) == expected


@pytest.mark.parametrize("port", [8766, 70000, -1, "x"])
def test_a_port_that_differs_from_the_hosts_or_is_out_of_range_is_refused_naming_both(port):
    with pytest.raises(PerkvilleConfigurationError, match=r"connection 'perkville_form': the port field"):
        base_url_of(_conn("http://127.0.0.1:8765", port))


def test_a_connection_with_its_port_in_the_port_field_tests_ok(make_hook, sandbox_control):
    """What the form saves when the user fills the Port field the Test button needs."""
    port = urlsplit(sandbox_control.url).port
    ok, message = make_hook("perkville_with_port", port=port).test_connection()
    assert ok, message
    assert f"Connected to Perkville at {sandbox_control.url.rstrip('/')}" in message


def test_the_token_endpoint_is_read_as_oauth_url_and_under_its_old_name(make_hook, sandbox_control):
    token_url = sandbox_control.url.rstrip("/") + "/api/token/"
    ok, message = make_hook("perkville_new_name", extra={"oauth_url": token_url}).test_connection()
    assert ok, message
    ok, message = make_hook(
        "perkville_old_name", extra={"oauth_url": None, "token_url": token_url}
    ).test_connection()
    assert ok, message
    ok, message = make_hook(
        "perkville_both_names", extra={"oauth_url": token_url, "token_url": token_url + "x/"}
    ).test_connection()
    assert not ok
    assert "oauth_url extra" in message
    assert "token_url" in message


def test_the_test_buttons_message_does_not_name_airflows_random_connection_id(make_hook):
    """Airflow's Test button tests a copy of the connection named like 'WZSK5aOs'."""
    ok, message = make_hook("WZSK5aOs", password="wrong-password-9").test_connection()
    assert not ok
    assert "username or password" in message
    assert "WZSK5aOs" not in message
    assert "this connection" in message
    assert "wrong-password-9" not in message


def test_the_test_button_adds_the_doctors_verdict_naming_no_random_connection_id(make_hook, sandbox_control):
    """A working connection's Test answer carries the doctor's short form: its read-only verdict on
    the API's unknowns, with the CLI to run for the table (under the id the user knows)."""
    ok, message = make_hook("Q7ZKBxw2").test_connection()
    assert ok, message
    assert "doctor: " in message
    assert " hold" in message
    assert "cannot tell without a write" in message
    assert "Q7ZKBxw2" not in message
    assert "--conn-id <connection id>" in message
