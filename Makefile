# The two commands: `make demo` and `make test`. Each installs everything it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pytest workers: the dev-server tiers share one landscape per worker process.
PYTEST_WORKERS ?= 2

.PHONY: all install system-deps demo test lint typecheck unit bench bench-quick chaos fuzz clean

all: test

system-deps:
	./scripts/install-system-deps

# The product (apeiro-orchestrator) and the local landscape (apeiro-landscape, landscape/pyproject.toml)
# are two distributions; development installs both, editable, in one resolve.
$(STAMP): pyproject.toml landscape/pyproject.toml scripts/install-system-deps debian-packages.txt
	./scripts/install-system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e './landscape[server,ironic]'
	touch $(STAMP)

install: $(STAMP)

## The main job: start the local landscape, run the edge-site pipeline, print a summary, stop.
demo: $(STAMP)
	$(BIN)/apeiro demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

## Everything CI runs: lint, types, and every test tier.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

unit: $(STAMP)
	$(BIN)/pytest tests/unit

## Every benchmark's curve with its same-run baseline (minutes; `make bench-quick` smoke-tests each in seconds).
bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

## Long crash campaign (kill -9 and SIGTERM workers, restart Temporal; prints recovery times) and fault
## campaign; CI runs short versions in `make test`.
CHAOS_RUNS ?= 20
CHAOS_TERMS ?= 20
CHAOS_RESTARTS ?= 5
FAULT_RUNS ?= 12
CHAOS_OCM_RUNS ?= 8
CHAOS_OCM_TERMS ?= 8
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos.campaign --runs $(CHAOS_RUNS) --terms $(CHAOS_TERMS) --restarts $(CHAOS_RESTARTS)
	$(BIN)/python -m tests.chaos.ocm --runs $(CHAOS_OCM_RUNS) --terms $(CHAOS_OCM_TERMS)
	$(BIN)/python -m tests.chaos.faults --runs $(FAULT_RUNS)

## Bad-input campaign with many more examples than CI runs.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/pytest -m fuzz tests/fuzz

clean:
	rm -rf $(VENV) .apeiro .mypy_cache .ruff_cache .pytest_cache
