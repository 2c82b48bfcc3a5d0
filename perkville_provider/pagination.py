"""Walking a list endpoint page by page, with guards so that no walk runs forever or leaves the API.

Tastypie pages by ``limit``/``offset`` and says where the next page is in ``meta.next``. Both are
the server's word, so neither is taken on faith: a ``next`` link is followed only on the API's
origin (the request carries the token), a link back to a page already read or a page whose
objects repeat the previous page's ends the walk, and so does a page count past ``max_pages``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from perkville_provider.answers import read_page
from perkville_provider.exceptions import PerkvilleForeignLinkError, PerkvillePaginationError
from perkville_provider.origin import Origin, describe_origin

FetchPage = Callable[[str, Mapping[str, Any]], requests.Response]
PageKey = tuple[str, tuple[tuple[str, str], ...]]


def walk_pages(
    fetch: FetchPage,
    path: str,
    params: Mapping[str, Any] | None,
    *,
    page_size: int,
    origin: Origin,
    max_pages: int,
) -> Iterator[list[dict[str, Any]]]:
    """Yield the objects of the list at ``path`` page by page; ``fetch(path, query)`` gets one page."""
    query: dict[str, Any] = {"limit": page_size, "offset": 0, **(params or {})}
    next_path: str | None = path
    read: set[PageKey] = set()
    previous: bytes | None = None
    while next_path is not None:
        _check_next_page(path, _page_key(next_path, query), read, max_pages)
        objects, meta = read_page(fetch(next_path, query))
        digest = hashlib.sha256(json.dumps(objects, sort_keys=True, default=str).encode()).digest()
        if objects and digest == previous:
            raise PerkvillePaginationError(
                "the page holds the same objects as the page before (the server ignores offset?); "
                "walk stopped",
                method="GET",
                path=path,
            )
        previous = digest
        limit = int(query.get("limit") or page_size)
        yield objects
        next_path = None
        link = meta.get("next")
        if link:
            next_path, query = _follow(path, link, origin)
        elif "next" not in meta and objects and len(objects) >= limit:
            next_path = path
            query = {**query, "offset": int(query.get("offset") or 0) + len(objects)}
        del objects


def _page_key(path: str, query: Mapping[str, Any]) -> PageKey:
    return urlsplit(path).path, tuple(sorted((str(name), str(value)) for name, value in query.items()))


def _check_next_page(path: str, page: PageKey, read: set[PageKey], max_pages: int) -> None:
    """Refuse a page already read in this walk, or one past ``max_pages``."""
    if page in read:
        raise PerkvillePaginationError(
            "the next link leads back to a page already read; walk stopped", method="GET", path=path
        )
    if len(read) >= max_pages:
        raise PerkvillePaginationError(
            f"more than max_pages={max_pages} pages (the connection's max_pages extra); walk stopped",
            method="GET",
            path=path,
        )
    read.add(page)


def _follow(path: str, link: Any, origin: Origin) -> tuple[str, dict[str, Any]]:
    """The path and query of ``meta.next``, refused unless it stays on the API's origin."""
    if not isinstance(link, str):
        raise PerkvillePaginationError(
            f"meta.next is a {type(link).__name__}, not a link", method="GET", path=path
        )
    if not origin.admits(link):
        raise PerkvilleForeignLinkError(
            f"meta.next points to {describe_origin(link)}, not to the API at {origin}; not followed "
            "(the request would carry the token there)",
            method="GET",
            path=path,
        )
    parts = urlsplit(link)
    return parts.path, dict(parse_qsl(parts.query))
