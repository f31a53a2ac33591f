# The two commands a newcomer needs:  make run  (whole system locally)  and  make test  (full suite).
# Both create the virtualenv and install everything on first use; nothing else needs to be on the machine.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test check lint format typecheck imports pytest bench bench-quick clean check-deploy

# Runtime dependencies at the versions the production images install (infra/requirements.lock), so a new
# upstream release changes nothing here until the lock is regenerated (see tests/deploy/runtime_lock.py).
$(STAMP): pyproject.toml infra/requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -c infra/requirements.lock
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/marketbot up

# make test = code-quality gates, then the whole test suite with coverage.
test: check pytest bench-quick

check: lint typecheck imports check-deploy

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: setup
	$(BIN)/mypy

imports: setup
	$(BIN)/lint-imports

# Dockerfiles (hadolint), compose schema, shellcheck, Prometheus rules, env template, nginx: ~15 s.
# The deploy scripts' runs and the backup-and-restore drill are in tests/deploy and run with `pytest`.
check-deploy: setup
	$(BIN)/pytest --no-cov -q tests/deploy/test_images.py tests/deploy/test_compose.py \
		tests/deploy/test_monitoring.py tests/deploy/test_env_and_nginx.py \
		tests/deploy/test_scripts.py::test_every_script_passes_shellcheck

pytest: setup
	$(BIN)/pytest

# make bench = every benchmark against its same-run baseline (several minutes): writes
# bench/results/<date>.json and the table in docs/benchmarks.md. bench-quick runs each one briefly (CI):
# it fails only when a benchmark cannot run, never on a missed target.
bench: setup
	$(BIN)/python -m bench.suite

bench-quick: setup
	$(BIN)/python -m bench.suite --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
