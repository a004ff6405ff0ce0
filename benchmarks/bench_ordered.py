"""From one ordered fit at 32 components, are the prefixes as good as fits at k?

One ``AutoencoderTransformer(32, ordered=True)`` is fitted, and the first
``k`` columns of its code, decoded with the other units at zero
(``inverse_transform(transform(X)[:, :k])``), are compared with
``AutoencoderTransformer(k, ordered=False)`` fitted at each ``k`` (goal:
held-out MSE within 5% at k = 2, 8, 16; aim 2%; k = 1 shows what the
first unit alone is worth), and the ordered fit's time
with the unordered 32-component fit's (goal: at most 1.5x). The prefixes of
the unordered 32-component fit show what truncating a model trained without
ordering gives. Then ``n_components=0.9`` with ``ordered=True``: the width
the model keeps (``n_components_``) beside PCA's (``n_components_pca_``).
Every fit has the defaults but ``ordered``, ``n_components`` and
``random_state=0`` (and ``--max-iter`` where given); ``--set key=value``
changes a parameter of the ordered fits only, to measure a candidate way of
training them against the same separate fits, e.g. ``--set
learning_rate=one_cycle max_iter=75``.

Commands and their durations on 2 CPU cores of an Intel Xeon (one torch
thread; the fits of the committed results, measured at commits 6401518
and 866fcfa, took 32 s, 309 s and 751 s, most of it the separate fits at
each k and the fit at a fraction)::

    python -m benchmarks.bench_ordered --dataset digits              # ~35 s
    python -m benchmarks.bench_ordered --dataset fashion_mnist       # ~6 min
    python -m benchmarks.bench_ordered --dataset fashion_mnist_full  # ~13 min
    python -m benchmarks.bench_ordered --set max_iter=300  # a candidate

Digits: ``train_test_split(test_size=0.25, random_state=0)``.
``fashion_mnist``: the first ``--n-train`` rows of the published training
set (default 10,000: fewer than 20,000, where ``learning_rate='auto'``
plans an ordered fit's run apart, over 100 epochs) and the first 2000 test
rows, scaled to [0, 1]; ``fashion_mnist_full``: the same with every one of
the 60,000 training rows, on which an ordered fit takes the planned run of
an unordered one. MSE is in the data's units, on the test rows. Results:
``benchmarks/results/bench_ordered_<dataset>.{json,md}`` (``--quick``,
``--set``, ``--max-iter`` or ``--n-train``: ``bench_quick_output/``).
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from benchmarks._common import (
    add_set_argument,
    default_out,
    format_params,
    markdown_table,
    parse_overrides,
    positive_int,
    timed_fit,
    writable_folder,
    write_results,
)
from skae import AutoencoderTransformer, fetch_fashion_mnist

WIDTH = 32
KS = (1, 2, 8, 16)
FRACTION = 0.9
# Training rows of each Fashion-MNIST set (absent: all of them).
N_TRAIN = {"fashion_mnist": 10_000}


def load(dataset, n_train):
    """Training and test rows (``n_train`` None: every training row)."""
    if dataset == "digits":
        X, _ = load_digits(return_X_y=True)
        return train_test_split(X, test_size=0.25, random_state=0)
    train = fetch_fashion_mnist(subset="train").data[:n_train]
    test = fetch_fashion_mnist(subset="test").data[:2000]
    return train, test


def prefix_mse(model, X, k):
    """Held-out MSE of the reconstruction from the first ``k`` code units."""
    codes = model.transform(X)[:, :k]
    if not model.ordered:
        # An unordered model takes whole codes: pad with zeros, as truncate
        # would, to see what its prefixes are worth.
        codes = np.hstack([codes, np.zeros((len(X), model.n_components_ - k))])
    return float(np.mean((X - model.inverse_transform(codes)) ** 2))


def run(dataset, n_train, max_iter, candidate):
    X_train, X_test = load(dataset, n_train)
    params = {"random_state": 0}
    if max_iter is not None:
        params["max_iter"] = max_iter
    fits = {}
    for k in (*KS, WIDTH):
        model = AutoencoderTransformer(k, ordered=False, **params)
        fits[k] = (model, timed_fit(model, X_train))
        print(f"separate k={k}: {fits[k][1]:.1f} s, {model.n_iter_} epochs", flush=True)
    ordered = AutoencoderTransformer(WIDTH, ordered=True, **{**params, **candidate})
    ordered_time = timed_fit(ordered, X_train)
    print(f"ordered k={WIDTH}: {ordered_time:.1f} s", flush=True)
    records = []
    # Explained variance: 1 - MSE over the test rows' variance about their
    # own mean, pooled over the features.
    variance = float(np.mean((X_test - X_test.mean(axis=0)) ** 2))
    for k in (*KS, WIDTH):
        pca = PCA(k, random_state=0).fit(X_train)
        separate = prefix_mse(fits[k][0], X_test, k)
        prefix = prefix_mse(ordered, X_test, k)
        records.append(
            {
                "k": k,
                "pca_mse": float(
                    np.mean(
                        (X_test - pca.inverse_transform(pca.transform(X_test))) ** 2
                    )
                ),
                "separate_mse": separate,
                "ordered_prefix_mse": prefix,
                "prefix_over_separate": prefix / separate,
                "separate_explained_variance": 1 - separate / variance,
                "prefix_explained_variance": 1 - prefix / variance,
                "unordered_prefix_mse": prefix_mse(fits[WIDTH][0], X_test, k),
                # On the training rows: a gap there is underfitting; one on
                # the test rows alone, overfitting.
                "separate_train_mse": prefix_mse(fits[k][0], X_train, k),
                "ordered_prefix_train_mse": prefix_mse(ordered, X_train, k),
                "separate_fit_s": fits[k][1],
                "separate_epochs": fits[k][0].n_iter_,
            }
        )
    fraction = AutoencoderTransformer(FRACTION, ordered=True, **{**params, **candidate})
    fraction_time = timed_fit(fraction, X_train)
    summary = {
        "ordered_fit_s": ordered_time,
        "ordered_epochs": ordered.n_iter_,
        "unordered_fit_s": fits[WIDTH][1],
        "fit_time_ratio": ordered_time / fits[WIDTH][1],
        "ordered_ratio_non_increasing": bool(
            np.all(np.diff(ordered.explained_variance_ratio_) <= 0)
        ),
        "ordered_explained_variance_ratio": ordered.explained_variance_ratio_.tolist(),
        "fraction": FRACTION,
        "fraction_k_autoencoder": fraction.n_components_,
        "fraction_k_pca": fraction.n_components_pca_,
        "fraction_held_out_explained_variance": fraction.explained_variance_score_,
        "fraction_fit_s": fraction_time,
        "n_train": len(X_train),
        "n_test": len(X_test),
        "max_iter": max_iter,
        "ordered_params": candidate,
    }
    return records, summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dataset",
        choices=["digits", "fashion_mnist", "fashion_mnist_full"],
        default="digits",
    )
    parser.add_argument(
        "--n-train",
        type=positive_int,
        default=None,
        help="Fashion-MNIST training rows (default: 10000 for fashion_mnist, "
        "all for fashion_mnist_full)",
    )
    parser.add_argument("--max-iter", type=positive_int, default=None)
    parser.add_argument(
        "--quick", action="store_true", help="10 epochs unless --max-iter"
    )
    add_set_argument(parser)
    parser.add_argument("--out", type=writable_folder, default=None)
    args = parser.parse_args(argv)
    max_iter = args.max_iter or (10 if args.quick else None)
    candidate = parse_overrides(
        parser, args.set, AutoencoderTransformer, fixed=("n_components", "ordered")
    )
    n_train = args.n_train or N_TRAIN.get(args.dataset)
    records, summary = run(args.dataset, n_train, max_iter, candidate)
    table = markdown_table(
        records,
        [
            "k",
            "pca_mse",
            "separate_mse",
            "ordered_prefix_mse",
            "prefix_over_separate",
            "separate_explained_variance",
            "prefix_explained_variance",
            "unordered_prefix_mse",
            "separate_train_mse",
            "ordered_prefix_train_mse",
            "separate_fit_s",
        ],
    )
    lines = [
        table,
        "",
        f"Training rows: {summary['n_train']}, test rows: {summary['n_test']}, "
        f"max_iter: {summary['max_iter'] or 'default'}."
        + (f" Ordered fits with {format_params(candidate)}." if candidate else ""),
        f"Fit time, ordered at {WIDTH} / unordered at {WIDTH}: "
        f"{summary['ordered_fit_s']:.1f} s / {summary['unordered_fit_s']:.1f} s "
        f"= {summary['fit_time_ratio']:.2f}x.",
        f"explained_variance_ratio_ of the ordered fit non-increasing: "
        f"{summary['ordered_ratio_non_increasing']}.",
        f"n_components={FRACTION}, ordered: the autoencoder keeps "
        f"k={summary['fraction_k_autoencoder']} (held-out explained variance "
        f"{summary['fraction_held_out_explained_variance']:.3f}); PCA needs "
        f"k={summary['fraction_k_pca']}.",
    ]
    # A run with other settings than the defaults is not the result.
    other = args.max_iter is not None or args.n_train is not None
    out = args.out or default_out(args.quick or bool(candidate) or other)
    path = write_results(
        f"bench_ordered_{args.dataset}",
        {"per_k": records, "summary": summary},
        "\n".join(lines),
        out,
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
