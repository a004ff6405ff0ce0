"""Fit cost: how much compute does a fit take for the quality it reaches?

Seconds depend on the machine and on what else runs on it, so the cost is
also given in *equivalent epochs*: the fit's seconds divided by the seconds
of one epoch of a fixed hand-written PyTorch loop on the same training rows,
timed in the same run. The reference network is the transformer's dense
default before the fit-cost work: ``n_features -> 512 -> 256 -> 128 -> k``
and back, SiLU, Adam at 1e-3, batches of 256. A smaller network, fewer
epochs or cheaper epochs all lower the count. Quality is the held-out
reconstruction MSE divided by PCA's at the same k.

- digits: ``train_test_split(test_size=0.25, random_state=0)``, k = 2..32;
- fashion_mnist: the published 60k/10k split, k = 2, 8, 32.

Both run on one torch thread and are timed in CPU seconds of the process
(``time.process_time``) as well as wall seconds; the equivalent epochs are
CPU seconds over CPU seconds, which leaves out the time the process waited
for a core while other processes ran. What shares the memory and caches
still slows both: beside another training process on 2 cores the reference
epoch on Fashion-MNIST took 4.3 to 6.6 CPU seconds from one k to the next.
Run it on an otherwise idle machine; compare settings by their epochs and
by runs paired in the same window.

Command: ``python -m benchmarks.bench_fit_cost --dataset digits`` (about a
minute on two CPU cores) or ``--dataset fashion_mnist`` (about 7 minutes);
``--quick``: k = 2 only, seconds on digits. ``--set key=value`` overrides an
estimator parameter, to measure a candidate setting, and ``--n-train N``
trains on the first N training rows only. E.g. the previous default, the
planned run on every feature: ``--dataset fashion_mnist --set
input_components=None`` (about 15 minutes); the size threshold of
``learning_rate='auto'``, measured on every feature: ``--n-train 10000``
with and without ``--set learning_rate=one_cycle batch_size=512``, and
``--n-train 30000`` with and without ``--set learning_rate=adaptive``,
each with ``input_components=None``; the bfloat16 plan of the user guide:
``--set input_components=None max_iter=50 precision=bfloat16`` (about 6
minutes on a CPU with native bfloat16).
Writes ``benchmarks/results/bench_fit_cost_<dataset>.{json,md}`` at the
defaults, and candidate settings (``--set``, ``--n-train``, ``--ks``) into
``bench_quick_output/``.
"""

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from benchmarks._common import (
    add_set_argument,
    default_out,
    format_params,
    markdown_table,
    parse_overrides,
    positive_int,
    reference_epoch_seconds,
    writable_folder,
    write_results,
)
from skae import AutoencoderTransformer, fetch_fashion_mnist

KS = {"digits": (2, 4, 8, 16, 32), "fashion_mnist": (2, 8, 32)}
N_FEATURES = {"digits": 64, "fashion_mnist": 784}


def load(dataset):
    if dataset == "digits":
        X, _ = load_digits(return_X_y=True)
        X = X.astype(np.float32)
        return train_test_split(X, test_size=0.25, random_state=0)
    return (
        fetch_fashion_mnist(subset="train").data,
        fetch_fashion_mnist(subset="test").data,
    )


def input_axes(model):
    """How many principal axes the network saw; 0 for every feature."""
    axes = getattr(model, "input_components_", None)
    return 0 if axes is None else len(axes)


def mse(model, X):
    return float(np.mean((X - model.inverse_transform(model.transform(X))) ** 2))


def measure(dataset, ks, overrides, n_train=None):
    X_train, X_test = load(dataset)
    X_train = X_train[:n_train]
    # Untimed: the first fit in a process pays one-off costs (torch imports
    # its compiler's stubs at the first optimizer step), which would
    # otherwise fall on the first k.
    AutoencoderTransformer(2, device="cpu", **{**overrides, "max_iter": 1}).fit(
        X_train[:64]
    )
    records = []
    for k in ks:
        pca_mse = mse(PCA(n_components=k, random_state=0).fit(X_train), X_test)
        model = AutoencoderTransformer(
            n_components=k, random_state=0, device="cpu", **overrides
        )
        start, cpu_start = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train)
        fit_s = time.perf_counter() - start
        fit_cpu_s = time.process_time() - cpu_start
        epoch_s, epoch_cpu_s = reference_epoch_seconds(X_train, k)
        record = {
            "k": k,
            "skae_over_pca": mse(model, X_test) / pca_mse,
            "fit_s": fit_s,
            "fit_cpu_s": fit_cpu_s,
            "reference_epoch_s": epoch_s,
            "reference_epoch_cpu_s": epoch_cpu_s,
            "equivalent_epochs": fit_cpu_s / epoch_cpu_s,
            "epochs": model.n_iter_,
            "best_epoch": model.best_epoch_,
            "learning_rate": model.training_plan_["learning_rate"],
            "batch_size": model.training_plan_["batch_size"],
            "input_axes": input_axes(model),
        }
        print(record, flush=True)
        records.append(record)
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(KS), default="digits")
    parser.add_argument("--ks", type=positive_int, nargs="+")
    parser.add_argument(
        "--n-train",
        type=positive_int,
        default=None,
        help="train on the first N training rows only (a candidate run)",
    )
    add_set_argument(parser)
    parser.add_argument("--quick", action="store_true", help="k = 2 only")
    parser.add_argument("--out", type=writable_folder, default=None)
    args = parser.parse_args(argv)
    overrides = parse_overrides(
        parser,
        args.set,
        AutoencoderTransformer,
        fixed=("n_components", "random_state", "device"),
    )
    ks = args.ks or ((2,) if args.quick else KS[args.dataset])
    if max(ks) > N_FEATURES[args.dataset]:
        parser.error(
            f"--ks {max(ks)}: {args.dataset} has {N_FEATURES[args.dataset]} "
            "features; give k at most that"
        )
    torch.set_num_threads(1)
    records = measure(args.dataset, ks, overrides, args.n_train)
    settings = format_params(overrides) or "defaults"
    if args.n_train is not None:
        settings += f", first {args.n_train} training rows"
    table = (
        f"Fit cost on {args.dataset} ({settings}, random_state=0, one torch "
        "thread): held-out MSE over PCA's, fit seconds (wall and CPU), and "
        "the fit in epochs of the reference loop timed in the same run (CPU "
        "seconds over CPU seconds), with the schedule and batch size the "
        "fit's 'auto' values chose; input_axes: how many principal axes "
        "input_components='auto' gave the network (0: every feature).\n\n"
        + markdown_table(records, list(records[0]))
    )
    # A candidate setting never overwrites the results at the defaults.
    candidate = bool(overrides) or args.n_train is not None or args.ks is not None
    out = args.out or default_out(args.quick or candidate)
    print(write_results(f"bench_fit_cost_{args.dataset}", records, table, out))


if __name__ == "__main__":
    main()
