# One command to install, one to train, one to test. Each creates/uses .venv and installs
# only when pyproject.toml changed (a stamp file). `make help` lists the targets.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the CPU build of torch: a local wheel where pip finds one, else PyTorch's CPU index
# (a plain `torch` requirement would pull a multi-GB CUDA build). For a CUDA build:
#   make install TORCH_SPEC=torch==2.13.0
TORCH_SPEC ?= torch==2.13.0+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
LINT_PATHS := src tests train.py eval.py benchmarks docs
# pytest-xdist workers: the suite's runs are single-threaded, so two cores halve its time
TEST_JOBS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist worksteal

.PHONY: help install train test test-fast numerics lint bench bench-quick clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

$(BIN)/activate:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q "$(TORCH_SPEC)" || $(BIN)/pip install -q "$(TORCH_SPEC)" --index-url $(TORCH_INDEX)
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install (only when pyproject.toml changed)

train: install  ## python train.py $(ARGS)
	$(BIN)/python train.py $(ARGS)

test: install  ## lint, the whole suite, then the numeric tests again under ATEN_CPU_CAPABILITY=default
	$(BIN)/ruff check $(LINT_PATHS)
	$(PYTEST) --durations=10 $(PYTEST_ARGS)
	ATEN_CPU_CAPABILITY=default $(PYTEST) -m numerics $(PYTEST_ARGS)

test-fast: install  ## the suite without tests marked slow
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

numerics: install  ## the tests that compare numbers, under ATEN_CPU_CAPABILITY=$(CAP) (default: default)
	ATEN_CPU_CAPABILITY=$(or $(CAP),default) $(PYTEST) -m numerics $(PYTEST_ARGS)

bench: install  ## benchmarks/speed.py $(ARGS)
	$(BIN)/python benchmarks/speed.py $(ARGS)

bench-quick: install  ## the quick speed benchmark
	$(BIN)/python benchmarks/speed.py --quick

lint: install  ## ruff check and format check
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

clean:  ## remove run outputs and caches
	rm -rf logs/train logs/eval .pytest_cache
