# The two commands: `make run` (dashboard on the sandbox) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-test run test lint format e2e-deps sandbox bench clean

# Each stamp is remade when its lock file changes, so a pulled lock upgrade reinstalls.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# pip itself from its own hashed lock (never an unpinned upgrade): builds are reproducible.
$(VENV)/.pip: requirements-pip.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-pip.txt
	@touch $@

$(VENV)/.installed: requirements.txt $(VENV)/.pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.txt
	@touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-test.txt
	@touch $@ $(VENV)/.installed

# Production static files (hashed, compressed), collected again when one changes: without
# them gunicorn refuses to start. Blank token and sandbox on: only the files are wanted here.
STATIC_SOURCES := $(shell find static -type f 2>/dev/null)
$(VENV)/.collected: $(VENV)/.installed $(STATIC_SOURCES)
	DEBUG=false SECRET_KEY=collectstatic-only ALLOWED_HOSTS=localhost \
	METRONOME_BEARER_TOKEN= METRONOME_SANDBOX=true DATABASE_URL= CACHE_URL= \
	  $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@touch $@

install: $(VENV)/.installed $(VENV)/.collected

install-test: $(VENV)/.installed-test $(VENV)/.collected

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_demo_user
	-$(BIN)/python manage.py sync_customers
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Browser tests need Debian's chromium and axe-core from npm; the scripts install them where
# they can.
test: install-test
	@bash scripts/ensure-chromium.sh || true
	@bash scripts/ensure-axe.sh || true
	$(BIN)/python -m pytest

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The standalone sandbox API on a port, for the SDK, curl or a second dashboard.
sandbox: install
	$(BIN)/python manage.py run_sandbox --port 8001

# Every benchmark side by side, written to BENCHMARKS.md (about 40 minutes); QUICK=1: seconds.
# The index benchmark measures PostgreSQL too (100,000 and 1,000,000 customers): the one
# BENCH_DATABASE_URL or a PostgreSQL DATABASE_URL names, else a local one started as CI
# starts it (scripts/ensure-postgres.sh: Debian's package, as root).
BENCH_LOCAL_POSTGRES := postgres://dashboard:dashboard@127.0.0.1:5432/dashboard
BENCH_DATABASE_URL ?= $(or $(filter postgres://% postgresql://%,$(DATABASE_URL)),$(BENCH_LOCAL_POSTGRES))
bench: install-test
ifdef QUICK
	$(BIN)/python bench/run.py --quick
else
	@$(if $(filter $(BENCH_LOCAL_POSTGRES),$(BENCH_DATABASE_URL)),bash scripts/ensure-postgres.sh \
	  || { echo "make bench: no local PostgreSQL (started as root on Debian); set BENCH_DATABASE_URL" >&2; exit 1; })
	@echo "$(BIN)/python bench/run.py  (PostgreSQL: the one BENCH_DATABASE_URL names)"
	@DATABASE_URL='$(BENCH_DATABASE_URL)' $(BIN)/python bench/run.py
endif

clean:
	rm -rf $(VENV) .pytest_cache staticfiles
