"""The machine's shared pace on disk: a private folder, and a file that is checked before it is trusted.

Every process on the machine that uses a connection reads and writes its pace in one small JSON
file under an exclusive ``flock``. The folder and the file are where a neighbour could plant
something, so:

* the default folder is the user's own (``$AIRFLOW_HOME/perkville-rate``, created ``0700``), never
  a fixed name in the world-writable temporary directory; any folder used must be a real
  directory of this user that nobody else may write to, or the hook refuses it, naming it;
* the file is opened without following a symbolic link (``O_NOFOLLOW``) and must be a regular
  file of this user: a symlink, a FIFO, a directory or another user's file is replaced;
* what is read back must be a pace the rules could have written (finite numbers, nothing further
  ahead than the longest wait): a corrupt, truncated, huge or far-future state is replaced too.

Each replacement is one WARNING naming the file; the request goes on at the normal pace. If the
file cannot even be replaced, this process keeps its pace in memory (one WARNING) rather than
fail every request.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import stat
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from perkville_provider.exceptions import PerkvilleConfigurationError
from perkville_provider.pacing import Pace, PaceRules

__all__ = ["STATE_DIR_ENV", "MachineSchedule", "default_state_dir", "state_dir"]

log = logging.getLogger(__name__)

STATE_DIR_ENV = "PERKVILLE_RATE_LIMIT_DIR"
#: The state is a few hundred bytes; anything this long was not written by the rules.
MAX_STATE_BYTES = 4096

T = TypeVar("T")
Update = Callable[[Pace, float], T]


def default_state_dir() -> Path:
    """``$AIRFLOW_HOME/perkville-rate`` (Airflow's own default home, ``~/airflow``, when unset)."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return Path(home) / "perkville-rate"


def state_dir(configured: str | None = None) -> Path:
    """The machine's state folder, created ``0700`` when missing and checked to be private.

    The ``rate_limit_dir`` extra, else ``$PERKVILLE_RATE_LIMIT_DIR``, else :func:`default_state_dir`.

    :raises PerkvilleConfigurationError: the folder is a symlink, not a directory, another user's,
        or writable by others (a neighbour could plant files in it)
    """
    chosen = configured or os.environ.get(STATE_DIR_ENV)
    path = Path(chosen) if chosen else default_state_dir()
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    info = os.lstat(path)
    problem = None
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory"
    elif info.st_uid != os.getuid():
        problem = f"belongs to another user (uid {info.st_uid})"
    elif info.st_mode & 0o022:
        problem = f"is writable by others (mode {stat.S_IMODE(info.st_mode):o})"
    if problem is not None:
        raise PerkvilleConfigurationError(
            f"the rate limit state folder {str(path)!r} {problem}: a neighbour could plant files in "
            "it; set the rate_limit_dir extra (or $PERKVILLE_RATE_LIMIT_DIR) to a private folder (0700)"
        )
    return path


def _open_problem(path: Path) -> tuple[int | None, str | None]:
    """The state file opened safely (a descriptor), or why it cannot be used as it is."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return None, "is a symbolic link"
        if error.errno == errno.EISDIR:
            return None, "is a directory"
        return None, f"cannot be opened ({os.strerror(error.errno or 0)})"
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = "is not a regular file (a FIFO, a device...)"
    elif info.st_uid != os.getuid():
        problem = f"belongs to another user (uid {info.st_uid})"
    if problem is not None:
        os.close(fd)
        return None, problem
    return fd, None


def _replace(path: Path) -> int:
    """Remove what is at ``path`` (never what a link points to) and create a fresh private file."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            os.rmdir(path)
        else:
            os.unlink(path)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


class MachineSchedule:
    """The pace in a JSON file under an exclusive ``flock``: every process on the machine shares it.

    The lock is held only to read, apply one rule and write a few dozen bytes; nobody sleeps under it.

    :param path: the state file (in a folder from :func:`state_dir`)
    :param rules: the rules whose range a state read back must fit (see :meth:`PaceRules.distrust`)
    """

    clock = staticmethod(time.time)

    def __init__(self, path: Path, rules: PaceRules | None = None) -> None:
        self.path = path
        self.rules = rules or PaceRules(ceiling=None)
        self._lock = threading.Lock()  # flock excludes processes; threads share one descriptor
        self._fd: int | None = None
        self._fd_pid = 0
        self._in_memory: Pace | None = None

    def _descriptor(self) -> int | None:
        """The state file's descriptor, opened once per process; None when only memory is left.

        A forked child opens its own: ``flock`` belongs to the open file, so a descriptor
        inherited across a fork would hold the parent's lock, not one of its own.
        """
        if self._in_memory is not None:
            return None
        if self._fd is None or self._fd_pid != os.getpid():
            fd, problem = _open_problem(self.path)
            if problem is not None:
                fd = self._replaced(problem)
                if fd is None:
                    return None
            assert fd is not None
            self._fd = fd
            self._fd_pid = os.getpid()
            weakref.finalize(self, os.close, fd)
        return self._fd

    def _replaced(self, problem: str) -> int | None:
        try:
            fd = _replace(self.path)
        except OSError as error:
            log.warning(
                "Perkville rate state file %s %s and cannot be replaced (%s); this process keeps "
                "its pace in memory (not shared with other processes)",
                self.path,
                problem,
                os.strerror(error.errno or 0),
            )
            self._in_memory = Pace()
            return None
        log.warning("Perkville rate state file %s %s; replaced by a fresh one", self.path, problem)
        return fd

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int | None]:
        with self._lock:
            fd = self._descriptor()
            if fd is None:
                yield None
                return
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield fd
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def update(self, rule: Update[T]) -> T:
        """Read the pace, apply ``rule``, write it back, all under the file's lock."""
        with self._locked() as fd:
            now = self.clock()
            if fd is None:
                assert self._in_memory is not None
                return rule(self._in_memory, now)
            pace = self._read(fd, now)
            result = rule(pace, now)
            data = json.dumps(pace.as_dict()).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            return result

    def _read(self, fd: int, now: float) -> Pace:
        """The pace in the file; a fresh one (and one WARNING) when it cannot be trusted."""
        raw = os.pread(fd, MAX_STATE_BYTES + 1, 0)
        pace, problem = self.rules.read_stored(raw, now, max_bytes=MAX_STATE_BYTES)
        if problem is None:
            return pace
        log.warning(
            "Perkville rate state file %s held a state that cannot be trusted (%s); replaced by a fresh one",
            self.path,
            problem[:200],
        )
        return Pace()
