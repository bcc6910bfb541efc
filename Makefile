# Two commands on a fresh machine (Python 3.11 + make):
#   make demo   – create .venv, install, run the whole study on embedded data, write results/
#   make test   – create .venv, install, run the test suite (SLURM and browser tests included)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2

.PHONY: install demo test lint report status bench clean-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[study,dev]' -c requirements/constraints.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) --config preset=demo

report: $(STAMP)
	$(BIN)/wconv report --runs results/runs/demo --out results --params params.yaml

status: $(STAMP)
	$(BIN)/wconv status --params params.yaml

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

bench: $(STAMP)
	$(BIN)/python benchmarks/layer_overhead.py

clean-demo:
	rm -rf results/runs/demo results/logs data/.prepared
