"""A local Airflow 3 cluster from the checkout: PostgreSQL, Redis, the Perkville sandbox, the
api-server, scheduler, dag-processor, triggerer and two Celery workers.

``python deploy/cluster.py start|stop|status|env [--root DIR]`` (``make cluster``,
``make cluster-stop``). Everything lives under ``--root`` (``.cluster/dev`` by default): the
PostgreSQL data directory and socket, the Airflow home and its task logs (one folder shared by
every component, so the api-server reads task logs from disk), each component's log and
``state.json`` (ports, PIDs, generated secrets; mode 0600). Every component listens on 127.0.0.1
on a free port and is stopped by its own PID (its process group: the component is the group's
leader). The Debian packages are installed when missing.

Configuration (and why these settings): ``cluster_config``; starting and watching each component:
``cluster_components``; PIDs and state: ``cluster_state``.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DEPLOY = Path(__file__).resolve().parent
sys.path.insert(0, str(DEPLOY))

from cluster_components import (  # noqa: E402
    check_loopback_only,
    ensure_debian_packages,
    load_gym_source,
    migrate_airflow_db,
    outside_postgres_dir,
    start_airflow,
    start_postgres,
    start_redis,
    start_sandbox,
)
from cluster_config import ADMIN_USER, DEFAULT_ROOT, Options, airflow_env, new_state  # noqa: E402
from cluster_state import ClusterError, State, log_tail, pid_alive  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Commands


def start(options: Options) -> State:
    """Start every component, or say a cluster already runs here and change nothing."""
    running = State.load(options.root)
    if running is not None and running.alive_components():
        print(f"a cluster is already running from {options.root}: nothing started")
        print(describe(running))
        return running
    if running is not None:
        stop(options.root, quiet=True)
    ensure_debian_packages()
    options.root.mkdir(parents=True, exist_ok=True)
    state = new_state(options)
    state.save()
    env = airflow_env(state)
    try:
        t0 = time.monotonic()
        steps: list[tuple[str, Callable[[], None]]] = [
            ("postgres", lambda: start_postgres(state, options.timeout)),
            ("redis", lambda: start_redis(state, options.timeout)),
            ("sandbox", lambda: start_sandbox(state, options.timeout)),
            ("db-migrate", lambda: migrate_airflow_db(state, env, options.timeout * 2)),
            ("gym-source", lambda: load_gym_source(state, options, env, options.timeout)),
            ("airflow", lambda: start_airflow(state, env, options.timeout)),
        ]
        for name, step in steps:
            print(f"  starting {name} ...", flush=True)
            step()
            state.save()
        exposed = check_loopback_only(state)
        if exposed:
            raise ClusterError(
                state.component("api-server"), "listening beyond loopback: " + "; ".join(exposed)
            )
        print(f"cluster up in {time.monotonic() - t0:.0f} s")
    except ClusterError as error:
        state.save()
        print(f"\ncluster start FAILED: component {error.component.name}: {error.reason}", file=sys.stderr)
        print(
            f"--- last lines of {error.component.log_path} ---\n{log_tail(error.component.log_path)}",
            file=sys.stderr,
        )
        stop(options.root, quiet=True)
        raise
    print(describe(state))
    return state


def describe(state: State) -> str:
    api = f"http://127.0.0.1:{state.ports['api']}"
    return "\n".join(
        [
            f"Airflow UI:   {api}  (login: {ADMIN_USER} / {state.secrets['admin_password']})",
            f"Sandbox:      http://127.0.0.1:{state.ports['sandbox']}  (ledger: /_sandbox/ledger)",
            f"PostgreSQL:   127.0.0.1:{state.ports['postgres']}  (databases airflow, gym)",
            f"Redis:        127.0.0.1:{state.ports['redis']}",
            f"Logs:         {state.root / 'logs'} (components), {state.root / 'airflow' / 'logs'} (tasks)",
            f'Airflow CLI:  eval "$({sys.executable} {Path(__file__)} env --root {state.root})"',
            "Stop:         "
            + (
                "make cluster-stop"
                if state.root == DEFAULT_ROOT
                else f"deploy/cluster.py stop --root {state.root}"
            ),
        ]
    )


SERVICES = ("postgres", "redis", "sandbox")
"""Stopped after the Airflow components, which use them until they exit."""


def stop(root: Path, *, quiet: bool = False, timeout: float = 20.0) -> None:
    """Stop every recorded component by its PID: the Airflow components together, then the services.

    Each gets its polite signal (SIGINT, PostgreSQL's fast shutdown; SIGTERM for the rest), then
    SIGKILL to whatever is left of its process group after ``timeout`` seconds.
    """
    state = State.load(root)
    if state is None:
        if not quiet:
            print(f"no cluster state under {root}: nothing to stop")
        return
    alive = state.alive_components()
    for wave in ([c for c in alive if c.name not in SERVICES], [c for c in alive if c.name in SERVICES]):
        for component in wave:
            if not quiet:
                print(f"  stopping {component.name} (pid {component.pid})", flush=True)
            component.signal(signal.SIGINT if component.name == "postgres" else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for component in wave:
            component.finish(max(0.0, deadline - time.monotonic()))
    state.pids.clear()
    state.save()
    if not quiet:
        print("cluster stopped")


@contextlib.contextmanager
def running_cluster(options: Options) -> Iterator[State]:
    """A fresh cluster for the duration of the block, stopped afterwards whatever happens."""
    stop(options.root, quiet=True)
    if options.root.exists():
        shutil.rmtree(options.root)
    shutil.rmtree(outside_postgres_dir(options.root).parent, ignore_errors=True)
    try:
        yield start(options)
    finally:
        stop(options.root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status", "env"])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.command == "start":
        try:
            start(Options(root=root))
        except ClusterError:
            return 1
    elif args.command == "stop":
        stop(root)
    else:
        state = State.load(root)
        if state is None or not state.alive_components():
            print(f"no cluster running from {root}", file=sys.stderr)
            return 1
        if args.command == "status":
            print(describe(state))
            for component in state.components():
                status = "up" if pid_alive(component.pid) else "DOWN"
                print(f"  {component.name:14} pid {component.pid}  {status}")
        else:
            for key, value in airflow_env(state).items():
                if key.startswith("AIRFLOW") or key in ("PYTHONPATH",):
                    print(f"export {key}={_shell_quote(value)}")
    return 0


def _shell_quote(value: Any) -> str:
    import shlex

    return shlex.quote(str(value))


if __name__ == "__main__":
    raise SystemExit(main())
