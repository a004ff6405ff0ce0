"""How much does skae's fit cost over a hand-written loop, and how fast is inference?

Fit overhead: both train the same network (AutoencoderTransformer's default
dense module, ``init='random'``) with the same optimizer (Adam, same learning
rate and weight decay), batch size and number of epochs on the same rows, in
one process, runs alternating; the median of the per-pair ratios is
reported. skae runs with ``early_stopping=False``, a patience as long as the
run and ``learning_rate='constant'`` (the loop keeps its rate constant), so
both see every row every epoch for the same number of epochs. skae's time is
its whole ``fit`` (validation, scaling, building the net, training, one pass
to compute ``explained_variance_score_``); the loop's is its conversion of
the rows to model units, building its network and its training.

MKL's strict reproducible mode: importing skae sets ``MKL_CBWR=AUTO,STRICT``
so that a fit does not depend on the thread count (user guide). The same
fits as above, each in a fresh process under that mode and under MKL's own
(``MKL_CBWR=AUTO``), alternating (which mode goes first alternates too); the
median of the per-pair ratios (``strict_over_default``) is what the mode
costs, the processes' start and data loading left out.

Throughput: ``transform``, ``inverse_transform`` and ``score_samples`` of a
fitted 784 -> 32 dense model against PCA's ``transform``, and the bare torch
module encoding rows already converted to model units (``module_encode``).
Each row also gives the floating-point rate it implies (``gflop_s``: rows per
second times the multiply-adds of the linear layers used, twice), beside the
rate of one large float32 matrix product of the encoder's first layer's
shape (``sgemm_ceiling``, whose ``rows_per_s`` is that rate divided by the
encoder's work per row): no implementation of the same network can encode
faster than that on the machine.

Commands and their durations on 2 CPU cores::

    python -m benchmarks.bench_overhead          # ~11 min (11 pairs of fits)
    python -m benchmarks.bench_overhead --quick  # ~2 min (3 pairs, 3 epochs)

Needs Fashion-MNIST (:func:`skae.fetch_fashion_mnist`). Results:
``benchmarks/results/bench_overhead.{json,md}`` (``--device cuda``:
``bench_overhead_cuda``; ``--quick``, ``--epochs`` or ``--repeats``:
``bench_quick_output/``).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from benchmarks._common import (
    default_out,
    device_name,
    hand_written_fit,
    loop_matched_model,
    markdown_table,
    positive_int,
    resolve_device,
    to_model_units,
    writable_folder,
    write_results,
)
from skae import AutoencoderTransformer, fetch_fashion_mnist

# The batch size batch_size='auto' picks for these row counts, given to both
# skae and the loop so that they take the same steps.
BATCH_SIZE = 256
# skae's transform runs in batches of this many rows (a private constant of
# skae); the bare module gets the same batches, so that the comparison
# measures skae's overhead and not a batch size.
INFERENCE_BATCH_SIZE = 4096


WORKLOADS = ("digits_x4", "fashion_mnist_subset")


def datasets(quick):
    """The two workloads: digits repeated to ~7k rows, a Fashion-MNIST subset."""
    digits = load_digits().data.astype(np.float32)
    digits = np.tile(digits, (4, 1))
    fashion = fetch_fashion_mnist(subset="train").data[: 4000 if quick else 10000]
    return dict(zip(WORKLOADS, (digits, fashion), strict=True))


def skae_model(X, epochs, device):
    return loop_matched_model(epochs, device, n_components=16, batch_size=BATCH_SIZE)


def skae_fit(X, model):
    start = time.perf_counter()
    model.fit(X)
    return time.perf_counter() - start


def workload(benchmark, name, X, epochs):
    """The first columns of a fit record: what was trained, how long."""
    return {
        "benchmark": benchmark,
        "dataset": name,
        "rows": len(X),
        "features": X.shape[1],
        "epochs": epochs,
    }


def overhead(name, X, epochs, repeats, device):
    ratios, skae_times, loop_times = [], [], []
    for _ in range(repeats):
        model = skae_model(X, epochs, device)
        skae_times.append(skae_fit(X, model))
        loop_times.append(hand_written_fit(X, model, epochs, device))
        ratios.append(skae_times[-1] / loop_times[-1])
    record = {
        **workload("fit_overhead", name, X, epochs),
        "batch_size": BATCH_SIZE,
        "device": str(device),
        "skae_fit_s": statistics.median(skae_times),
        "hand_loop_s": statistics.median(loop_times),
        "median_ratio": statistics.median(ratios),
        "pairs": repeats,
    }
    print(record, flush=True)
    return record


# MKL_CBWR of skae's import, and MKL's own mode.
MKL_MODES = {"strict": "AUTO,STRICT", "default": "AUTO"}


def fit_in_child(name, epochs, quick, mode):
    """Seconds of one loop-matched fit on ``name``'s rows in a fresh process."""
    command = [sys.executable, "-m", "benchmarks.bench_overhead", "--time-one-fit"]
    command += [name, "--epochs", str(epochs)] + (["--quick"] if quick else [])
    env = {**os.environ, "MKL_CBWR": MKL_MODES[mode]}
    # stderr is left to the terminal: a child that fails shows its traceback.
    done = subprocess.run(
        command, env=env, stdout=subprocess.PIPE, text=True, check=True
    )
    return float(done.stdout.split()[-1])


def mkl_mode_cost(name, X, epochs, repeats, quick):
    """Fit time under skae's strict MKL mode over that under MKL's own."""
    times = {mode: [] for mode in MKL_MODES}
    ratios = []
    for pair in range(repeats):
        order = list(MKL_MODES) if pair % 2 == 0 else list(MKL_MODES)[::-1]
        for mode in order:
            times[mode].append(fit_in_child(name, epochs, quick, mode))
        ratios.append(times["strict"][-1] / times["default"][-1])
    record = {
        **workload("mkl_mode", name, X, epochs),
        "strict_fit_s": statistics.median(times["strict"]),
        "default_fit_s": statistics.median(times["default"]),
        "strict_over_default": statistics.median(ratios),
        "pairs": repeats,
    }
    print(record, flush=True)
    return record


def flops_per_row(*parts):
    """Floating-point operations of one row through the linear layers of ``parts``."""
    return sum(
        2 * layer.in_features * layer.out_features
        for part in parts
        if part is not None
        for layer in part.modules()
        if isinstance(layer, torch.nn.Linear)
    )


def sgemm_flop_rate(n_rows, n_in, n_out, device, repeats):
    """Floating-point operations per second of a float32 matrix product."""
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(n_rows, n_in, generator=generator).to(device)
    b = torch.rand(n_in, n_out, generator=generator).to(device)
    times = []
    for _ in range(repeats + 1):  # the first one warms up
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 2 * n_rows * n_in * n_out / statistics.median(times[1:])


def throughput(X, device, repeats):
    """Rows per second of inference on a fitted 784 -> 32 dense model."""
    model = AutoencoderTransformer(
        n_components=32, max_iter=1, random_state=0, device=device
    ).fit(X[:2000])
    codes = model.transform(X)
    pca = PCA(n_components=32).fit(X[:2000])
    module = model.net_.module_.eval()
    rows = torch.from_numpy(to_model_units(X, X[:2000])).to(device)

    def module_encode():
        # The bare torch module on rows already in model units, in the same
        # batches: the ceiling for transform on this machine.
        with torch.inference_mode():
            for start in range(0, len(rows), INFERENCE_BATCH_SIZE):
                module.encode(rows[start : start + INFERENCE_BATCH_SIZE])
        if device.type == "cuda":
            torch.cuda.synchronize()

    encode = flops_per_row(module.encoder, module.encoder_linear)
    decode = flops_per_row(module.decoder, module.decoder_linear)
    methods = {
        "module_encode": (module_encode, encode),
        "transform": (lambda: model.transform(X), encode),
        "inverse_transform": (lambda: model.inverse_transform(codes), decode),
        "score_samples": (lambda: model.score_samples(X), encode + decode),
        "pca_transform": (lambda: pca.transform(X), 2 * X.shape[1] * 32),
    }
    records = []
    for method, (call, flops) in methods.items():
        call()  # warm up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        rows_per_s = len(X) / statistics.median(times)
        records.append(inference_record(method, len(X), device, rows_per_s, flops))
    first = module.encoder[0]
    rate = sgemm_flop_rate(
        INFERENCE_BATCH_SIZE, first.in_features, first.out_features, device, repeats
    )
    records.append(
        inference_record("sgemm_ceiling", len(X), device, rate / encode, encode)
    )
    return records


def inference_record(method, n_rows, device, rows_per_s, flops):
    record = {
        "benchmark": "inference",
        "method": method,
        "rows": n_rows,
        "device": str(device),
        "rows_per_s": rows_per_s,
        "gflop_s": rows_per_s * flops / 1e9,
    }
    print(record, flush=True)
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", type=device_name, default="cpu")
    parser.add_argument("--epochs", type=positive_int, default=None)
    parser.add_argument(
        "--repeats", type=positive_int, default=None, help="pairs of runs (default 11)"
    )
    parser.add_argument("--out", type=writable_folder, default=None)
    parser.add_argument(
        "--time-one-fit",
        choices=WORKLOADS,
        help="print the seconds of one CPU fit on these rows (for mkl_mode)",
    )
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    repeats = args.repeats or (3 if args.quick else 11)
    epochs = args.epochs or (3 if args.quick else 10)
    data = datasets(args.quick)
    if args.time_one_fit:
        X = data[args.time_one_fit]
        print(skae_fit(X, skae_model(X, epochs, torch.device("cpu"))))
        return
    records = [overhead(name, X, epochs, repeats, device) for name, X in data.items()]
    if device.type == "cpu":
        records += [
            mkl_mode_cost(name, X, epochs, repeats, args.quick)
            for name, X in data.items()
        ]
    fashion = fetch_fashion_mnist(subset="train").data
    records += throughput(fashion, device, repeats)
    fit_rows = [r for r in records if r["benchmark"] == "fit_overhead"]
    mode_rows = [r for r in records if r["benchmark"] == "mkl_mode"]
    inference_rows = [r for r in records if r["benchmark"] == "inference"]
    table = (
        "skae fit / hand-written loop (median of alternating runs; "
        "learning_rate='constant', as in the loop):\n\n"
        + markdown_table(fit_rows, [k for k in fit_rows[0] if k != "benchmark"])
    )
    if mode_rows:
        table += (
            "\n\nThe same fits under MKL_CBWR=AUTO,STRICT (skae's) and "
            "MKL_CBWR=AUTO (MKL's own), in fresh processes, alternating:\n\n"
            + markdown_table(mode_rows, [k for k in mode_rows[0] if k != "benchmark"])
        )
    table += (
        "\n\nInference throughput, dense 784 -> 32 (defaults), "
        "Fashion-MNIST train rows:\n\n"
        + markdown_table(
            inference_rows, [k for k in inference_rows[0] if k != "benchmark"]
        )
    )
    suffix = "" if device.type == "cpu" else "_" + device.type
    # A run with other settings than the defaults is not the result.
    candidate = args.epochs is not None or args.repeats is not None
    path = write_results(
        "bench_overhead" + suffix,
        records,
        table,
        args.out or default_out(args.quick or candidate),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
