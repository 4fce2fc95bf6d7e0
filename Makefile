# ShiftScope: `make run` serves the lab, `make test` runs lint, types and the whole test suite.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
# A CPU build of torch 2.13.0 lies on this project's machines; elsewhere pip fetches it.
TORCH_SPEC ?= torch==2.13.0

PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: run test lint typecheck pytest image-test bench screenshot install install-dev clean

run: $(VENV)/.installed
	SHIFTSCOPE_HOST=$(HOST) SHIFTSCOPE_PORT=$(PORT) $(PY) -m app

test: $(VENV)/.installed-dev lint typecheck pytest

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/hadolint Dockerfile

typecheck: $(VENV)/.installed-dev
	$(PY) -m mypy

pytest: $(VENV)/.installed-dev
	$(PY) -m pytest

# The Dockerfile built with podman, run and checked from outside, then removed (deploy/image-test.sh;
# root, podman, runc and debootstrap: .ci/run installs them). Not part of `make test`: it needs root.
image-test: $(VENV)/.installed-dev
	PYTHON=$(PY) deploy/image-test.sh

bench: $(VENV)/.installed-dev
	$(PY) bench/bench_training.py

# Refresh the README's picture on purpose: the test writes build/screenshot.png (ignored) on every
# run; only this target copies it over the tracked docs/screenshot.png.
screenshot: $(VENV)/.installed-dev
	$(PY) -m pytest tests/test_browser.py::test_readme_screenshot
	cp build/screenshot.png docs/screenshot.png

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
