# Two entry points (README.md): `make test` and `make demo`. Both create the
# virtual environment in .venv on first use and reuse it afterwards.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A GPU user replaces this with a CUDA build, e.g.
#   make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
REQS := pyproject.toml requirements/build.txt requirements/constraints.txt

.PHONY: install test demo bench clean-venv

install: $(STAMP)

$(STAMP): $(REQS)
	@echo "==> setting up $(VENV) (first run builds fairseq: about 4 minutes)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check pip==24.3.1
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -r requirements/build.txt -c requirements/constraints.txt
	$(PY) -m pip install -q --no-build-isolation -c requirements/constraints.txt -e ".[test]"
	$(PY) -c "import fairseq, torch, contextpool_mt, fairseq_plugins; print('fairseq', fairseq.__version__, 'torch', torch.__version__)"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q --durations=20 tests

demo: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/run_demo.sh

# Plain Transformer vs. ContextPool (op, training step, generation), full run; see
# docs/results.md. A 1-2 minute CPU version: make bench BENCH_ARGS=--quick
# (or --device cuda, --out docs/benchmarks/NAME.json; benchmarks/benchmark.py --help).
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) benchmarks/benchmark.py $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
