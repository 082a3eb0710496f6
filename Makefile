# mynumber: `make run` serves the seeded system, `make test` runs everything CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MYNUMBER_DATA_DIR ?= ./var

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@bin/ensure-venv $(PYTHON) $(VENV)
	@touch $(STAMP)

.PHONY: install
install: $(STAMP) ## Create .venv and install the project with its dev tools

.PHONY: run
PORT ?= 8000

# Every step of `make run` (the seed's certificates name the OCSP address too) uses the port's URL.
run: export MYNUMBER_PUBLIC_URL ?= http://127.0.0.1:$(PORT)
run: $(STAMP) ## Migrate, seed if empty, serve on http://127.0.0.1:8000 (SQLite under ./var; PORT=8080 for another port)
	$(BIN)/mynumber db upgrade
	$(BIN)/mynumber agencies encrypt-copies
	$(BIN)/mynumber seed --if-empty
	$(BIN)/mynumber serve --host 127.0.0.1 --port $(PORT)

.PHONY: system-deps
system-deps: ## Install the Debian packages the tests need (when run as root)
	@bin/system-deps

# axe-core (the npm package) for the browser tests' accessibility check, injected into each page.
AXE_VERSION := 4.11.0
AXE := $(VENV)/axe-core/node_modules/axe-core/axe.min.js

.PHONY: axe
axe: $(AXE) ## Fetch axe-core for the accessibility check (needs npm; else that check is skipped)
$(AXE):
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --silent --no-audit --no-fund --prefix $(VENV)/axe-core axe-core@$(AXE_VERSION); \
	else \
	  echo "note: npm not found: the accessibility (axe-core) check will be skipped; install Node.js and npm (sudo apt-get install npm) and run make axe" >&2; \
	fi

.PHONY: lint
lint: $(STAMP) ## ruff, mypy (strict on codes and interfaces), import-linter
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: test-sqlite
test-sqlite: $(STAMP) ## The suite on the embedded SQLite databases
	$(BIN)/pytest -n 2 -q

.PHONY: test-postgres
test-postgres: $(STAMP) ## The suite on a throwaway PostgreSQL cluster
	bin/with-postgres $(BIN)/pytest -n 2 -q

.PHONY: test-api
test-api: $(STAMP) ## schemathesis, longer run: no 5xx, every response matches the OpenAPI
	MYNUMBER_SCHEMATHESIS_EXAMPLES=100 $(BIN)/pytest -q -p no:randomly tests/e2e/test_openapi_schemathesis.py

.PHONY: test-install
test-install: ## A plain install (no extras) in a fresh venv: db upgrade, seed, --help
	bin/check-plain-install $(PYTHON)

.PHONY: test
test: $(STAMP) system-deps axe lint test-install test-sqlite test-postgres test-api ## Everything CI runs

.PHONY: bench
bench: $(STAMP) ## Every benchmark at the recorded sizes, SQLite + PostgreSQL (BENCH_SCALE=small: a quick check)
	bin/bench-all

.PHONY: clean
clean: ## Remove the virtual environment and local data
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
