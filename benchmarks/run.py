"""The benchmark runner: PCA against skae's autoencoders on one data set.

For each ``n_components`` and method (PCA; AutoencoderTransformer dense;
convolutional where the data are images; DenoisingAutoencoder), it measures
on held-out rows: reconstruction MSE and PSNR; the average squared error per
row summed over features (the unit of Hinton & Salakhutdinov, 2006: on MNIST
at 30-D their deep autoencoder reached 3.00 and PCA 13.87); accuracy of a
logistic regression and of a 5-NN classifier trained on the training codes;
trustworthiness (:func:`sklearn.manifold.trustworthiness`, 5 neighbours) of
the codes of a test subsample; fit time; and transform throughput.

Records go to ``benchmarks/results/run_<dataset>.json`` (one record per
dataset, method, n_components, metric and value, plus machine info), a
markdown table ``run_<dataset>.md`` and plots ``run_<dataset>.png`` (with more than
one ``n_components``).

Examples::

    python -m benchmarks.run --dataset digits --quick     # a few minutes, 2 CPU cores
    python -m benchmarks.run --dataset fashion_mnist --device auto
    python -m benchmarks.run --dataset swiss_roll
    # the 2006 paper's row alone, on all 60k training images:
    python -m benchmarks.run --dataset fashion_mnist --ks 30 --methods pca skae-dense

Data: digits, embedded moons and swiss roll are generated or bundled;
Fashion-MNIST, MNIST and CIFAR-10 come from :mod:`skae.datasets` (the Debian
package ``dataset-fashion-mnist``, ``$SKAE_DATA``, or a download).
"""

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.manifold import trustworthiness  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from benchmarks._common import RESULTS, timed_fit, write_results  # noqa: E402
from skae import (  # noqa: E402
    AutoencoderTransformer,
    DenoisingAutoencoder,
    fetch_cifar10,
    fetch_fashion_mnist,
    fetch_mnist,
    make_embedded_moons,
    make_embedded_swiss_roll,
)

KS = (2, 8, 16, 32, 64)
QUICK_KS = (2, 8, 16)
TRUST_ROWS = 1000
METRICS = (
    "mse",
    "psnr_db",
    "sse_per_row",
    "logreg_accuracy",
    "knn_accuracy",
    "trustworthiness",
    "fit_s",
    "transform_rows_per_s",
)


IMAGE_SETS = ("fashion_mnist", "mnist", "cifar10")
QUICK_SUBSET = "--quick: the first 5000 training and 2000 test images"


def load(dataset, quick):
    """Return ``X_train, X_test, y_train, y_test, image_shape, data_range``."""
    if dataset in IMAGE_SETS:
        fetch = {
            "fashion_mnist": fetch_fashion_mnist,
            "mnist": fetch_mnist,
            "cifar10": fetch_cifar10,
        }[dataset]
        train, test = fetch(subset="train"), fetch(subset="test")
        X_train, y_train, X_test, y_test = (
            train.data,
            train.target,
            test.data,
            test.target,
        )
        if quick:
            X_train, y_train = X_train[:5000], y_train[:5000]
            X_test, y_test = X_test[:2000], y_test[:2000]
        return X_train, X_test, y_train, y_test, train.image_shape, 1.0
    if dataset == "digits":
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        shape, data_range = (1, 8, 8), 1.0
    else:
        make = make_embedded_moons if dataset == "moons" else make_embedded_swiss_roll
        X, y = make(n_samples=2000, n_features=20, noise=0.05, random_state=0)
        if dataset == "swiss_roll":
            # Labels for the classifiers: position along the roll, in 4 bins.
            y = np.digitize(y, np.quantile(y, [0.25, 0.5, 0.75]))
        shape, data_range = None, float(X.max() - X.min())
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0
    )
    return X_train, X_test, y_train, y_test, shape, data_range


def methods(image_shape, k, device, max_iter):
    """The reducers compared at ``k`` components."""
    common = {"random_state": 0, "device": device}
    if max_iter is not None:
        common["max_iter"] = max_iter
    found = {
        "pca": PCA(n_components=k, random_state=0),
        "skae-dense": AutoencoderTransformer(k, **common),
        "skae-denoising": DenoisingAutoencoder(k, noise_level=0.1, **common),
    }
    if image_shape is not None:
        found["skae-conv"] = AutoencoderTransformer(
            k, image_shape=image_shape, **common
        )
    return found


def evaluate(model, data, data_range, rng):
    """All metrics of a fitted reducer, as a dict."""
    X_train, X_test, y_train, y_test = data
    start = time.perf_counter()
    codes_test = model.transform(X_test)
    transform_s = time.perf_counter() - start
    codes_train = model.transform(X_train)
    recon = model.inverse_transform(codes_test)
    squared = (X_test - recon) ** 2
    mse = float(np.mean(squared))
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    knn = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=5))
    rows = rng.choice(len(X_test), size=min(TRUST_ROWS, len(X_test)), replace=False)
    return {
        "mse": mse,
        "psnr_db": float(10 * np.log10(data_range**2 / mse)),
        "sse_per_row": float(np.mean(np.sum(squared, axis=1))),
        "logreg_accuracy": float(
            logreg.fit(codes_train, y_train).score(codes_test, y_test)
        ),
        "knn_accuracy": float(knn.fit(codes_train, y_train).score(codes_test, y_test)),
        "trustworthiness": float(
            trustworthiness(X_test[rows], codes_test[rows], n_neighbors=5)
        ),
        "transform_rows_per_s": len(X_test) / transform_s,
    }


def run(dataset, ks, device, quick, max_iter, only=None, save=None):
    """Measure each method (all, or those named in ``only``) at each k.

    ``save(records)``, when given, is called after each fitted method, so
    that a long run that is stopped keeps what it measured.
    """
    X_train, X_test, y_train, y_test, image_shape, data_range = load(dataset, quick)
    data = (X_train, X_test, y_train, y_test)
    records = []
    for k in ks:
        if k > X_train.shape[1]:
            continue
        for name, model in methods(image_shape, k, device, max_iter).items():
            if only is not None and name not in only:
                continue
            fit_s = timed_fit(model, X_train)
            values = evaluate(model, data, data_range, np.random.RandomState(0))
            values["fit_s"] = fit_s
            for metric in METRICS:
                records.append(
                    {
                        "dataset": dataset,
                        "method": name,
                        "n_components": k,
                        "metric": metric,
                        "value": values[metric],
                        "quick": quick,
                        "max_iter": max_iter or "default",
                    }
                )
            print(
                f"{dataset} {name} k={k}: "
                + ", ".join(f"{m}={values[m]:.4g}" for m in METRICS),
                flush=True,
            )
            if save is not None:
                save(records)
    return records


def table(records):
    """One markdown row per (method, k), one column per metric."""
    rows = {}
    for record in records:
        key = (record["method"], record["n_components"])
        rows.setdefault(key, {})[record["metric"]] = record["value"]
    lines = [
        "| method | k | " + " | ".join(METRICS) + " |",
        "|" + "---|" * (len(METRICS) + 2),
    ]
    for (method, k), values in sorted(
        rows.items(), key=lambda item: (item[0][1], item[0][0])
    ):
        cells = [f"{values[m]:.4g}" for m in METRICS]
        lines.append(f"| {method} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(records, dataset, path):
    """Metric against n_components, one line per method."""
    shown = ("mse", "logreg_accuracy", "knn_accuracy", "trustworthiness", "fit_s")
    fig, axes = plt.subplots(
        1, len(shown), figsize=(4 * len(shown), 3.4), layout="constrained"
    )
    for ax, metric in zip(axes, shown, strict=True):
        by_method = {}
        for record in records:
            if record["metric"] == metric:
                by_method.setdefault(record["method"], []).append(
                    (record["n_components"], record["value"])
                )
        for method, points in sorted(by_method.items()):
            ks, values = zip(*sorted(points), strict=True)
            ax.plot(ks, values, "o-", label=method)
        ax.set(xscale="log", xlabel="n_components", title=metric)
        if metric in ("mse", "fit_s"):
            ax.set_yscale("log")
        ax.minorticks_off()
    axes[0].legend(fontsize="small")
    fig.suptitle(f"{dataset}: PCA against skae on held-out rows")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset",
        choices=["digits", "moons", "swiss_roll", "fashion_mnist", "mnist", "cifar10"],
        default="digits",
    )
    parser.add_argument("--ks", type=int, nargs="+", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer n_components (and 5000 training rows for the image sets)",
    )
    parser.add_argument(
        "--max-iter",
        type=int,
        default=None,
        help="override the autoencoders' max_iter (recorded in the results)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=["pca", "skae-dense", "skae-denoising", "skae-conv"],
        default=None,
        help="measure only these methods (named in the results' file name)",
    )
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    ks = args.ks or (QUICK_KS if args.quick else KS)
    name = f"run_{args.dataset}" + ("_quick" if args.quick else "")
    if args.ks:
        name += "_k" + "_".join(map(str, ks))
    if args.methods:
        name += "_" + "_".join(args.methods)
    header = (
        f"{args.dataset}, held-out rows"
        + (f" ({QUICK_SUBSET})" if args.quick and args.dataset in IMAGE_SETS else "")
        + "; autoencoders with their defaults"
        + (f" but max_iter={args.max_iter}" if args.max_iter else "")
        + ", random_state=0.\n\n"
    )

    def save(records):
        return write_results(name, records, header + table(records), args.out)

    records = run(
        args.dataset, ks, args.device, args.quick, args.max_iter, args.methods, save
    )
    path = save(records)
    if len(ks) > 1:
        plot(records, args.dataset, path.with_suffix(".png"))
        print(f"wrote {path.with_suffix('.png')}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
