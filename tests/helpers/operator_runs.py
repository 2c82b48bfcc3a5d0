"""Running a batch operator's ``execute`` outside a DAG run: a task-instance stand-in, and a thread."""

from __future__ import annotations

import threading
from typing import Any


class TaskInstanceStub:
    """The one thing ``execute`` asks of its task instance: somewhere to push the extra link's XCom."""

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed = (key, value)


def execute_in_thread(operator: Any) -> tuple[threading.Thread, dict[str, BaseException]]:
    """Start ``operator.execute`` on a thread; the dict receives what it raised (key ``error``)."""
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            operator.execute({"ti": TaskInstanceStub()})
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    return worker, outcome
