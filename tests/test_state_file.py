"""The machine's rate state: a private folder, a file checked before it is trusted (issue 22, item 3).

The default folder was a fixed name in the world-writable temporary directory; a symlink planted
there made the provider overwrite the file it pointed to, and a FIFO, a directory or a corrupt
number broke every request (or parked it for years). These tests plant each of those.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from perkville_provider.exceptions import PerkvilleConfigurationError
from perkville_provider.pacing import PaceRules
from perkville_provider.rate_budget import SharedPace
from perkville_provider.state_file import MachineSchedule, state_dir

#: Year 2099 as an epoch time: what an HTTP-date Retry-After of 2099 stored as the next start.
YEAR_2099 = 4_070_908_800.0
RULES = PaceRules(ceiling=20.0)

POISONED_CONTENTS = {
    "huge": json.dumps({"next_start": 1e300, "throttled_rate": 1.0}),
    "inf": '{"next_start": Infinity, "quiet_until": Infinity}',
    "http-date-2099": json.dumps({"next_start": YEAR_2099, "quiet_until": YEAR_2099, "throttled_rate": 0.5}),
    "truncated": '{"next_start": 17',
    "not an object": "[1, 2, 3]",
    "a string rate": json.dumps({"throttled_rate": "fast"}),
    "too long": json.dumps({"next_start": 0.0, "padding": "x" * 10_000}),
}


def _warnings(caplog) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "state" in r.getMessage()
    ]


def _acquire_in_time(limiter: SharedPace, seconds: float = 5.0) -> float:
    """Starts three requests on another thread; how long they took (fails when parked, or raised)."""
    raised: list[BaseException] = []

    def starts() -> None:
        try:
            for _ in range(3):
                limiter.acquire()
        except BaseException as error:
            raised.append(error)

    started = time.monotonic()
    thread = threading.Thread(target=starts, daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    assert not thread.is_alive(), "the poisoned state parked the request"
    assert not raised, raised
    return time.monotonic() - started


def test_the_default_folder_is_private_to_the_user_under_airflow_home(tmp_path, monkeypatch):
    monkeypatch.delenv("PERKVILLE_RATE_LIMIT_DIR")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    folder = state_dir()
    assert folder == tmp_path / "home" / "perkville-rate"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@pytest.mark.parametrize("plant", ["world-writable", "symlink", "file"])
def test_a_folder_a_neighbour_could_write_to_is_refused_naming_it(tmp_path, plant):
    folder = tmp_path / "rate"
    if plant == "world-writable":
        folder.mkdir()
        folder.chmod(0o777)
    elif plant == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "elsewhere")
    else:
        folder.write_text("")
    with pytest.raises(PerkvilleConfigurationError, match=str(folder)):
        state_dir(str(folder))


def test_a_planted_symlink_is_replaced_and_the_file_it_points_to_is_left_alone(tmp_path, caplog):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = tmp_path / "state.json"
    path.symlink_to(victim)
    limiter = SharedPace(RULES, MachineSchedule(path, RULES), label="c")

    _acquire_in_time(limiter)

    assert victim.read_text() == "precious"
    assert not path.is_symlink()
    assert path.is_file()
    assert _warnings(caplog) == [
        f"Perkville rate state file {path} is a symbolic link; replaced by a fresh one"
    ]


def test_a_dangling_symlink_creates_nothing_where_it_points(tmp_path, caplog):
    target = tmp_path / "created-by-the-provider"
    path = tmp_path / "state.json"
    path.symlink_to(target)
    _acquire_in_time(SharedPace(RULES, MachineSchedule(path, RULES), label="c"))
    assert not target.exists()
    assert len(_warnings(caplog)) == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_fifo_or_a_directory_in_place_of_the_file_is_replaced(tmp_path, caplog, kind):
    path = tmp_path / "state.json"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    _acquire_in_time(SharedPace(RULES, MachineSchedule(path, RULES), label="c"))
    assert path.is_file()
    (message,) = _warnings(caplog)
    assert str(path) in message


@pytest.mark.parametrize("content", POISONED_CONTENTS.values(), ids=POISONED_CONTENTS.keys())
def test_a_poisoned_state_is_replaced_once_and_the_pace_is_the_normal_one(tmp_path, caplog, content):
    path = tmp_path / "state.json"
    path.write_text(content)
    limiter = SharedPace(RULES, MachineSchedule(path, RULES), label="c")

    took = _acquire_in_time(limiter)

    assert took < 2.0, "three starts at 20/s take a tenth of a second"
    (message,) = _warnings(caplog)
    assert str(path) in message
    assert "replaced by a fresh one" in message
    stored = json.loads(path.read_text())
    assert stored["next_start"] - time.time() <= RULES.longest_wait


def test_a_healthy_state_is_trusted_without_a_warning(tmp_path, caplog):
    path = tmp_path / "state.json"
    limiter = SharedPace(RULES, MachineSchedule(path, RULES), label="c")
    _acquire_in_time(limiter)
    _acquire_in_time(SharedPace(RULES, MachineSchedule(Path(path), RULES), label="c"))
    assert _warnings(caplog) == []
