"""The doctor against the sandbox in every mode of the API's unknowns, and stock tastypie's.

Its conclusions must equal the mode's settings for everything a read can show, and say "cannot
tell without a write" for the rest; the sandbox's own request counts and ledger show it wrote
nothing. One sandbox serves every case: reset, given a little data (an award, a member) in its
default mode, then switched to the case's mode before the doctor runs.
"""

from __future__ import annotations

from typing import Any

import pytest

from perkville_provider.api_conventions import DEFAULT_PATHS
from perkville_provider.doctor import CANNOT_TELL, DIFFERS, HOLDS, run_doctor
from perkville_provider.doctor.findings import NOT_SEEN
from perkville_provider.doctor.probes import FILTER_PROBES, path_alternatives
from perkville_provider.sandbox.modes import STOCK_TASTYPIE
from tests.helpers.hook_sandbox import CASEY, CHECKIN_PERK_ID

#: Moves the doctor finds by itself (``-`` for ``_``, a singular).
GUESSABLE_MOVES = {"external_members": "/v2/external_members/", "transactions": "/v2/transaction/"}
#: Moves no spelling rule finds (the API's own, as in tests/hooks/test_api_modes.py).
UNGUESSABLE_MOVES = {
    **GUESSABLE_MOVES,
    "connections": "/v2/customer-connections/",
    "agreements_batch": "/v2/agreements/accept/",
}
WRITE_ONLY = (
    "bodies.relations",
    "bodies.datetime_format",
    "bodies.quantity",
    "writes.always_return_data",
    "writes.duplicate",
    "writes.unknown_fields",
)
READABLE_ALWAYS_HOLDING = (
    "business",
    "token.scopes",
    "lists.shape",
    "answers.relations",
    "answers.datetimes",
    "answers.decimals",
    "errors.400",
    "errors.404",
    "rate.headers",
    "latency",
)

#: name -> (sandbox settings, the doctor's connection extras)
MODE_SETS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "sandbox_defaults": ({}, {}),
    "uri_relations_only": ({"relations": "uri"}, {}),
    "id_relations_only": ({"relations": "id"}, {}),
    "guessable_moved_paths": ({"paths": GUESSABLE_MOVES}, {}),
    "unguessable_moved_paths": ({"paths": UNGUESSABLE_MOVES}, {}),
    "moved_paths_the_connection_knows": ({"paths": UNGUESSABLE_MOVES}, {"paths": UNGUESSABLE_MOVES}),
    "ignored_filters": ({"ignored_filters": STOCK_TASTYPIE["ignored_filters"]}, {}),
    "filters_ignored_on_every_list": ({"ignored_filters": ["trans_source_id", "last_mod_dt__gte"]}, {}),
    "duplicate_answered_200": ({"duplicate_mode": "return_existing"}, {}),
    "duplicate_answered_201": ({"duplicate_mode": "created_existing"}, {}),
    "empty_write_answers": ({"always_return_data": False}, {}),
    "integer_quantities": ({"quantities": "integer"}, {}),
    "api_datetimes_only": ({"datetime_input": "api"}, {}),
    "iso_datetimes_only": ({"datetime_input": "iso"}, {}),
    "unknown_fields_ignored": ({"unknown_fields": "ignore"}, {}),
    "stock_tastypie": (STOCK_TASTYPIE, {}),
    "stock_tastypie_201_duplicates": ({**STOCK_TASTYPIE, "duplicate_mode": "created_existing"}, {}),
}


def populate(make_hook) -> None:
    """What a Perkville in use has: a transaction and an external member record (written by the test)."""
    writer = make_hook("perkville_writer")
    writer.award_points({"trans_source_id": "DOCTOR:1", "user_email": CASEY, "perk_id": CHECKIN_PERK_ID})
    writer.upsert_external_member(
        {"external_system_id": "GYM", "external_member_id": "M-1", "user_email": CASEY, "last_name": "Lee"}
    )


def expected_paths(settings: dict[str, Any], extras: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """resource -> (conclusion, extra) from the mode: where each resource really is."""
    actual = {**DEFAULT_PATHS, **settings.get("paths", {})}
    told = {**DEFAULT_PATHS, **extras.get("paths", {})}
    expected = {}
    for name in DEFAULT_PATHS:
        if told[name] == actual[name]:
            expected[name] = (HOLDS, None)
        elif actual[name] in path_alternatives(told[name]):
            expected[name] = (DIFFERS, {"paths": {name: actual[name]}})
        else:
            expected[name] = (DIFFERS, None)
    return expected


def expected_filter(settings: dict[str, Any], resource: str, name: str, path_found: bool) -> str:
    if not path_found:
        return NOT_SEEN
    ignored = settings.get("ignored_filters", [])
    return DIFFERS if name in ignored or f"{resource}.{name}" in ignored else HOLDS


@pytest.fixture
def control(sandbox_control, make_hook):
    populate(make_hook)
    return sandbox_control


def no_writes_since(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Requests that were not reads or the token grant, from the sandbox's own counts."""
    sent = [
        endpoint
        for endpoint, counts in after.items()
        if sum(counts.values()) > sum(before.get(endpoint, {}).values())
    ]
    return [e for e in sent if not e.startswith(("GET ", "HEAD ", "OPTIONS ")) and e != "POST /api/token/"]


@pytest.mark.parametrize("mode", list(MODE_SETS))
def test_the_doctor_concludes_what_the_mode_is_from_reads_and_writes_nothing(
    mode, control, define_connection
):
    settings, extras = MODE_SETS[mode]
    if settings:
        control.settings(**settings)
    define_connection("perkville_doctor", extra=extras)
    stats_before, ledger_before = control.stats()["requests"], control.ledger()
    grants_before = control.token_grants()

    report = run_doctor("perkville_doctor")

    conclusions = {found.key: found.conclusion for found in report.findings}
    paths = expected_paths(settings, extras)
    for name, (conclusion, extra) in paths.items():
        found = report.finding(f"paths.{name}")
        assert (found.conclusion, found.extra) == (conclusion, extra), name
    for resource, name, _ in FILTER_PROBES:
        path_found = paths[resource][0] == HOLDS or paths[resource][1] is not None
        assert conclusions[f"filter.{resource}.{name}"] == expected_filter(
            settings, resource, name, path_found
        )
    assert {key: conclusions[key] for key in WRITE_ONLY} == dict.fromkeys(WRITE_ONLY, CANNOT_TELL)
    assert {key: conclusions[key] for key in READABLE_ALWAYS_HOLDING} == dict.fromkeys(
        READABLE_ALWAYS_HOLDING, HOLDS
    )
    moved = {name: extra["paths"][name] for name, (_, extra) in paths.items() if extra}
    assert report.suggested_extras() == ({"paths": moved} if moved else {})

    assert no_writes_since(stats_before, control.stats()["requests"]) == []
    assert control.ledger() == ledger_before
    assert control.token_grants() == grants_before + 1 == report.grants + grants_before
