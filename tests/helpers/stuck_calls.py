"""Run a call that gets stuck on a thread; measure how long ``on_kill`` (``hook.abort``) takes to end it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``call`` on a daemon thread; the dict receives its ``value`` or its ``error``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def time_to_end(hook: Any, stuck: Callable[[], bool], call: Callable[[], Any]) -> tuple[float, Any]:
    """Start ``call``, wait until ``stuck()``, abort the hook; the seconds it took to end, and the error."""
    thread, outcome = in_thread(call)
    deadline = time.monotonic() + 10
    while not stuck() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # well inside the wait
    assert thread.is_alive(), outcome
    killed = time.monotonic()
    hook.abort()
    thread.join(timeout=30)
    assert not thread.is_alive()
    took = time.monotonic() - killed
    print(f"on_kill ended the wait in {took:.3f} s")  # the figure in issue 22's closing table
    return took, outcome.get("error")
