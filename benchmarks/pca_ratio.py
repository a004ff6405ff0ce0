"""Held-out reconstruction error of AutoencoderTransformer against PCA.

The core benchmark: defaults except ``n_components`` and ``random_state=0``.

- digits: ``train_test_split(test_size=0.25, random_state=0)``;
- fashion_mnist: the published 60k/10k split (Debian package
  ``dataset-fashion-mnist``, or downloaded by :func:`skae.fetch_fashion_mnist`),
  with the dense default and the convolutional network
  (``image_shape=(1, 28, 28)``).

Run ``python -m benchmarks.pca_ratio --dataset digits`` (about a minute on two
CPU cores) or ``--dataset fashion_mnist`` (about an hour on two CPU cores).
Writes ``benchmarks/results/pca_ratio_<dataset>.{json,md}``.
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from benchmarks._common import (
    RESULTS,
    format_params,
    markdown_table,
    timed_fit,
    write_results,
)
from skae import AutoencoderTransformer, fetch_fashion_mnist

DEFAULT_KS = {"digits": (2, 4, 8, 16, 32), "fashion_mnist": (2, 8, 32)}


def load(dataset):
    """Return ``X_train, X_test`` and the image shape of ``dataset``."""
    if dataset == "digits":
        X, _ = load_digits(return_X_y=True)
        X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
        return X_train, X_test, (1, 8, 8)
    train = fetch_fashion_mnist(subset="train")
    test = fetch_fashion_mnist(subset="test")
    return train.data, test.data, train.image_shape


def mse(model, X):
    """Mean squared reconstruction error of ``model`` on ``X``."""
    return float(np.mean((X - model.inverse_transform(model.transform(X))) ** 2))


def run(dataset, ks, variants, device="auto", overrides=None, save=None):
    """Measure PCA and each skae variant at each k; return one record each.

    ``overrides`` replaces some of skae's defaults (recorded in each record).
    ``save(records)``, when given, is called after each record, so that a
    long run that is stopped keeps what it measured.
    """
    X_train, X_test, image_shape = load(dataset)
    records = []
    for k in ks:
        pca = PCA(n_components=k, random_state=0)
        pca_time = timed_fit(pca, X_train)
        pca_mse = mse(pca, X_test)
        for variant in variants:
            params = {"image_shape": image_shape} if variant == "conv" else {}
            params.update(overrides or {})
            model = AutoencoderTransformer(
                n_components=k, random_state=0, device=device, **params
            )
            fit_time = timed_fit(model, X_train)
            record = {
                "dataset": dataset,
                "method": f"skae-{variant}",
                "n_components": k,
                "pca_mse": pca_mse,
                "skae_mse": mse(model, X_test),
                "pca_fit_s": pca_time,
                "skae_fit_s": fit_time,
                "epochs": model.n_iter_,
                "best_epoch": model.best_epoch_,
                "max_iter": model.max_iter,
                "alpha": model.alpha,
                # Unused by the conv network.
                "hidden_layer_sizes": "-"
                if variant == "conv"
                else "-".join(map(str, model.hidden_layer_sizes)),
                "activation": model.activation,
                "learning_rate": model.learning_rate,
                "batch_size": model.batch_size,
            }
            record["ratio"] = record["skae_mse"] / pca_mse
            records.append(record)
            print(
                f"{dataset} {variant} k={k}: ratio {record['ratio']:.3f} "
                f"(skae {record['skae_mse']:.5g}, PCA {pca_mse:.5g}), "
                f"fit {fit_time:.1f}s vs {pca_time:.2f}s",
                flush=True,
            )
            if save is not None:
                save(records)
    return records


def settings(args):
    """Return the results' name suffix and skae's overridden parameters.

    Every override but ``max_iter`` is named in the suffix, in a fixed order.
    """
    suffix, overrides = "", {}
    if args.max_iter is not None:
        overrides["max_iter"] = args.max_iter
    if args.activation is not None:
        overrides["activation"] = args.activation
        suffix += f"_{args.activation}"
    if args.learning_rate is not None:
        overrides["learning_rate"] = args.learning_rate
        suffix += f"_lr-{args.learning_rate}"
    if args.alpha is not None:
        overrides["alpha"] = args.alpha
        suffix += f"_alpha{args.alpha:g}"
    if args.hidden_layer_sizes is not None:
        overrides["hidden_layer_sizes"] = tuple(args.hidden_layer_sizes)
        suffix += "_h" + "-".join(map(str, args.hidden_layer_sizes))
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
        suffix += f"_b{args.batch_size}"
    return suffix, overrides


def describe(overrides):
    """'defaults', or 'defaults but' and each overridden parameter."""
    return "defaults" + (" but " + format_params(overrides) if overrides else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DEFAULT_KS), default="digits")
    parser.add_argument("--ks", type=int, nargs="+", default=None)
    parser.add_argument(
        "--variants", nargs="+", choices=["dense", "conv"], default=None
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--max-iter",
        type=int,
        default=None,
        help="override the default max_iter (recorded in the results)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="override the default alpha, the weight decay (in the results' name)",
    )
    parser.add_argument(
        "--hidden-layer-sizes",
        type=int,
        nargs="+",
        default=None,
        help="override the default hidden widths (in the results' name)",
    )
    parser.add_argument(
        "--activation",
        default=None,
        help="override the default activation (in the results' name)",
    )
    parser.add_argument(
        "--learning-rate",
        choices=["constant", "adaptive"],
        default=None,
        help="override the default learning-rate schedule (in the results' name)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="override the default batch_size (in the results' name)",
    )
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    ks = args.ks or DEFAULT_KS[args.dataset]
    variants = args.variants or (
        ["dense", "conv"] if args.dataset == "fashion_mnist" else ["dense"]
    )
    columns = [
        "method",
        "n_components",
        "pca_mse",
        "skae_mse",
        "ratio",
        "pca_fit_s",
        "skae_fit_s",
        "epochs",
        "best_epoch",
        "max_iter",
        "alpha",
        "hidden_layer_sizes",
        "activation",
        "learning_rate",
        "batch_size",
    ]
    name = f"pca_ratio_{args.dataset}" + "_".join(["", *variants]) * (
        args.variants is not None
    )
    suffix, overrides = settings(args)
    name += suffix
    title = (
        f"Held-out reconstruction MSE, {args.dataset}: skae ("
        + describe(overrides)
        + ", random_state=0) against PCA; ratio = skae / PCA, lower is better.\n\n"
    )
    if args.ks is not None:
        name += "_k" + "_".join(map(str, ks))

    def save(records):
        return write_results(
            name, records, title + markdown_table(records, columns), args.out
        )

    records = run(
        args.dataset,
        ks,
        variants,
        device=args.device,
        overrides=overrides,
        save=save,
    )
    print(f"wrote {save(records)}")


if __name__ == "__main__":
    main()
