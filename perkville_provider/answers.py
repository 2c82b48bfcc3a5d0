"""Reading Perkville's answers, and checking them against what was asked: nothing taken on faith.

A 2xx is not proof of a usable answer: a proxy's HTML page, an empty 202/204, a JSON list where
an object belongs, ``"objects": "abc"``, or text nested deep enough to exhaust the parser all
arrive with a success status. :func:`read_json`, :func:`read_object` and :func:`read_page` turn
each into a :class:`~perkville_provider.exceptions.PerkvilleMalformedAnswerError` with the status,
method and path, saying what was missing, never a raw ``JSONDecodeError``, ``AttributeError`` or
``RecursionError``; :func:`written_object` reads a write's answer leniently, since the write may
have committed all the same.

Two more things a tastypie API may do that a client must not take on faith:

- **Ignore a filter.** Stock tastypie drops a filter on a field the resource does not declare
  filterable ("It's not a field we know about. Move along citizen."), so a look-up by
  ``trans_source_id`` or by email may answer with somebody else's object. :class:`LookupGuard`
  checks every object it returns against what was asked; when the server ignored the filter it
  says so once and walks a bounded list instead, and when the walk cannot settle the question it
  raises :class:`~perkville_provider.exceptions.PerkvilleLookupError`: never a guess.
- **Answer a repeated create with 201 and the existing object** (an idempotent create).
  :class:`CreationWitness` tells a 201 that created from one that returned an object which
  existed before the request was sent.

Nothing here sends a request: the hook passes the calls that do.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pendulum

from perkville_provider.exceptions import (
    PerkvilleAnswerError,
    PerkvilleLookupError,
    PerkvilleMalformedAnswerError,
)

if TYPE_CHECKING:
    import requests

__all__ = [
    "DEFAULT_MAX_WALK",
    "CreationWitness",
    "LookupGuard",
    "Sent",
    "answer_error",
    "read_json",
    "read_object",
    "read_page",
    "written_award",
    "written_object",
]

log = logging.getLogger(__name__)

#: Objects a look-up walks at most when the server ignores its filter (pages of 100).
DEFAULT_MAX_WALK = 5_000
_REMEMBERED_IDS = 65_536
#: The server's ``Date`` header has whole seconds; a creation time this much older is proof.
_CLOCK_RESOLUTION = dt.timedelta(seconds=1)

Matcher = Callable[[Mapping[str, Any]], bool]


class LookupGuard:
    """Finds one object through a filter and proves it is the one asked for.

    One guard per hook: it remembers which filters the server ignored (and says so once per
    filter), so later look-ups go straight to the walk.
    """

    def __init__(self, *, max_walk: int = DEFAULT_MAX_WALK) -> None:
        self.max_walk = max_walk
        self._ignored: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def filter_ignored(self, path: str, filter_name: str) -> bool:
        """Whether the server was seen ignoring this filter on this path."""
        return (path, filter_name) in self._ignored

    def find(
        self,
        *,
        path: str,
        filter_name: str,
        first: Callable[[], list[dict[str, Any]]],
        matches: Matcher,
        walk: Callable[[], Iterable[Mapping[str, Any]]],
        what: str,
        confirm: Matcher | None = None,
    ) -> dict[str, Any] | None:
        """The object ``matches`` accepts, or None when it provably does not exist.

        ``first`` fetches the filtered list's objects (one is enough); ``walk`` iterates the
        narrowest list that does not depend on the filter. ``confirm`` is a costlier check (one
        more request) of the filtered answer, tried before deciding the filter was ignored.
        """
        if not self.filter_ignored(path, filter_name):
            objects = first()
            if not objects:
                return None
            if matches(objects[0]) or (confirm is not None and confirm(objects[0])):
                return dict(objects[0])
            self._note_ignored(path, filter_name, what)
        return self._walk(walk(), matches, path, filter_name, what)

    def _note_ignored(self, path: str, filter_name: str, what: str) -> None:
        with self._lock:
            if (path, filter_name) in self._ignored:
                return
            self._ignored.add((path, filter_name))
        log.warning(
            "Perkville ignored the %s filter on %s: asked for %s, it answered with another object. "
            "The hook will not trust that filter again in this run and looks objects up by walking "
            "the list instead (at most %d objects per look-up).",
            filter_name,
            path,
            what,
            self.max_walk,
        )

    def _walk(
        self, objects: Iterable[Mapping[str, Any]], matches: Matcher, path: str, filter_name: str, what: str
    ) -> dict[str, Any] | None:
        for count, item in enumerate(objects):
            if count >= self.max_walk:
                raise PerkvilleLookupError(
                    f"cannot tell whether {what} exists: Perkville ignores the {filter_name} filter, and "
                    f"{self.max_walk} objects were walked without finding it",
                    method="GET",
                    path=path,
                )
            if matches(item):
                return dict(item)
        return None


@dataclass(frozen=True)
class Sent:
    """What the witness knew when a create was sent."""

    newest_id: int
    server_time: dt.datetime | None


class CreationWitness:
    """Tells a 201 that created the object from a 201 that returned one which already existed.

    An object existed before the request when its id is one this hook already saw created, or is
    not above the newest id created before the request was sent (ids grow), or when its
    ``created_dt`` is older than the server's clock (its ``Date`` header) before the request.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._newest_id = 0
        self._server_time: dt.datetime | None = None
        self._created: OrderedDict[int, None] = OrderedDict()

    def before_send(self) -> Sent:
        """What is known just before a create is sent (call it before sending)."""
        with self._lock:
            return Sent(self._newest_id, self._server_time)

    def observe_date(self, header: str | None) -> None:
        """Remember the server's clock from an answer's ``Date`` header."""
        when = _http_date(header)
        if when is None:
            return
        with self._lock:
            if self._server_time is None or when > self._server_time:
                self._server_time = when

    def created_now(self, sent: Sent, obj: Mapping[str, Any], id_field: str) -> bool:
        """Whether ``obj`` (answered 201 to a create sent at ``sent``) was created by that request."""
        pk = obj.get(id_field)
        pk = pk if isinstance(pk, int) and not isinstance(pk, bool) else None
        created = _api_time(obj.get("created_dt"))
        with self._lock:
            existed = (
                (pk is not None and (pk in self._created or pk <= sent.newest_id))
                or (created is not None and sent.server_time is not None
                    and created < sent.server_time - _CLOCK_RESOLUTION)
            )  # fmt: skip
            if pk is not None and not existed:
                self._created[pk] = None
                if len(self._created) > _REMEMBERED_IDS:
                    self._created.popitem(last=False)
                self._newest_id = max(self._newest_id, pk)
        return not existed


def _http_date(header: str | None) -> dt.datetime | None:
    if not header:
        return None
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _api_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = pendulum.parse(value.strip(), strict=False)
    except (ValueError, OverflowError):
        return None
    return parsed if isinstance(parsed, dt.datetime) and parsed.tzinfo else None


def answer_error(
    response: requests.Response,
    problem: str,
    error_class: type[PerkvilleAnswerError] = PerkvilleMalformedAnswerError,
) -> PerkvilleAnswerError:
    """The typed error for an answer that cannot be used, with where it came from."""
    request = response.request
    return error_class(
        problem,
        status=response.status_code,
        method=request.method if request is not None else None,
        path=urlsplit(request.url or "").path if request is not None else None,
    )


def read_json(response: requests.Response) -> Any:
    """The answer's JSON value.

    :raises PerkvilleMalformedAnswerError: the body is empty, not JSON, or nested too deep to read
    """
    if not response.content:
        raise answer_error(
            response, f"the answer ({response.status_code}) has no body, and this call needs one"
        )
    try:
        return response.json()
    except RecursionError:
        raise answer_error(response, "the answer is JSON nested too deep to read") from None
    except ValueError:
        kind = response.headers.get("Content-Type") or "no content type"
        raise answer_error(
            response, f"the answer is not JSON ({kind}, {len(response.content)} bytes)"
        ) from None


def read_object(response: requests.Response) -> dict[str, Any]:
    """The answer's JSON object. :raises PerkvilleMalformedAnswerError: not a JSON object."""
    body = read_json(response)
    if not isinstance(body, dict):
        raise answer_error(
            response, f"the answer is a JSON {_kind(body)}, not the JSON object this call needs"
        )
    return body


def read_page(
    response: requests.Response, *, paged: bool = True
) -> tuple[list[dict[str, Any]], Mapping[str, Any]]:
    """The ``objects`` and ``meta`` of a list answer, each of the shape a list answer has.

    :param paged: the answer is a page of a list endpoint and must carry ``meta`` (a batch
        write's answer holds only ``objects``)
    :raises PerkvilleMalformedAnswerError: naming what is missing or of the wrong type
    """
    body = read_json(response)
    if not isinstance(body, dict):
        raise answer_error(
            response, f"a list answer must be a JSON object with objects and meta, got a JSON {_kind(body)}"
        )
    objects = body.get("objects")
    if not isinstance(objects, list):
        found = "no objects" if "objects" not in body else f"objects as a JSON {_kind(objects)}"
        raise answer_error(response, f"the list answer has {found}, not a list of objects")
    meta = body.get("meta", None if paged else {})
    if not isinstance(meta, Mapping):
        found = "no meta" if "meta" not in body else f"meta as a JSON {_kind(meta)}"
        raise answer_error(response, f"the list answer has {found}, not a meta object")
    if not all(isinstance(item, dict) for item in objects):
        raise answer_error(response, "the list answer's objects are not all JSON objects")
    return objects, meta


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def written_object(response: requests.Response) -> dict[str, Any] | None:
    """The object a 2xx write answered with, or None when its body is empty or not a JSON object.

    The write may have committed all the same, so the caller settles it by reading or looking it up.
    """
    try:
        body = response.json() if response.content else None
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) and body else None


def written_award(response: requests.Response, trans_source_id: str) -> dict[str, Any] | None:
    """The transaction a 2xx award answered with, when the body is that award's transaction.

    A body that does not name the award's ``trans_source_id`` and an id (``202 {"queued": true}``,
    ``201 {"points": "ten"}``) is not taken as the transaction: counting it would guess the
    outcome, so the caller settles it by reading the transaction back.
    """
    body = written_object(response)
    if body is None or str(body.get("trans_source_id")) != trans_source_id:
        return None
    pk = body.get("transaction_id")
    return body if isinstance(pk, int) and not isinstance(pk, bool) and pk > 0 else None
