"""The hook against answers no well-behaved Perkville gives: a hostile server of the tests' own.

Each test scripts one way of answering (foreign ``next`` links, loops, trickles, malformed or
huge bodies, redirect loops, 202/204) and checks that the hook ends with a typed error that says
what was wrong, where, and never follows, hangs or leaks.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from perkville_provider.exceptions import (
    PerkvilleAnswerTooLargeError,
    PerkvilleError,
    PerkvilleForeignLinkError,
    PerkvilleMalformedAnswerError,
    PerkvilleNetworkError,
    PerkvillePaginationError,
)
from perkville_provider.retries import RetryPolicy
from tests.helpers.hostile_conn import QUICK, TOKEN
from tests.helpers.hostile_server import HostileServer, page

PERKS = "/v2/perks/"


def _perks(start: int, count: int) -> list[dict[str, Any]]:
    return [{"perk_id": n, "title": f"perk {n}"} for n in range(start, start + count)]


# -- 1: the token goes only to the API's origin --------------------------------------------------


def test_a_next_link_to_another_host_is_refused_and_the_token_never_leaves(hostile_server, hostile_hook):
    elsewhere = HostileServer()
    try:
        elsewhere.script = lambda exchange: exchange.json(200, page([]))
        foreign = f"http://localhost:{elsewhere.port}{PERKS}?offset=100"
        hostile_server.script = lambda exchange: exchange.json(200, page(_perks(1, 2), next_url=foreign))

        with pytest.raises(PerkvilleForeignLinkError) as info:
            hostile_hook().list_perks()

        assert f"localhost:{elsewhere.port}" in str(info.value)
        assert info.value.path == PERKS
        assert elsewhere.seen == []
        assert len(hostile_server.seen) == 1
    finally:
        elsewhere.close()


def test_a_next_link_that_changes_the_scheme_is_refused(hostile_server, hostile_hook):
    https_link = hostile_server.url.replace("http://", "https://") + PERKS + "?offset=2"
    hostile_server.script = lambda exchange: exchange.json(200, page(_perks(1, 2), next_url=https_link))
    with pytest.raises(PerkvilleForeignLinkError, match="https"):
        hostile_hook().list_perks()
    assert len(hostile_server.seen) == 1


def test_a_next_link_on_the_same_origin_is_followed_with_the_token(hostile_server, hostile_hook):
    absolute = f"{hostile_server.url}{PERKS}?limit=2&offset=2&business=9823"

    def script(exchange) -> None:
        first = exchange.request.query.get("offset") == "0"
        exchange.json(200, page(_perks(1, 2), next_url=absolute) if first else page(_perks(3, 1)))

    hostile_server.script = script
    assert [perk["perk_id"] for perk in hostile_hook().list_perks()] == [1, 2, 3]
    assert [seen.header("Authorization") for seen in hostile_server.seen] == [f"Bearer {TOKEN}"] * 2


def test_a_location_on_another_host_is_never_followed_and_the_award_is_settled_on_the_api(
    hostile_server, hostile_hook
):
    elsewhere = HostileServer()
    try:
        foreign = f"http://localhost:{elsewhere.port}/v2/transactions/77/"
        created = {"transaction_id": 77, "trans_source_id": "LOC:1", "points": 10, "quantity": 1}
        hostile_server.route(
            "POST", "/v2/transactions/", lambda x: x.send(201, b"", headers={"Location": foreign})
        )
        hostile_server.route("GET", "/v2/transactions/", lambda exchange: exchange.json(200, page([created])))

        result = hostile_hook().award_points(
            {"trans_source_id": "LOC:1", "user_email": "a@example.com", "perk_id": 501}
        )

        assert (result.status, result.transaction) == ("awarded", created)
        assert elsewhere.seen == []
        with pytest.raises(PerkvilleForeignLinkError, match=f"localhost:{elsewhere.port}"):
            hostile_hook().request("GET", foreign)
        assert elsewhere.seen == []
    finally:
        elsewhere.close()


def test_a_downgraded_link_is_another_origin():
    from perkville_provider.origin import Origin

    api = Origin.of("https://api.perkville.com")
    assert api.admits("https://api.perkville.com:443/v2/perks/?offset=100")
    assert not api.admits("http://api.perkville.com/v2/perks/?offset=100")
    assert not api.admits("https://api.perkville.com:8443/v2/perks/")
    assert not api.admits("https://api.perkville.com.evil.example/v2/perks/")
    assert api.admits("/v2/perks/?offset=100")


# -- 6: pagination ends ----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_next_link_back_to_a_page_already_read_ends_the_walk(hostile_server, hostile_hook):
    loop = f"{PERKS}?limit=100&offset=0&business=9823"
    hostile_server.script = lambda exchange: exchange.json(200, page(_perks(1, 2), next_url=loop))
    with pytest.raises(PerkvillePaginationError, match="already read"):
        hostile_hook().list_perks()
    assert len(hostile_server.seen) <= 2


@pytest.mark.timeout(60)
def test_a_server_that_ignores_offset_ends_the_walk(hostile_server, hostile_hook):
    hostile_server.script = lambda exchange: exchange.json(
        200, {"meta": {"limit": 100}, "objects": _perks(1, 100)}
    )
    with pytest.raises(PerkvillePaginationError, match="same objects"):
        hostile_hook().list_perks()
    assert len(hostile_server.seen) == 2


@pytest.mark.timeout(60)
def test_a_walk_stops_at_the_page_cap(hostile_server, hostile_hook):
    def endless(exchange) -> None:
        offset = int(exchange.request.query.get("offset", 0))
        exchange.json(200, page(_perks(offset, 2), next_url=f"{PERKS}?limit=2&offset={offset + 2}"))

    hostile_server.script = endless
    with pytest.raises(PerkvillePaginationError, match="max_pages"):
        hostile_hook(extra={"max_pages": 5}).list_perks()
    assert len(hostile_server.seen) == 5


# -- 10: list answers of the wrong shape ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({}, "objects"),
        ({"objects": "abc", "meta": {}}, "objects"),
        ({"objects": [1, 2]}, "meta"),
        ([{"perk_id": 1}], "object"),
        ({"objects": [{"perk_id": 1}], "meta": "x"}, "meta"),
    ],
    ids=["empty", "objects-a-string", "no-meta", "json-list", "meta-a-string"],
)
def test_a_list_answer_of_the_wrong_shape_is_a_typed_error_naming_what_is_missing(
    hostile_server, hostile_hook, body, missing
):
    hostile_server.script = lambda exchange: exchange.json(200, body)
    with pytest.raises(PerkvilleMalformedAnswerError) as info:
        hostile_hook().list_perks()
    assert missing in info.value.message
    assert (info.value.method, info.value.path, info.value.status) == ("GET", PERKS, 200)


# -- 11: raw library errors become typed errors -----------------------------------------------------


def test_a_redirect_loop_is_a_typed_error_with_method_and_path(hostile_server, hostile_hook):
    hostile_server.script = lambda exchange: exchange.redirect(exchange.request.path)
    with pytest.raises(PerkvilleError) as info:
        hostile_hook().get_business()
    assert (info.value.method, info.value.path) == ("GET", "/v2/businesses/9823/")
    assert "redirect" in info.value.message


@pytest.mark.parametrize("status", [202, 204])
def test_an_answer_without_the_body_a_call_needs_is_a_typed_error(hostile_server, hostile_hook, status):
    hostile_server.script = lambda exchange: exchange.send(status, b"")
    with pytest.raises(PerkvilleMalformedAnswerError) as info:
        hostile_hook().get_business()
    assert (info.value.method, info.value.path, info.value.status) == ("GET", "/v2/businesses/9823/", status)


@pytest.mark.parametrize(
    "body",
    [b"<html>proxy error</html>", b"[" * 100_000 + b"]" * 100_000, b"[]"],
    ids=["html", "deep", "list"],
)
def test_a_2xx_body_that_is_not_the_expected_json_object_is_a_typed_error(hostile_server, hostile_hook, body):
    hostile_server.script = lambda exchange: exchange.send(200, body)
    with pytest.raises(PerkvilleMalformedAnswerError) as info:
        hostile_hook().get_business()
    assert (info.value.method, info.value.path, info.value.status) == ("GET", "/v2/businesses/9823/", 200)


def test_an_error_body_nested_too_deep_still_gives_the_typed_error(hostile_server, hostile_hook):
    hostile_server.script = lambda exchange: exchange.send(400, b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(PerkvilleError) as info:
        hostile_hook().get_business()
    assert info.value.status == 400


# -- 12: bounded answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "no-length"])
def test_an_answer_larger_than_the_cap_is_refused_while_reading(hostile_server, hostile_hook, declared):
    big = b'{"meta": {}, "objects": [' + b'{"perk_id": 1},' * 200_000 + b'{"perk_id": 2}]}'

    def script(exchange) -> None:
        if declared:
            exchange.send(200, big)
            return
        handler = exchange.handler
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(big)
        handler.close_connection = True

    hostile_server.script = script
    with pytest.raises(PerkvilleAnswerTooLargeError) as info:
        hostile_hook(extra={"max_response_bytes": 1_000_000}).list_perks()
    assert "1000000" in info.value.message
    assert info.value.path == PERKS


# -- 5: no request hangs ----------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("in_headers", [True, False], ids=["headers", "body"])
def test_a_trickling_answer_ends_at_the_attempt_deadline(hostile_server, hostile_hook, in_headers):
    body = b'{"business_id": 9823}' + b" " * 10_000
    hostile_server.script = lambda exchange: exchange.trickle(200, body, interval=0.05, in_headers=in_headers)
    hook = hostile_hook(extra={"timeout": 0.5, "request_deadline": 0.8})
    with pytest.raises(PerkvilleNetworkError, match="deadline") as info:
        hook.get_business()
    assert info.value.path == "/v2/businesses/9823/"
    assert len(hostile_server.seen) == QUICK.max_attempts


@pytest.mark.timeout(60)
def test_the_retry_policys_total_time_cap_counts_time_spent_inside_requests(hostile_server, hostile_hook):
    hostile_server.script = lambda exchange: exchange.trickle(200, b"{}" + b" " * 10_000, interval=0.05)
    policy = RetryPolicy(max_attempts=50, max_elapsed=1.0, backoff_initial=0.01, backoff_max=0.02)
    hook = hostile_hook(extra={"timeout": 0.4, "request_deadline": 0.6}, hook_kwargs={"retry_policy": policy})
    with pytest.raises(PerkvilleNetworkError):
        hook.get_business()
    assert len(hostile_server.seen) <= 2


@pytest.mark.timeout(60)
def test_abort_frees_threads_stuck_inside_requests(hostile_server, hostile_hook):
    hostile_server.script = lambda exchange: exchange.trickle(200, b"{}" + b" " * 10_000, interval=0.05)
    hook = hostile_hook(extra={"timeout": 5, "request_deadline": 3600})
    errors: list[BaseException] = []

    def call() -> None:
        try:
            hook.get_business()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    while len(hostile_server.seen) < 4:
        threading.Event().wait(0.02)
    hook.abort()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert len(errors) == 4
    assert all(isinstance(error, PerkvilleNetworkError) and "stopped" in str(error) for error in errors)
    assert len(hostile_server.seen) == 4
