"""The cluster scenario (``make cluster-test``): the example DAGs on a fresh local cluster, checked
from the sandbox's ledger and Airflow's own REST API, never from the operators' counters.

1. member sync (``full_sync``): every valid member in the ledger once;
2. a day of check-ins in mapped chunks: both workers ran chunks, every member who checked in
   awarded exactly once, the report's totals equal what the ledger gained;
3. a fresh day with one worker SIGKILLed (its whole process tree) while its chunks award: the
   killed chunks fail by missed heartbeats, are retried on the surviving worker, the run succeeds,
   still exactly once and nothing lost;
4. a fresh day under faults (5% 5xx, 3% lost after commit, 2% 429): exactly once, nothing lost;
5. re-running finished days (clearing a run through the API, ``airflow backfill create`` over
   two days): 0 new awards;
6. one token grant per task process that used the Perkville connection;
7. a fresh day (sampled to about 50 s of requests) under the sandbox's limit of 20 requests/s per
   API client, on a connection whose budget is that limit shared through the cluster's Redis:
   the rate the sandbox accepted and the 429s it answered, exactly once (``scenario_rate_budget``).

Size: ``CLUSTER_MEMBERS`` (5,000), ``CLUSTER_CHECKINS`` per day (default 4,000 so the scenario
fits CI on 2 cores; the issue's 20,000 is ``make cluster-test CLUSTER_CHECKINS=20000``) in chunks
of ``CLUSTER_CHUNK_SIZE`` (500). Exits non-zero when any check fails; the cluster is stopped at the
end whatever happens (SIGTERM and SIGINT included).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pendulum

DEPLOY = Path(__file__).resolve().parent
sys.path.insert(0, str(DEPLOY))

from airflow_rest import AirflowApi, Sandbox  # noqa: E402
from cluster import running_cluster  # noqa: E402
from cluster_components import launch_worker, wait_for_worker  # noqa: E402
from cluster_config import (  # noqa: E402
    ADMIN_USER,
    REPO,
    SANDBOX_JITTER_MS,
    SANDBOX_LATENCY_MS,
    WORKERS,
    Options,
    airflow_env,
    staging_root,
)
from cluster_state import State  # noqa: E402
from scenario_common import (  # noqa: E402
    ANCHOR,
    AWARD_TASK,
    AWARDS_DAG,
    DAYS,
    RUN_TIMEOUT,
    SOURCE_CONN_ENV_VAR,
    SYNC_DAG,
    SYNC_TASK,
    Scenario,
    check_day_exactly_once,
    day_bounds,
    source_day,
    source_members,
)
from scenario_rate_budget import item7_shared_rate_budget  # noqa: E402

FAULTS = {"error_rate": 0.05, "lost_after_commit_rate": 0.03, "throttle_rate": 0.02, "seed": 13}


# ---------------------------------------------------------------------------------------------
# Runs


def run_day(sc: Scenario, day: pendulum.Date, run_id: str, **wait: Any) -> dict[str, Any]:
    start, end = day_bounds(day)
    sc.api.trigger(AWARDS_DAG, run_id, start, end, {"chunk_size": sc.chunk_size})
    sc.perkville_runs.append((AWARDS_DAG, run_id, AWARD_TASK))
    return sc.api.wait_for_run(AWARDS_DAG, run_id, RUN_TIMEOUT, **wait)


def item1_member_sync(sc: Scenario) -> None:
    start = pendulum.datetime(2026, 10, 1, tz="UTC")
    # One task sends every member: 16 concurrent requests (the Param's default is 8).
    conf = {"full_sync": True, "max_workers": 16}
    sc.api.trigger(SYNC_DAG, "full_sync", start, day_bounds(DAYS[0])[0], conf)
    sc.perkville_runs.append((SYNC_DAG, "full_sync", SYNC_TASK))
    run = sc.api.wait_for_run(SYNC_DAG, "full_sync", RUN_TIMEOUT)
    sc.check("1", "member sync run", run["state"] == "success", f"run {run['state']}")
    expected = source_members()
    records = Counter(r["external_member_id"] for r in sc.sandbox.ledger()["external_members"])
    sc.check(
        "1",
        "every valid member in the ledger once",
        set(records) == expected and max(records.values()) == 1,
        f"{len(records)} external members for {len(expected)} valid members, "
        f"max {max(records.values(), default=0)} record per member",
    )


def item2_daily_awards(sc: Scenario) -> None:
    before = sc.sandbox.stats()["requests"].get("POST /v2/transactions/", {})
    run = run_day(sc, DAYS[0], "day1")
    sc.check("2", "awards run", run["state"] == "success", f"run {run['state']}")
    tis = [ti for ti in sc.api.task_instances(AWARDS_DAG, "day1") if ti["task_id"] == AWARD_TASK]
    hosts = Counter(ti["hostname"] for ti in tis)
    sc.check(
        "2",
        "both workers ran chunks",
        set(WORKERS) <= set(hosts),
        f"{len(tis)} mapped chunks: " + ", ".join(f"{h} {n}" for h, n in sorted(hosts.items())),
    )
    check_records_staged(sc, "day1", len(tis))
    ledger = sc.sandbox.ledger()
    day_awards = check_day_exactly_once(sc, "2", DAYS[0], ledger)
    report = sc.api.xcom(AWARDS_DAG, "day1", "report")
    after = sc.sandbox.stats()["requests"].get("POST /v2/transactions/", {})
    created = after.get("201", 0) - before.get("201", 0)
    ids, _ = source_day(DAYS[0])
    points = sum(t["points"] * t["quantity"] for t in ledger["transactions"] if t["trans_source_id"] in ids)
    sc.check(
        "2",
        "report's totals equal the ledger's",
        report["awarded"] == day_awards == created and report["points"] == points and report["failed"] == 0,
        f"report awarded {report['awarded']} / points {report['points']}; ledger {day_awards} / {points}; "
        f"sandbox 201s {created}; report daily_limited {report['daily_limited']}, "
        f"duplicate {report['duplicate']}, invalid {report['invalid']}, failed {report['failed']}",
    )


def staged_run_dir(sc: Scenario, run_id: str) -> Path:
    return Path(staging_root(sc.state).removeprefix("file://")) / AWARDS_DAG / run_id


def check_records_staged(sc: Scenario, run_id: str, mapped: int) -> None:
    """Issue 11: the extract's XCom holds one short chunk name per mapped task, and the records
    are in JSON Lines files under the shared staging root, one per chunk."""
    names = sc.api.xcom(AWARDS_DAG, run_id, "extract_checkin_awards")
    run_dir = staged_run_dir(sc, run_id)
    staged = [run_dir / name for name in names]
    sc.check(
        "2",
        "records staged on object storage, chunk names in XCom",
        len(names) == mapped and all(path.is_file() for path in staged),
        f"{len(names)} chunk names in XCom ({len(json.dumps(names))} bytes) for {mapped} mapped chunks; "
        f"{sum(path.is_file() for path in staged)} staged files under {run_dir}",
    )


def staged_chunks(sc: Scenario, run_id: str) -> list[set[str]]:
    """The ``trans_source_id``s of each mapped chunk of the run, read from the files its extract
    staged (chunk ``i`` of the XCom list is map index ``i``)."""
    run_dir = staged_run_dir(sc, run_id)
    names = sc.api.xcom(AWARDS_DAG, run_id, "extract_checkin_awards")
    return [
        {json.loads(line)["trans_source_id"] for line in (run_dir / name).read_text().splitlines() if line}
        for name in names
    ]


def _in_flight_on(
    sc: Scenario, run_id: str, worker: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Chunks running on ``worker``, and those of them already awarding: the ledger holds some of
    their awards (so their requests are in flight, not still being prepared)."""
    running = [
        ti
        for ti in sc.api.task_instances(AWARDS_DAG, run_id)
        if ti["task_id"] == AWARD_TASK and ti["state"] == "running" and ti["hostname"] == worker
    ]
    if not running:
        return [], []
    chunks = staged_chunks(sc, run_id)
    awarded = {t["trans_source_id"] for t in sc.sandbox.ledger()["transactions"]}
    sending = [ti for ti in running if chunks[ti["map_index"]] & awarded]
    return running, sending


def item3_worker_killed(sc: Scenario) -> None:
    victim, survivor = WORKERS
    start, end = day_bounds(DAYS[1])
    sc.api.trigger(AWARDS_DAG, "day2_kill", start, end, {"chunk_size": sc.chunk_size})
    sc.perkville_runs.append((AWARDS_DAG, "day2_kill", AWARD_TASK))
    deadline = time.monotonic() + RUN_TIMEOUT
    killed: list[dict[str, Any]] = []
    sending: list[dict[str, Any]] = []
    while not killed and time.monotonic() < deadline:
        if sc.api.run(AWARDS_DAG, "day2_kill")["state"] in ("success", "failed"):
            break  # every chunk finished before one was seen awarding on the victim
        running, sending = _in_flight_on(sc, "day2_kill", victim)
        if sending:
            victims = sc.state.component(victim).kill_tree()
            killed = running
            names = sorted(ti["map_index"] for ti in running)
            print(f"  SIGKILL {victim}: {len(victims)} processes; chunks running there {names}", flush=True)
        else:
            time.sleep(1.0)
    if not sc.check(
        "3",
        f"{victim} killed while its chunks award",
        bool(killed),
        f"{len(killed)} chunks running on {victim} when killed, {len(sending)} of them with awards "
        "already in the ledger",
    ):
        return
    run = sc.api.wait_for_run(AWARDS_DAG, "day2_kill", RUN_TIMEOUT)
    sc.check("3", "run succeeds despite the kill", run["state"] == "success", f"run {run['state']}")
    retried = []
    for ti in killed:
        tries = sc.api.tries(AWARDS_DAG, "day2_kill", AWARD_TASK, ti["map_index"])
        final = max(tries, key=lambda t: t["try_number"])
        retried.append((ti["map_index"], final["try_number"], final["hostname"], final["state"]))
    on_survivor = all(tn > 1 and host == survivor and st == "success" for _, tn, host, st in retried)
    sc.check(
        "3",
        f"killed chunks retried on {survivor}",
        on_survivor,
        "; ".join(f"chunk {m}: try {tn} on {h} {st}" for m, tn, h, st in retried),
    )
    check_day_exactly_once(sc, "3", DAYS[1], sc.sandbox.ledger())
    # Restarted for the re-runs of item 5; item 4 does not wait for it.
    launch_worker(sc.state, victim, airflow_env(sc.state))


def item4_faults(sc: Scenario) -> None:
    sc.sandbox.set_faults({"latency_ms": SANDBOX_LATENCY_MS, "jitter_ms": SANDBOX_JITTER_MS, **FAULTS})
    try:
        run = run_day(sc, DAYS[2], "day3_faults")
    finally:
        sc.sandbox.set_faults({"latency_ms": SANDBOX_LATENCY_MS, "jitter_ms": SANDBOX_JITTER_MS})
    injected = sc.sandbox.stats()["faults_injected"]
    sc.check(
        "4",
        "run under faults succeeds",
        run["state"] == "success",
        f"run {run['state']}; injected: {injected['error']} 5xx, {injected['lost_after_commit']} "
        f"lost after commit, {injected['rate_limited']} 429",
    )
    check_day_exactly_once(sc, "4", DAYS[2], sc.sandbox.ledger())


def item5_reruns(sc: Scenario) -> None:
    created = lambda: sc.sandbox.stats()["requests"].get("POST /v2/transactions/", {}).get("201", 0)  # noqa: E731
    awards = lambda: len(sc.sandbox.ledger()["transactions"])  # noqa: E731
    wait_for_worker(sc.state, WORKERS[0], timeout=300)
    before_ledger, before_201 = awards(), created()
    previous = sc.api.run(AWARDS_DAG, "day1")
    sc.api.clear_run(AWARDS_DAG, "day1")
    sc.perkville_runs.append((AWARDS_DAG, "day1", AWARD_TASK))  # counted by tries: the first run too
    deadline = time.monotonic() + RUN_TIMEOUT
    run = previous
    while time.monotonic() < deadline:
        run = sc.api.run(AWARDS_DAG, "day1")
        if run["end_date"] != previous["end_date"] and run["state"] in ("success", "failed"):
            break
        time.sleep(2)
    sc.check(
        "5",
        "cleared run re-runs",
        run["state"] == "success" and run["end_date"] != previous["end_date"],
        f"run {run['state']}, {awards() - before_ledger} new awards in the ledger, "
        f"{created() - before_201} answers 201",
    )
    sc.check(
        "5",
        "clear: 0 new awards",
        awards() == before_ledger and created() == before_201,
        f"{awards() - before_ledger} new awards",
    )
    before_ledger, before_201 = awards(), created()
    first, last = day_bounds(DAYS[0])[0], day_bounds(DAYS[1])[0]
    env = airflow_env(sc.state)
    command = [
        str(Path(sys.executable).parent / "airflow"),
        "backfill",
        "create",
        "--dag-id",
        AWARDS_DAG,
        "--from-date",
        first.isoformat(),
        "--to-date",
        last.isoformat(),
        "--reprocess-behavior",
        "completed",
        "--max-active-runs",
        "1",
        "--dag-run-conf",
        json.dumps({"chunk_size": sc.chunk_size}),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    if not sc.check(
        "5",
        "airflow backfill create over two days",
        done.returncode == 0,
        (done.stdout + done.stderr).strip().splitlines()[-1][:200] if done.returncode else "created",
    ):
        return
    backfill = _wait_for_backfill(sc)
    runs = [r for r in sc.api.dag_runs(AWARDS_DAG) if r["run_type"] == "backfill"]
    for run in runs:
        sc.perkville_runs.append((AWARDS_DAG, run["dag_run_id"], AWARD_TASK))
    states = Counter(r["state"] for r in runs)
    sc.check(
        "5",
        "backfill runs succeed",
        backfill is not None and len(runs) >= 2 and set(states) == {"success"},
        f"{len(runs)} backfill runs: {dict(states)}",
    )
    sc.check(
        "5",
        "backfill: 0 new awards",
        awards() == before_ledger and created() == before_201,
        f"{awards() - before_ledger} new awards, {created() - before_201} answers 201",
    )


def _wait_for_backfill(sc: Scenario) -> dict[str, Any] | None:
    deadline = time.monotonic() + 2 * RUN_TIMEOUT
    while time.monotonic() < deadline:
        backfills = sc.api.request("GET", "/backfills", params={"dag_id": AWARDS_DAG})["backfills"]
        if backfills and backfills[-1].get("completed_at"):
            return backfills[-1]
        time.sleep(3)
    return None


def item6_token_grants(sc: Scenario) -> None:
    """Every try of a Perkville task runs in its own process, and a process grants at most once.

    A try that succeeded sent its records, so it granted exactly once: the grants are at least the
    successful tries. A try that failed may have died before its first request (killed while still
    rendering, item 3): the grants are at most the tries that started.
    """
    ended: Counter[str] = Counter()
    for dag_id, run_id, task_id in dict.fromkeys(sc.perkville_runs):
        for ti in sc.api.task_instances(dag_id, run_id):
            if ti["task_id"] == task_id:
                tries = sc.api.tries(dag_id, run_id, task_id, ti["map_index"])
                ended.update(str(t.get("state")) for t in tries if t.get("start_date"))
    started, succeeded = sum(ended.values()), ended["success"]
    others = ", ".join(f"{count} {state}" for state, count in sorted(ended.items()) if state != "success")
    grants = sc.sandbox.stats()["token_grants"]
    sc.check(
        "6",
        "one token grant per task process",
        succeeded <= grants <= started,
        f"{grants} token grants; task processes using perkville_default: {started} started, "
        f"{succeeded} succeeded (each granted once), the others ended {others or 'none'}",
    )


def connect_scenario(state: State, chunk_size: int) -> Scenario:
    """Clients for a running cluster, the source database reachable from here, the DAGs unpaused."""
    os.environ[SOURCE_CONN_ENV_VAR] = airflow_env(state)[SOURCE_CONN_ENV_VAR]
    api = AirflowApi(f"http://127.0.0.1:{state.ports['api']}", ADMIN_USER, state.secrets["admin_password"])
    for dag_id in (SYNC_DAG, AWARDS_DAG):
        api.wait_for_dag(dag_id, 300)
    return Scenario(state, api, Sandbox(f"http://127.0.0.1:{state.ports['sandbox']}"), chunk_size)


def run_scenario(state: State, chunk_size: int) -> Scenario:
    sc = connect_scenario(state, chunk_size)
    for item in (
        item1_member_sync,
        item2_daily_awards,
        item3_worker_killed,
        item4_faults,
        item5_reruns,
        item6_token_grants,
        item7_shared_rate_budget,
    ):
        print(f"-- {item.__name__} ({time.strftime('%H:%M:%S')})", flush=True)
        try:
            item(sc)
        except Exception as error:  # a broken step fails its item, the others still run
            sc.check(item.__name__[4], item.__name__, False, f"{type(error).__name__}: {error}"[:400])
    return sc


def _stop_on_signal(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_signal)
    t0 = time.monotonic()
    options = Options(
        root=REPO / ".cluster" / "test",
        schedules=False,
        members=int(os.environ.get("CLUSTER_MEMBERS", "5000")),
        checkins_per_day=int(os.environ.get("CLUSTER_CHECKINS", "4000")),
        days=len(DAYS) + 1,  # item 7's day too
        anchor=ANCHOR.to_date_string(),
    )
    chunk_size = int(os.environ.get("CLUSTER_CHUNK_SIZE", "500"))
    print(
        f"cluster scenario: {options.members} members, {options.checkins_per_day} check-ins a day, "
        f"chunks of {chunk_size}, sandbox latency {SANDBOX_LATENCY_MS} ms + jitter {SANDBOX_JITTER_MS} ms"
    )
    try:
        with running_cluster(options) as state:
            sc = run_scenario(state, chunk_size)
    except Exception as error:
        print(f"cluster scenario FAILED before its checks: {error}", file=sys.stderr)
        return 1
    failed = [c for c in sc.checks if not c.ok]
    print(f"\n{len(sc.checks) - len(failed)}/{len(sc.checks)} checks passed in {time.monotonic() - t0:.0f} s")
    for check in failed:
        print(f"FAILED: {check.item} {check.name}: {check.figure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
