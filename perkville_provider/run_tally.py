"""A run's counts read back from its per-record reports: each chunk's last try, each try, the run.

A mapped chunk that fails pushes no summary to XCom, and a retry (or a clear and re-run) replaces
the one before; the per-record reports the operators write (one file per chunk and try, under the
run's staging directory, see :func:`report_name`) keep everything Perkville answered. From them:

- each chunk's summary as its last try left it (what the run's tables and threshold judge);
- each try's counts (try 1: 8 awarded before the sandbox died; try 2: 31 awarded, 8 duplicate);
- the run's counts across tries: each record once, ``awarded`` when any try awarded it, so
  ``awarded`` is what this run added to the ledger (39 above), however many tries it took.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from perkville_provider import staging
from perkville_provider.batch import FAILED, INVALID, MAX_FAILURES_SHOWN, fit_summary
from perkville_provider.failure_groups import FailureGroups

__all__ = ["chunk_summaries", "report_name", "run_counts", "try_counts"]

_NAME = re.compile(r"^(?P<prefix>.+)-(?P<chunk>\d{5})(?:-try(?P<try>\d+))?\.jsonl$")


def report_name(prefix: str, chunk: int, try_number: int) -> str:
    """The report file of one chunk's try: ``<prefix>-<chunk>-try<try>.jsonl``."""
    return f"{prefix}-{int(chunk):05d}-try{int(try_number):02d}{staging.STAGED_SUFFIX}"


def _reports(run_dir: Any, prefix: str) -> dict[int, dict[int, Any]]:
    """The run's report files of ``prefix``: chunk -> try -> path (a name without a try is try 1)."""
    reports = staging.as_storage_path(run_dir) / staging.REPORTS_DIR
    found: dict[int, dict[int, Any]] = {}
    if not reports.exists():
        return found
    for path in reports.iterdir():
        match = _NAME.match(path.name)
        if match and match["prefix"] == prefix:
            found.setdefault(int(match["chunk"]), {})[int(match["try"] or 1)] = path
    return found


def _lines(path: Any) -> Iterator[dict[str, Any]]:
    for line in staging.read_staged_records(path):
        if isinstance(line, dict):
            yield line


def summarize(
    lines: Iterable[Mapping[str, Any]], *, operation: str, statuses: Sequence[str]
) -> dict[str, Any]:
    """A batch summary (as ``run_batch`` returns it, for ``merge_summaries``) from report lines."""
    counts: Counter[str] = Counter(dict.fromkeys([*statuses, INVALID, FAILED], 0))
    metrics: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    groups = FailureGroups()
    for line in lines:
        status = str(line.get("status"))
        counts[status] += 1
        metrics.update({name: int(value) for name, value in (line.get("metrics") or {}).items()})
        if status in (INVALID, FAILED):
            index, key = int(line.get("index", 0)), line.get("key")
            groups.add(index, key, status, line.get("code"), line.get("message"))
            if len(failures) < MAX_FAILURES_SHOWN:
                failures.append(
                    {name: line.get(name) for name in ("index", "key", "status", "field", "code")}
                )
                failures[-1]["message"] = line.get("message")
    seen = sum(group["count"] for group in groups.groups.values())
    return fit_summary(
        {
            "operation": operation,
            "total": sum(counts.values()),
            **counts,
            **metrics,
            "failures": sorted(failures, key=lambda entry: entry["index"]),
            "failures_not_shown": seen - len(failures),
            "failures_by_code": groups.as_dict(),
        }
    )


def chunk_summaries(
    run_dir: Any, prefix: str, chunks: int, *, operation: str, statuses: Sequence[str]
) -> list[dict[str, Any] | None]:
    """Each chunk's summary from its last try's report; None for a chunk that wrote none."""
    reports = _reports(run_dir, prefix)
    return [
        summarize(_lines(reports[chunk][max(reports[chunk])]), operation=operation, statuses=statuses)
        if reports.get(chunk)
        else None
        for chunk in range(chunks)
    ]


def try_counts(run_dir: Any, prefix: str) -> dict[str, dict[str, int]]:
    """Each try's counts by status (and metrics), over the chunks that ran that try."""
    tries: dict[int, Counter[str]] = {}
    for by_try in _reports(run_dir, prefix).values():
        for try_number, path in by_try.items():
            tally = tries.setdefault(try_number, Counter())
            for line in _lines(path):
                tally["total"] += 1
                tally[str(line.get("status"))] += 1
                tally.update({name: int(value) for name, value in (line.get("metrics") or {}).items()})
    return {str(number): dict(tries[number]) for number in sorted(tries)}


def run_counts(run_dir: Any, prefix: str, *, added: str) -> dict[str, int]:
    """The run's counts across tries, each record (by key) once.

    A record counts as ``added`` when any try says so (with that try's metrics), else with the
    status of its last try.
    """
    final: dict[str, Mapping[str, Any]] = {}
    for chunk, by_try in _reports(run_dir, prefix).items():
        for try_number in sorted(by_try):
            for line in _lines(by_try[try_number]):
                key = str(line.get("key") or f"{chunk}#{line.get('index')}")
                if final.get(key, {}).get("status") != added:
                    final[key] = line
    counts: Counter[str] = Counter(total=len(final))
    for last in final.values():
        counts[str(last.get("status"))] += 1
        counts.update({name: int(value) for name, value in (last.get("metrics") or {}).items()})
    return dict(counts)
