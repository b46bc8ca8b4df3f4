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
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.txt
	@touch $@

$(VENV)/.installed-test: requirements-test.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-test.txt
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_demo_user
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Browser tests need Debian's chromium; scripts/ensure-chromium.sh installs it where it can.
test: install-test
	@bash scripts/ensure-chromium.sh || true
	$(BIN)/python -m pytest

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The standalone sandbox API on a port, for the SDK, curl or a second dashboard.
sandbox: install
	$(BIN)/python manage.py run_sandbox --port 8001

# Every benchmark side by side, written to BENCHMARKS.md (a few minutes); QUICK=1: seconds.
bench: install-test
	$(BIN)/python bench/run.py $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) .pytest_cache staticfiles
