# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := build/demo
PORT ?= 8765

.PHONY: demo test lint format notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch is pinned (and installed first): an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[train,dev]'
	touch $@

demo: $(STAMP)
	$(BIN)/outcome-router split --logs data/swebench_verified/calls.parquet \
		--out $(DEMO)/split --train-fraction 0.7
	$(BIN)/outcome-router train --logs $(DEMO)/split/train.parquet --out $(DEMO)/bundle
	$(BIN)/outcome-router evaluate --bundle $(DEMO)/bundle --logs $(DEMO)/split/test.parquet \
		--out $(DEMO)/report
	@echo "report: $(DEMO)/report/report.html"
	$(BIN)/outcome-router demo-request --bundle $(DEMO)/bundle --port $(PORT) \
		--request data/swebench_verified/example_request.json

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# Re-run the notebooks on the shipped logs and keep their outputs (committed with them).
notebooks: $(STAMP)
	$(BIN)/python notebooks/execute.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf build .pytest_cache .ruff_cache
