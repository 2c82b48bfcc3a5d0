"""The demo membership database: same spec, same rows; and every kind of bad row on every day."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pendulum
import pytest

from perkville_provider.demo import data
from tests.helpers.e2e import ANCHOR, EMAIL


def _dump(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as db:
        tables = {
            "members": db.execute("SELECT * FROM members ORDER BY 1, 2").fetchall(),
            "checkins": db.execute("SELECT * FROM checkins ORDER BY 1, 2").fetchall(),
        }
    db.close()
    return tables


def test_the_same_spec_writes_the_same_rows(tmp_path: Path):
    spec = data.DemoDataSpec(anchor=ANCHOR)

    first = _dump(data.generate(tmp_path / "a.db", spec))
    second = _dump(data.generate(tmp_path / "b.db", spec))

    assert first == second
    assert data.read_spec(tmp_path / "a.db") == spec


def test_an_existing_database_is_kept_unless_replacing_is_asked(tmp_path: Path):
    path = data.generate(tmp_path / "gym.db", data.DemoDataSpec(anchor=ANCHOR))

    with pytest.raises(FileExistsError, match=r"gym\.db"):
        data.generate(path, data.DemoDataSpec(anchor=ANCHOR.add(days=1)))
    assert data.ensure(path, data.DemoDataSpec(anchor=ANCHOR.add(days=1))).anchor == ANCHOR


def test_checkins_fall_on_the_days_before_the_anchor_in_the_business_timezone(gym):
    days = {
        pendulum.parse(row["checked_in_at"], tz="UTC").in_timezone(gym.spec.timezone).date()
        for row in gym.rows("SELECT checked_in_at FROM checkins")
    }
    assert days == set(gym.spec.checkin_days)
    assert sorted(days)[-1] == ANCHOR.subtract(days=1)


def test_every_day_has_each_kind_of_bad_row(gym):
    members = {row["member_id"]: row["email"] for row in gym.rows("SELECT * FROM members")}
    assert None in members  # a member row without a member id
    assert any(email is None for email in members.values())
    assert any(email and not EMAIL.match(email) for email in members.values())
    for day in gym.spec.checkin_days:
        start = pendulum.datetime(day.year, day.month, day.day, tz=gym.spec.timezone).in_timezone("UTC")
        rows = gym.rows(
            "SELECT * FROM checkins WHERE checked_in_at >= ? AND checked_in_at < ?",
            start.format("YYYY-MM-DD HH:mm:ss"),
            start.add(days=1).format("YYYY-MM-DD HH:mm:ss"),
        )
        exports = Counter(tuple(row) for row in rows)
        assert max(exports.values()) == 2  # the same check-in exported twice
        assert any(row["member_id"] is None for row in rows)
        distinct = {(row["checkin_id"], row["member_id"]) for row in rows}
        visits = Counter(member for _, member in distinct if member is not None)
        assert visits.most_common(1)[0][1] == 2  # a member back the same day
