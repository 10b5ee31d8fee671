# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1
# The embedded defaults: local development with everything on this machine.
RUN_ENV := DEBUG=$${DEBUG:-true} PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://$(HOST):$(PORT)}

.PHONY: run test install install-dev lint typecheck pytest browser migrate seed bench clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

migrate: install
	$(RUN_ENV) $(PY) manage.py migrate --verbosity 0
	$(RUN_ENV) $(PY) manage.py migrate_tenants

seed: migrate
	$(RUN_ENV) $(PY) manage.py seed_demo

run: seed
	$(RUN_ENV) $(PY) manage.py collectstatic --noinput --verbosity 0
	@echo ""
	@echo "  Smart Scheduler is starting on http://$(HOST):$(PORT)/"
	@echo "  Dashboard: http://$(HOST):$(PORT)/dashboard/   Booking page: http://$(HOST):$(PORT)/b/demo-dental/"
	@$(RUN_ENV) $(PY) manage.py seed_demo --print-login
	@echo ""
	$(RUN_ENV) PORT=$(PORT) HOST=$(HOST) $(PY) -m smartscheduler.serve

# Debian's chromium for the browser tests; installed once, when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

lint: install-dev
	$(VENV)/bin/ruff check .

typecheck: install-dev
	$(VENV)/bin/mypy .

pytest: install-dev browser
	$(PY) -m pytest

test: lint typecheck pytest

bench: install-dev
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .mypy_cache .ruff_cache
