"""Records that must not be written at once: the same member, the same ``trans_source_id``.

The batch engine sends records concurrently; two records with the same key would race, and the
last writer would depend on thread timing. :class:`SameKeyOrder` holds a record back while another
with its key is in flight and sends it next, so records with one key go out one after the other,
in input order, and the last one wins every time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["SameKeyOrder"]


class SameKeyOrder:
    """Holds a record back while one with the same order key is in flight, then sends it next.

    It also counts the records whose key came earlier in the batch. Main thread only.

    Every key in ``waiting`` has exactly one record in flight; ``held`` counts the ones queued.
    The keys seen are remembered by hash (a few bytes each), to count repeats deterministically.
    """

    def __init__(self, order_key: Callable[[Any], Hashable] | None) -> None:
        self.order_key = order_key
        self.waiting: dict[Hashable, deque[tuple[int, str | None, Any]]] = {}
        self.held = 0
        self._seen: set[int] = set()

    def key_of(self, prepared: Any) -> Hashable | None:
        """The record's order key (None when the job has none)."""
        return None if self.order_key is None else self.order_key(prepared)

    def seen_before(self, order_key: Hashable | None) -> bool:
        """Whether a record with this key came earlier in the batch (and remember this one)."""
        if order_key is None:
            return False
        digest = hash(order_key)
        seen = digest in self._seen
        self._seen.add(digest)
        return seen

    def hold(self, order_key: Hashable | None, item: tuple[int, str | None, Any]) -> bool:
        """Queue ``item`` behind the record in flight with its key (True), or mark it in flight."""
        if order_key is None:
            return False
        if order_key in self.waiting:
            self.waiting[order_key].append(item)
            self.held += 1
            return True
        self.waiting[order_key] = deque()
        return False

    def release(self, order_key: Hashable | None) -> tuple[int, str | None, Any] | None:
        """The next record with this key, now that the one in flight is done (None if none)."""
        queue = self.waiting.get(order_key) if order_key is not None else None
        if queue is None:
            return None
        if not queue:
            del self.waiting[order_key]
            return None
        self.held -= 1
        return queue.popleft()
