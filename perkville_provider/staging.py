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
"""

from __future__ import annotations

import json
import re
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
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_BAD_LINE_SHOWN = 80

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


def read_staged_records(value: Any) -> Iterator[Any]:
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
    return _lines(paths)


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


def write_records(path: ObjectStoragePath, records: Iterable[Any]) -> int:
    """Stage ``records`` as JSON Lines at ``path`` (replacing it); return how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")
            count += 1
    return count


def safe_name(text: str) -> str:
    """A DAG or run id as one path segment (run ids hold ``:`` and ``+``, which some stores refuse)."""
    return _UNSAFE.sub("_", str(text)).strip("_") or "_"


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
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"staged_at": pendulum.now("UTC").isoformat(), **facts}
    with (run_dir / MANIFEST_NAME).open("w", encoding="utf-8") as handle:
        json.dump(manifest, handle, default=str)


def read_manifests(root: Any, dag_id: str) -> Iterator[tuple[ObjectStoragePath, dict[str, Any]]]:
    """Each staged run of ``dag_id`` with its manifest (runs without a readable one are skipped)."""
    dag_dir = as_storage_path(root) / safe_name(dag_id)
    if not dag_dir.exists():
        return
    for run_dir in dag_dir.iterdir():
        manifest = run_dir / MANIFEST_NAME
        if not manifest.is_file():
            continue
        try:
            with manifest.open("r", encoding="utf-8") as handle:
                yield run_dir, json.load(handle)
        except ValueError:
            continue


def _manifest_time(value: Any) -> pendulum.DateTime | None:
    """A manifest's ``staged_at`` when it is a full date and time; None for anything else.

    A manifest is read back from storage: a bare time, a duration or garbage there must leave the run
    alone (kept, never deleted on a guess), not stop the clean-up of the others.
    """
    try:
        parsed = pendulum.parse(value) if isinstance(value, str) else None
    except (ValueError, OverflowError):
        return None
    return parsed if isinstance(parsed, pendulum.DateTime) else None


def remove_expired_runs(root: Any, dag_id: str, *, retention_days: int, now: pendulum.DateTime) -> list[str]:
    """Delete the staged runs of ``dag_id`` staged more than ``retention_days`` before ``now``."""
    cutoff = now.subtract(days=retention_days)
    removed = []
    for run_dir, manifest in list(read_manifests(root, dag_id)):
        staged_at = _manifest_time(manifest.get("staged_at"))
        if staged_at is not None and staged_at < cutoff:
            run_dir.rmdir(recursive=True)
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


def settled_keys(root: Any, dag_id: str, *, days: Iterable[str], statuses: Iterable[str]) -> set[str]:
    """The record keys that earlier runs' reports show settled with one of ``statuses``.

    Reads the per-record reports (``<run_dir>/reports/*.jsonl``) of the staged runs of ``dag_id``
    whose manifest lists any of ``days``: what Perkville itself answered, never a guess.
    """
    wanted_days, wanted = set(days), set(statuses)
    keys: set[str] = set()
    for run_dir, manifest in read_manifests(root, dag_id):
        if not wanted_days & set(manifest.get("days") or []):
            continue
        reports = run_dir / REPORTS_DIR
        if not reports.exists():
            continue
        for report in reports.iterdir():
            for line in _lines([report]):
                if isinstance(line, dict) and line.get("status") in wanted and line.get("key"):
                    keys.add(str(line["key"]))
    return keys
