"""The batch's JSON Lines report: where it may go, and the writer that streams it line by line.

A report is one JSON object per record, written as each record completes, so memory stays flat
whatever the batch size. It may go to a local path, a URL (opened with fsspec, an Airflow
dependency) or any path object with ``open`` (``ObjectStoragePath``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

__all__ = ["ReportPath", "WritablePath", "report_writer"]


class WritablePath(Protocol):
    """A path object that opens for writing, such as ``pathlib.Path`` or ``ObjectStoragePath``."""

    def open(self, mode: str = ..., *args: Any, **kwargs: Any) -> IO[str]:
        """Open the file, here for writing text."""
        ...


#: Where the report goes: a local path, a URL string (opened with fsspec), or a path object.
ReportPath = str | os.PathLike[str] | WritablePath


@contextmanager
def report_writer(report_path: ReportPath | None) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Stream one JSON line per record to ``report_path`` (any path with ``open``, or a str/URL)."""
    if report_path is None:
        yield lambda _line: None
        return
    with _open_for_writing(report_path) as handle:

        def write(line: dict[str, Any]) -> None:
            handle.write(json.dumps(line, default=str) + "\n")

        yield write


@contextmanager
def _open_for_writing(report_path: ReportPath) -> Iterator[IO[str]]:
    if isinstance(report_path, str) and "://" in report_path:
        import fsspec  # an Airflow dependency; only needed for URLs

        with fsspec.open(report_path, "w", encoding="utf-8", auto_mkdir=True) as handle:
            yield handle
        return
    path = Path(report_path) if isinstance(report_path, str | os.PathLike) else report_path
    parent = getattr(path, "parent", None)
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        yield handle
