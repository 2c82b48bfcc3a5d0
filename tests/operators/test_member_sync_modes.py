"""Member sync as a reverse-ETL job: modes, members who leave, the mass-change guard, the dry run.

Each test executes the operator against the sandbox and proves what happened from its ledger and
its request counts, never from the operator's own summary alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator
from perkville_provider.operators.sync_members import PerkvilleSyncMembersOperator
from perkville_provider.sandbox.modes import STOCK_TASTYPIE
from perkville_provider.sandbox.paths import TOKEN_PATH
from tests.helpers.operator_runs import TaskInstanceStub

SANDBOX_MODES = {"default": {}, "stock_tastypie": STOCK_TASTYPIE}


def _member(n: int, system: str, **fields: Any) -> dict[str, Any]:
    return {
        "external_member_id": f"{system}-{n}",
        "user_email": f"{system.lower()}{n}@example.com",
        "first_name": f"Member{n}",
        "external_membership_status": "ACTIVE",
        **fields,
    }


def _sync(members: list[dict[str, Any]], system: str, **settings: Any) -> dict[str, Any]:
    operator = PerkvilleSyncMembersOperator(
        task_id="sync", members=members, external_system_id=system, **settings
    )
    return operator.execute({"ti": TaskInstanceStub()})


def _seed(count: int, system: str) -> list[dict[str, Any]]:
    members = [_member(n, system) for n in range(count)]
    summary = _sync(members, system)
    assert summary["created"] == count
    return members


def _ledger(sandbox, system: str) -> dict[str, dict[str, Any]]:
    rows = sandbox.admin.ledger()["external_members"]
    return {row["external_member_id"]: row for row in rows if row["external_system_id"] == system}


def _writes(sandbox) -> int:
    """Writes to the API's resources the sandbox answered, whatever their status (token grants aside)."""
    requests = sandbox.admin.stats()["requests"]
    return sum(
        sum(by_status.values())
        for endpoint, by_status in requests.items()
        if endpoint.split(" ", 1)[0] in {"POST", "PATCH", "PUT", "DELETE"} and TOKEN_PATH not in endpoint
    )


@pytest.mark.parametrize("sandbox_mode", list(SANDBOX_MODES))
def test_update_only_skips_a_member_perkville_does_not_have_and_creates_nobody(sandbox, sandbox_mode):
    sandbox.admin.set_settings(**SANDBOX_MODES[sandbox_mode])
    system = f"UPD_{sandbox_mode.upper()}"
    members = _seed(10, system)

    summary = _sync(
        [{**members[0], "first_name": "Renamed"}, _member(99, system)], system, mode="update_only"
    )

    assert (summary["updated"], summary["skipped"], summary["created"]) == (1, 1, 0)
    ledger = _ledger(sandbox, system)
    assert f"{system}-99" not in ledger
    assert ledger[f"{system}-0"]["first_name"] == "Renamed"
    assert len(ledger) == 10


@pytest.mark.parametrize("sandbox_mode", list(SANDBOX_MODES))
def test_create_only_never_changes_an_existing_member(sandbox, sandbox_mode):
    sandbox.admin.set_settings(**SANDBOX_MODES[sandbox_mode])
    system = f"CRE_{sandbox_mode.upper()}"
    members = _seed(10, system)
    before = _ledger(sandbox, system)[f"{system}-0"]

    summary = _sync(
        [{**members[0], "first_name": "Renamed"}, _member(99, system)], system, mode="create_only"
    )

    assert (summary["created"], summary["skipped"], summary["updated"]) == (1, 1, 0)
    ledger = _ledger(sandbox, system)
    assert ledger[f"{system}-0"] == before
    assert ledger[f"{system}-99"]["first_name"] == "Member99"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"mode": "update-only"}, "mode: must be one of upsert, update_only, create_only"),
        ({"on_missing": "delete"}, "on_missing: must be one of ignore, deactivate"),
        ({"mode": "create_only", "on_missing": "deactivate"}, "on_missing: deactivate changes existing"),
        ({"max_change_ratio": 2}, "max_change_ratio: must be a number from 0 to 1"),
        ({"max_changes": 0}, "max_changes"),
        ({"allow_mass_change": "maybe"}, "allow_mass_change: must be true or false"),
    ],
)
def test_a_bad_sync_setting_fails_before_any_request(sandbox, settings, message):
    before = sandbox.admin.stats()["requests"]

    with pytest.raises(AirflowFailException, match=message):
        _sync([_member(1, "BADMODE")], "BADMODE", **settings)

    assert sandbox.admin.stats()["requests"] == before


@pytest.mark.parametrize("sandbox_mode", list(SANDBOX_MODES))
def test_a_member_gone_from_the_full_source_is_deactivated_exactly_once(sandbox, sandbox_mode):
    sandbox.admin.set_settings(**SANDBOX_MODES[sandbox_mode])
    system = f"GONE_{sandbox_mode.upper()}"
    members = _seed(6, system)
    source = members[:5]

    first = _sync(source, system, on_missing="deactivate")
    after_first = _ledger(sandbox, system)
    writes = _writes(sandbox)
    second = _sync(source, system, on_missing="deactivate")

    assert first["deactivated"] == 1
    assert second["deactivated"] == 0
    assert after_first[f"{system}-5"]["external_membership_status"] == "INACTIVE"
    assert {
        row["external_membership_status"] for key, row in after_first.items() if key != f"{system}-5"
    } == {"ACTIVE"}
    after_second = _ledger(sandbox, system)
    assert after_second[f"{system}-5"] == after_first[f"{system}-5"]
    # The rerun wrote the 5 upserts again, and nothing else: no second deactivation.
    assert _writes(sandbox) - writes == 5


def test_a_member_whose_source_row_is_invalid_is_not_deactivated(sandbox):
    system = "GONE_INVALID"
    members = _seed(6, system)
    source = [*members[:5], {**members[5], "user_email": "not-an-email"}]

    summary = _sync(source, system, on_missing="deactivate", max_failure_ratio=0.5)

    assert (summary["deactivated"], summary["invalid"]) == (0, 1)
    assert _ledger(sandbox, system)[f"{system}-5"]["external_membership_status"] == "ACTIVE"


def test_deactivate_in_a_mapped_task_is_refused_before_any_request(sandbox):
    class MappedTaskInstance(TaskInstanceStub):
        map_index = 2

    operator = PerkvilleSyncMembersOperator(
        task_id="sync", members=[_member(1, "MAPPED")], external_system_id="MAPPED", on_missing="deactivate"
    )
    before = _writes(sandbox)

    with pytest.raises(AirflowFailException, match="on_missing: deactivate needs the whole source"):
        operator.execute({"ti": MappedTaskInstance()})

    assert _writes(sandbox) == before


def test_the_guard_refuses_a_source_that_returns_nothing_then_the_override_lets_one_run_through(sandbox):
    system = "GUARD_EMPTY"
    _seed(8, system)
    writes = _writes(sandbox)

    with pytest.raises(AirflowFailException) as refused:
        _sync([], system, on_missing="deactivate")

    message = str(refused.value)
    assert "8 changes (0 creates, 0 updates, 8 deactivations) for 8 known members" in message
    assert "max_change_ratio=0.2" in message
    assert "allow_mass_change" in message
    assert _writes(sandbox) == writes
    assert {row["external_membership_status"] for row in _ledger(sandbox, system).values()} == {"ACTIVE"}

    summary = _sync([], system, on_missing="deactivate", allow_mass_change="True")

    assert summary["deactivated"] == 8
    assert {row["external_membership_status"] for row in _ledger(sandbox, system).values()} == {"INACTIVE"}


def test_the_guard_counts_only_real_updates_and_honours_max_changes(sandbox):
    system = "GUARD_UPDATES"
    members = _seed(10, system)

    unchanged = _sync(members, system)  # a full resend of the same values changes nobody
    assert unchanged["updated"] == 10

    renamed = [{**member, "first_name": "Renamed"} for member in members]
    with pytest.raises(AirflowFailException, match=r"10 changes \(0 creates, 10 updates"):
        _sync(renamed, system)
    with pytest.raises(AirflowFailException, match="more than max_changes=2"):
        _sync(renamed[:3], system, max_change_ratio=None, max_changes=2)
    assert {row["first_name"] for row in _ledger(sandbox, system).values()} != {"Renamed"}


def test_the_dry_run_reports_planned_changes_and_writes_nothing(sandbox):
    system = "DRY_PLAN"
    members = _seed(10, system)
    source = [
        {**members[0], "first_name": "Renamed"},
        *members[1:8],
        _member(50, system),
        {"external_member_id": f"{system}-bad", "user_email": "nope"},
    ]
    ledger = _ledger(sandbox, system)
    writes = _writes(sandbox)

    summary = _sync(source, system, on_missing="deactivate", validate_only=True, max_failure_ratio=1)

    assert summary["planned"] == {
        "create": 1,
        "update": 1,
        "unchanged": 7,
        "skip": 0,
        "invalid": 1,
        "deactivate": 2,
    }
    assert [entry["external_member_id"] for entry in summary["planned_first"]["deactivate"]] == [
        f"{system}-8",
        f"{system}-9",
    ]
    assert summary["planned_first"]["invalid"][0]["field"] == "user_email"
    assert summary["guard"].startswith("4 changes (1 creates, 1 updates, 2 deactivations) for 10 known")
    assert _writes(sandbox) == writes
    assert _ledger(sandbox, system) == ledger


def _award(n: int) -> dict[str, Any]:
    return {"trans_source_id": f"GUARD:{n}", "user_email": "casey@example.com"}


def test_the_awards_guard_refuses_many_more_awards_than_the_daily_average_until_overridden(sandbox):
    def award(count: int, **settings: Any) -> dict[str, Any]:
        operator = PerkvilleAwardPointsOperator(
            task_id="award", awards=[_award(n) for n in range(count)], perk_id=502, **settings
        )
        return operator.execute({"ti": TaskInstanceStub()})

    def guarded() -> list[dict[str, Any]]:
        return [
            r for r in sandbox.admin.ledger()["transactions"] if r["trans_source_id"].startswith("GUARD:")
        ]

    assert award(12, recent_daily_awards=2)["awarded"] == 12  # off by default

    with pytest.raises(AirflowFailException, match=r"20 awards in this run, more than max_awards_ratio=3 x"):
        award(20, max_awards_ratio=3, recent_daily_awards="4")
    assert len(guarded()) == 12

    assert award(12, max_awards_ratio=3, recent_daily_awards=4)["duplicate"] == 12  # 12 <= 3 x 4
    assert award(20, max_awards_ratio=3, recent_daily_awards=4, allow_mass_change=True)["awarded"] == 8
    assert len(guarded()) == 20
