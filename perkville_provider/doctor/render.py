"""The doctor's report as people read it (a table) and as automation reads it (JSON)."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from typing import Any

from perkville_provider.doctor.findings import CANNOT_TELL, DIFFERS, HOLDS, Finding, Report

__all__ = ["render_json", "render_table", "summary_line"]

_WIDTHS = (28, 54, 27, 32)
_HEADINGS = ("unknown", "observed", "conclusion", "extra to set")


def _extra_text(found: Finding) -> str:
    if found.conclusion == DIFFERS and found.extra:
        return ", ".join(f"{name}={json.dumps(value)}" for name, value in found.extra.items())
    return found.advice or "-"


def _row(cells: tuple[str, ...]) -> list[str]:
    wrapped = [textwrap.wrap(cell, width) or [""] for cell, width in zip(cells, _WIDTHS, strict=True)]
    height = max(len(lines) for lines in wrapped)
    padded = [lines + [""] * (height - len(lines)) for lines in wrapped]
    return [
        "  ".join(lines[i].ljust(width) for lines, width in zip(padded, _WIDTHS, strict=True)).rstrip()
        for i in range(height)
    ]


def summary_line(report: Report) -> str:
    """``14 hold, 2 differ, 6 cannot tell without a write, 3 cannot tell``."""
    counts = Counter(found.conclusion for found in report.findings)
    parts = [f"{counts.pop(HOLDS, 0)} hold", f"{counts.pop(DIFFERS, 0)} differ"]
    parts.append(f"{counts.pop(CANNOT_TELL, 0)} {CANNOT_TELL}")
    parts.extend(f"{count} {name}" for name, count in sorted(counts.items()))
    return ", ".join(parts)


def render_table(report: Report) -> str:
    """The findings as a table, then what was sent and the extras that fit."""
    lines = [f"perkville-provider doctor: connection {report.conn_id!r}, API {report.base_url}", ""]
    lines += _row(_HEADINGS)
    lines.append("  ".join("-" * width for width in _WIDTHS))
    for found in report.findings:
        lines += _row((found.unknown, found.observed, found.conclusion, _extra_text(found)))
    lines.append("")
    lines.append(f"Summary: {summary_line(report)}.")
    grant = (
        f"{report.grants} token grant (POST to the token URL, the only request that was not a read)"
        if report.grants
        else "no token grant (a stored or cached token)"
    )
    lines.append(f"Sent {report.reads} reads (GET) and {grant}; no write.")
    extras = report.suggested_extras()
    if extras:
        lines.append("Extras that fit what was seen: " + json.dumps(extras, sort_keys=True))
    else:
        lines.append("Extras that fit what was seen: none to change (the defaults fit what reads can show).")
    return "\n".join(lines)


def render_json(report: Report) -> str:
    """The report as indented JSON (findings, suggested extras, every request sent)."""
    data: dict[str, Any] = report.as_dict()
    return json.dumps(data, indent=2, sort_keys=True)
