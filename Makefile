# divweights: two commands do all set-up on a fresh machine.
#   make demo   the main job: noisy-label training comparison on Fashion-MNIST
#   make test   the test suite (creates .venv, installs everything it needs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: venv test test-fast demo docs bench clean dataset

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	# A bare `torch` requirement resolves to a multi-GB CUDA build here; pin the local CPU build first.
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[torch,jax,reference,train,test,docs]'
	touch $(STAMP)

venv: $(STAMP)

dataset:
	@bash scripts/ensure_fashion_mnist.sh

test: $(STAMP) dataset
	$(PY) -m pytest -n 2 --dist loadfile
	$(PY) -m pytest --doctest-modules divweights adapters -q -p no:cacheprovider

demo: $(STAMP) dataset
	$(PY) -m divweights_train.demo

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	$(PY) benchmarks/bench_core.py
	$(PY) benchmarks/bench_adapters.py

clean:
	rm -rf $(VENV) docs/_build docs/auto_examples .pytest_cache .hypothesis
