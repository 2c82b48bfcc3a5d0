"""The demo gym's membership database: members and check-ins at two clubs, as a SQLite file.

The example DAGs read this database through an Airflow SQL connection, exactly as they would
read a real membership system's PostgreSQL or MySQL. The data is seeded and placed relative to
an explicit anchor date in an explicit timezone, so the same command always writes the same rows
and tests never depend on the wall clock.

It holds the bad rows a real export has, one of each kind on every check-in day:
an invalid email, a member without an email, a member row without a member id, a check-in
without a member id, the same check-in exported twice, and a member checking in twice the same
day (which Perkville's once-per-calendar-day limit must refuse).

Usage: ``python -m perkville_provider.demo.data --db .demo/gym.db --anchor 2026-11-20``
"""

from __future__ import annotations

import argparse
import random
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pendulum

SOURCE_SYSTEM = "MYGYM"
BUSINESS_TIMEZONE = "America/New_York"
DEFAULT_SEED = 20261122
FIRST_CHECKIN_ID = 10001
_DB_TIME_FORMAT = "YYYY-MM-DD HH:mm:ss"


@dataclass(frozen=True)
class Club:
    code: str
    name: str
    timezone: str


# The two clubs match the sandbox's locations 101 (DT) and 102 (WS).
CLUBS = (Club("DT", "Downtown", "America/New_York"), Club("WS", "Westside", "America/Los_Angeles"))

_FIRST_NAMES = (
    "Ava", "Ben", "Chloe", "Diego", "Emma", "Felix", "Grace", "Hugo", "Iris", "Jonah",
    "Kira", "Liam", "Maya", "Noah", "Olive", "Priya", "Quinn", "Rosa", "Sam", "Tara",
)  # fmt: skip
_LAST_NAMES = (
    "Adams", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hayes", "Ito", "Jones",
    "Khan", "Lopez", "Moreau", "Nakamura", "Okafor", "Patel", "Reyes", "Silva", "Turner", "Weber",
)  # fmt: skip
_MEMBERSHIP_TYPES = ("Monthly", "Annual", "Student", "Family")
_INVALID_EMAIL, _NO_EMAIL = 2, 4
"""Positions of the members whose email is malformed or missing."""

SCHEMA = """
CREATE TABLE demo_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE clubs (club_code TEXT PRIMARY KEY, name TEXT NOT NULL, timezone TEXT NOT NULL);
CREATE TABLE members (
    member_id TEXT,
    email TEXT,
    first_name TEXT,
    last_name TEXT,
    membership_type TEXT,
    membership_status TEXT,
    join_date TEXT,
    cancel_date TEXT,
    home_club TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE checkins (
    checkin_id INTEGER NOT NULL,
    member_id TEXT,
    club_code TEXT NOT NULL,
    checked_in_at TEXT NOT NULL
);
CREATE INDEX members_updated_at ON members (updated_at);
CREATE INDEX checkins_checked_in_at ON checkins (checked_in_at);
"""


@dataclass(frozen=True)
class DemoDataSpec:
    """What to generate. ``anchor`` is the day after the last check-in day, in ``timezone``."""

    anchor: pendulum.Date
    days: int = 3
    members: int = 40
    checkins_per_day: int = 24
    seed: int = DEFAULT_SEED
    timezone: str = BUSINESS_TIMEZONE

    @property
    def checkin_days(self) -> list[pendulum.Date]:
        """The check-in days, oldest first: the ``days`` calendar days before the anchor."""
        return [self.anchor.subtract(days=offset) for offset in range(self.days, 0, -1)]


@dataclass(frozen=True)
class _Member:
    member_id: str | None
    email: str | None
    first_name: str
    last_name: str
    membership_type: str
    membership_status: str
    join_date: str
    cancel_date: str | None
    home_club: str
    updated_at: str


def db_time(moment: pendulum.DateTime) -> str:
    """How the source database stores a moment: UTC, ``YYYY-MM-DD HH:MM:SS``, sortable as text."""
    return moment.in_timezone("UTC").format(_DB_TIME_FORMAT)


def _members(spec: DemoDataSpec, rng: random.Random) -> list[_Member]:
    """Members last changed during the month before the first check-in day, plus the bad rows."""
    first_day = pendulum.datetime(*spec.checkin_days[0].timetuple()[:3], tz=spec.timezone)
    members = []
    for index in range(1, spec.members + 1):
        first, last = _FIRST_NAMES[index % len(_FIRST_NAMES)], _LAST_NAMES[(index * 7) % len(_LAST_NAMES)]
        joined = first_day.subtract(days=rng.randint(30, 1000))
        cancelled = index % 10 == 9
        members.append(
            _Member(
                member_id=f"M{index:05d}",
                email=f"{first}.{last}.{index}@example.org".lower(),
                first_name=first,
                last_name=last,
                membership_type=rng.choice(_MEMBERSHIP_TYPES),
                membership_status="INACTIVE" if cancelled else "ACTIVE",
                join_date=joined.to_date_string(),
                cancel_date=first_day.subtract(days=rng.randint(1, 25)).to_date_string()
                if cancelled
                else None,
                home_club=CLUBS[index % len(CLUBS)].code,
                updated_at=db_time(first_day.subtract(minutes=rng.randint(60, 30 * 24 * 60))),
            )
        )
    members[_INVALID_EMAIL] = _replace_email(members[_INVALID_EMAIL], "diego.brooks.at.example.org")
    members[_NO_EMAIL] = _replace_email(members[_NO_EMAIL], None)
    nameless = members[6]
    members.append(  # an export glitch: the member id is missing
        _Member(None, "pat.morgan@example.org", "Pat", "Morgan", "Monthly", "ACTIVE",
                nameless.join_date, None, "DT", nameless.updated_at)
    )  # fmt: skip
    return members


def _replace_email(member: _Member, email: str | None) -> _Member:
    return _Member(**{**member.__dict__, "email": email})


def _local_checkin_time(day: pendulum.Date, club: Club, rng: random.Random) -> pendulum.DateTime:
    """A time between 06:00 and 20:59 at the club: the same calendar day in every demo timezone."""
    return pendulum.datetime(
        day.year,
        day.month,
        day.day,
        rng.randint(6, 20),
        rng.randint(0, 59),
        rng.randint(0, 59),
        tz=club.timezone,
    )


def _checkins(spec: DemoDataSpec, members: Sequence[_Member], rng: random.Random) -> list[tuple]:
    """Check-in export rows ``(checkin_id, member_id, club_code, checked_in_at)``, oldest first.

    Per day: distinct members first, then the bad rows. Ids follow time, like a real sequence.
    """
    bad = [members[_INVALID_EMAIL], members[_NO_EMAIL]]
    good = [member for member in members if member.member_id is not None and member not in bad]
    visits: list[tuple[pendulum.DateTime, str, str | None, bool]] = []  # (time, club, member, exported twice)
    for day in spec.checkin_days:
        visitors = rng.sample(good, min(spec.checkins_per_day, len(good)))
        visitors += [rng.choice(good) for _ in range(spec.checkins_per_day - len(visitors))]
        returning = visitors[0]  # comes back the same day: Perkville's daily limit refuses the second
        for position, member in enumerate([*visitors, *bad, returning]):
            club = rng.choice(CLUBS)
            visits.append((_local_checkin_time(day, club, rng), club.code, member.member_id, position == 1))
        visits.append((_local_checkin_time(day, CLUBS[1], rng), CLUBS[1].code, None, False))  # no member id
    visits.sort(key=lambda visit: (visit[0], visit[1], visit[2] or ""))
    rows = []
    for position, (moment, club_code, member_id, twice) in enumerate(visits):
        row = (FIRST_CHECKIN_ID + position, member_id, club_code, db_time(moment))
        rows.extend([row, row] if twice else [row])
    return rows


def generate(db_path: Path, spec: DemoDataSpec, *, overwrite: bool = False) -> Path:
    """Write the demo database to ``db_path``; refuse to replace an existing one unless asked."""
    if db_path.exists():
        if not overwrite:
            raise FileExistsError(f"{db_path} exists; pass overwrite=True (--force) to replace it")
        db_path.unlink()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(spec.seed)
    members = _members(spec, rng)
    checkins = _checkins(spec, members, rng)
    info = {
        "anchor": spec.anchor.to_date_string(),
        "days": str(spec.days),
        "members": str(spec.members),
        "checkins_per_day": str(spec.checkins_per_day),
        "seed": str(spec.seed),
        "timezone": spec.timezone,
        "source_system": SOURCE_SYSTEM,
    }
    with sqlite3.connect(db_path) as db:
        db.executescript(SCHEMA)
        db.executemany("INSERT INTO demo_info VALUES (?, ?)", info.items())
        db.executemany("INSERT INTO clubs VALUES (?, ?, ?)", [(c.code, c.name, c.timezone) for c in CLUBS])
        db.executemany(
            "INSERT INTO members VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [tuple(member.__dict__.values()) for member in members],
        )
        db.executemany("INSERT INTO checkins VALUES (?, ?, ?, ?)", checkins)
    db.close()
    return db_path


def read_spec(db_path: Path) -> DemoDataSpec:
    """The spec a demo database was generated from (stored in it), so a re-run uses the same days."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        info = dict(db.execute("SELECT key, value FROM demo_info"))
    db.close()
    return DemoDataSpec(
        anchor=pendulum.Date.fromisoformat(info["anchor"]),
        days=int(info["days"]),
        members=int(info["members"]),
        checkins_per_day=int(info["checkins_per_day"]),
        seed=int(info["seed"]),
        timezone=info["timezone"],
    )


def ensure(db_path: Path, spec: DemoDataSpec) -> DemoDataSpec:
    """Generate the database unless it exists; return the spec it really holds."""
    if not db_path.exists():
        generate(db_path, spec)
    return read_spec(db_path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m perkville_provider.demo.data", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", type=Path, required=True, help="SQLite file to write")
    parser.add_argument("--timezone", default=BUSINESS_TIMEZONE, help="the business's timezone")
    parser.add_argument("--anchor", help="YYYY-MM-DD, the day after the last check-in day (default: today)")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--checkins-per-day", type=int, default=24)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    anchor = pendulum.Date.fromisoformat(args.anchor) if args.anchor else pendulum.today(args.timezone).date()
    spec = DemoDataSpec(anchor, args.days, args.members, args.checkins_per_day, args.seed, args.timezone)
    generate(args.db, spec, overwrite=args.force)
    days = ", ".join(day.to_date_string() for day in spec.checkin_days)
    print(f"wrote {args.db}: {spec.members} members, check-ins on {days} ({spec.timezone})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
