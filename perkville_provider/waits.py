"""The one rule for every wait the provider makes: bounded, interruptible, never stored past its cap.

A wait comes from somewhere the provider does not control: a server's ``Retry-After``, a pace
kept in a file or in Redis that another process wrote, a backoff. Each is

* **bounded**: a wait longer than its cap (the retry policy's ``max_retry_after``, or the pace's
  longest spacing) is not waited; a value that is negative, not finite or unparseable is not a
  wait at all (:func:`usable_seconds` says None, and the caller gives up that one request);
* **interruptible**: it is an ``Event.wait`` on the task's stop event, so ``on_kill`` ends it at
  once (:class:`WaitStopped`), never a ``time.sleep``;
* **never stored beyond its cap**: whatever goes to shared state is clamped first (see
  :mod:`perkville_provider.pacing`), and clamped again when read back.
"""

from __future__ import annotations

import math
import threading

__all__ = ["WaitStopped", "bounded_wait", "usable_seconds"]


class WaitStopped(Exception):
    """The task is being stopped (``on_kill``): the wait ended early and nothing more is sent."""


def usable_seconds(value: float | None, cap: float) -> float | None:
    """``value`` when it is a wait worth honouring (finite, from 0 to ``cap``), else None."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0 or value > cap:
        return None
    return float(value)


def bounded_wait(seconds: float, cap: float, stop: threading.Event | None = None) -> None:
    """Wait ``seconds`` (at most ``cap``; a bad value waits nothing), ended at once by ``stop``.

    :raises WaitStopped: ``stop`` was set before or during the wait
    """
    if stop is None:
        stop = threading.Event()
    if stop.is_set():
        raise WaitStopped
    delay = seconds if math.isfinite(seconds) else 0.0
    if stop.wait(min(max(0.0, delay), cap)):
        raise WaitStopped
