"""How much memory does each call take beyond the data, against PCA?

For ``fit``, ``transform``, ``inverse_transform`` and ``score_samples`` of
AutoencoderTransformer, AutoencoderOutlierDetector and PCA (each with 32
components; the detector with its defaults), the peak resident memory of
the call above what the process held just before it (the imports, the data,
the fitted model, the codes given to ``inverse_transform``): in MiB, and
as a multiple of the bytes of the data the call gets (``X.nbytes``, or the
codes' for ``inverse_transform``; ``over_X``: of X's, for every call). The
peak is Linux's ``VmHWM``, reset just before the call through
``/proc/self/clear_refs``, so this script runs on Linux only. Each
(estimator, call) runs in a fresh process (``--child``); the process of
the fit saves the fitted model for the others. The networks train one epoch
(``max_iter=1``): their memory does not grow with the epochs.

Data: ``--rows`` rows of 784 features (Fashion-MNIST's width), float32 (or
``--dtype float64``): a smooth 16-dimensional manifold plus noise (sines of
low-frequency combinations of 16 latent coordinates), generated once and
saved for the child processes (``numpy.save``), so that no process holds
more than the rows it measures on.

Commands and their durations on 2 CPU cores (one torch thread)::

    python -m benchmarks.bench_memory                # ~2 min (100,000 rows)
    python -m benchmarks.bench_memory --quick        # ~1 min (20,000 rows)

Results: ``benchmarks/results/bench_memory.{json,md}`` (``--dtype float64``:
``bench_memory_float64``; ``--quick`` or ``--rows``: ``bench_quick_output/``).
"""

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks._common import (
    default_out,
    markdown_table,
    positive_int,
    writable_folder,
    write_results,
)

N_FEATURES = 784
N_COMPONENTS = 32
ESTIMATORS = ("pca", "skae_transformer", "skae_detector")
CALLS = {
    "pca": ("fit", "transform", "inverse_transform", "score_samples"),
    "skae_transformer": ("fit", "transform", "inverse_transform"),
    "skae_detector": ("fit", "transform", "score_samples"),
}


def make_rows(n_rows, dtype):
    """Rows on a smooth 16-dimensional manifold in 784 features, plus noise.

    Sines of random low-frequency combinations of 16 latent coordinates: a
    curved manifold whose principal components fall off as images' do, so
    that the detector's ``n_components=0.8`` keeps tens of units, not
    hundreds (with the code's width, ``transform``'s output grows).
    """
    rng = np.random.default_rng(0)
    latent = rng.uniform(-1, 1, size=(n_rows, 16))
    frequencies = 0.3 * rng.normal(size=(16, N_FEATURES))
    phases = rng.uniform(0, 2 * np.pi, size=N_FEATURES)
    X = np.empty((n_rows, N_FEATURES), dtype=dtype)
    for start in range(0, n_rows, 10_000):
        block = latent[start : start + 10_000] @ frequencies + phases
        X[start : start + 10_000] = np.sin(block) + 0.1 * rng.normal(size=block.shape)
    return X


def make_estimator(name):
    from sklearn.decomposition import PCA

    from skae import AutoencoderOutlierDetector, AutoencoderTransformer

    if name == "pca":
        return PCA(n_components=N_COMPONENTS, random_state=0)
    params = {"max_iter": 1, "random_state": 0}
    if name == "skae_transformer":
        return AutoencoderTransformer(n_components=N_COMPONENTS, **params)
    return AutoencoderOutlierDetector(**params)


def peak_reset():
    """Reset this process's peak resident memory to the present resident memory."""
    Path("/proc/self/clear_refs").write_text("5")


def memory_kib():
    """This process's resident memory and its peak since the reset, in KiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def child(name, call, workdir):
    """Measure one call in this (fresh) process; print its record as JSON."""
    import torch

    torch.set_num_threads(1)
    workdir = Path(workdir)
    X = np.load(workdir / "X.npy")
    model_file = workdir / f"{name}.pkl"
    if call == "fit":
        estimator, argument = make_estimator(name), X
    else:
        estimator = pickle.loads(model_file.read_bytes())
        argument = estimator.transform(X) if call == "inverse_transform" else X
    method = getattr(estimator, call)
    peak_reset()
    before, _ = memory_kib()
    method(argument)
    _, peak = memory_kib()
    if call == "fit":
        model_file.write_bytes(pickle.dumps(estimator))
    extra_mib = (peak - before) / 1024
    record = {
        "estimator": name,
        "call": call,
        "rows": len(X),
        "dtype": str(X.dtype),
        "input_mib": argument.nbytes / 2**20,
        "peak_extra_mib": extra_mib,
        "over_input": extra_mib * 2**20 / argument.nbytes,
        "over_X": extra_mib * 2**20 / X.nbytes,
    }
    print(json.dumps(record))


def measure(name, call, workdir):
    """Run :func:`child` in a fresh process; return its record."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_memory",
        "--child",
        name,
        call,
        str(workdir),
    ]
    # stderr is left to the terminal: a child that fails shows its traceback.
    output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    record = json.loads(output.stdout.strip().splitlines()[-1])
    print(record, flush=True)
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=positive_int, default=None)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=writable_folder, default=None)
    parser.add_argument("--child", nargs=3, metavar=("ESTIMATOR", "CALL", "DIR"))
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return
    n_rows = args.rows or (20_000 if args.quick else 100_000)
    if n_rows < 2 * N_COMPONENTS:
        # The networks' PCA start needs N_COMPONENTS rows after the tenth
        # held out for early stopping; twice that leaves room.
        parser.error(
            f"--rows {n_rows}: the estimators fit {N_COMPONENTS} components; "
            f"give at least {2 * N_COMPONENTS} rows"
        )
    records = []
    with tempfile.TemporaryDirectory() as workdir:
        np.save(Path(workdir) / "X.npy", make_rows(n_rows, args.dtype))
        for name in ESTIMATORS:
            for call in CALLS[name]:
                records.append(measure(name, call, workdir))
    name = "bench_memory" + ("" if args.dtype == "float32" else f"_{args.dtype}")
    columns = [
        "estimator",
        "call",
        "input_mib",
        "peak_extra_mib",
        "over_input",
        "over_X",
    ]
    table = markdown_table(records, columns) + (
        f"\n\nX: {n_rows} rows of {N_FEATURES} features, {args.dtype}, "
        f"{records[0]['input_mib']:.0f} MiB. peak_extra_mib: the call's peak "
        "resident memory above the process's just before it; over_input: "
        "that over the bytes of the call's argument (X, or the codes for "
        "inverse_transform); over_X: over X's bytes."
    )
    out = write_results(
        name,
        records,
        table,
        # A run with other settings than the defaults is not the result.
        args.out or default_out(args.quick or args.rows is not None),
    )
    print(out)


if __name__ == "__main__":
    main()
