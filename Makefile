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

.PHONY: install demo test lint bench bench-quick clean

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

# The benchmark suite (hours on 2 CPU cores; Fashion-MNIST needs the Debian
# package dataset-fashion-mnist or a download). bench-quick: a few minutes.
bench: $(STAMP)
	for d in digits moons swiss_roll; do $(BIN)/python -m benchmarks.run --dataset $$d || exit 1; done
	$(BIN)/python -m benchmarks.run --dataset fashion_mnist --methods pca skae-dense
	$(BIN)/python -m benchmarks.run --dataset fashion_mnist --methods skae-denoising
	$(BIN)/python -m benchmarks.pca_ratio --dataset digits
	$(BIN)/python -m benchmarks.pca_ratio --dataset fashion_mnist --variants dense
	$(BIN)/python -m benchmarks.pca_ratio --dataset fashion_mnist --variants conv --max-iter 5
	# The settings the defaults were chosen against.
	$(BIN)/python -m benchmarks.pca_ratio --dataset digits --hidden-layer-sizes 512 256
	$(BIN)/python -m benchmarks.pca_ratio --dataset fashion_mnist --variants dense --hidden-layer-sizes 512 256
	$(BIN)/python -m benchmarks.pca_ratio --dataset digits --alpha 0.0001 --hidden-layer-sizes 512 256
	$(BIN)/python -m benchmarks.pca_ratio --dataset digits --activation relu --learning-rate constant --hidden-layer-sizes 512 256
	$(BIN)/python -m benchmarks.pca_ratio --dataset digits --activation relu --learning-rate constant --alpha 0.0001 --hidden-layer-sizes 512 256
	$(BIN)/python -m benchmarks.pca_ratio --dataset fashion_mnist --variants dense --activation relu --learning-rate constant --alpha 0.0001 --hidden-layer-sizes 512 256
	$(BIN)/python -m benchmarks.pca_ratio --dataset fashion_mnist --variants conv --max-iter 5 --ks 8 --activation relu --learning-rate constant --alpha 0.0001
	$(BIN)/python -m benchmarks.pca_ratio --dataset fashion_mnist --variants dense --activation relu --learning-rate constant --hidden-layer-sizes 512 256 --ks 8 32
	for k in 2 32; do $(BIN)/python -m benchmarks.pca_ratio --dataset fashion_mnist --variants dense --activation relu --hidden-layer-sizes 512 256 --ks $$k || exit 1; done
	for k in 2 32; do $(BIN)/python -m benchmarks.pca_ratio --dataset fashion_mnist --variants dense --activation relu --learning-rate constant --hidden-layer-sizes 1024 512 --ks $$k || exit 1; done
	$(BIN)/python -m benchmarks.pca_ratio --dataset fashion_mnist --variants dense --activation relu --learning-rate constant --hidden-layer-sizes 512 256 --ks 2
	for k in 2 32; do $(BIN)/python -m benchmarks.pca_ratio --dataset fashion_mnist --variants dense --hidden-layer-sizes 512 256 --batch-size 128 --ks $$k || exit 1; done
	$(BIN)/python -m benchmarks.run --dataset fashion_mnist --quick
	$(BIN)/python -m benchmarks.run --dataset fashion_mnist --ks 30 --methods pca skae-dense
	$(BIN)/python -m benchmarks.denoising
	$(BIN)/python -m benchmarks.outlier
	$(BIN)/python -m benchmarks.outlier --noise gaussian --noise-level 0.2
	$(BIN)/python -m benchmarks.outlier --datasets fashion_mnist --noise gaussian --noise-level 0.1
	$(BIN)/python -m benchmarks.outlier --datasets digits --conv --error-window 1
	$(BIN)/python -m benchmarks.outlier --datasets fashion_mnist --conv --error-window 1 --classes 2 6
	$(BIN)/python -m benchmarks.outlier --datasets fashion_mnist digits --image-rows
	$(BIN)/python -m benchmarks.outlier --datasets digits --conv
	$(BIN)/python -m benchmarks.outlier --datasets fashion_mnist --conv --classes 2 6
	$(BIN)/python -m benchmarks.variational
	$(BIN)/python -m benchmarks.overhead
	$(BIN)/python -m benchmarks.levers
	$(BIN)/python -m benchmarks.dask_search

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run --dataset digits --quick

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
