"""Small clients for what the cluster scenario and bench check against: Airflow's own REST API
(``/api/v2``, a token from ``/auth/token``) and the sandbox's introspection (``/_sandbox``).

Checks read what Airflow and Perkville (the sandbox) recorded, never the operators' counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pendulum
import requests

TERMINAL_RUN_STATES = ("success", "failed")


class AirflowApi:
    """Airflow's REST API as the admin user of the simple auth manager."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._login = {"username": username, "password": password}
        self._session = requests.Session()
        self._authenticate()

    def _authenticate(self) -> None:
        answer = self._session.post(f"{self.base_url}/auth/token", json=self._login, timeout=30)
        answer.raise_for_status()
        self._session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call (re-authenticating once on 401); the decoded JSON answer."""
        for attempt in range(2):
            answer = self._session.request(method, f"{self.base_url}/api/v2{path}", timeout=60, **kwargs)
            if answer.status_code == 401 and attempt == 0:
                self._authenticate()
                continue
            if not answer.ok:
                raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
            return answer.json() if answer.content else None
        raise AssertionError("unreachable")

    def wait_for_dag(self, dag_id: str, timeout: float) -> None:
        """Wait until the dag-processor has parsed ``dag_id``, then unpause it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.request("GET", f"/dags/{dag_id}")
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(
        self,
        dag_id: str,
        run_id: str,
        start: pendulum.DateTime,
        end: pendulum.DateTime,
        conf: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A run with an explicit logical date and data interval ``[start, end)``, as a scheduled one has."""
        body = {
            "dag_run_id": run_id,
            "logical_date": start.isoformat(),
            "data_interval_start": start.isoformat(),
            "data_interval_end": end.isoformat(),
            "conf": conf or {},
        }
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float, while_waiting: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """Poll the run until it is success or failed; raise on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in TERMINAL_RUN_STATES:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} {run_id} still {run['state']} after {timeout:.0f} s")
            if while_waiting:
                while_waiting()
            time.sleep(2)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, mapped ones one per map index (latest try)."""
        answer = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return answer["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[dict[str, Any]]:
        """Every try of one task instance (hostname, state, timestamps of each)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries"
        return self.request("GET", path)["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.request("GET", path, params={"deserialize": "true"})["value"]

    def clear_run(self, dag_id: str, run_id: str) -> None:
        """Clear every task instance of a finished run, so the scheduler runs it again."""
        self.request("POST", f"/dags/{dag_id}/dagRuns/{run_id}/clear", json={"dry_run": False})

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 1000})["dag_runs"]


class Sandbox:
    """The sandbox's introspection endpoints (no auth)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def _get(self, path: str) -> Any:
        answer = requests.get(f"{self.base_url}/_sandbox/{path}", timeout=120)
        answer.raise_for_status()
        return answer.json()

    def ledger(self) -> dict[str, Any]:
        return self._get("ledger")

    def stats(self) -> dict[str, Any]:
        return self._get("stats")

    def per_second(self, since: float, until: float) -> list[dict[str, Any]]:
        """The API requests of each second in ``[since, until]`` (epoch), by endpoint and status."""
        answer = requests.get(
            f"{self.base_url}/_sandbox/stats/per-second", params={"since": since, "until": until}, timeout=60
        )
        answer.raise_for_status()
        return answer.json()["seconds"]

    def set_faults(self, faults: dict[str, Any]) -> None:
        requests.put(f"{self.base_url}/_sandbox/faults", json=faults, timeout=30).raise_for_status()
