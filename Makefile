# BayesPilot — `make run` does the main job on the embedded defaults, `make test` checks everything.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed
N     ?= 20000
HOST  ?= 127.0.0.1
PORT  ?= 8000
export MLFLOW_DISABLE_TELEMETRY := true
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help venv run monitor train train-stage2 serve test check-sync nbtest pytest bench export clean-nb lab mlflow-ui

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): settings.ini setup.py
	@test -x $(PY) || python3 -m venv $(VENV)
	time $(PY) -m pip install -q --upgrade pip
	time $(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)  ## create .venv and install bayespilot with its dev tools

run: $(STAMP)  ## generate data, train Stage 1 and 2, score the base, simulate a round of outcomes, serve the API
	$(BIN)/bayespilot generate --n $(N) --seed 42 --out data/churn.csv
	$(BIN)/bayespilot train --config configs/default.toml
	$(BIN)/bayespilot train-stage2 --config configs/default.toml
	$(BIN)/bayespilot score --config configs/default.toml --data data/churn.csv --out reports/score/decisions.parquet --overwrite
	$(MAKE) --no-print-directory monitor
	$(BIN)/bayespilot simulate --config configs/default.toml --rounds 1 --quiet
	$(BIN)/bayespilot serve --config configs/default.toml --host $(HOST) --port $(PORT)

monitor: $(STAMP)  ## monitoring report of the synthetic test split: reports/monitoring/table-churn-test/ (exit 3 = alert)
	$(BIN)/bayespilot monitor --config configs/default.toml --split test --quiet || test $$? -eq 3

test: $(STAMP) check-sync nbtest pytest  ## sync check, notebook tests, end-to-end tests

check-sync: $(STAMP)  ## notebooks and exported package agree, notebooks are clean
	@time bash .ci/check_sync.sh $(BIN)

nbtest: $(STAMP)  ## run every notebook as a test
	time $(BIN)/nbdev_test --n_workers 2 --timing

pytest: $(STAMP)  ## end-to-end tests: CLI, live uvicorn, load, fuzzing
	time $(BIN)/pytest -q --durations=10 tests

bench: $(STAMP)  ## benchmarks; figures in reports/bench/
	$(PY) bench/run_all.py

export: $(STAMP)  ## notebooks -> package, then clean notebooks
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean

lab: $(STAMP)  ## explore the notebooks
	$(BIN)/jupyter lab nbs

mlflow-ui: $(STAMP)  ## browse runs and the model registry
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db
