"""The compatibility matrix: the built wheel, not the checkout, on the lowest and newest Airflow.

``make test-matrix`` (CI layer ``matrix``) builds the wheel, then for each combination of Python and
Airflow (default: the two corners, Python 3.11 with the lowest Airflow ``pyproject.toml`` declares
and Python 3.13 with the newest, the locked one; ``--all`` adds the other two):

1. creates a fresh venv under ``.matrix/`` and installs the wheel with its ``[examples,redis-budget]``
   extras, that Airflow, pytest and pytest-timeout (uv, from its cache or PyPI: the only downloads),
   against the lock for the newest; the floor resolves freely, as ``pip install`` would (the lock
   pins libraries newer than Airflow 3.3.0 allows);
2. checks the provider is imported from that venv (the wheel), not from the checkout;
3. runs the hook and operator tests (``tests/hooks``, ``tests/operators``, without the soak runs and
   the shared rate budget's timing tests, which the unit layer makes) from a copy of ``tests/``
   beside which there is no package;
4. runs ``airflow dags test`` once for each example DAG against ``perkville-sandbox serve`` (the
   wheel's own), with a generated membership database, and reads each run's state from the
   metadata database.

The combinations run side by side (their tests mostly wait on loopback HTTP), each in its own
folder, sandbox port and Airflow home. Prints one line per combination and step with its time;
exits 1 if any step failed (its log path is printed).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("MATRIX_OUT") or ROOT / ".matrix")
LOCK = ROOT / "constraints" / "py3.11.txt"
PYTHONS = {"3.11": "python3.11", "3.13": "/root/.pyenv/versions/3.13.0/bin/python3.13"}
#: The demo's membership data for fixed days (never the wall clock): check-ins on 2026-01-01..03.
ANCHOR = "2026-01-04"
TIMEZONE = "America/New_York"
#: (dag_id, logical date, conf): the member sync first, then the last day's awards, then the export.
EXAMPLE_RUNS = (
    ("perkville_member_sync", "2026-01-01T00:00:00-05:00", {"full_sync": True}),
    ("perkville_daily_checkin_awards", "2026-01-04T00:00:00-05:00", {}),
    ("perkville_balance_export", "2026-01-04T00:00:00-05:00", {}),
)
#: Measured pacing, not compatibility: the unit layer runs them (they count 429s at an exact limit
#: and flake on a machine loaded by other jobs, on any Python and Airflow alike).
DESELECTED = ("--deselect", "tests/hooks/test_shared_budget.py")
INSTALL_TIMEOUT = 300
TEST_TIMEOUT = 840
DAG_TIMEOUT = 240


def airflow_versions() -> dict[str, str]:
    """``floor``: the lowest ``apache-airflow`` the package declares; ``newest``: the locked one."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floor = next(re.fullmatch(r"apache-airflow>=([\d.]+)", d.replace(" ", "")) for d in dependencies)
    locked = re.search(r"^apache-airflow==([\d.]+)$", LOCK.read_text(), re.MULTILINE)
    if floor is None or locked is None:
        raise SystemExit("cannot read the Airflow range from pyproject.toml and the lock")
    return {"floor": floor.group(1), "newest": locked.group(1)}


@dataclass
class Combo:
    python: str
    airflow: str
    label: str
    steps: list[tuple[str, bool, float, Path]] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return OUT / f"py{self.python}-airflow{self.airflow}"

    @property
    def bin(self) -> Path:
        return self.home / "venv" / "bin"

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(passed for _, passed, _, _ in self.steps)

    def run(self, name: str, command: list[str], timeout: int, **kwargs) -> bool:
        """Run one step, its output to ``<home>/<name>.log``; record whether it passed and its time."""
        log = self.home / f"{name}.log"
        started = time.monotonic()
        with log.open("w") as out:
            try:
                passed = (
                    subprocess.run(
                        command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False, **kwargs
                    ).returncode
                    == 0
                )
            except subprocess.TimeoutExpired:
                out.write(f"\n(timed out after {timeout} s)\n")
                passed = False
        self.steps.append((name, passed, time.monotonic() - started, log))
        return passed


def build_wheel(uv: str) -> Path:
    dist = OUT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    subprocess.run(
        [uv, "build", "--wheel", "--quiet", "--out-dir", str(dist)], cwd=ROOT, check=True, timeout=300
    )
    return next(dist.glob("*.whl"))


def copy_tests() -> Path:
    """``tests/`` and ``dags/`` with the pytest settings, but no package: imports must find the wheel's."""
    src = OUT / "src"
    shutil.rmtree(src, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "ui")
    shutil.copytree(ROOT / "tests", src / "tests", ignore=ignore)
    shutil.copytree(ROOT / "dags", src / "dags", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", src / "pyproject.toml")
    return src


def membership_db() -> Path:
    """The example DAGs' source (the demo's generator: it is in the checkout, not the wheel)."""
    path = OUT / "gym.db"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "perkville_provider.demo.data",
            "--db",
            str(path),
            "--anchor",
            ANCHOR,
            "--force",
        ],
        cwd=ROOT,
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
    )
    return path


def install(combo: Combo, uv: str, wheel: Path) -> bool:
    shutil.rmtree(combo.home, ignore_errors=True)
    combo.home.mkdir(parents=True)
    venv = combo.home / "venv"
    if not combo.run("venv", [uv, "venv", "--quiet", "--python", PYTHONS[combo.python], str(venv)], 120):
        return False
    command = [
        uv, "pip", "install", "--quiet", "--python", str(combo.bin / "python"),
        f"airflow-provider-perkville[examples,redis-budget] @ {wheel.as_uri()}",
        f"apache-airflow=={combo.airflow}", "pytest>=8", "pytest-timeout>=2.3",
    ]  # fmt: skip
    if combo.label == "newest":
        command += ["--constraints", str(LOCK)]
    if not combo.run("install", command, INSTALL_TIMEOUT):
        return False
    check = (
        "import sys, perkville_provider as p, importlib.util as u, importlib.metadata as m; "
        "assert p.__file__.startswith(sys.prefix), p.__file__; "
        "assert u.find_spec('perkville_provider.demo') is None, 'the demo is in the wheel'; "
        "v = m.version('apache-airflow'); "
        f"assert v.startswith({combo.airflow!r}), v; "
        "print(p.__file__, v)"
    )
    return combo.run("from-wheel", [str(combo.bin / "python"), "-c", check], 60, cwd=OUT)


def run_tests(combo: Combo, src: Path) -> bool:
    command = [str(combo.bin / "python"), "-m", "pytest", "tests/hooks", "tests/operators", *DESELECTED]
    command += ["-v", "-p", "no:cacheprovider", "-m", "not soak"]
    env = {**os.environ, "PATH": f"{combo.bin}:{os.environ['PATH']}"}
    return combo.run("tests", command, TEST_TIMEOUT, cwd=src, env=env)


def airflow_env(combo: Combo, src: Path) -> dict[str, str]:
    home = combo.home / "airflow"
    dags = src / "dags"
    return {
        **os.environ,
        "PATH": f"{combo.bin}:{os.environ['PATH']}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [
                {
                    "name": "perkville_example_dags",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(dags), "refresh_interval": 0},
                }
            ]
        ),
    }


def start_sandbox(combo: Combo) -> tuple[subprocess.Popen, str]:
    ready = combo.home / "sandbox.url"
    log = (combo.home / "sandbox.log").open("w")
    command = [str(combo.bin / "perkville-sandbox"), "serve", "--port", "0", "--quiet"]
    command += [
        "--db",
        str(combo.home / "sandbox.db"),
        "--ready-file",
        str(ready),
        "--parent-pid",
        str(os.getpid()),
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the sandbox did not start: {combo.home / 'sandbox.log'}")
        time.sleep(0.1)
    return process, ready.read_text().strip()


def run_example_dags(combo: Combo, src: Path, gym_db: Path) -> bool:
    env = airflow_env(combo, src)
    if not combo.run("db-migrate", [str(combo.bin / "airflow"), "db", "migrate"], DAG_TIMEOUT, env=env):
        return False
    sandbox, base_url = start_sandbox(combo)
    try:
        conn = subprocess.run(
            [str(combo.bin / "python"), "-c", "import sys; from perkville_provider.sandbox.connection import "
             "airflow_conn_env_value as v; print(v(sys.argv[1]))", base_url],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.strip()  # fmt: skip
        env["AIRFLOW_CONN_PERKVILLE_DEFAULT"] = conn
        env["AIRFLOW_CONN_GYM_SOURCE_DB"] = json.dumps({"conn_type": "sqlite", "host": str(gym_db)})
        all_passed = True
        for dag_id, logical_date, conf in EXAMPLE_RUNS:
            command = [
                str(combo.bin / "airflow"),
                "dags",
                "test",
                dag_id,
                logical_date,
                "-c",
                json.dumps(conf),
            ]
            passed = combo.run(f"dags-test-{dag_id}", command, DAG_TIMEOUT, env=env, cwd=combo.home)
            state = run_state(combo, dag_id)
            if state != "success":
                combo.steps[-1] = (*combo.steps[-1][:1], False, *combo.steps[-1][2:])
            all_passed = all_passed and passed and state == "success"
        return all_passed
    finally:
        sandbox.terminate()
        try:
            sandbox.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sandbox.kill()


def run_state(combo: Combo, dag_id: str) -> str | None:
    """The DAG's last run's state, read from the metadata database (not from the command's output)."""
    with sqlite3.connect(combo.home / "airflow" / "airflow.db") as db:
        row = db.execute(
            "SELECT state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
    return None if row is None else row[0]


def run_combo(combo: Combo, uv: str, wheel: Path, src: Path, gym_db: Path) -> Combo:
    if install(combo, uv, wheel) and run_tests(combo, src):
        run_example_dags(combo, src, gym_db)
    return combo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uv", default=str(ROOT / ".venv" / "bin" / "uv"))
    parser.add_argument("--all", action="store_true", help="all four combinations, not the two corners")
    parser.add_argument("--only", choices=("floor", "newest"), help="one corner")
    args = parser.parse_args(argv)
    versions = airflow_versions()
    corners = [("3.11", "floor"), ("3.13", "newest")]
    pairs = [(p, v) for p in PYTHONS for v in versions] if args.all else corners
    pairs = [pair for pair in pairs if args.only in (None, pair[1])]
    combos = [Combo(python, versions[label], label) for python, label in pairs]
    started = time.monotonic()
    OUT.mkdir(exist_ok=True)
    wheel = build_wheel(args.uv)
    src, gym_db = copy_tests(), membership_db()
    print(f"wheel {wheel.name}; Airflow floor {versions['floor']}, newest {versions['newest']}", flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(combos)) as pool:
        done = list(pool.map(lambda c: run_combo(c, args.uv, wheel, src, gym_db), combos))
    for combo in done:
        verdict = "PASS" if combo.ok else "FAIL"
        print(f"Python {combo.python}, Airflow {combo.airflow} ({combo.label}): {verdict}")
        for name, passed, seconds, log in combo.steps:
            print(
                f"  {name:<42} {'ok  ' if passed else 'FAIL'} {seconds:6.1f} s"
                + ("" if passed else f"  {log}")
            )
    elapsed = time.monotonic() - started
    print(f"matrix: {sum(c.ok for c in done)}/{len(done)} combinations passed in {elapsed:.0f} s")
    return 0 if all(c.ok for c in done) else 1


if __name__ == "__main__":
    sys.exit(main())
