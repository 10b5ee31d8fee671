# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1
# The embedded defaults: local development with everything on this machine.
RUN_ENV := DEBUG=$${DEBUG:-true} PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://$(HOST):$(PORT)}

.PHONY: run test install install-dev lint typecheck pytest browser postgres redis migrate seed bench clean

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

# The PostgreSQL server the tests of PostgreSQL tenant databases use
# (127.0.0.1:5432, user postgres): its clusters are started when it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  pg_lsclusters --no-header | while read -r version cluster _; do \
	    $$SUDO pg_ctlcluster "$$version" "$$cluster" start || true; done; \
	  pg_isready -q -h 127.0.0.1 -p 5432 -t 30; }

# Redis for the scale-out tests (127.0.0.1:6379): started when it does not answer.
# Its data is disposable: no snapshots, no append-only file.
redis:
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { \
	  mkdir -p /var/lib/redis /var/log/redis; \
	  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
	    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log; \
	  for _ in $$(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; \
	    sleep 0.1; done; }

lint: install-dev
	$(VENV)/bin/ruff check .

typecheck: install-dev
	$(VENV)/bin/mypy .

pytest: install-dev browser postgres redis
	$(PY) -m pytest

test: lint typecheck pytest

bench: install-dev
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .mypy_cache .ruff_cache
