# Two entry points a newcomer needs: `make demo` (the whole flow on an embedded AWS)
# and `make test` (install everything, lint, type-check, run every test).
PYTHON ?= python3
VENV ?= .venv
CHECKOV_VENV ?= .venv-checkov
BIN := $(VENV)/bin
CHECKOV_VERSION ?= 3.3.30

.PHONY: venv checkov lint typecheck cfn-lint cfn-checkov pytest test demo bench build clean

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/activate

venv: $(BIN)/activate

# checkov pins its own boto3, so it lives in a virtual environment of its own.
$(CHECKOV_VENV)/bin/checkov:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet 'checkov==$(CHECKOV_VERSION)'

checkov: $(CHECKOV_VENV)/bin/checkov

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

cfn-lint: venv
	$(BIN)/cfn-lint templates/*.yaml

cfn-checkov: checkov
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -d templates

pytest: venv
	$(BIN)/pytest

test: lint typecheck cfn-lint cfn-checkov pytest

demo: venv
	$(BIN)/python scripts/demo/demo.py $(ARGS)

bench: venv
	$(BIN)/python scripts/bench/benchmark.py

build: venv
	$(BIN)/python scripts/release/build_lambdas.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) build dist .pytest_cache .mypy_cache .ruff_cache
