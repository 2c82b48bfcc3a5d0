# The two commands: `make demo` (the main job) and `make test`.
# Each creates or reuses .venv in the checkout and installs what it needs.
# Installs are pinned: uv installs against constraints/py3.11.txt (Airflow's advice: install against
# constraints); `make lock` refreshes it. The package's own dependency ranges stay open for users.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := constraints/py3.11.txt
UV_VERSION := 0.13.9
UV := $(BIN)/uv
EXTRAS ?= test
REDIS_SERVER := /usr/bin/redis-server

.PHONY: demo test test-slow test-ui test-matrix lint bench sandbox clean lock cluster cluster-stop cluster-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Bytecode for everything installed, written once: where PYTHONDONTWRITEBYTECODE is set, every
# interpreter (each xdist worker, the Airflow CLI, a worker process) would compile Airflow again,
# about 4 s of CPU each. compileall skips what is up to date.
COMPILE := $(BIN)/python -m compileall -q -j 0 $(VENV)/lib

$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(UV) pip install --quiet --python $(BIN)/python --constraints $(LOCK) -e ".[$(EXTRAS)]"
	$(COMPILE) >/dev/null
	touch $(STAMP)

# The local cluster needs the [cluster] extra too (its own stamp: the default install lacks it).
CLUSTER_STAMP := $(VENV)/.installed-cluster
CLUSTER_TIMEOUT ?= 1080

$(CLUSTER_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(UV) pip install --quiet --python $(BIN)/python --constraints $(LOCK) -e ".[test,cluster]"
	$(COMPILE) >/dev/null
	touch $(CLUSTER_STAMP)

# Refresh the lock: every extra, resolved for Python 3.11 on Linux.
lock: | $(BIN)/python
	$(UV) pip compile pyproject.toml --all-extras --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --no-header --quiet -o $(LOCK)

demo: $(STAMP)
	$(BIN)/python -m perkville_provider.demo

# The shared rate budget's tests start their own redis-server (127.0.0.1, a free port, stopped by PID).
$(REDIS_SERVER):
	apt-get install -y redis-server || (apt-get update && apt-get install -y redis-server)

# `make test`: every test but the slow-by-nature ones, one xdist worker per logical CPU. Each worker
# has its own Airflow home, sandbox and rate-budget state; the real-time rate tests share one
# worker (xdist_group "realtime"). The markers are declared in pyproject.toml.
PYTEST_WORKERS ?= logical
test: $(STAMP) | $(REDIS_SERVER)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not soak and not slow"

# The slow-by-nature tests. `slow` (Airflow's CLI, spawned worker processes) one at a time (-n 0):
# the worker-process tests measure real-time rates on an otherwise idle machine. Then `soak` (the
# fault soak, whole DAG runs with OpenLineage or StatsD listening, a PostgreSQL of their own), also
# one at a time: the soak's paced retries are judged against a sandbox no other test loads.
test-slow: $(CLUSTER_STAMP) | $(REDIS_SERVER)
	test -d /usr/lib/postgresql || apt-get install -y postgresql || (apt-get update && apt-get install -y postgresql)
	$(BIN)/python -m pytest -n 0 -m "slow and not soak"
	$(BIN)/python -m pytest -n 0 -m "soak"

# Browser tests of the Airflow UI (tests/ui): a real Airflow and the sandbox, driven through
# Debian's chromium by playwright (whose own browser download is never used). The [ui] extra
# has its own stamp: the default install lacks it.
UI_STAMP := $(VENV)/.installed-ui
CHROMIUM := /usr/bin/chromium

$(UI_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(UV) pip install --quiet --python $(BIN)/python --constraints $(LOCK) -e ".[test,ui]"
	$(COMPILE) >/dev/null
	touch $(UI_STAMP)

test-ui: $(UI_STAMP)
	test -x $(CHROMIUM) || apt-get install -y chromium || (apt-get update && apt-get install -y chromium)
	$(BIN)/python -m pytest tests/ui

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The compatibility matrix (.ci/matrix.py): the built wheel, not the checkout, in fresh venvs with
# the lowest declared and the newest Airflow, on Python 3.11 and 3.13 (the two corners; MATRIX=--all
# for all four): hook and operator tests, and `airflow dags test` of each example DAG.
MATRIX ?=
test-matrix: $(STAMP)
	$(BIN)/python .ci/matrix.py --uv $(UV) $(MATRIX)

bench: $(STAMP)
	for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

sandbox: $(STAMP)
	$(BIN)/perkville-sandbox serve --port 8765 --db .demo/sandbox.db

# A local Airflow cluster (PostgreSQL, Redis, sandbox, two Celery workers): see README "Scaling out".
cluster: $(CLUSTER_STAMP)
	$(BIN)/python deploy/cluster.py start

cluster-stop: $(CLUSTER_STAMP)
	$(BIN)/python deploy/cluster.py stop

# The scenario on a fresh cluster under .cluster/test; the cluster is stopped however it ends.
cluster-test: $(CLUSTER_STAMP)
	trap '$(BIN)/python deploy/cluster.py stop --root .cluster/test >/dev/null 2>&1' EXIT INT TERM; \
	timeout --signal=TERM --kill-after=120 $(CLUSTER_TIMEOUT) $(BIN)/python deploy/scenario.py

clean:
	rm -rf $(VENV) .demo .cluster .pytest_cache .ruff_cache
