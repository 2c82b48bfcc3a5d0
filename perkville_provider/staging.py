"""Records staged on object storage as JSON Lines, and read back lazily by the operators.

A day of check-ins is too big for XCom: Airflow resolves an ``.expand()`` argument by pulling the
whole upstream value in every mapped task. So the extract steps write their records to JSON Lines
files on an :class:`~airflow.sdk.ObjectStoragePath` (``file://`` on a folder the deployment
shares, ``s3://``, ``gs://``, ``abfs://`` through the matching provider) and pass only the paths
and counts through XCom; an operator given a path reads it here, one line at a time, so memory
stays flat whatever the file size.

Layout, under a staging root: ``<root>/<dag_id>/<run_id>/<name>/<chunk>.jsonl`` (see
:func:`run_staging_dir`): named by DAG, run and chunk, so a retry or a re-run of a chunk reads the
same records. Every run directory holds a small ``_run.json`` manifest whose ``staged_at`` lets
:func:`remove_expired_runs` delete runs past their retention, and ``reports/``, the operators'
per-record reports, from which :func:`settled_keys` tells a later run what Perkville already
answered.

This module is the one place where staged records are read: the operators call
:func:`read_staged_records` through ``operators/_settings.py``.

Staged files hold members' emails and names. On a local filesystem they are created ``0600`` in
folders ``0700`` (``PERKVILLE_STAGING_FILE_MODE``, e.g. ``0660``, widens both for a folder shared
by a group of workers; object stores keep their own access control), written under a temporary
name and renamed into place so that a reader never sees half a file. Folder names are a
reversible encoding of the DAG and run ids (:func:`safe_name`): no ``..``, no two ids sharing a
folder. Everything read back (manifests, reports) is checked: an unreadable manifest is skipped
with a WARNING, and a report counts as settled only in the folder of a run Airflow knows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from os import PathLike
from typing import TYPE_CHECKING, Any, TypeVar

import pendulum

from perkville_provider.records import RecordValidationError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

STAGED_SUFFIX = ".jsonl"
MANIFEST_NAME = "_run.json"
REPORTS_DIR = "reports"
"""Where a run's operators write their per-record reports (read back by :func:`settled_keys`)."""
FILE_MODE_ENV_VAR = "PERKVILLE_STAGING_FILE_MODE"
DEFAULT_FILE_MODE = 0o600
#: A manifest dated further ahead than this is not trusted to keep its run (a skewed clock, or planted).
FUTURE_TOLERANCE = pendulum.duration(days=1)
_KEPT = re.compile(r"[A-Za-z0-9_-]")
_MAX_SEGMENT = 200
_BAD_LINE_SHOWN = 80

log = logging.getLogger(__name__)

Prepared = TypeVar("Prepared")


class StagedRecordsNotFoundError(FileNotFoundError):
    """A staged records file that does not exist: names the path."""

    def __init__(self, path: Any) -> None:
        super().__init__(f"staged records file not found: {path}")
        self.path = str(path)


@dataclass(frozen=True)
class BadLine:
    """A line of a staged file that is not a JSON object: becomes one ``invalid`` record."""

    source: str
    line_number: int
    reason: str

    def error(self) -> RecordValidationError:
        """The line's fault as a record error, so the engine reports it like any invalid record."""
        return RecordValidationError(
            "line", f"line {self.line_number} of {self.source} {self.reason}", code="bad_line"
        )


def as_storage_path(value: str | PathLike[str] | ObjectStoragePath) -> ObjectStoragePath:
    """A path or URL (`/shared/x.jsonl`, `file:///...`, `s3://bucket/x.jsonl`) as an ObjectStoragePath."""
    from airflow.sdk import ObjectStoragePath

    if isinstance(value, ObjectStoragePath):
        return value
    text = str(value).strip()
    return ObjectStoragePath(text if "://" in text else f"file://{text}")


def _is_path_like(value: Any) -> bool:
    """A ``PathLike``, a URL, an absolute path or a ``.jsonl`` name; never an email or rendered JSON."""
    if isinstance(value, PathLike):
        return True
    if not isinstance(value, str):
        return False
    text = value.strip()
    if not text or "\n" in text:
        return False
    return "://" in text or text.startswith("/") or text.endswith(STAGED_SUFFIX)


def is_staged_reference(value: Any) -> bool:
    """Whether ``value`` names staged files: one path/URL/``ObjectStoragePath``, or a list of them."""
    if _is_path_like(value):
        return True
    if isinstance(value, list | tuple) and value:
        return all(_is_path_like(item) for item in value)
    return False


def staged_uris(value: Any) -> list[str]:
    """The URIs of the staged files ``value`` names; none when it holds records (inline, XCom)."""
    if value is None or not is_staged_reference(value):
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return [str(as_storage_path(item)) for item in items]


def read_staged_records(value: Any) -> StagedRecords:
    """The records of one staged file or a list of them, in order, read lazily line by line.

    Every file is checked before the first record is read, so a missing one fails the task at
    once, naming it. A line that is not a JSON object is yielded as a :class:`BadLine` (an
    ``invalid`` record once prepared through :func:`rejecting_bad_lines`); blank lines are skipped.

    :raises StagedRecordsNotFoundError: when a file does not exist
    """
    items = value if isinstance(value, list | tuple) else [value]
    paths = [as_storage_path(item) for item in items]
    for path in paths:
        if not path.is_file():
            raise StagedRecordsNotFoundError(path)
    return StagedRecords(paths)


class StagedRecords:
    """The records of staged files, read lazily; ``len()`` counts their lines without parsing them.

    Staging writes one line per record, so the count is known before the batch starts: the
    engine's progress lines then say done/total, the percentage and the time left. Counting reads
    the files once more, a small cost next to one request per record.
    """

    def __init__(self, paths: list[ObjectStoragePath]) -> None:
        self.paths = paths
        self._count: int | None = None

    def __iter__(self) -> Iterator[Any]:
        return _lines(self.paths)

    def __len__(self) -> int:
        if self._count is None:
            self._count = sum(_count_lines(path) for path in self.paths)
        return self._count


def _count_lines(path: ObjectStoragePath) -> int:
    """The non-blank lines of ``path`` (blank lines are skipped when read, so not counted)."""
    with path.open("r", encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def _lines(paths: Iterable[ObjectStoragePath]) -> Iterator[Any]:
    for path in paths:
        with path.open("r", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as error:
                    yield BadLine(str(path), number, f"is not JSON ({getattr(error, 'msg', error)})")
                    continue
                if isinstance(record, dict):
                    yield record
                else:
                    shown = line.strip()[:_BAD_LINE_SHOWN]
                    yield BadLine(str(path), number, f"is not a JSON object: {shown}")


def rejecting_bad_lines(prepare: Callable[[Any], Prepared]) -> Callable[[Any], Prepared]:
    """Wrap a record validator so that a :class:`BadLine` is an invalid record naming its line."""

    def prepare_record(record: Any) -> Prepared:
        if isinstance(record, BadLine):
            raise record.error()
        return prepare(record)

    return prepare_record


def staging_modes() -> tuple[int, int]:
    """The modes of staged files and folders on a local filesystem: ``0600``/``0700`` by default.

    ``PERKVILLE_STAGING_FILE_MODE`` (octal, e.g. ``0660``) sets the files' mode; folders get the
    same plus search (x) wherever it allows reading. The owner always reads and writes; nobody
    else ever writes a file that a later run trusts, so the "others" bits stay 0.
    """
    raw = os.environ.get(FILE_MODE_ENV_VAR, "").strip()
    mode = DEFAULT_FILE_MODE
    if raw:
        try:
            mode = int(raw, 8)
        except ValueError:
            mode = -1
        if not (0 <= mode <= 0o777 and mode & 0o600 == 0o600 and mode & 0o117 == 0):
            raise ValueError(
                f"{FILE_MODE_ENV_VAR} must be an octal file mode from 0600 to 0660 (owner read-write, "
                f"group at most read-write, others nothing), got {raw!r}"
            )
    return mode, mode | ((mode & 0o444) >> 2)


def _local_path(path: ObjectStoragePath) -> str | None:
    """The path on this machine of a ``file://`` storage path; None on an object store."""
    return str(path.path) if getattr(path, "protocol", None) in ("file", "local") else None


def make_dirs(path: ObjectStoragePath) -> None:
    """Create ``path`` and its missing parents.

    On a local filesystem each folder created is ``0700`` (see :func:`staging_modes`); folders
    that exist keep their mode.
    """
    local = _local_path(path)
    if local is None:
        path.mkdir(parents=True, exist_ok=True)
        return
    _, dir_mode = staging_modes()
    missing: list[str] = []
    current = local
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for folder in reversed(missing):
        os.makedirs(folder, mode=dir_mode, exist_ok=True)
        os.chmod(folder, dir_mode)  # makedirs' mode is filtered by the umask


def _write_text(path: ObjectStoragePath, lines: Iterable[str]) -> None:
    """Write ``lines`` to ``path`` whole or not at all: a temporary name, then a rename.

    On an object store an object appears only once its upload completes, so it is written directly.
    """
    make_dirs(path.parent)
    local = _local_path(path)
    if local is None:
        with path.open("w", encoding="utf-8") as handle:
            handle.writelines(lines)
        return
    file_mode, _ = staging_modes()
    temporary = f"{local}.{uuid.uuid4().hex}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
    try:
        os.fchmod(descriptor, file_mode)  # os.open's mode is filtered by the umask
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.writelines(lines)
        os.replace(temporary, local)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _report_written(path)


def _report_written(path: ObjectStoragePath) -> None:
    """Tell Airflow's hook lineage that ``path`` was written, as ``ObjectStoragePath.open`` does.

    The local write goes around ``ObjectStoragePath`` (for its modes and the rename), so it reports
    the file itself: OpenLineage draws the extract's staged chunks from this.
    """
    from airflow.sdk.lineage import get_hook_lineage_collector

    get_hook_lineage_collector().add_output_asset(context=path, uri=str(path))


def write_records(path: ObjectStoragePath, records: Iterable[Any]) -> int:
    """Stage ``records`` as JSON Lines at ``path`` (replacing it whole); return how many were written."""
    count = 0

    def lines() -> Iterator[str]:
        nonlocal count
        for record in records:
            yield json.dumps(record, default=str, separators=(",", ":")) + "\n"
            count += 1

    _write_text(path, lines())
    return count


def safe_name(text: str) -> str:
    """A DAG or run id as one path segment, reversibly.

    Letters, digits, ``_`` and ``-`` stay; any other character becomes ``~`` and its UTF-8 bytes in
    hex (``:`` is ``~3a``, ``.`` is ``~2e``). So no id becomes ``.``, ``..`` or a path, and two ids
    never share a folder. An id longer than a folder name may be keeps its start and ends with a
    hash of the whole id.
    """
    encoded = "".join(
        char if _KEPT.fullmatch(char) else "".join(f"~{byte:02x}" for byte in char.encode("utf-8"))
        for char in str(text)
    )
    if not encoded:
        return "~"
    if len(encoded) > _MAX_SEGMENT:
        digest = hashlib.sha256(str(text).encode("utf-8")).hexdigest()[:32]
        encoded = f"{encoded[: _MAX_SEGMENT - 35]}~h~{digest}"
    return encoded


def run_staging_dir(root: Any, dag_id: str, run_id: str) -> ObjectStoragePath:
    """Where one DAG run stages its files: ``<root>/<dag_id>/<run_id>``."""
    return as_storage_path(root) / safe_name(dag_id) / safe_name(run_id)


def chunk_name(name: str, chunk: int) -> str:
    """Chunk ``chunk`` of ``name`` (``awards/2026-11-20``, ``members``...), relative to a run's directory."""
    return f"{name}/{chunk:05d}{STAGED_SUFFIX}"


def chunk_in_current_run(name: str) -> str:
    """A chunk name relative to the current run's staging directory, as a full path/URL.

    For ``XComArg.map()`` over an extract's chunk names: every mapped task pulls the whole list, so
    it holds short names, not URLs, and each task resolves its own from its context (the
    ``staging_root`` Param, the DAG and the run), which Airflow sets before resolving mapped
    arguments.
    """
    from airflow.sdk import get_current_context

    context = get_current_context()
    run_dir = run_staging_dir(context["params"]["staging_root"], context["dag"].dag_id, context["run_id"])
    return str(run_dir / name)


def write_manifest(run_dir: ObjectStoragePath, **facts: Any) -> None:
    """Record when the run staged its files (for retention) and what it staged."""
    manifest = {"staged_at": pendulum.now("UTC").isoformat(), **facts}
    _write_text(run_dir / MANIFEST_NAME, [json.dumps(manifest, default=str)])


def read_manifests(root: Any, dag_id: str) -> Iterator[tuple[ObjectStoragePath, dict[str, Any]]]:
    """Each staged run of ``dag_id`` with its manifest.

    A run whose manifest cannot be read (permissions, not JSON, not an object) is skipped with a
    WARNING naming it; the others are still read.
    """
    dag_dir = as_storage_path(root) / safe_name(dag_id)
    if not dag_dir.exists():
        return
    for run_dir in dag_dir.iterdir():
        manifest = run_dir / MANIFEST_NAME
        try:
            if not manifest.is_file():
                continue
            with manifest.open("r", encoding="utf-8") as handle:
                facts = json.load(handle)
        except (OSError, ValueError) as error:
            log.warning(
                "Skipped the staged run %s: its manifest cannot be read (%s)", run_dir, type(error).__name__
            )
            continue
        if not isinstance(facts, dict):
            log.warning("Skipped the staged run %s: its manifest is not a JSON object", run_dir)
            continue
        yield run_dir, facts


def _staged_at(run_dir: ObjectStoragePath, manifest: dict[str, Any]) -> pendulum.DateTime | None:
    """The manifest's ``staged_at`` when it is a full date and time; None (with a WARNING) otherwise.

    Parsed ``exact``: a bare time ("12:30") would otherwise be read as today at 12:30, a date taken
    from the wall clock, and a run could be deleted (or kept) on that guess.
    """
    value = manifest.get("staged_at")
    try:
        moment = pendulum.parse(value, exact=True, tz="UTC") if isinstance(value, str) else None
    except (ValueError, TypeError, OverflowError):
        moment = None
    if not isinstance(moment, pendulum.DateTime):
        log.warning("Skipped the staged run %s: its manifest has no readable staged_at", run_dir)
        return None
    return moment


def remove_expired_runs(root: Any, dag_id: str, *, retention_days: int, now: pendulum.DateTime) -> list[str]:
    """Delete the staged runs of ``dag_id`` staged more than ``retention_days`` before ``now``.

    A run dated more than a day after ``now`` is deleted too, with a WARNING: its date cannot be
    true, and trusting it would keep the run (and its personal data) forever. A run that cannot be
    read or deleted is skipped with a WARNING; the others are still cleaned up.
    """
    cutoff = now.subtract(days=retention_days)
    removed = []
    for run_dir, manifest in list(read_manifests(root, dag_id)):
        staged_at = _staged_at(run_dir, manifest)
        if staged_at is None:
            continue
        future = staged_at > now + FUTURE_TOLERANCE
        if future:
            log.warning("The staged run %s is dated %s, after now (%s): deleted", run_dir, staged_at, now)
        if not (future or staged_at < cutoff):
            continue
        try:
            run_dir.rmdir(recursive=True)
        except OSError as error:
            log.warning("Could not delete the staged run %s (%s); kept", run_dir, type(error).__name__)
            continue
        removed.append(str(run_dir))
    return removed


def stage_in_chunks(
    run_dir: ObjectStoragePath, name: str, records: Iterable[Any], chunk_size: int
) -> list[tuple[str, int]]:
    """Stage ``records`` as files of at most ``chunk_size`` lines under ``<run_dir>/<name>/``.

    :return: each chunk's name relative to ``run_dir`` (see :func:`chunk_name`) and its record
        count, in order
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk size must be a positive integer, got {chunk_size!r}")
    chunks: list[tuple[str, int]] = []
    iterator = iter(records)
    while batch := list(islice(iterator, chunk_size)):
        relative = chunk_name(name, len(chunks))
        chunks.append((relative, write_records(run_dir / relative, batch)))
    return chunks


def settled_keys(
    root: Any,
    dag_id: str,
    *,
    days: Iterable[str],
    statuses: Iterable[str],
    known_run: Callable[[str], bool],
) -> set[str]:
    """The record keys that earlier runs' reports show settled with one of ``statuses``.

    Reads the per-record reports (``<run_dir>/reports/*.jsonl``) of the staged runs of ``dag_id``
    whose manifest lists any of ``days``: what Perkville itself answered, never a guess. Only a run
    folder named for its manifest's ``run_id`` and that ``known_run`` confirms (a run Airflow
    knows of this DAG) counts: a report or manifest placed there by anyone else is ignored with a
    WARNING, so it cannot make check-ins count as settled.

    :param known_run: whether Airflow knows a run of ``dag_id`` with this run id
    """
    wanted_days, wanted = set(days), set(statuses)
    keys: set[str] = set()
    for run_dir, manifest in read_manifests(root, dag_id):
        manifest_days = manifest.get("days")
        if not isinstance(manifest_days, list) or not wanted_days & {str(day) for day in manifest_days}:
            continue
        run_id = manifest.get("run_id")
        if not isinstance(run_id, str) or run_dir.name != safe_name(run_id) or not known_run(run_id):
            log.warning(
                "Ignored the reports of %s: not the folder of a run Airflow knows of %s", run_dir, dag_id
            )
            continue
        reports = run_dir / REPORTS_DIR
        if not reports.exists():
            continue
        for report in reports.iterdir():
            for line in _lines([report]):
                if isinstance(line, dict) and line.get("status") in wanted and line.get("key"):
                    keys.add(str(line["key"]))
    return keys
