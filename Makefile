# One command to install, one to train, one to test. Each creates/uses .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install train test lint bench bench-quick clean

$(BIN)/activate:
	$(PY) -m venv $(VENV)

install: $(BIN)/activate
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"

train: install
	$(BIN)/python train.py $(ARGS)

test: install
	$(BIN)/ruff check src tests train.py eval.py benchmarks
	$(BIN)/python -m pytest -q --durations=10 $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/speed.py $(ARGS)

bench-quick: install
	$(BIN)/python benchmarks/speed.py --quick

lint: install
	$(BIN)/ruff check src tests train.py eval.py benchmarks
	$(BIN)/ruff format --check src tests train.py eval.py benchmarks

clean:
	rm -rf logs/train logs/eval .pytest_cache
