"""The doctor's read-only probes: each asks Perkville one question and adds a finding.

Every probe reads through :class:`Prober`, which sends with the connection's own hook (its token,
paths, retries and typed errors) and hands back an :class:`Answer` instead of raising, since a 404
or a 400 is often the very thing a probe asks about. A value "that cannot match" is used to test a
filter: a filter the API honours returns no object for it, an ignored one returns the whole list.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from perkville_provider.api_conventions import DEFAULT_PATHS
from perkville_provider.batch import DEFAULT_MAX_WORKERS
from perkville_provider.doctor.findings import CANNOT_TELL, DIFFERS, HOLDS, NOT_SEEN, Finding, Report
from perkville_provider.doctor.guard import ReadOnlyAdapter
from perkville_provider.exceptions import PerkvilleError
from perkville_provider.hooks.perkville import PerkvilleHook
from perkville_provider.rate_budget import RateBudget
from perkville_provider.redaction import redact_text

__all__ = ["FILTER_PROBES", "NEEDED_SCOPES", "Answer", "Prober", "path_alternatives", "run_probes"]

#: (resource, filter, a value no object can have): the look-ups the provider relies on.
FILTER_PROBES: tuple[tuple[str, str, Any], ...] = (
    ("transactions", "trans_source_id", "perkville-doctor:no-such-source-id"),
    ("transactions", "user__emails__email", "no-such-user@perkville-doctor.invalid"),
    ("connections", "user__emails__email", "no-such-user@perkville-doctor.invalid"),
    ("connections", "user_id", 2**53),
    ("connections", "last_mod_dt__gte", "2099-12-31 23:59:59+00:00"),
    ("external_members", "external_member_id", "perkville-doctor:no-such-member"),
)
#: Scopes the provider's writes and look-ups need (sandbox README: who may do what).
NEEDED_SCOPES = ("ADMIN_CUSTOMER_INFO", "ADMIN_CUSTOMER_GRANT_POINTS")
#: Lists that answer without ``business``; every other list needs it.
_UNSCOPED = frozenset({"users", "businesses"})
_DETAILS = frozenset({"users_me"})
_NOT_FOUND = 404
_LATENCY_READS = 6
_MAX_SUGGESTED_WORKERS = 64
_API_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?\+00:00$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_RELATION_FIELDS = ("business", "user", "connection", "perk", "location", "home_location")
_DECIMAL_FIELDS = ("quantity", "point_balance", "points", "lifetime_earned_points")
_NO_EXTRA = "none needed"
_ANSWERS_THERE = {405: " (GET not allowed: the path is there)", 403: " (refused: the path is there)"}


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
            return Answer(error.status, None, error)
        try:
            return Answer(response.status_code, response.json())
        except ValueError:
            return Answer(response.status_code, None)

    def list_params(self, name: str, **extra: Any) -> dict[str, Any]:
        """``limit=1``, the business where the list needs one, and ``extra``."""
        params: dict[str, Any] = {"limit": 1, **extra}
        if name not in _UNSCOPED and self.business_id is not None:
            params["business"] = self.business_id
        return params

    def read(self, name: str, path: str, **filters: Any) -> Answer:
        """The first object of resource ``name`` at ``path`` (a detail resource: the object)."""
        return self.get(path) if name in _DETAILS else self.get(path, self.list_params(name, **filters))


def _shown(value: Any) -> str:
    return redact_text(value, limit=120)


def _query(name: str, path: str, params: Mapping[str, Any]) -> str:
    if name in _DETAILS:
        return f"GET {path}"
    return f"GET {path}?" + "&".join(f"{key}={value}" for key, value in params.items())


# --- token and business ------------------------------------------------------------------------


def probe_business(p: Prober, configured: int | None) -> None:
    """The business the connection names (readable?), else the businesses the token can see."""
    api = p.hook.conventions()
    if configured is not None:
        answer = p.get(api.detail_path("businesses", configured))
        p.business_id = configured
        if answer.status == 200 and isinstance(answer.data, dict):
            seen = (
                f"GET {api.detail_path('businesses', configured)}: 200, {_shown(answer.data.get('name'))!r}"
            )
            p.report.add(Finding("business", "business the token can see", seen, HOLDS))
        else:
            seen = f"GET {api.detail_path('businesses', configured)}: {answer.status} ({answer.codes()})"
            p.report.add(
                Finding(
                    "business",
                    "business the token can see",
                    seen,
                    DIFFERS,
                    advice="the business_id extra names a business this token cannot read",
                )
            )
        return
    answer = p.get(api.path("businesses"), {"limit": 20})
    visible = [obj for obj in answer.objects or [] if isinstance(obj, dict)]
    ids = [obj.get("business_id") for obj in visible]
    seen = f"GET {api.path('businesses')}?limit=20: {answer.status}, {len(visible)} visible: " + ", ".join(
        f"{obj.get('business_id')} {_shown(obj.get('name'))!r}" for obj in visible[:5]
    )
    if len(ids) == 1 and isinstance(ids[0], int):
        p.business_id = ids[0]
        p.report.add(
            Finding("business", "business the token can see", seen, DIFFERS, extra={"business_id": ids[0]})
        )
    else:
        p.business_id = next((i for i in ids if isinstance(i, int)), None)
        p.report.add(
            Finding(
                "business",
                "business the token can see",
                seen,
                NOT_SEEN,
                advice="set the business_id extra to the business the DAGs award for",
            )
        )


def probe_scopes(p: Prober) -> None:
    """The scopes the token grant answered with (a stored token's scopes are not readable)."""
    granted: set[str] | None = None
    for response in p.guard.grant_answers:
        try:
            body = response.json()
        except ValueError:
            continue
        scope = body.get("scope") if isinstance(body, dict) else None
        if isinstance(scope, str):
            granted = set(scope.split())
    if granted is None:
        p.report.add(
            Finding(
                "token.scopes",
                "token's scopes",
                "a stored token (no grant was run): Perkville says the scopes only when granting",
                NOT_SEEN,
                advice="403s below name a missing scope",
            )
        )
        return
    missing = [scope for scope in NEEDED_SCOPES if scope not in granted]
    seen = "grant answered scope: " + _shown(" ".join(sorted(granted)))
    if missing:
        p.report.add(
            Finding(
                "token.scopes",
                "token's scopes",
                seen,
                DIFFERS,
                advice=f"ask Perkville to grant {' '.join(missing)} to the API client",
            )
        )
    else:
        p.report.add(Finding("token.scopes", "token's scopes", seen, HOLDS))


# --- paths -------------------------------------------------------------------------------------


def path_alternatives(path: str) -> list[str]:
    """Spellings a resource is plausibly at when its path 404s: ``-``/``_`` swapped, singular/plural."""
    head, _, last = path.rstrip("/").rpartition("/")
    names = {last.replace("-", "_"), last.replace("_", "-")}
    for name in list(names):
        names.add(name[:-1] if name.endswith("s") else name + "s")
    return [f"{head}/{name}/" for name in sorted(names) if f"{head}/{name}/" != path]


def probe_paths(p: Prober) -> None:
    """Each resource answers at the connection's path (``GET <path>?limit=1``), or at an alternative."""
    api = p.hook.conventions()
    for name in DEFAULT_PATHS:
        path = api.path(name)
        answer = p.read(name, path)
        unknown = f"path of {name}"
        if answer.found:
            p.paths[name], p.lists[name] = path, answer
            said = _ANSWERS_THERE.get(answer.status, "")
            seen = f"{_query(name, path, p.list_params(name))}: {answer.status}{said}"
            p.report.add(Finding(f"paths.{name}", unknown, seen, HOLDS))
            continue
        tried = [path]
        for candidate in path_alternatives(path):
            tried.append(candidate)
            other = p.read(name, candidate)
            if other.found:
                p.paths[name], p.lists[name] = candidate, other
                seen = f"GET {path}: 404; GET {candidate}: {other.status}"
                p.report.add(
                    Finding(f"paths.{name}", unknown, seen, DIFFERS, extra={"paths": {name: candidate}})
                )
                break
        else:
            p.paths[name] = None
            p.report.add(
                Finding(
                    f"paths.{name}",
                    unknown,
                    "404 at " + ", ".join(tried),
                    DIFFERS,
                    advice=f"set paths.{name} to the path Perkville gives for it (none of these answered)",
                )
            )


# --- lists, filters and representations ----------------------------------------------------------


def probe_list_shape(p: Prober) -> None:
    """Lists come in tastypie's envelope: ``meta`` (limit, offset, next) and ``objects``."""
    answer = next((a for n, a in p.lists.items() if n not in _DETAILS and a.status == 200), None)
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


def probe_filters(p: Prober) -> None:
    """Each look-up filter, with a value that cannot match: honoured gives no object, ignored gives all."""
    for resource, name, impossible in FILTER_PROBES:
        key, unknown = f"filter.{resource}.{name}", f"filter {name} on {resource}"
        path, baseline = p.paths.get(resource), p.lists.get(resource)
        if path is None or baseline is None or baseline.objects is None:
            status = baseline.status if baseline is not None else "no path"
            p.report.add(Finding(key, unknown, f"{resource} not readable ({status})", NOT_SEEN))
            continue
        if not baseline.objects:
            p.report.add(
                Finding(key, unknown, f"{resource} list is empty here: nothing to filter out", NOT_SEEN)
            )
            continue
        answer = p.read(resource, path, **{name: impossible})
        seen = f"{_query(resource, path, p.list_params(resource, **{name: impossible}))}: {answer.status}"
        if answer.objects is None:
            p.report.add(Finding(key, unknown, f"{seen} ({answer.codes()})", NOT_SEEN))
        elif answer.objects:
            p.report.add(
                Finding(
                    key,
                    unknown,
                    f"{seen}, {len(answer.objects)} object(s): ignored",
                    DIFFERS,
                    advice=f"{_NO_EXTRA}: the hook checks each look-up's answer and walks the list instead",
                )
            )
        else:
            p.report.add(Finding(key, unknown, f"{seen}, 0 objects: honoured", HOLDS))


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
        seen = f"{len(uris)} of {len(relations)} are URIs, e.g. {first[0]}={_shown(first[1])!r}"
        fits = len(uris) == len(relations)
        p.report.add(
            Finding(
                "answers.relations",
                "relations in answers",
                seen,
                HOLDS if fits else DIFFERS,
                advice="" if fits else f"{_NO_EXTRA}: the hook reads ids and URIs",
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
                _shown(seen),
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
        name, value = (strings or fractions or numbers)[0]
        seen = f"{len(numbers) - len(strings)} of {len(numbers)} JSON numbers, e.g. {name}={value!r}"
        p.report.add(
            Finding(
                "answers.decimals",
                "quantities in answers",
                _shown(seen),
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
    """The error envelope of a 400 (a malformed ``limit``) and a 404 (an object that cannot exist)."""
    api = p.hook.conventions()
    resource = next((n for n in ("connections", "perks", "locations") if p.paths.get(n)), "perks")
    path = p.paths.get(resource) or api.path(resource)
    cases = (
        ("errors.400", "error envelope of a 400", path, p.list_params(resource, limit="not-a-number"), 400),
        ("errors.404", "error envelope of a 404", api.detail_path("perks", 2**53), None, 404),
    )
    for key, unknown, where, params, expected in cases:
        answer = p.get(where, params)
        shown = f"GET {where}" if params is None else _query(resource, where, params)
        seen = f"{shown}: {answer.status}, {answer.codes()}"
        readable = answer.error is not None and bool(answer.error.details)
        if answer.status != expected:
            p.report.add(Finding(key, unknown, seen, NOT_SEEN))
        else:
            p.report.add(
                Finding(
                    key,
                    unknown,
                    _shown(seen),
                    HOLDS if readable else DIFFERS,
                    advice="" if readable else "errors will name no field: report the body shape as an issue",
                )
            )


# --- pace ----------------------------------------------------------------------------------------


def probe_rate_headers(p: Prober) -> None:
    """The rate-limit headers the server sent on any answer (none: the hook adapts to 429s)."""
    seen: dict[str, str] = {}
    for exchange in p.guard.exchanges:
        seen.update(exchange.rate_headers)
    if not seen:
        p.report.add(Finding("rate.headers", "rate-limit headers", "none on any answer", HOLDS))
        return
    shown = ", ".join(f"{name}: {value}" for name, value in sorted(seen.items()))
    p.report.add(
        Finding(
            "rate.headers",
            "rate-limit headers",
            shown,
            DIFFERS,
            advice="set max_requests_per_second to the budget they state",
        )
    )


def probe_latency(p: Prober, conn_id: str, extras: Mapping[str, Any]) -> None:
    """p50/p95 of a few reads, and the ``max_workers`` that fills the connection's budget."""
    api = p.hook.conventions()
    path = api.detail_path("businesses", p.business_id) if p.business_id else api.path("users_me")
    start = len(p.guard.exchanges)
    for _ in range(_LATENCY_READS):
        p.get(path)
    times = sorted(e.seconds for e in p.guard.exchanges[start:] if e.status == 200)
    if not times:
        p.report.add(Finding("latency", "round-trip latency", f"GET {path} did not answer 200", NOT_SEEN))
        return
    p50 = statistics.median(times)
    p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
    budget = RateBudget.from_extras(conn_id, extras).max_requests_per_second
    seen = f"{len(times)} x GET {path}: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
    if budget:
        workers = max(1, min(_MAX_SUGGESTED_WORKERS, math.ceil(budget * p95)))
        advice = f"max_workers={workers} fills max_requests_per_second={budget:g} at p95"
    else:
        per_worker = 1 / max(p50, 1e-3)
        advice = (
            f"one worker makes ~{per_worker:.0f} req/s; max_workers={DEFAULT_MAX_WORKERS} (default) "
            f"~{per_worker * DEFAULT_MAX_WORKERS:.0f} req/s before any rate limit"
        )
    p.report.add(Finding("latency", "round-trip latency", seen, HOLDS, advice=advice))


def run_probes(p: Prober, configured_business: int | None, conn_id: str, extras: Mapping[str, Any]) -> None:
    """Every probe, in the order the table shows them."""
    probe_business(p, configured_business)
    probe_scopes(p)
    probe_paths(p)
    probe_list_shape(p)
    probe_filters(p)
    probe_representations(p)
    probe_write_only(p)
    probe_errors(p)
    probe_rate_headers(p)
    probe_latency(p, conn_id, extras)
