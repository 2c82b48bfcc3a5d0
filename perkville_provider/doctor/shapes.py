"""Probes of shapes: lists, relations, datetimes, decimals, errors, and what only a write shows.

The list envelope, how answers spell relations, datetimes and decimals, the
error envelope, and the unknowns only a write would show (said plainly, never guessed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from perkville_provider.doctor.findings import CANNOT_TELL, DIFFERS, HOLDS, NOT_SEEN, Finding
from perkville_provider.doctor.prober import DETAILS, NO_EXTRA, Prober, request_line, shown

__all__ = ["probe_errors", "probe_list_shape", "probe_representations", "probe_write_only"]

_API_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?\+00:00$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_RELATION_FIELDS = ("business", "user", "connection", "perk", "location", "home_location")
_DECIMAL_FIELDS = ("quantity", "point_balance", "points", "lifetime_earned_points")


def probe_list_shape(p: Prober) -> None:
    """Lists come in tastypie's envelope: ``meta`` (limit, offset, next) and ``objects``."""
    answer = next((a for n, a in p.lists.items() if n not in DETAILS and a.status == 200), None)
    if answer is None:
        p.report.add(Finding("lists.shape", "shape of lists", "no list answered 200", NOT_SEEN))
        return
    data = answer.data if isinstance(answer.data, dict) else {}
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else None
    keys = sorted(meta) if meta is not None else []
    seen = f"top-level {sorted(data)}; meta {keys}"
    fits = meta is not None and answer.objects is not None and {"limit", "offset", "next"} <= set(keys)
    p.report.add(
        Finding(
            "lists.shape",
            "shape of lists",
            seen,
            HOLDS if fits else DIFFERS,
            advice="" if fits else "the hook walks meta.next and objects; this list cannot be paged",
        )
    )


def _sample_objects(p: Prober) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for answer in p.lists.values():
        if isinstance(answer.data, dict) and answer.objects is None and answer.status == 200:
            objects.append(answer.data)
        objects.extend(obj for obj in answer.objects or [] if isinstance(obj, dict))
    return objects


def _values(objects: Iterable[Mapping[str, Any]], fields: Iterable[str]) -> list[tuple[str, Any]]:
    wanted = tuple(fields)
    return [(name, obj[name]) for obj in objects for name in wanted if obj.get(name) is not None]


def probe_representations(p: Prober) -> None:
    """How answers spell relations, datetimes and decimals (what a write would have to match)."""
    objects = _sample_objects(p)
    relations = _values(objects, _RELATION_FIELDS)
    uris = [value for _, value in relations if isinstance(value, str) and "/" in value]
    if not relations:
        p.report.add(Finding("answers.relations", "relations in answers", "no relation read", NOT_SEEN))
    else:
        first = relations[0]
        seen = f"{len(uris)} of {len(relations)} are URIs, e.g. {first[0]}={shown(first[1])!r}"
        fits = len(uris) == len(relations)
        p.report.add(
            Finding(
                "answers.relations",
                "relations in answers",
                seen,
                HOLDS if fits else DIFFERS,
                advice="" if fits else f"{NO_EXTRA}: the hook reads ids and URIs",
            )
        )
    stamps = [(n, v) for obj in objects for n, v in obj.items() if n.endswith("_dt") and isinstance(v, str)]
    if not stamps:
        p.report.add(Finding("answers.datetimes", "datetimes in answers", "no datetime read", NOT_SEEN))
    else:
        api_form = [v for _, v in stamps if _API_DATETIME.match(v)]
        name, value = stamps[0]
        seen = f"{len(api_form)} of {len(stamps)} as YYYY-MM-DD HH:MM:SS+00:00, e.g. {name}={value!r}"
        iso = all(_ISO_DATETIME.match(v) for _, v in stamps)
        conclusion = HOLDS if len(api_form) == len(stamps) else DIFFERS
        p.report.add(
            Finding(
                "answers.datetimes",
                "datetimes in answers",
                shown(seen),
                conclusion,
                advice="answers use the ISO T form: datetime_format iso is the likely fit" if iso else "",
            )
        )
    numbers = _values(objects, _DECIMAL_FIELDS)
    if not numbers:
        p.report.add(Finding("answers.decimals", "quantities in answers", "no quantity read", NOT_SEEN))
    else:
        strings = [(n, v) for n, v in numbers if isinstance(v, str)]
        fractions = [(n, v) for n, v in numbers if isinstance(v, float) or (isinstance(v, str) and "." in v)]
        example_name, example = (strings or fractions or numbers)[0]
        seen = (
            f"{len(numbers) - len(strings)} of {len(numbers)} JSON numbers, e.g. {example_name}={example!r}"
        )
        p.report.add(
            Finding(
                "answers.decimals",
                "quantities in answers",
                shown(seen),
                DIFFERS if strings else HOLDS,
                advice="decimals answered as text (tastypie's DecimalField): quantity_format string may fit"
                if strings
                else "",
            )
        )


def probe_write_only(p: Prober) -> None:
    """What only a write would show: said plainly, with what the reads suggest."""
    relation_hint = p.report.finding("answers.relations").conclusion
    rows = (
        (
            "bodies.relations",
            "relations in bodies (relations)",
            "answers use URIs; stock tastypie accepts what it gives"
            if relation_hint == HOLDS
            else "no URIs in answers",
        ),
        (
            "bodies.datetime_format",
            "datetimes in bodies (datetime_format)",
            "only a write shows the form refused",
        ),
        ("bodies.quantity", "quantities in bodies (quantity_format)", "decimal or integer, number or text"),
        ("writes.always_return_data", "body of a write's answer", "the hook settles an empty 2xx by look-up"),
        ("writes.duplicate", "answer to a repeated trans_source_id", "400, 200 and 201 are all settled"),
        ("writes.unknown_fields", "unknown body fields refused or dropped", "bodies come from typed records"),
    )
    for key, unknown, seen in rows:
        p.report.add(Finding(key, unknown, seen, CANNOT_TELL, advice="leave the default"))


def probe_errors(p: Prober) -> None:
    """The error envelope of a 400 (a malformed ``limit``) and a 404 (an object that cannot exist).

    ``holds``: Perkville's ``{"errors": {field: [{code, message}]}}``, so a refusal names its field.
    """
    api = p.hook.conventions()
    resource = next((n for n in ("connections", "perks", "locations") if p.paths.get(n)), "perks")
    path = p.paths.get(resource) or api.path(resource)
    cases = (
        ("errors.400", "error envelope of a 400", path, p.list_params(resource, limit="not-a-number"), 400),
        ("errors.404", "error envelope of a 404", api.detail_path("perks", 2**53), None, 404),
    )
    for key, unknown, where, params, expected in cases:
        answer = p.get(where, params)
        line = f"GET {where}" if params is None else request_line(resource, where, params)
        keys = sorted(answer.data) if isinstance(answer.data, dict) else type(answer.data).__name__
        seen = f"{line}: {answer.status}, top-level {keys}, read as {answer.codes()}"
        readable = isinstance(answer.data, dict) and isinstance(answer.data.get("errors"), dict)
        if answer.status != expected:
            p.report.add(Finding(key, unknown, seen, NOT_SEEN))
        else:
            p.report.add(
                Finding(
                    key,
                    unknown,
                    shown(seen),
                    HOLDS if readable else DIFFERS,
                    advice=""
                    if readable
                    else "errors come without Perkville's per-field entries: the hook reports them under "
                    "__all__, naming no field",
                )
            )
