# The two set-up commands are `make up` (the local stack with the demo pipelines) and
# `make test`. Each creates the virtualenv with the pinned dependencies when it is missing.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: up demo up-scale-out demo-scale-out test lint unit bench lock clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || \
	  { echo "flowfactory needs Python 3.11: run make PYTHON=/path/to/python3.11 ..."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/flowfactory up

demo: $(STAMP)
	$(BIN)/flowfactory demo

# The same on the production topology: PostgreSQL, Redis, two API servers, the services
# process and two workers (needs Debian's postgresql and redis-server packages).
up-scale-out: $(STAMP)
	$(BIN)/flowfactory up --scale-out

demo-scale-out: $(STAMP)
	$(BIN)/flowfactory demo --scale-out

# The testing tiers, fastest first: static analysis (lint, types, import layers), config
# checks, then pytest.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src
	$(BIN)/lint-imports
	$(BIN)/flowfactory validate
	$(BIN)/flowfactory render --check
	$(BIN)/flowfactory schema check
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# Re-pin every dependency from a fresh virtualenv (then commit requirements.lock). Sorted
# explicitly, case-insensitively by line, because pip releases differ in freeze's order.
lock:
	rm -rf .lock-venv build
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade "pip>=24"
	.lock-venv/bin/python -m pip install --quiet ".[dev]"
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^flowfactory' | \
	  .lock-venv/bin/python -c 'import sys; sys.stdout.writelines(sorted(sys.stdin, key=str.lower))' \
	  > requirements.lock
	rm -rf .lock-venv build

clean:
	rm -rf $(VENV) .flowfactory data
