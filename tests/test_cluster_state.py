"""The local cluster's process bookkeeping (deploy/cluster_state.py): what `make cluster-stop` and
the worker-kill step of the cluster scenario rely on, on real processes."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))

from cluster_state import State, descendants, pid_alive

# A parent that starts a grandchild and waits: the shape of a Celery worker and its task processes.
PARENT_WITH_CHILD = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"


@pytest.fixture
def state(tmp_path: Path) -> State:
    return State(root=tmp_path, ports={}, secrets={"x": "secret"}, schedules=False, pids={})


def _wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_state_file_is_private_and_round_trips(state: State) -> None:
    state.pids["x"] = [123, "456"]
    state.save()
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o600
    loaded = State.load(state.root)
    assert loaded is not None
    assert (loaded.pids, loaded.secrets) == ({"x": [123, "456"]}, {"x": "secret"})


def test_a_reused_pid_is_not_taken_for_the_component(state: State) -> None:
    component = state.component("worker")
    component.start([sys.executable, "-c", "import time; time.sleep(60)"], env=dict(os.environ))
    try:
        pid, started = state.pids["worker"]
        assert pid_alive(pid, started)
        assert not pid_alive(pid, str(int(started) + 1))  # same PID, another process
        stranger = State.load(state.root).component("worker")
        assert stranger.alive()
    finally:
        component.finish(0)
    assert not component.alive()


def test_kill_tree_kills_the_component_and_what_it_started(state: State) -> None:
    component = state.component("worker")
    component.start([sys.executable, "-c", PARENT_WITH_CHILD], env=dict(os.environ))
    assert _wait_for(lambda: descendants(component.pid))
    children = descendants(component.pid)
    killed = component.kill_tree()
    assert set(killed) == {component.pid, *children}
    assert _wait_for(lambda: not any(pid_alive(pid) for pid in children))
    assert not component.alive()


def test_stop_ends_the_whole_process_group(state: State) -> None:
    import signal

    component = state.component("worker")
    component.start([sys.executable, "-c", PARENT_WITH_CHILD], env=dict(os.environ))
    assert _wait_for(lambda: descendants(component.pid))
    children = descendants(component.pid)
    component.signal(signal.SIGTERM)
    component.finish(5)
    assert not component.alive()
    assert _wait_for(lambda: not any(pid_alive(pid) for pid in children))
