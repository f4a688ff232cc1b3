# divweights: two commands do all set-up on a fresh machine.
#   make test   first: the test suite (creates .venv, installs everything it needs)
#   make demo   then: the main job, noisy-label training comparison on Fashion-MNIST (results in runs/demo/)
#   make docs   the Sphinx site (offline math) in docs/_build/html; make bench: every benchmark, quick mode
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: venv test test-slow test-fast demo docs bench bench-full bench-accuracy clean dataset

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

# make test: the default run (one representative of each expensive family); make test-slow: the rest
# (the torch.compile matrix, the full kill-and-resume loops, the docs build, long training runs).
test: $(STAMP) dataset
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow"
	$(PY) -m pytest --doctest-modules divweights adapters -q -p no:cacheprovider

test-slow: $(STAMP) dataset
	$(PY) -m pytest -n 2 --dist loadfile -m slow

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" -q -p no:cacheprovider

demo: $(STAMP) dataset
	$(PY) -m divweights_train.demo

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

# make bench: every benchmark in its quick mode (a few minutes; the GPU one says so and stops when there is
# no GPU; the accuracy grid, about an hour, prints its time estimate: make bench-accuracy runs it).
# make bench-full: the timing benchmarks at the sizes and round counts quoted in the README.
bench: $(STAMP)
	$(PY) benchmarks/bench_core.py --quick
	$(PY) benchmarks/bench_torch_step.py --quick
	$(PY) benchmarks/bench_jax_step.py --quick
	$(PY) benchmarks/gpu_step.py
	$(PY) benchmarks/fashion_mnist_table.py --estimate
	$(PY) benchmarks/adaptive_radius.py --tiny
	$(PY) benchmarks/adaptive_radius.py --cli --tiny

bench-full: $(STAMP)
	$(PY) benchmarks/bench_core.py --all
	$(PY) benchmarks/bench_torch_step.py --profile
	$(PY) benchmarks/bench_jax_step.py
	$(PY) benchmarks/gpu_step.py

bench-accuracy: $(STAMP) dataset
	$(PY) benchmarks/fashion_mnist_table.py --jobs 2
	$(PY) benchmarks/adaptive_radius.py
	$(PY) benchmarks/adaptive_radius.py --cli --datasets two-moons digits

clean:
	rm -rf $(VENV) docs/_build docs/auto_examples .pytest_cache .hypothesis
