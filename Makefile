# Two commands set up and run everything on a fresh machine with Python 3.11:
#   make demo   - create .venv, install unlearnkit, run `unlearnkit demo`
#   make test   - create .venv, install unlearnkit + dev tools, run the test suite
# and one for the evidence:
#   make tables - regenerate BENCHMARKS.md and docs/benchmarks/ from the committed results/
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PIP    := $(VENV)/bin/python -m pip
# torch is pinned (requirements/constraints.txt) to the version the benchmarks were measured with; GPU users
# install their own torch first and run `pip install -e .` (see README).
CONSTRAINTS := -c requirements/constraints.txt

.PHONY: demo test tables install install-dev clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml requirements/constraints.txt
	$(PIP) install --quiet $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet $(CONSTRAINTS) -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(VENV)/bin/unlearnkit demo

test: install-dev
	$(VENV)/bin/python -m pytest -n 2 --durations=15

tables: install
	$(VENV)/bin/python benchmarks/tables.py

clean:
	rm -rf $(VENV) unlearnkit-demo .pytest_cache
