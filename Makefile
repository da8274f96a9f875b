# daskseg: every target sets up its own virtual environment first.
#
# Interpreter: Python 3.12 (pyenv's 3.12.x where present). jax 0.12 needs >= 3.12, and its CPU
# convolutions are much faster than jax 0.10's (the newest on 3.11); gunpowder 1.5, the benchmark
# anchor, needs >= 3.12 too. Override with `make PYTHON=/path/to/python3.12 test`.
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(wildcard /usr/bin/python3.12 /usr/local/bin/python3.12) python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all venv lint test test-fast demo bench bench-anchors bench-torch clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## make lint: ruff and mypy over daskseg/, as CI runs them before the tests
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

## make test: install and run the whole suite (slow end-to-end tests included)
test: $(STAMP)
	$(PY) -m pytest -q --durations=25

## make test-fast: skip the slow end-to-end tests
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not integration"

## make demo: synthesise data, train a small U-Net on the CPU, predict blockwise on a LocalCluster, report
demo: $(STAMP)
	$(VENV)/bin/daskseg demo --out demo_output

## make bench: the benchmarks (gunpowder/daisy anchors side by side when `make bench-anchors` installed them)
bench: $(STAMP)
	$(PY) benchmarks/run_all.py

## make bench-anchors: gunpowder 1.5 and daisy 2.0 in their own venv (.venv-anchors), for side-by-side runs
bench-anchors:
	$(PYTHON) -m venv .venv-anchors
	.venv-anchors/bin/python -m pip install --quiet --upgrade pip
	.venv-anchors/bin/python -m pip install --quiet 'gunpowder==1.5.*' 'daisy==2.0.*' -e .

## make bench-torch: the train-step benchmark with PyTorch side by side. .venv-torch gets torch AND
## daskseg (editable, with its dependencies): train_step.py re-runs itself there and imports both.
## The default Linux torch wheel pulls the CUDA libraries (several GB); TORCH_PIP_ARGS passes extra
## pip options, e.g. an index with PyTorch's CPU-only wheels. BENCH_TORCH_ARGS go to train_step.py
## (e.g. --quick). `make clean` removes .venv-torch.
TORCH_VENV       ?= .venv-torch
TORCH_PIP_ARGS   ?=
BENCH_TORCH_ARGS ?=
TORCH_STAMP      := $(TORCH_VENV)/.installed

$(TORCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TORCH_VENV)/bin/python -m pip install --quiet $(TORCH_PIP_ARGS) torch -e .
	$(TORCH_VENV)/bin/python -c "import torch, daskseg.jax.model; print('torch', torch.__version__, 'and daskseg import')"
	touch $(TORCH_STAMP)

bench-torch: $(TORCH_STAMP)
	$(TORCH_VENV)/bin/python benchmarks/train_step.py $(BENCH_TORCH_ARGS)

clean:
	rm -rf $(VENV) .venv-anchors .venv-torch demo_output bench_output .pytest_cache
