# The two commands of the README. Both install into a local virtualenv first (idempotent).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_OUT ?= demo-out

.PHONY: install test test-all demo lint zoo clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,serve,interop,ray]'
	touch $@

## make test: install, then run the fast test suite (what CI runs)
test: install
	$(BIN)/python -m pytest

## make test-all: also the slow tests (full-size models, long campaigns)
test-all: install
	$(BIN)/python -m pytest -m "slow or not slow"

## make demo: install, then attack a test-bed clip with the shipped C3D model, white-box (PGD) and
## black-box from top-1 labels only (Heuristic: 1-3 minutes on 2 cores); outputs in $(DEMO_OUT)/
demo: install
	$(BIN)/vidattack attack pgd --model c3d-synth --video synth:test:0 --eps 0.05 --out $(DEMO_OUT)/pgd
	$(BIN)/vidattack attack heuristic --model c3d-synth --video synth:test:0 --max-queries 20000 --out $(DEMO_OUT)/heuristic

lint: install
	$(BIN)/ruff check src tests benchmarks scripts

## make zoo: retrain every shipped model from scratch (deterministic; about half an hour on 2 cores)
zoo: install
	$(BIN)/python scripts/build_zoo.py

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
