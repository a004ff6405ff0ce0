# All set-up happens here: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Where there is no NVIDIA GPU, a CPU build of torch goes in first so that the
# torch range in pyproject.toml is already satisfied and no CUDA build is pulled.
# Elsewhere, point TORCH_PIP_ARGS at PyTorch's CPU wheel index, e.g.
#   make test TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_CPU ?= torch==2.13.0
TORCH_PIP_ARGS ?=
STAMP := $(VENV)/.skae-installed

.PHONY: install demo test lint bench bench-quick gpu-bundle gpu-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if ! command -v nvidia-smi >/dev/null 2>&1 && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
		$(BIN)/python -m pip install $(TORCH_PIP_ARGS) "$(TORCH_CPU)"; \
	fi
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

demo: $(STAMP)
	$(BIN)/python -m benchmarks.demo --out demo_output

test: $(STAMP)
	$(BIN)/python -m pytest

# The benchmark suite: one run per question and data set, at the current
# defaults (benchmarks/README.md); each rewrites its file in benchmarks/results.
# About 2 hours 15 minutes on 2 CPU cores, summed from the fit times in the committed
# results and the measured durations of the small runs: reconstruction of
# digits, moons and swiss roll 2 min (at 37cc90a), of Fashion-MNIST 30 min (dense and
# denoising fits of 308 s and 887 s at k = 2, 8, 32, NMF's 61 s and kernel
# PCA's 219 s, plus scoring); denoising 17 min (Fashion-MNIST 15 min: 768 s
# of fits); outliers 10 min (9.5 min at ad6e408: Fashion-MNIST 7 min, the two
# sets with planted outliers 1.5 min); VAE 7 min (Fashion-MNIST: 331 s of fits); overhead 11 min;
# fit cost on digits 1 min; busy CPU 3 min; scale-out 3 min; searches 6 min (Intel
# Xeon; 20 on an AMD EPYC); memory 2 min;
# ordered 20 min (309 s
# of fits on the Fashion-MNIST subset and 751 s on all of it, 32 s on digits,
# at 6401518 and 866fcfa on an Intel Xeon), nesting 24 min (at 213b43c and d4083e7). Fashion-MNIST needs the Debian package
# dataset-fashion-mnist or a download.
bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[bench]"
	for d in digits moons swiss_roll fashion_mnist; do \
		$(BIN)/python -m benchmarks.bench_reconstruction --dataset $$d || exit 1; \
	done
	for d in digits fashion_mnist; do \
		$(BIN)/python -m benchmarks.bench_denoising --dataset $$d || exit 1; \
	done
	$(BIN)/python -m benchmarks.bench_outliers
	for d in digits fashion_mnist; do \
		$(BIN)/python -m benchmarks.bench_vae --dataset $$d || exit 1; \
	done
	for d in digits fashion_mnist fashion_mnist_full; do \
		$(BIN)/python -m benchmarks.bench_ordered --dataset $$d || exit 1; \
	done
	for d in digits fashion_mnist; do \
		$(BIN)/python -m benchmarks.bench_nesting --dataset $$d || exit 1; \
	done
	$(BIN)/python -m benchmarks.bench_overhead
	$(BIN)/python -m benchmarks.bench_fit_cost --dataset digits
	$(BIN)/python -m benchmarks.bench_busy_cpu
	$(BIN)/python -m benchmarks.bench_scale_out
	$(BIN)/python -m benchmarks.bench_search
	$(BIN)/python -m benchmarks.bench_memory

# Every benchmark's --quick mode, a check that the suite runs (written to
# bench_quick_output/, never over the committed results): 4 min 33 s measured on
# 2 idle CPU cores at commit f20519a (OMP_NUM_THREADS=1), before
# bench_search's quick run (about a minute) joined it.
bench-quick: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python -m benchmarks.bench_reconstruction --quick
	$(BIN)/python -m benchmarks.bench_denoising --quick
	$(BIN)/python -m benchmarks.bench_outliers --quick
	$(BIN)/python -m benchmarks.bench_vae --quick
	$(BIN)/python -m benchmarks.bench_ordered --quick
	$(BIN)/python -m benchmarks.bench_nesting --quick
	$(BIN)/python -m benchmarks.bench_overhead --quick
	$(BIN)/python -m benchmarks.bench_fit_cost --quick
	$(BIN)/python -m benchmarks.bench_busy_cpu --quick
	$(BIN)/python -m benchmarks.bench_scale_out --quick
	$(BIN)/python -m benchmarks.bench_search --quick
	$(BIN)/python -m benchmarks.bench_memory --quick

# The GPU check (benchmarks/gpu_check.py): verifies the CUDA path and measures
# training and inference speed on a GPU, within 8 minutes. GPU machines here
# have no network and no skorch: `make gpu-bundle`, where pip works, gathers
# the wheels (py3.12) and Fashion-MNIST's files into $(GPU_BUNDLE); carry that
# folder to the GPU machine and run `make gpu-check GPU_OUT=<folder>` there,
# with the machine's own python3 (it holds torch with CUDA).
GPU_BUNDLE ?= .gpu-bundle
GPU_WHEELS ?= skorch==1.4.0 tabulate==0.10.0 tqdm==4.70.1
GPU_PYTHON ?= python3
GPU_SITE ?= /tmp/skae-gpu-site
GPU_OUT ?= benchmarks/results
# More arguments of benchmarks/gpu_check.py, e.g. GPU_CHECK_ARGS="--steps tests".
GPU_CHECK_ARGS ?=
FASHION_MNIST_DIR ?= /usr/share/datasets/fashion-mnist

gpu-bundle: $(STAMP)
	test -d $(FASHION_MNIST_DIR) || { echo "gpu-bundle: $(FASHION_MNIST_DIR) is missing: apt-get install -y dataset-fashion-mnist, or set FASHION_MNIST_DIR to a folder holding its four .gz files" >&2; exit 2; }
	rm -rf $(GPU_BUNDLE)
	mkdir -p $(GPU_BUNDLE)/wheels $(GPU_BUNDLE)/fashion-mnist
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: \
		--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
		--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d $(GPU_BUNDLE)/wheels $(GPU_WHEELS)
	cp $(FASHION_MNIST_DIR)/*-ubyte* $(GPU_BUNDLE)/fashion-mnist/
	du -sh $(GPU_BUNDLE)

gpu-check:
	test -d $(GPU_BUNDLE)/wheels || { echo "gpu-check: $(GPU_BUNDLE)/wheels is missing: run 'make gpu-bundle' where pip works and carry $(GPU_BUNDLE) to this machine" >&2; exit 2; }
	$(GPU_PYTHON) -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
		--upgrade --target $(GPU_SITE) $(GPU_BUNDLE)/wheels/*.whl
	PYTHONPATH=$(GPU_SITE):$(CURDIR) PYTHONUNBUFFERED=1 $(GPU_PYTHON) -m benchmarks.gpu_check \
		--device cuda --data-home $(GPU_BUNDLE) --out $(GPU_OUT) $(GPU_CHECK_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The docs extra goes in on top of the dev install; its own stamp keeps
# `make docs` from reinstalling on every run.
DOCS_STAMP := $(VENV)/.skae-docs-installed

.PHONY: docs

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install -e ".[dev,docs]"
	touch $@

# HTML into docs/_build/html; any Sphinx warning or failing example fails it.
# -E re-reads every page, so warnings from unchanged pages are reported on
# every run; examples still re-run only when their source changed.
docs: $(DOCS_STAMP)
	$(BIN)/python -m sphinx -E -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) demo_output .pytest_cache
