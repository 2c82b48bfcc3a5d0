"""Failures grouped by code: how many, the first keys, one message.

A batch whose records all fail the same way (a wrong perk: every award ``pv_perk_not_earnable``)
must read as one line, not as the same error repeated per record. The batch engine feeds each
failure here; the summary carries the groups (bounded: a few keys per code, a bounded number of
codes), mapped chunks' groups add up in :func:`merge_groups`, and :func:`format_groups` writes
them for the task log.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["FIRST_KEYS", "LOGGED_PER_CODE", "MAX_CODES", "FailureGroups", "format_groups", "merge_groups"]

FIRST_KEYS = 5
"""Keys kept per code (the first records, by index)."""
LOGGED_PER_CODE = 3
"""Failures of one code logged one by one; the rest are only counted (and in the report file)."""
MAX_CODES = 50
"""Codes kept; further codes add to ``other``."""
OTHER = "other"


class FailureGroups:
    """The failures of a batch by code, each with the keys of its lowest-indexed records. Main thread only."""

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, Any]] = {}
        self._first: dict[str, list[tuple[int, str]]] = {}

    def add(self, index: int, key: str | None, status: str, code: str | None, message: str | None) -> int:
        """Count one failure; return how many of its code were seen, this one included."""
        name = str(code or status)
        if name not in self.groups and len(self.groups) >= MAX_CODES:
            name = OTHER
        group = self.groups.setdefault(name, {"count": 0, "status": status, "message": message})
        group["count"] += 1
        if key is not None:
            first = self._first.setdefault(name, [])
            bisect.insort(first, (index, key))
            del first[FIRST_KEYS:]
        return group["count"]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """The groups, largest first (a copy, JSON-ready)."""
        ordered = sorted(self.groups.items(), key=lambda item: -item[1]["count"])
        return {
            name: {**group, "first_keys": [key for _, key in self._first.get(name, [])]}
            for name, group in ordered
        }


def merge_groups(all_groups: Iterable[Mapping[str, Mapping[str, Any]] | None]) -> dict[str, dict[str, Any]]:
    """Add up the groups of several summaries (mapped chunks, in order).

    Counts are summed, the first keys kept in order up to :data:`FIRST_KEYS`, the first message kept.
    """
    merged: dict[str, dict[str, Any]] = {}
    for groups in all_groups:
        for name, group in (groups or {}).items():
            target = merged.setdefault(
                name,
                {
                    "count": 0,
                    "status": group.get("status"),
                    "message": group.get("message"),
                    "first_keys": [],
                },
            )
            target["count"] += int(group.get("count", 0))
            room = FIRST_KEYS - len(target["first_keys"])
            target["first_keys"].extend(list(group.get("first_keys") or [])[: max(room, 0)])
    return dict(sorted(merged.items(), key=lambda item: -item[1]["count"]))


def format_groups(groups: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Lines for the task log: one per code with its count, first keys and message."""
    if not groups:
        return []
    lines = ["failures by code (count, first keys: one message):"]
    for name, group in groups.items():
        keys = ", ".join(str(key) for key in group.get("first_keys") or []) or "-"
        more = ", ..." if int(group.get("count", 0)) > len(group.get("first_keys") or []) else ""
        lines.append(f"  {name}  {group.get('count')}  ({keys}{more}): {group.get('message')}")
    return lines
