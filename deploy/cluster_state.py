"""The local cluster's bookkeeping: ports, secrets and the PID of every component, in
``<root>/state.json`` (mode 0600), and how one component is started, watched and stopped.

A PID is stored with the process's start time (``/proc/<pid>/stat``), so a PID reused by an
unrelated process after a reboot or a crash is never taken for a component and never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ClusterError(RuntimeError):
    """A component failed to start or to become healthy; names it, for the tail of its log."""

    def __init__(self, component: Component, reason: str) -> None:
        super().__init__(f"{component.name}: {reason}")
        self.component = component
        self.reason = reason


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def pid_alive(pid: int | None, started: str | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, when ``started`` is given, is still that process."""
    if pid is None:
        return False
    now = _start_time(pid)
    return now is not None and (started is None or now == started)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren...), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(proc.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Component:
    """One process of the cluster, leader of its own process group, logging to ``logs/<name>.log``."""

    name: str
    state: State
    popen: subprocess.Popen | None = None
    log_offset: int = 0
    """Where this start's output begins in the log (a restarted component appends)."""

    @property
    def log_path(self) -> Path:
        return self.state.root / "logs" / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        entry = self.state.pids.get(self.name)
        return entry[0] if entry else None

    def alive(self) -> bool:
        entry = self.state.pids.get(self.name)
        if self.popen is not None:
            return self.popen.poll() is None
        return bool(entry) and pid_alive(entry[0], entry[1])

    def start(self, command: list[str], *, env: dict[str, str], user: str | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.log_offset = log.tell()
            self.popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd="/" if user else self.state.root,
                user=user,
                start_new_session=True,
            )
        self.state.pids[self.name] = [self.popen.pid, _start_time(self.popen.pid)]
        self.state.live[self.name] = self
        self.state.save()

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if still running after ``timeout`` seconds."""
        assert self.popen is not None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_text(self) -> str:
        """What this start of the component has logged so far."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self.log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def kill_tree(self) -> list[int]:
        """SIGKILL the component and every process it started (a machine dying): the PIDs killed."""
        pid = self.pid
        if pid is None or not self.alive():
            return []
        victims = [pid, *descendants(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(10)
        return victims

    def signal(self, sig: signal.Signals) -> None:
        """``sig`` to the component's own process (it stops its children)."""
        if self.pid is not None and self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def finish(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the component to exit, then SIGKILL what is left of its group."""
        pid = self.pid
        if pid is None:
            return
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.3)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(10)


@dataclass
class State:
    """Ports, generated secrets and PIDs of one cluster root."""

    root: Path
    ports: dict[str, int]
    secrets: dict[str, str]
    schedules: bool
    pids: dict[str, list[Any]]
    live: dict[str, Component] = field(default_factory=dict, repr=False)

    @property
    def path(self) -> Path:
        return self.root / "state.json"

    @property
    def passwords_file(self) -> Path:
        return self.root / "airflow" / "passwords.json"

    def component(self, name: str) -> Component:
        return self.live.get(name) or Component(name, self)

    def components(self) -> list[Component]:
        """Every component with a recorded PID, in start order."""
        return [self.component(name) for name in self.pids]

    def alive_components(self) -> list[Component]:
        return [component for component in self.components() if component.alive()]

    def all_pids(self) -> set[int]:
        """PIDs of every process in the components' groups (the components and their children)."""
        groups = {entry[0] for entry in self.pids.values() if entry}
        found = set()
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if os.getpgid(int(proc.name)) in groups:
                        found.add(int(proc.name))
                except ProcessLookupError:
                    continue
        return found

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        data = {"ports": self.ports, "secrets": self.secrets, "schedules": self.schedules, "pids": self.pids}
        tmp = self.path.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.path)

    @classmethod
    def load(cls, root: Path) -> State | None:
        try:
            data = json.loads((root / "state.json").read_text())
        except (OSError, ValueError):
            return None
        return cls(root, data["ports"], data["secrets"], data["schedules"], data["pids"])
