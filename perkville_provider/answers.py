"""Reading Perkville's answers: JSON bodies and list pages, checked before they are trusted.

A 2xx is not proof of a usable answer: a proxy's HTML page, an empty 202/204, a JSON list where
an object belongs, ``"objects": "abc"``, or text nested deep enough to exhaust the parser all
arrive with a success status. Each becomes a :class:`PerkvilleMalformedResponseError` with the
status, method and path, and saying what was missing, never a raw ``JSONDecodeError``,
``AttributeError`` or ``RecursionError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from perkville_provider.exceptions import PerkvilleMalformedResponseError


def malformed(response: requests.Response, problem: str) -> PerkvilleMalformedResponseError:
    """The typed error for an answer that cannot be used, with where it came from."""
    request = response.request
    return PerkvilleMalformedResponseError(
        problem,
        status=response.status_code,
        method=request.method if request is not None else None,
        path=urlsplit(request.url or "").path if request is not None else None,
    )


def json_body(response: requests.Response) -> Any:
    """The answer's JSON value. :raises PerkvilleMalformedResponseError: empty, or not JSON."""
    if not response.content:
        raise malformed(response, f"the answer ({response.status_code}) has no body, and this call needs one")
    try:
        return response.json()
    except RecursionError:
        raise malformed(response, "the answer is JSON nested too deep to read") from None
    except ValueError:
        kind = response.headers.get("Content-Type") or "no content type"
        raise malformed(response, f"the answer is not JSON ({kind})") from None


def json_object(response: requests.Response) -> dict[str, Any]:
    """The answer's JSON object. :raises PerkvilleMalformedResponseError: not a JSON object."""
    body = json_body(response)
    if not isinstance(body, dict):
        raise malformed(response, f"the answer is a JSON {_kind(body)}, not the JSON object this call needs")
    return body


def list_page(
    response: requests.Response, *, paged: bool = True
) -> tuple[list[dict[str, Any]], Mapping[str, Any]]:
    """The ``objects`` and ``meta`` of a list answer, each of the shape a list answer has.

    :param paged: the answer is a page of a list endpoint and must carry ``meta`` (a batch
        write's answer holds only ``objects``)
    """
    body = json_body(response)
    if not isinstance(body, dict):
        raise malformed(
            response, f"a list answer must be a JSON object with objects and meta, got a JSON {_kind(body)}"
        )
    objects = body.get("objects")
    if not isinstance(objects, list):
        found = "no objects" if "objects" not in body else f"objects as a JSON {_kind(objects)}"
        raise malformed(response, f"the list answer has {found}, not a list of objects")
    meta = body.get("meta", None if paged else {})
    if not isinstance(meta, Mapping):
        found = "no meta" if "meta" not in body else f"meta as a JSON {_kind(meta)}"
        raise malformed(response, f"the list answer has {found}, not a meta object")
    if not all(isinstance(item, dict) for item in objects):
        raise malformed(response, "the list answer's objects are not all JSON objects")
    return objects, meta


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
