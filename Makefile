# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := build/demo
DEMO_SWEBENCH := build/demo-swebench
ROUTEPROFILE := data/routeprofile
PORT ?= 8765
# Debian's chromium, for the browser test of spend.html (tests/training/test_spend_page.py).
CHROMIUM := /usr/bin/chromium

.PHONY: demo demo-swebench test lint format notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch is pinned (and installed first): an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[train,dev]'
	touch $@

# The demo: routeprofile (8 open-weight models, 12 task families, MIT; data/routeprofile),
# where the best model differs by task and routing pays.
demo: $(STAMP)
	$(BIN)/outcome-router split --logs $(ROUTEPROFILE)/calls.jsonl.gz \
		--out $(DEMO)/split --train-fraction 0.7
	$(BIN)/outcome-router train --logs $(DEMO)/split/train.parquet \
		--prices $(ROUTEPROFILE)/prices.json --out $(DEMO)/bundle
	$(BIN)/outcome-router evaluate --bundle $(DEMO)/bundle --logs $(DEMO)/split/test.parquet \
		--prices $(ROUTEPROFILE)/prices.json --out $(DEMO)/report
	@echo "report: $(DEMO)/report/report.html"
	$(BIN)/outcome-router demo-request --bundle $(DEMO)/bundle --port $(PORT) \
		--request $(ROUTEPROFILE)/example_request.json

# The agent example: SWE-bench Verified, 5 agent runs. An honest negative: the issue text
# does not say which run resolves an issue, and the router sends every issue to one model
# (README 'The agent example').
demo-swebench: $(STAMP)
	$(BIN)/outcome-router split --logs data/swebench_verified/calls.parquet \
		--out $(DEMO_SWEBENCH)/split --train-fraction 0.7
	$(BIN)/outcome-router train --logs $(DEMO_SWEBENCH)/split/train.parquet \
		--out $(DEMO_SWEBENCH)/bundle
	$(BIN)/outcome-router evaluate --bundle $(DEMO_SWEBENCH)/bundle \
		--logs $(DEMO_SWEBENCH)/split/test.parquet --out $(DEMO_SWEBENCH)/report
	@echo "report: $(DEMO_SWEBENCH)/report/report.html"
	$(BIN)/outcome-router demo-request --bundle $(DEMO_SWEBENCH)/bundle --port $(PORT) \
		--request data/swebench_verified/example_request.json

# The browser itself is the stamp: installed once, re-installed if it goes missing. Playwright
# drives this one; `playwright install` (a browser download of its own) is never run.
$(CHROMIUM):
	@echo "installing $(CHROMIUM) (apt-get install chromium) for the browser test"
	@export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	@test -x $@ || { echo "$@ is still missing after apt-get install chromium"; exit 1; }

test: $(STAMP) $(CHROMIUM)
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
