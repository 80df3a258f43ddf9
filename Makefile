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

.PHONY: help install train test test-fast numerics lint format docs bench bench-quick clean slurm-up slurm-down

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

test: install  ## lint, the docs, the whole suite, then the numeric tests again under ATEN_CPU_CAPABILITY=default
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mkdocs build --strict --quiet
	$(PYTEST) --durations=10 $(PYTEST_ARGS)
	ATEN_CPU_CAPABILITY=default $(PYTEST) -m numerics $(PYTEST_ARGS)

slurm-up:  ## a one-node SLURM on this machine for the tests marked slurm (root; scripts/slurm-local.sh)
	bash scripts/slurm-local.sh up

slurm-down:  ## stop it
	bash scripts/slurm-local.sh down

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

format: install  ## ruff format and the fixable lint rules (imports)
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

docs: install  ## build docs/ with MkDocs into logs/site (--strict: a broken link or page fails)
	$(BIN)/mkdocs build --strict

# everything runs generate lives under logs/ (runs, sweeps, notebooks' runs, the MLflow
# store, Optuna studies, the built docs), besides caches; logs/.gitkeep stays
clean:  ## remove everything runs generate (logs/*, caches) and say what
	@find logs -mindepth 1 -maxdepth 1 ! -name .gitkeep -print -exec rm -rf {} +
	@find . -path ./.venv -prune -o \( -name __pycache__ -o -name .pytest_cache -o -name .ruff_cache \) -type d -print -exec rm -rf {} +
