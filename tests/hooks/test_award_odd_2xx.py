"""Odd 2xx answers to an award are settled by reading the transaction back, or are a typed error.

A hostile server of the tests' own answers the POST; what the look-up finds decides, never a guess
from a body that is not the award's transaction.
"""

from __future__ import annotations

from typing import Any

import pytest

from perkville_provider.exceptions import PerkvilleAnswerError, PerkvilleMalformedAnswerError
from tests.helpers.hostile_server import page

AWARD = {"trans_source_id": "ODD:1", "user_email": "a@example.com", "perk_id": 501}
STORED = {"transaction_id": 77, "trans_source_id": "ODD:1", "points": 10, "quantity": "2.50"}


def answer(hostile_server, status: int, body: Any, stored: list[dict[str, Any]]) -> None:
    hostile_server.route("POST", "/v2/transactions/", lambda exchange: exchange.json(status, body))
    hostile_server.route("GET", "/v2/transactions/", lambda exchange: exchange.json(200, page(stored)))


@pytest.mark.parametrize(
    ("status", "body"), [(202, {"queued": True}), (201, {"points": "ten"})], ids=["202 queued", "201 ten"]
)
def test_a_2xx_that_is_not_the_transaction_is_settled_by_reading_it_back(
    hostile_server, hostile_hook, status, body
):
    answer(hostile_server, status, body, [STORED])

    result = hostile_hook().award_points(AWARD)

    assert (result.status, result.points, result.transaction) == ("awarded", 25, STORED)
    assert [seen.method for seen in hostile_server.seen] == ["POST", "GET"]


@pytest.mark.parametrize(
    ("status", "body"), [(202, {"queued": True}), (201, {"points": "ten"})], ids=["202 queued", "201 ten"]
)
def test_a_2xx_whose_transaction_is_not_there_is_a_typed_error_not_a_duplicate(
    hostile_server, hostile_hook, status, body
):
    answer(hostile_server, status, body, [])

    with pytest.raises(PerkvilleAnswerError, match=f"answered {status}.*no transaction 'ODD:1'"):
        hostile_hook().award_points(AWARD)


def test_a_transaction_whose_points_are_not_a_number_is_a_typed_error_naming_points(
    hostile_server, hostile_hook
):
    answer(hostile_server, 201, {**STORED, "points": "ten"}, [])

    with pytest.raises(PerkvilleMalformedAnswerError, match="points must be an integer, got 'ten'"):
        hostile_hook().award_points(AWARD)
