"""Probes of access and addressing: business, scopes, paths, look-up filters.

The business, the token's scopes, each resource's path, and whether the look-up filters are
honoured (a value that cannot match returns no object when the filter is honoured, the whole list
when it is ignored).
"""

from __future__ import annotations

from typing import Any

from perkville_provider.api_conventions import DEFAULT_PATHS
from perkville_provider.doctor.findings import DIFFERS, HOLDS, NOT_SEEN, Finding
from perkville_provider.doctor.prober import NO_EXTRA, Prober, request_line, shown

__all__ = [
    "FILTER_PROBES",
    "NEEDED_SCOPES",
    "path_alternatives",
    "probe_business",
    "probe_filters",
    "probe_paths",
    "probe_scopes",
]

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
_ANSWERS_THERE = {405: " (GET not allowed: the path is there)", 403: " (refused: the path is there)"}


def probe_business(p: Prober, configured: int | None) -> None:
    """The business the connection names (readable?), else the businesses the token can see."""
    api = p.hook.conventions()
    if configured is not None:
        answer = p.get(api.detail_path("businesses", configured))
        p.business_id = configured
        if answer.status == 200 and isinstance(answer.data, dict):
            seen = f"GET {api.detail_path('businesses', configured)}: 200, {shown(answer.data.get('name'))!r}"
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
        f"{obj.get('business_id')} {shown(obj.get('name'))!r}" for obj in visible[:5]
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
    seen = "grant answered scope: " + shown(" ".join(sorted(granted)))
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
            said = _ANSWERS_THERE.get(answer.status or 0, "")
            seen = f"{request_line(name, path, p.list_params(name))}: {answer.status}{said}"
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
        seen = (
            f"{request_line(resource, path, p.list_params(resource, **{name: impossible}))}: {answer.status}"
        )
        if answer.objects is None:
            p.report.add(Finding(key, unknown, f"{seen} ({answer.codes()})", NOT_SEEN))
        elif answer.objects:
            p.report.add(
                Finding(
                    key,
                    unknown,
                    f"{seen}, {len(answer.objects)} object(s): ignored",
                    DIFFERS,
                    advice=f"{NO_EXTRA}: the hook checks each look-up's answer and walks the list instead",
                )
            )
        else:
            p.report.add(Finding(key, unknown, f"{seen}, 0 objects: honoured", HOLDS))
