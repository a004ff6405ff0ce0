"""One-class anomaly detection: AutoencoderOutlierDetector against the usual baselines.

``python -m benchmarks.outlier`` runs three protocols, each fitting on normal
rows only and scoring a test set of normal and abnormal rows by ROC AUC
(abnormal = positive, ranked by minus ``score_samples``):

- ``fashion_mnist``: for each class c, fit on the training images of class c,
  score all 10,000 test images; abnormal means "not c".
- ``digits``: the same on scikit-learn's 8x8 digits, split in half
  (stratified, seed 0): fit on the first half's digit d, score the second half.
- ``breast_cancer``: fit on half of the benign tumours (seed 0), score the
  other half against all malignant ones, after a StandardScaler fit in the
  same pipeline.

Methods, all with their defaults unless stated: skae's
AutoencoderOutlierDetector (``random_state=0``), PCA reconstruction error
(``n_components=32``, or half the features when there are fewer than 64),
IsolationForest (``random_state=0``) and LocalOutlierFactor
(``novelty=True``). The detector's ``contamination='auto'`` threshold is
reported too: the fraction of normal and of abnormal test rows it flags.

The detector's per-feature error floor is also studied: the same fitted
network's AUC with floors of 0.001, 0.03 (the default) and 0.3 times the mean
error scale, and with plain squared error (``auc_floor_*`` columns).

``--noise`` (with ``--noise-level``) trains the detector as a denoising
autoencoder; the results file's name then ends in ``_noise-<kind><level>``.
``--image-rows`` tells the detector that the rows of the image data sets
are images (``image_shape``; ``_image-rows`` in the name): the score is then
the error of the residual averaged over ``error_window`` squares, and the
same fitted network is also scored with windows of 1, 3 and 5 pixels
(``auc_window_*`` columns). ``--conv`` gives the detector the convolutional
network of the other estimators as well (``image_shape`` and
``conv_channels=(16, 32, 64)``; ``_conv``). ``--error-window`` sets the
detector's window (``_window<w>``). ``--classes`` other than all ten adds
``_classes<c1>-<c2>...``.

``--quick`` caps training at 20 epochs and keeps Fashion-MNIST's classes to
those given by ``--classes`` (default: all). Results go to
``benchmarks/results/outlier_<dataset>.{json,md}``.
"""

import argparse

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks._common import (
    RESULTS,
    format_params,
    markdown_table,
    timed_fit,
    write_results,
)
from skae import AutoencoderOutlierDetector, fetch_fashion_mnist
from skae.outlier import _SCALE_FLOOR, _window_mean

METHODS = ("skae", "pca", "iforest", "lof")
IMAGE_SHAPES = {"fashion_mnist": (1, 28, 28), "digits": (1, 8, 8)}
# --conv: the convolutional network of the other estimators' defaults.
CONV_CHANNELS = (16, 32, 64)


class PCAReconstruction(BaseEstimator):
    """PCA's squared reconstruction error, as an outlier score."""

    def __init__(self, n_components):
        self.n_components = n_components

    def fit(self, X, y=None):
        self.pca_ = PCA(n_components=self.n_components, random_state=0).fit(X)
        return self

    def score_samples(self, X):
        reconstruction = self.pca_.inverse_transform(self.pca_.transform(X))
        return -np.mean((X - reconstruction) ** 2, axis=1)


# The score's floor on each feature's error scale, as a fraction of the mean
# scale (skae uses 0.03), and None for plain squared error: the same fitted
# network, scored each way.
FLOORS = (0.001, 0.03, 0.3, None)


def floor_aucs(detector, X_test, abnormal):
    """ROC AUC of the detector's relative error under each of ``FLOORS``."""
    errors = detector._batched(
        X_test, lambda batch: detector._feature_errors(batch).double().cpu().numpy()
    )
    scales = detector.feature_errors_
    aucs = {}
    for floor in FLOORS:
        relative = (
            errors if floor is None else errors / (scales + floor * scales.mean())
        )
        aucs[f"auc_floor_{floor if floor is not None else 'none'}"] = roc_auc_score(
            abnormal, relative.mean(axis=1)
        )
    return aucs


# Windows of the residual's mean for image rows, 1 being each pixel alone
# (skae's default is 3): the same fitted network, scored each way.
WINDOWS = (1, 3, 5)


def window_aucs(detector, X_train, X_test, abnormal):
    """ROC AUC of the relative error of the windowed residual, per ``WINDOWS``."""
    shape = tuple(detector.image_shape)

    def errors(X, window):
        return detector._batched(
            X,
            lambda batch: (
                (_window_mean(detector._residuals(batch), shape, window) ** 2)
                .double()
                .cpu()
                .numpy()
            ),
        )

    aucs = {}
    for window in WINDOWS:
        scale = errors(X_train, window).mean(axis=0)
        scale = scale + _SCALE_FLOOR * scale.mean()
        relative = errors(X_test, window) / scale
        aucs[f"auc_window_{window}"] = roc_auc_score(abnormal, relative.mean(axis=1))
    return aucs


def make_methods(n_features, max_iter, device, scale, detector):
    """Fresh estimators, in a StandardScaler pipeline when ``scale``.

    ``detector`` holds parameters of the detector that are not its defaults.
    """
    skae_params = {"random_state": 0, "device": device, **detector}
    if max_iter is not None:
        skae_params["max_iter"] = max_iter
    methods = {
        "skae": AutoencoderOutlierDetector(**skae_params),
        "pca": PCAReconstruction(32 if n_features >= 64 else n_features // 2),
        "iforest": IsolationForest(random_state=0),
        "lof": LocalOutlierFactor(novelty=True),
    }
    if scale:
        methods = {
            name: make_pipeline(StandardScaler(), m) for name, m in methods.items()
        }
    return methods


def run_task(
    dataset, task, X_train, X_test, abnormal, *, max_iter, device, scale, detector
):
    """Fit every method on ``X_train``; one record of AUCs and fit times."""
    record = {"dataset": dataset, "normal": task, **detector}
    methods = make_methods(X_train.shape[1], max_iter, device, scale, detector)
    for name, model in methods.items():
        record[f"{name}_fit_s"] = timed_fit(model, X_train)
        record[f"{name}_auc"] = roc_auc_score(abnormal, -model.score_samples(X_test))
        if name == "skae":
            detector = model[-1] if scale else model
            flagged = model.predict(X_test) == -1
            record["skae_epochs"] = detector.n_iter_
            record["auto_flags_normal"] = float(np.mean(flagged[~abnormal]))
            record["auto_flags_abnormal"] = float(np.mean(flagged[abnormal]))
            rows = model[:-1].transform(X_test) if scale else X_test
            record.update(floor_aucs(detector, rows, abnormal))
            if detector.image_shape is not None:
                record.update(window_aucs(detector, X_train, rows, abnormal))
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()})
    return record


def fashion_mnist(classes, **params):
    train = fetch_fashion_mnist(subset="train")
    test = fetch_fashion_mnist(subset="test")
    return [
        run_task(
            "fashion_mnist",
            int(c),
            train.data[train.target == c],
            test.data,
            test.target != c,
            **params,
        )
        for c in classes
    ]


def digits(**params):
    X, y = load_digits(return_X_y=True)
    X_fit, X_test, y_fit, y_test = train_test_split(
        X / 16, y, test_size=0.5, stratify=y, random_state=0
    )
    return [
        run_task("digits", d, X_fit[y_fit == d], X_test, y_test != d, **params)
        for d in range(10)
    ]


def breast_cancer(**params):
    X, y = load_breast_cancer(return_X_y=True)
    benign, malignant = X[y == 1], X[y == 0]
    X_fit, X_held = train_test_split(benign, test_size=0.5, random_state=0)
    X_test = np.vstack([X_held, malignant])
    abnormal = np.r_[np.zeros(len(X_held), bool), np.ones(len(malignant), bool)]
    return [
        run_task(
            "breast_cancer",
            "benign",
            X_fit,
            X_test,
            abnormal,
            **{**params, "scale": True},
        )
    ]


def summarise(dataset, records, detector):
    """Markdown: one row per task, then the mean."""
    columns = ["normal", *(f"{m}_auc" for m in METHODS)]
    columns += ["auto_flags_normal", "auto_flags_abnormal", "skae_epochs"]
    columns += [f"{m}_fit_s" for m in METHODS]
    columns += [f"auc_floor_{f if f is not None else 'none'}" for f in FLOORS]
    if "image_shape" in detector:
        columns += [f"auc_window_{w}" for w in WINDOWS]
    rows = list(records)
    if len(records) > 1:
        mean = {c: float(np.mean([r[c] for r in records])) for c in columns[1:]}
        rows.append({"normal": "**mean**", **mean})
    return (
        f"One-class anomaly detection on {dataset}: ROC AUC of 'abnormal' "
        "against minus score_samples (higher is better); auto_flags_*: "
        "fraction of the test rows that contamination='auto' flags."
        + (
            " The detector's parameters other than its defaults: "
            + format_params(detector)
            + "."
            if detector
            else ""
        )
        + "\n\n"
        + markdown_table(rows, columns)
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=["fashion_mnist", "digits", "breast_cancer"],
        default=["breast_cancer", "digits", "fashion_mnist"],
    )
    parser.add_argument("--classes", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--quick", action="store_true", help="at most 20 epochs")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--noise",
        choices=["gaussian", "masking", "salt_pepper"],
        default=None,
        help="train the detector on corrupted rows (default: clean rows)",
    )
    parser.add_argument("--noise-level", type=float, default=0.1)
    images = parser.add_mutually_exclusive_group()
    images.add_argument(
        "--conv", action="store_true", help="the convolutional network (images only)"
    )
    images.add_argument(
        "--image-rows",
        action="store_true",
        help="image_shape with the dense network (images only)",
    )
    parser.add_argument("--error-window", type=int, default=None)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    if (args.conv or args.image_rows) and "breast_cancer" in args.datasets:
        parser.error("--conv and --image-rows need images: leave out breast_cancer")

    common = {}
    suffix = "_conv" if args.conv else "_image-rows" if args.image_rows else ""
    if args.noise is not None:
        common.update(noise=args.noise, noise_level=args.noise_level)
        suffix += f"_noise-{args.noise}{args.noise_level:g}"
    if args.error_window is not None:
        common["error_window"] = args.error_window
        suffix += f"_window{args.error_window}"
    for dataset in args.datasets:
        detector = dict(common)
        if args.conv or args.image_rows:
            detector["image_shape"] = IMAGE_SHAPES[dataset]
        if args.conv:
            detector["conv_channels"] = CONV_CHANNELS
        params = {
            "max_iter": 20 if args.quick else None,
            "device": args.device,
            "scale": False,
            "detector": detector,
        }
        name = f"outlier_{dataset}{suffix}"
        if dataset == "fashion_mnist":
            records = fashion_mnist(args.classes, **params)
            if sorted(args.classes) != list(range(10)):
                name += "_classes" + "-".join(map(str, args.classes))
        elif dataset == "digits":
            records = digits(**params)
        else:
            records = breast_cancer(**params)
        for record in records:
            record["quick"] = args.quick
        path = write_results(
            name + ("_quick" if args.quick else ""),
            records,
            summarise(dataset, records, detector),
            args.out,
        )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
