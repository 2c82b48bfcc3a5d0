"""What the doctor concludes, as data: one :class:`Finding` per unknown, gathered in a :class:`Report`.

A conclusion compares what the API answered with what the connection says now (stock tastypie's
default where it says nothing): ``holds`` (nothing to change), ``differs`` (set the finding's
extra), or ``cannot tell without a write`` (only a POST or PATCH would show it; the doctor sends
none). The report turns its findings into the extras to set and into JSON for automation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from perkville_provider.doctor.guard import READ_METHODS, Exchange

__all__ = ["CANNOT_TELL", "DIFFERS", "HOLDS", "Conclusion", "Finding", "Report"]

HOLDS = "holds"
DIFFERS = "differs"
CANNOT_TELL = "cannot tell without a write"
Conclusion = Literal["holds", "differs", "cannot tell without a write"]
#: A readable unknown the doctor could not settle (an empty list, a refused read); not a write.
NOT_SEEN = "cannot tell"


@dataclass(frozen=True)
class Finding:
    """One unknown: what was observed, what it means, and the extra to set (None: leave it).

    :param key: a stable name for automation (``paths.transactions``, ``filter.connections.user_id``)
    :param extra: ``{extra name: value}`` to set when the conclusion is ``differs``; for ``paths``
        the value is ``{resource: path}``, merged with the connection's own
    """

    key: str
    unknown: str
    observed: str
    conclusion: str
    extra: Mapping[str, Any] | None = None
    advice: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready data."""
        return {
            "key": self.key,
            "unknown": self.unknown,
            "observed": self.observed,
            "conclusion": self.conclusion,
            "extra": dict(self.extra) if self.extra else None,
            "advice": self.advice,
        }


@dataclass
class Report:
    """Everything one doctor run saw: the findings and the guard's log of requests."""

    conn_id: str
    base_url: str
    findings: list[Finding] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    current_extras: Mapping[str, Any] = field(default_factory=dict)

    def add(self, finding: Finding) -> None:
        """Add a probe's finding (the table keeps the order they come in)."""
        self.findings.append(finding)

    def finding(self, key: str) -> Finding:
        """The finding with ``key`` (``paths.transactions``); StopIteration when absent."""
        return next(found for found in self.findings if found.key == key)

    @property
    def grants(self) -> int:
        """Token grants sent (the only requests that were not reads)."""
        return sum(1 for exchange in self.exchanges if exchange.grant)

    @property
    def reads(self) -> int:
        """Reads sent (GET), retries included."""
        return sum(1 for exchange in self.exchanges if not exchange.grant)

    def suggested_extras(self) -> dict[str, Any]:
        """The extras that match what was seen: only those that differ, ``paths`` merged whole."""
        extras: dict[str, Any] = {}
        moved: dict[str, str] = {}
        for found in self.findings:
            if found.conclusion != DIFFERS or not found.extra:
                continue
            for name, value in found.extra.items():
                if name == "paths":
                    moved.update(value)
                else:
                    extras[name] = value
        if moved:
            current = self.current_extras.get("paths") or {}
            extras["paths"] = {**(current if isinstance(current, Mapping) else {}), **moved}
        return extras

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data; ``writes`` counts from the guard's log (always 0)."""
        return {
            "conn_id": self.conn_id,
            "base_url": self.base_url,
            "findings": [found.as_dict() for found in self.findings],
            "suggested_extras": self.suggested_extras(),
            "requests": [exchange.as_dict() for exchange in self.exchanges],
            "reads": self.reads,
            "token_grants": self.grants,
            "writes": sum(1 for e in self.exchanges if e.method not in READ_METHODS and not e.grant),
        }
