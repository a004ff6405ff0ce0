"""How much lower is an autoencoder's held-out reconstruction error than PCA's?

For each ``n_components`` it fits PCA and skae's reducers with their defaults
(``random_state=0``) and measures, on held-out rows: reconstruction MSE and
its ratio to PCA's (``ratio``, below 1 means the autoencoder reconstructs
better); PSNR; the squared error per row summed over features (the unit of
Hinton & Salakhutdinov, 2006: on MNIST at 30-D their deep autoencoder reached
3.00 and PCA 13.87); what the codes give downstream (accuracy of a logistic
regression and of a 5-NN classifier trained on the training codes,
trustworthiness of the codes of 1000 test rows); fit time, epochs (NMF: its
iterations) and transform throughput.

Reducers: PCA, AutoencoderTransformer (``skae-dense``), the same with
``image_shape`` (``skae-conv``, the convolutional network; digits only, as on
Fashion-MNIST one fit takes about an hour on 2 cores) and DenoisingAutoencoder
(``noise_level=0.1``, ``skip=None``: a reducer's code must describe the row
alone, and its reconstruction come from the code); and the other reducers
with an ``inverse_transform`` that scikit-learn users pick: NMF (its
defaults; nonnegative data only: the digits and Fashion-MNIST) and
KernelPCA with an RBF kernel and its learned pre-image map
(``fit_inverse_transform=True``; ``kernel-pca``), whose defaults
reconstruct worse than PCA, so that its ``gamma`` (0.03 to 10 times
``1 / (n_features * X.var())``, the scale SVC's ``gamma='scale'`` gives an
RBF kernel; KernelPCA's own default ``1 / n_features`` ignores the data's
scale) and ``alpha`` (1e-6 to 1e-2), by factors of about 3 and of 10, are
chosen by the reconstruction error of a fifth of the training rows held
out (pairs whose pre-image system is singular are skipped), and it is then
fitted on all of them (at most 5000, a random subset:
its kernel matrix grows with the square of the rows; fit_s includes the
search).

Commands and their durations on 2 CPU cores of an Intel Xeon (one torch
thread; at commit 37cc90a, the digits took 69 s, the moons 23 s and the
swiss roll 30 s; about three times as long on an AMD EPYC)::

    python -m benchmarks.bench_reconstruction --dataset digits         # ~70 s
    python -m benchmarks.bench_reconstruction --dataset moons          # ~25 s
    python -m benchmarks.bench_reconstruction --dataset swiss_roll     # ~30 s
    python -m benchmarks.bench_reconstruction --dataset fashion_mnist  # ~30 min
    python -m benchmarks.bench_reconstruction --quick   # ~15 s: PCA and dense, k = 2, 8

``--quick`` measures PCA and the dense network only, at 2 and 8 components
(on the first 5000 training and 2000 test images for Fashion-MNIST), and
writes to ``bench_quick_output/``; ``make demo`` shows PCA and the dense
network on the digits at every ``n_components`` of the full run. Full runs write
``benchmarks/results/bench_reconstruction_<dataset>.{json,md,png}``.

Data: digits (``train_test_split(test_size=0.25, random_state=0)``, scaled to
[0, 1]) and the embedded moons and swiss roll (2000 rows in 20-D) are bundled
or generated; Fashion-MNIST (the published 60k/10k split) comes from
:func:`skae.fetch_fashion_mnist` (the Debian package ``dataset-fashion-mnist``,
``$SKAE_DATA``, or a download).
"""

import argparse
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.linalg import LinAlgWarning  # noqa: E402
from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.decomposition import NMF, PCA, KernelPCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.manifold import trustworthiness  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from benchmarks._common import (  # noqa: E402
    default_out,
    device_name,
    markdown_table,
    timed_fit,
    writable_folder,
    write_results,
)
from skae import (  # noqa: E402
    AutoencoderTransformer,
    DenoisingAutoencoder,
    fetch_fashion_mnist,
    make_embedded_moons,
    make_embedded_swiss_roll,
)

KS = {
    "digits": (2, 4, 8, 16, 32),
    "moons": (2, 8, 16),
    "swiss_roll": (2, 8, 16),
    "fashion_mnist": (2, 8, 32),
}
METHODS = {
    "digits": (
        "pca",
        "skae-dense",
        "skae-conv",
        "skae-denoising",
        "nmf",
        "kernel-pca",
    ),
    "moons": ("pca", "skae-dense", "skae-denoising", "kernel-pca"),
    "swiss_roll": ("pca", "skae-dense", "skae-denoising", "kernel-pca"),
    "fashion_mnist": ("pca", "skae-dense", "skae-denoising", "nmf", "kernel-pca"),
}
QUICK_METHODS = ("pca", "skae-dense")
# --quick checks that the script runs; make demo shows all of KS["digits"].
QUICK_KS = (2, 8)
# Trustworthiness is quadratic in the rows: a fixed subsample of the test set.
TRUST_ROWS = 1000
COLUMNS = (
    "mse",
    "ratio",
    "psnr_db",
    "sse_per_row",
    "logreg_accuracy",
    "knn_accuracy",
    "trustworthiness",
    "fit_s",
    "epochs",
    "transform_rows_per_s",
)


def load(dataset, quick=False):
    """Return ``X_train, X_test, y_train, y_test, image_shape, data_range``."""
    if dataset == "fashion_mnist":
        train, test = (
            fetch_fashion_mnist(subset="train"),
            fetch_fashion_mnist(subset="test"),
        )
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


class TunedKernelPCA(TransformerMixin, BaseEstimator):
    """RBF KernelPCA with its pre-image map, gamma and alpha chosen on held-out rows.

    Fits on at most ``max_rows`` training rows (a random subset); transforms
    and inverse-transforms ``max_rows`` rows at a time, as its kernel
    between the rows given and the fitted ones takes their product's memory.
    """

    GAMMA_FACTORS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
    ALPHAS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)

    def __init__(self, n_components, max_rows=5000, random_state=0):
        self.n_components = n_components
        self.max_rows = max_rows
        self.random_state = random_state

    def _kernel_pca(self, gamma, alpha):
        return KernelPCA(
            self.n_components,
            kernel="rbf",
            gamma=gamma,
            alpha=alpha,
            fit_inverse_transform=True,
            random_state=self.random_state,
        )

    def fit(self, X, y=None):
        rng = np.random.RandomState(self.random_state)
        if len(X) > self.max_rows:
            X = X[rng.choice(len(X), self.max_rows, replace=False)]
        fit_rows, held = train_test_split(
            X, test_size=0.2, random_state=self.random_state
        )
        # SVC's gamma='scale': the squared distances of rows, on average,
        # are about 2 * n_features * X.var().
        scale = 1.0 / (X.shape[1] * X.var())
        errors = {}
        for factor in self.GAMMA_FACTORS:
            for alpha in self.ALPHAS:
                try:
                    with warnings.catch_warnings():
                        # An ill-conditioned system is scored like any
                        # other: its held-out error says what it is worth.
                        warnings.simplefilter("ignore", LinAlgWarning)
                        model = self._kernel_pca(factor * scale, alpha)
                        model.fit(fit_rows)
                except np.linalg.LinAlgError:
                    # A kernel too smooth for so small a ridge is singular.
                    continue
                reconstructed = model.inverse_transform(model.transform(held))
                errors[factor, alpha] = float(np.mean((held - reconstructed) ** 2))
        factor, alpha = min(errors, key=errors.get)
        self.gamma_, self.alpha_ = factor * scale, alpha
        self.kernel_pca_ = self._kernel_pca(self.gamma_, self.alpha_).fit(X)
        return self

    def _by_chunks(self, method, rows):
        return np.vstack(
            [
                method(rows[start : start + self.max_rows])
                for start in range(0, len(rows), self.max_rows)
            ]
        )

    def transform(self, X):
        return self._by_chunks(self.kernel_pca_.transform, X)

    def inverse_transform(self, X):
        return self._by_chunks(self.kernel_pca_.inverse_transform, X)


def make_reducer(method, k, image_shape, device):
    """A fresh reducer of ``k`` components, with its defaults."""
    common = {"random_state": 0, "device": device}
    if method == "pca":
        return PCA(n_components=k, random_state=0)
    if method == "nmf":
        return NMF(n_components=k, random_state=0)
    if method == "kernel-pca":
        return TunedKernelPCA(k)
    if method == "skae-dense":
        return AutoencoderTransformer(k, **common)
    if method == "skae-conv":
        return AutoencoderTransformer(k, image_shape=image_shape, **common)
    return DenoisingAutoencoder(k, noise_level=0.1, skip=None, **common)


def evaluate(model, data, data_range):
    """The held-out metrics of a fitted reducer, as a dict."""
    X_train, X_test, y_train, y_test = data
    start = time.perf_counter()
    codes_test = model.transform(X_test)
    transform_s = time.perf_counter() - start
    codes_train = model.transform(X_train)
    squared = (X_test - model.inverse_transform(codes_test)) ** 2
    mse = float(np.mean(squared))
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    knn = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=5))
    rng = np.random.RandomState(0)
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
        "epochs": getattr(model, "n_iter_", "-"),
        "transform_rows_per_s": len(X_test) / transform_s,
    }


def run(dataset, ks, methods, *, device="auto", quick=False, save=None):
    """One record per (method, k); PCA comes first at each k.

    ``save(records)``, when given, is called after each fitted reducer, so
    that a long run that is stopped keeps what it measured.
    """
    X_train, X_test, y_train, y_test, image_shape, data_range = load(dataset, quick)
    data = (X_train, X_test, y_train, y_test)
    records = []
    for k in ks:
        pca_mse = None
        for method in ("pca", *(m for m in methods if m != "pca")):
            model = make_reducer(method, k, image_shape, device)
            fit_s = timed_fit(model, X_train)
            record = {"method": method, "n_components": k}
            record.update(evaluate(model, data, data_range))
            record["fit_s"] = fit_s
            pca_mse = record["mse"] if method == "pca" else pca_mse
            # The question's number: below 1, the autoencoder reconstructs
            # held-out rows better than PCA with as many components.
            record["ratio"] = record["mse"] / pca_mse
            if method in methods:
                records.append(record)
            print(
                f"{dataset} {method} k={k}: "
                + ", ".join(f"{c}={record[c]:.4g}" for c in COLUMNS if c != "epochs"),
                flush=True,
            )
            if save is not None:
                save(records)
    return records


def plot(records, dataset, path):
    """Metric against n_components, one line per method."""
    shown = ("mse", "logreg_accuracy", "knn_accuracy", "trustworthiness", "fit_s")
    fig, axes = plt.subplots(
        1, len(shown), figsize=(4 * len(shown), 3.4), layout="constrained"
    )
    for ax, metric in zip(axes, shown, strict=True):
        by_method = {}
        for record in records:
            by_method.setdefault(record["method"], []).append(
                (record["n_components"], record[metric])
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
    parser.add_argument("--dataset", choices=sorted(KS), default="digits")
    parser.add_argument("--device", type=device_name, default="auto")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="PCA and the dense network only (5000 training rows of "
        "Fashion-MNIST), written to bench_quick_output/",
    )
    parser.add_argument("--out", type=writable_folder, default=None)
    args = parser.parse_args(argv)
    methods = QUICK_METHODS if args.quick else METHODS[args.dataset]
    subset = args.quick and args.dataset == "fashion_mnist"
    title = (
        f"{args.dataset}, held-out rows"
        + (" (the first 5000 training and 2000 test images)" if subset else "")
        + "; skae's reducers with their defaults, random_state=0; "
        "ratio = MSE / PCA's MSE at the same k (below 1: better than PCA).\n\n"
    )
    out = args.out or default_out(args.quick)
    name = f"bench_reconstruction_{args.dataset}"

    def save(records):
        table = markdown_table(records, ["method", "n_components", *COLUMNS])
        return write_results(name, records, title + table, out)

    records = run(
        args.dataset,
        QUICK_KS if args.quick else KS[args.dataset],
        methods,
        device=args.device,
        quick=args.quick,
        save=save,
    )
    path = save(records)
    plot(records, args.dataset, path.with_suffix(".png"))
    print(f"wrote {path} and {path.with_suffix('.png')}")


if __name__ == "__main__":
    main()
