"""How the doctor's probes read, without raising on the answers they ask about.

:class:`Prober` sends with the connection's own hook (its token,
paths, retries and typed errors) and hands back an :class:`Answer` instead of raising, since a 404
or a 400 is often the very thing a probe asks about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from perkville_provider.doctor.findings import Report
from perkville_provider.doctor.guard import ReadOnlyAdapter
from perkville_provider.exceptions import PerkvilleError
from perkville_provider.hooks.perkville import PerkvilleHook
from perkville_provider.redaction import redact_text

__all__ = ["DETAILS", "NO_EXTRA", "Answer", "Prober", "request_line", "shown"]

#: Lists that answer without ``business``; every other list needs it.
_UNSCOPED = frozenset({"users", "businesses"})
#: Resources read as one object, not as a list.
DETAILS = frozenset({"users_me"})
#: The extra column of a difference the hook handles by itself.
NO_EXTRA = "none needed"
_NOT_FOUND = 404


@dataclass(frozen=True)
class Answer:
    """A probe's answer: the status and JSON body, or the typed error (``status`` None: no answer)."""

    status: int | None
    data: Any = None
    error: PerkvilleError | None = None

    @property
    def found(self) -> bool:
        """The path exists: anything but a 404 (a 400, 403 or 405 comes from the resource)."""
        return self.status is not None and self.status != _NOT_FOUND

    @property
    def objects(self) -> list[Any] | None:
        """The ``objects`` of a list answer; None for any other answer."""
        data = self.data
        if isinstance(data, dict) and isinstance(data.get("objects"), list):
            return data["objects"]
        return None

    def codes(self) -> str:
        """The error's ``field: code`` pairs as the hook read them."""
        details = self.error.details if self.error is not None else ()
        return ", ".join(f"{d.field}: {d.code}" for d in details) or "no error details read"


@dataclass
class Prober:
    """Reads for the probes through the doctor's guarded hook; remembers what they learnt."""

    hook: PerkvilleHook
    guard: ReadOnlyAdapter
    report: Report
    business_id: int | None = None
    paths: dict[str, str | None] = field(default_factory=dict)
    lists: dict[str, Answer] = field(default_factory=dict)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Answer:
        """``GET path``: the answer, or its typed error as an answer (no answer at all raises)."""
        try:
            response = self.hook.request("GET", path, params=params)
        except PerkvilleError as error:
            if error.status is None:
                raise
            return Answer(error.status, _json(self.guard.last_answer), error)
        return Answer(response.status_code, _json(response))

    def list_params(self, name: str, **extra: Any) -> dict[str, Any]:
        """``limit=1``, the business where the list needs one, and ``extra``."""
        params: dict[str, Any] = {"limit": 1, **extra}
        if name not in _UNSCOPED and self.business_id is not None:
            params["business"] = self.business_id
        return params

    def read(self, name: str, path: str, **filters: Any) -> Answer:
        """The first object of resource ``name`` at ``path`` (a detail resource: the object)."""
        return self.get(path) if name in DETAILS else self.get(path, self.list_params(name, **filters))


def _json(response: requests.Response | None) -> Any:
    try:
        return response.json() if response is not None else None
    except ValueError:
        return None


def shown(value: Any) -> str:
    """Server text fit for the report: secrets replaced, bounded."""
    return redact_text(value, limit=120)


def request_line(name: str, path: str, params: Mapping[str, Any]) -> str:
    """``GET <path>?<query>`` as the report shows it."""
    if name in DETAILS:
        return f"GET {path}"
    return f"GET {path}?" + "&".join(f"{key}={value}" for key, value in params.items())
