# Workflow Hub. `make run` starts everything; `make test` runs every test. Both bootstrap the
# virtualenv from the lock file on a fresh clone.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PG_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test test-sqlite test-postgres test-browser soak lint format bench migration lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is required (set PYTHON=...)" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## Create the virtualenv and install the locked dependencies

run: $(STAMP) ## Migrate, seed the demo and serve everything in-process on PORT (default 8000)
	APP_SEED_DEMO=$${APP_SEED_DEMO:-true} SANDBOX_ENABLED=$${SANDBOX_ENABLED:-true} \
		$(PY) -m app serve

test: $(STAMP) ## Run the suite on SQLite, then on PostgreSQL when one answers
	@$(MAKE) --no-print-directory test-sqlite
	@url="$${TEST_DATABASE_URL:-$(PG_URL)}"; \
	if $(PY) -m tests.pg_probe "$$url"; then \
		$(MAKE) --no-print-directory test-postgres TEST_DATABASE_URL="$$url"; \
	elif [ -n "$$TEST_DATABASE_URL" ] || [ "$$CI" = "true" ]; then \
		echo "PostgreSQL at $$url is unreachable, and it is required here" >&2; exit 1; \
	else \
		echo "PostgreSQL is not reachable on 127.0.0.1:5432: skipped the PostgreSQL run"; \
	fi

test-sqlite: $(STAMP) ## Run the suite on SQLite only
	@echo "== test suite on SQLite =="
	env -u TEST_DATABASE_URL $(PY) -m pytest $(ARGS)

test-postgres: $(STAMP) ## Run the suite on PostgreSQL only (TEST_DATABASE_URL or the local server)
	@echo "== test suite on PostgreSQL =="
	TEST_DATABASE_URL="$${TEST_DATABASE_URL:-$(PG_URL)}" $(PY) -m pytest $(ARGS)

test-browser: $(STAMP) ## The console in headless Chromium (installs Debian's chromium and chromium-driver)
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			echo "== installing chromium and chromium-driver =="; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				chromium chromium-driver >/dev/null; \
		else \
			echo "Chromium is absent and apt-get needs root here: the browser test will skip" >&2; \
		fi; \
	fi
	@echo "== browser test (screenshots in var/screenshots/) =="
	$(PY) -m pytest tests/browser -m browser $(ARGS)

SOAK_ENV := FAULTS_KILL_USERS=2000 FAULTS_ORACLE_USERS=1000 FAULTS_TICKS=10

soak: $(STAMP) ## The fault tests (kill -9, a faulty Oracle, two of everything) at full size on PostgreSQL
	@url="$${TEST_DATABASE_URL:-$(PG_URL)}"; \
	$(PY) -m tests.pg_probe "$$url" || { echo "make soak needs PostgreSQL at $$url" >&2; exit 1; }; \
	echo "== fault tests at full size on PostgreSQL =="; \
	TEST_DATABASE_URL="$$url" $(SOAK_ENV) $(PY) -m pytest tests/faults -p no:randomly -s \
		-o timeout=3600 $(ARGS)

lint: $(STAMP) ## ruff, ruff format --check, mypy (strict on app/, tests/, benchmarks/), import-linter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy app tests benchmarks
	$(VENV)/bin/lint-imports

format: $(STAMP) ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP) ## Run every benchmark; each prints a table of ratios
	@for script in benchmarks/[!_]*.py; do \
		echo "== $$script =="; $(PY) $$script || exit 1; \
	done

migration: $(STAMP) ## Autogenerate a migration: make migration m="module_slug"
	@test -n "$(m)" || { echo 'usage: make migration m="module_slug"' >&2; exit 1; }
	$(PY) -m app migrate
	$(VENV)/bin/alembic revision --autogenerate -m "$(m)"

lock: $(STAMP) ## Recompile the lock files after changing pyproject.toml
	$(VENV)/bin/pip-compile -q --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		--strip-extras --allow-unsafe -o requirements.lock pyproject.toml
	$(VENV)/bin/pip-compile -q --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		--strip-extras --allow-unsafe --extra dev --extra otel -o requirements-dev.lock pyproject.toml

clean: ## Remove the virtualenv, caches and the local database
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache var/*.db*
