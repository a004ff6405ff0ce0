"""How well does AutoencoderOutlierDetector rank outliers, against PyOD and sklearn?

One-class protocols: each fits on normal rows only and scores a test set of
normal and abnormal rows by ROC AUC (abnormal = positive, ranked by minus
``score_samples``, or by PyOD's ``decision_function``), every method on the
same rows:

- ``breast_cancer``: fit on half of the benign tumours, score the other
  half against all malignant ones, after a StandardScaler fit in the same
  pipeline; repeated over 10 random halvings (seeds 0 to 9), every method on
  the same ones and seeded with the halving's seed (``random_state``), as one
  halving, or one draw of a network's weights, leaves differences of 0.005
  in AUC to chance.
  The results report each method's mean AUC, the standard deviation of its
  AUC across the halvings and its mean fit seconds (the JSON keeps each
  halving's). It is the one tabular set bundled with scikit-learn that has a
  natural normal/abnormal split (iris and wine have three equal classes,
  diabetes and linnerud are regression targets).
- ``digits``: scikit-learn's 8x8 digits split in half (stratified, seed 0):
  for each digit d, fit on the first half's d, score the second half;
  abnormal means "not d".
- ``fashion_mnist``: for each class c, fit on the training images of class c,
  score all 10,000 test images; abnormal means "not c".

Outlier detection on rows that hold outliers (the unsupervised setting of
PyOD's benchmarks): each method is fitted on normal rows with planted
abnormal ones, a tenth of the rows, and scores those same rows:

- ``digits_contaminated``: for each digit d, all of the digit's rows with
  rows of the other digits drawn among them (``RandomState(d)``), a ninth as
  many as the digit's.
- ``breast_cancer_contaminated``: all the benign tumours with malignant ones
  drawn among them, a ninth as many, after a StandardScaler fit on all of
  them; repeated over 10 draws (seeds 0 to 9), every method seeded with the
  draw's seed.

There the detector and PyOD's detectors are told the planted fraction,
0.1 (``contamination``): PyOD's set their thresholds with it, which the
AUC does not see, and the detector (``skae``) also leaves twice it out of
training (its default ``trim_fraction=None`` follows ``contamination``).
The detector is also fitted with ``trim_fraction`` at the planted
fraction (``skae_trim10``), at twice it (``skae_trim20``, as ``skae``), and
at ``'auto'``, which knows no fraction (``skae_trim_auto``), on flat rows;
LocalOutlierFactor is fitted without ``novelty`` and scores the rows by its
``negative_outlier_factor_``.

Methods, all with their defaults: skae's AutoencoderOutlierDetector
(``random_state=0``, or the split's seed) on the rows as features (``skae``)
and, for the image sets, told that the rows are images (``skae_image``:
``image_shape`` alone, which scores the residual averaged over each pixel's
``error_window`` square); PyOD's AutoEncoder, VAE, IForest (scikit-learn's
IsolationForest), PCA (the distance to the mean along every principal axis,
divided by that axis's variance: a Mahalanobis distance) and ECOD, each with
``random_state=0`` (or the split's seed) where it takes one (``pip install
skae[bench]`` installs PyOD; it is no dependency of skae); PCA's
reconstruction error (``n_components=32``, or half the features when there
are fewer than 64) and LocalOutlierFactor (``novelty=True``). Each method's
fit seconds stand beside its AUC, and ``best_baseline_auc`` is the best of
PyOD's AutoEncoder, IForest and PCA (for breast cancer, the best of their
mean AUCs). For the detector it also reports the fraction of normal and of
abnormal test rows that its ``contamination='auto'`` threshold flags.

Commands and their durations on 2 CPU cores of an Intel Xeon (one torch
thread; all five sets in 9.5 min at commit ad6e408; about 2.5 times as long
on an AMD EPYC)::

    python -m benchmarks.bench_outliers --datasets breast_cancer digits  # ~1 min
    python -m benchmarks.bench_outliers --datasets fashion_mnist         # ~7 min
    python -m benchmarks.bench_outliers \
        --datasets digits_contaminated breast_cancer_contaminated        # ~1.5 min
    python -m benchmarks.bench_outliers --quick    # breast cancer and digits, 20 epochs
    python -m benchmarks.bench_outliers --set code_weight=0   # a candidate setting
    python -m benchmarks.bench_outliers --datasets fashion_mnist \
        --methods skae_image pyod_ae --set "hidden_layer_sizes=(512, 256)" \
        code_weight=1  # ~2 min

``--set key=value`` overrides a parameter of the detector (both ``skae``
columns), to measure a candidate setting, e.g. ``--set
"hidden_layer_sizes=(128, 64)"``; ``--methods`` runs only the methods named
(its columns), e.g. the image detector and PyOD's AutoEncoder, whose fit
time the detector's is held against. Results:
``benchmarks/results/bench_outliers_<dataset>.{json,md}`` (``--quick``,
``--set`` and ``--methods``: ``bench_quick_output/``).
"""

import argparse
import time

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks._common import (
    add_set_argument,
    default_out,
    device_name,
    format_params,
    markdown_table,
    parse_overrides,
    reference_epoch_seconds,
    resolve_device,
    timed_fit,
    writable_folder,
    write_results,
)
from skae import AutoencoderOutlierDetector, fetch_fashion_mnist

try:
    import pyod
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.ecod import ECOD
    from pyod.models.iforest import IForest
    from pyod.models.pca import PCA as PyODPCA
    from pyod.models.vae import VAE
except ImportError as error:
    raise ImportError(
        "bench_outliers compares with PyOD: pip install 'skae[bench]'"
    ) from error

IMAGE_SHAPES = {"fashion_mnist": (1, 28, 28), "digits": (1, 8, 8)}
DATASETS = (
    "breast_cancer",
    "digits",
    "fashion_mnist",
    "breast_cancer_contaminated",
    "digits_contaminated",
)
# The fraction of planted outliers among the rows the contaminated
# protocols fit on, and the trim_fraction values the detector gets there.
CONTAMINATION = 0.1
TRIMS = {"skae_trim10": 0.1, "skae_trim20": 0.2, "skae_trim_auto": "auto"}
# The random halvings of the benign tumours that breast cancer repeats.
SPLITS = range(10)
# The baselines the detector must match on every data set (issue 22).
RIVALS = ("pyod_ae", "pyod_iforest", "pyod_pca")
# The detector's two columns, then the baselines, in the tables' order.
DETECTORS = ("skae", "skae_image", *TRIMS)
BASELINES = (
    "pyod_ae",
    "pyod_vae",
    "pyod_iforest",
    "pyod_pca",
    "pyod_ecod",
    "pca",
    "lof",
)


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


class LOFOnFitRows(BaseEstimator):
    """LocalOutlierFactor without novelty: its scores of the rows it fitted.

    ``score_samples`` takes those rows only (the contaminated protocols
    score the rows they fit on), as ``novelty=True`` would count each row
    among its own neighbours.
    """

    def fit(self, X, y=None):
        self.X_ = np.array(X, copy=True)
        self.scores_ = LocalOutlierFactor().fit(X).negative_outlier_factor_
        return self

    def score_samples(self, X):
        if not np.array_equal(X, self.X_):
            raise ValueError("LOFOnFitRows scores the rows it was fitted on only.")
        return self.scores_


class PyODScore(BaseEstimator):
    """A PyOD detector with scikit-learn's sign: high ``score_samples`` = inlier."""

    def __init__(self, detector):
        self.detector = detector

    def fit(self, X, y=None):
        self.detector_ = clone(self.detector).fit(X)
        return self

    def score_samples(self, X):
        return -self.detector_.decision_function(X)


def make_methods(
    n_features,
    image_shape,
    max_iter,
    candidate,
    device,
    scale,
    only=None,
    contaminated=False,
    seed=0,
):
    """Fresh detectors, in a StandardScaler pipeline when ``scale``.

    ``candidate`` holds the detector's parameters that differ from its
    defaults; ``only``, if given, the names of the methods to keep;
    ``contaminated``: the methods of the contaminated protocols (the
    detector on flat rows, also trimmed, and LOF without novelty); ``seed``:
    the ``random_state`` of every method that takes one.
    """
    # The contaminated protocols tell the detector and PyOD's the planted
    # fraction (contamination); PyOD's set a threshold with it, which the
    # AUC does not see, the detector also its trimming (trim_fraction=None).
    told = {"contamination": CONTAMINATION} if contaminated else {}
    params = {"random_state": seed, "device": device, **told}
    if max_iter is not None:
        params["max_iter"] = max_iter
    # The candidate last, so that --set max_iter wins over --quick's.
    params.update(candidate)
    methods = {"skae": AutoencoderOutlierDetector(**params)}
    if contaminated:
        for name, fraction in TRIMS.items():
            methods[name] = AutoencoderOutlierDetector(
                **{**params, "trim_fraction": fraction}
            )
    elif image_shape is not None:
        methods["skae_image"] = AutoencoderOutlierDetector(
            image_shape=image_shape, **params
        )
    # PyOD's networks on the device skae's detectors train on, so that the
    # fit times compare like with like.
    pyod_device = resolve_device(device).type
    methods.update(
        pyod_ae=PyODScore(
            AutoEncoder(device=pyod_device, random_state=seed, verbose=0, **told)
        ),
        pyod_vae=PyODScore(
            VAE(device=pyod_device, random_state=seed, verbose=0, **told)
        ),
        pyod_iforest=PyODScore(IForest(random_state=seed, **told)),
        pyod_pca=PyODScore(PyODPCA(random_state=seed, **told)),
        pyod_ecod=PyODScore(ECOD(**told)),
        pca=PCAReconstruction(32 if n_features >= 64 else n_features // 2),
        lof=LOFOnFitRows() if contaminated else LocalOutlierFactor(novelty=True),
    )
    if only is not None:
        methods = {name: m for name, m in methods.items() if name in only}
    if scale:
        methods = {
            name: make_pipeline(StandardScaler(), m) for name, m in methods.items()
        }
    return methods


def add_best_baseline(row):
    """Set ``row['best_baseline_auc']``, the best rival's AUC, if all of them ran."""
    if all(f"{name}_auc" in row for name in RIVALS):
        row["best_baseline_auc"] = max(row[f"{name}_auc"] for name in RIVALS)


def run_task(dataset, task, X_train, X_test, abnormal, **params):
    """Fit every method on ``X_train``; one record of AUCs and fit times."""
    record = {"dataset": dataset, "normal": task}
    methods = make_methods(
        X_train.shape[1],
        IMAGE_SHAPES.get(dataset),
        contaminated=dataset.endswith("_contaminated"),
        **params,
    )
    fit_cpu_s = {}
    reference_k = None  # the first detector's code width
    for name, model in methods.items():
        cpu_start = time.process_time()
        record[f"{name}_fit_s"] = timed_fit(model, X_train)
        fit_cpu_s[name] = time.process_time() - cpu_start
        record[f"{name}_auc"] = roc_auc_score(abnormal, -model.score_samples(X_test))
        if name.startswith("skae"):
            flagged = model.predict(X_test) == -1
            detector = model[-1] if params["scale"] else model
            reference_k = reference_k or detector.n_components_
            record[f"{name}_epochs"] = detector.n_iter_
            axes = detector.input_components_
            record[f"{name}_input_axes"] = 0 if axes is None else len(axes)
            if detector.error_covariance_gain_ is not None:
                record[f"{name}_whitening_gain"] = detector.error_covariance_gain_
            record[f"{name}_flags_normal"] = float(np.mean(flagged[~abnormal]))
            record[f"{name}_flags_abnormal"] = float(np.mean(flagged[abnormal]))
    if reference_k is not None:
        add_equivalent_epochs(record, X_train, reference_k, fit_cpu_s, params["device"])
    add_best_baseline(record)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()})
    return record


def add_equivalent_epochs(record, X_train, k, fit_cpu_s, device):
    """Set the fits' *equivalent epochs*: their cost in epochs of a fixed loop.

    One epoch of the reference loop (:func:`reference_epoch_seconds`, the
    network of ``bench_fit_cost``, at the detector's code width) on the same
    rows, timed after the fits; on the CPU, CPU seconds over CPU seconds
    (the time a process waited for a core left out), on a GPU wall over
    wall. For the detectors and PyOD's AutoEncoder, the other network;
    ``k``: the detector's ``n_components_``.
    """
    device = resolve_device(device)
    epoch_s, epoch_cpu_s = reference_epoch_seconds(
        X_train, k, min_seconds=2.0, device=device
    )
    record["reference_k"] = k
    record["reference_epoch_s"] = epoch_s
    record["reference_epoch_cpu_s"] = epoch_cpu_s
    for name in (*DETECTORS, "pyod_ae"):
        if name not in fit_cpu_s:
            continue
        record[f"{name}_fit_cpu_s"] = fit_cpu_s[name]
        record[f"{name}_equivalent_epochs"] = (
            record[f"{name}_fit_s"] / epoch_s
            if device.type == "cuda"
            else fit_cpu_s[name] / epoch_cpu_s
        )


def fashion_mnist(**params):
    train = fetch_fashion_mnist(subset="train")
    test = fetch_fashion_mnist(subset="test")
    return [
        run_task(
            "fashion_mnist",
            c,
            train.data[train.target == c],
            test.data,
            test.target != c,
            **params,
        )
        for c in range(10)
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

    def split(seed):
        X_fit, X_held = train_test_split(benign, test_size=0.5, random_state=seed)
        X_test = np.vstack([X_held, malignant])
        abnormal = np.r_[np.zeros(len(X_held), bool), np.ones(len(malignant), bool)]
        return X_fit, X_test, abnormal

    return over_benign_splits("breast_cancer", split, params)


def over_benign_splits(dataset, split, params):
    """One record per seed of SPLITS: ``split(seed)`` gives its rows.

    ``split`` returns the rows to fit, the rows to score and which of those
    are abnormal; every method runs after a StandardScaler.
    """
    records = []
    for seed in SPLITS:
        X_fit, X_test, abnormal = split(seed)
        # Each split's methods seeded with its seed: the mean then also
        # covers the draws of the networks' weights, whose spread on these
        # few hundred rows is that of the halvings.
        record = run_task(
            dataset,
            "benign",
            X_fit,
            X_test,
            abnormal,
            **{**params, "scale": True, "seed": seed},
        )
        records.append({"split": seed, **record})
    return records


def planted(normal, others, n_planted, seed):
    """``normal`` with ``n_planted`` rows of ``others`` drawn among them.

    Returns the rows and which of them are planted (abnormal).
    """
    rng = np.random.RandomState(seed)
    drawn = others[rng.choice(len(others), n_planted, replace=False)]
    abnormal = np.r_[np.zeros(len(normal), bool), np.ones(n_planted, bool)]
    return np.vstack([normal, drawn]), abnormal


def n_planted(n_normal):
    """How many outliers make CONTAMINATION of the rows with ``n_normal``."""
    return round(n_normal * CONTAMINATION / (1 - CONTAMINATION))


def digits_contaminated(**params):
    X, y = load_digits(return_X_y=True)
    X = X / 16
    records = []
    for d in range(10):
        rows, abnormal = planted(X[y == d], X[y != d], n_planted(np.sum(y == d)), d)
        records.append(
            run_task("digits_contaminated", d, rows, rows, abnormal, **params)
        )
    return records


def breast_cancer_contaminated(**params):
    X, y = load_breast_cancer(return_X_y=True)
    benign, malignant = X[y == 1], X[y == 0]

    def split(seed):
        rows, abnormal = planted(benign, malignant, n_planted(len(benign)), seed)
        return rows, rows, abnormal

    return over_benign_splits("breast_cancer_contaminated", split, params)


def over_splits(records, columns):
    """One row: the mean of each column over the splits, and its AUCs' sd.

    ``best_baseline_auc`` is the best of the rivals' mean AUCs, not the
    mean of each split's best, which would favour whichever rival is lucky.
    """
    row = {"normal": f"{records[0]['normal']}, mean of {len(records)} splits"}
    for column in columns[1:]:
        values = [r[column] for r in records]
        row[column] = float(np.mean(values))
        if column.endswith("_auc") and column != "best_baseline_auc":
            row[f"{column}_sd"] = float(np.std(values, ddof=1))
    add_best_baseline(row)
    return row


def paired_differences(records, detectors):
    """A line per detector: its AUC minus each rival's, paired by split or task.

    The mean difference over the records (the halvings of breast cancer, or
    the classes) and its standard error: whether a gap between two means is
    more than the splits' or tasks' spread.
    """
    unit = "splits" if "split" in records[0] else "tasks"
    lines = []
    for detector in detectors:
        gaps = []
        for rival in RIVALS:
            if f"{rival}_auc" not in records[0]:
                continue
            diff = np.array([r[f"{detector}_auc"] - r[f"{rival}_auc"] for r in records])
            error = np.std(diff, ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0
            gaps.append(f"{rival} {diff.mean():+.4f} ± {error:.4f}")
        if gaps:
            lines.append(
                f"{detector} AUC minus each rival's, paired over the "
                f"{len(records)} {unit} (mean ± standard error): "
                + ", ".join(gaps)
                + "."
            )
    return lines


def summarise(dataset, records, candidate):
    """Markdown: one row per task, then the mean; repeated splits: their mean.

    ``candidate``: the detector's parameters that differ from its defaults.
    """
    detectors = [m for m in DETECTORS if f"{m}_auc" in records[0]]
    columns = ["normal", *(f"{m}_auc" for m in detectors)]
    if "best_baseline_auc" in records[0]:
        columns.append("best_baseline_auc")
    for m in BASELINES:
        if f"{m}_auc" in records[0]:
            columns += [f"{m}_auc", f"{m}_fit_s"]
            if f"{m}_equivalent_epochs" in records[0]:
                columns.append(f"{m}_equivalent_epochs")
    for m in detectors:
        columns += [f"{m}_fit_s"]
        if f"{m}_equivalent_epochs" in records[0]:
            columns.append(f"{m}_equivalent_epochs")
        columns += [
            f"{m}_epochs",
            f"{m}_input_axes",
            f"{m}_flags_normal",
            f"{m}_flags_abnormal",
        ]
        if f"{m}_whitening_gain" in records[0]:
            columns.append(f"{m}_whitening_gain")
    rows = list(records)
    splits = ""
    if "split" in records[0]:
        rows = [over_splits(records, columns)]
        columns = [
            column
            for name in columns
            for column in (name, f"{name}_sd")
            if column in rows[0]
        ]
        splits = (
            f" Means over {len(records)} random splits (seeds "
            f"{records[0]['split']} to {records[-1]['split']}; each split's "
            "values in the JSON); *_auc_sd: standard deviation of the AUC "
            "across them; best_baseline_auc: the best mean."
        )
    elif len(records) > 1:
        mean = {c: float(np.mean([r[c] for r in records])) for c in columns[1:]}
        rows.append({"normal": "**mean**", **mean})
    setting = f" The detector with {format_params(candidate)}." if candidate else ""
    if dataset.endswith("_contaminated"):
        protocol = (
            f"Outlier detection on {dataset}: every method fitted on normal "
            f"rows with planted abnormal ones ({CONTAMINATION:.0%} of the "
            "rows), scoring those same rows (the 'test' rows below); "
            "skae_trim10, skae_trim20 and skae_trim_auto: the detector with "
            f"trim_fraction {TRIMS['skae_trim10']}, {TRIMS['skae_trim20']} "
            f"and {TRIMS['skae_trim_auto']!r}"
        )
    else:
        protocol = f"One-class anomaly detection on {dataset}"
    return (
        f"{protocol}: ROC AUC of 'abnormal' "
        "against minus score_samples (higher is better); best_baseline_auc: "
        "the best of PyOD's AutoEncoder, IForest and PCA; *_fit_s: seconds "
        "to fit; *_equivalent_epochs: the fit's CPU seconds over those of one "
        "epoch of bench_fit_cost's reference loop (n_features -> 512 -> 256 "
        "-> 128 -> the detector's n_components_ and back, Adam, batches of "
        "256) on the same rows, timed in the same run; *_flags_*: fraction "
        "of the normal and abnormal test rows that contamination='auto' "
        "flags; *_whitening_gain: the detector's error_covariance_gain_ "
        "(error_covariance='auto' whitens from 0.15); *_input_axes: how many "
        "principal axes its network saw (0: every feature). "
        f"PyOD {pyod.__version__}.{splits}{setting}"
        "\n\n"
        + "\n\n".join(
            [markdown_table(rows, columns), *paired_differences(records, detectors)]
        )
    )


def warm_up(device, only):
    """Fit every method once on a few random rows, untimed.

    The first fit in a process pays for loading torch's kernels and PyOD's
    compiled code; without this, whichever method fits first would carry it.
    """
    X = np.random.RandomState(0).normal(size=(64, 8))
    for model in make_methods(8, None, 2, {}, device, False, only).values():
        timed_fit(model, X)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="breast cancer and digits at 20 epochs, written to bench_quick_output/",
    )
    add_set_argument(parser)
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=DETECTORS + BASELINES,
        default=None,
        help="run only these methods (written to bench_quick_output/)",
    )
    parser.add_argument("--device", type=device_name, default="auto")
    parser.add_argument("--out", type=writable_folder, default=None)
    args = parser.parse_args(argv)
    datasets = args.datasets or (DATASETS[:2] if args.quick else DATASETS)
    candidate = parse_overrides(
        parser, args.set, AutoencoderOutlierDetector, fixed=("image_shape",)
    )
    partial = args.methods is not None
    out = args.out or default_out(args.quick or bool(candidate) or partial)
    params = {
        "only": args.methods,
        "max_iter": 20 if args.quick else None,
        "candidate": candidate,
        "device": args.device,
        "scale": False,
    }
    run_dataset = {
        "fashion_mnist": fashion_mnist,
        "digits": digits,
        "breast_cancer": breast_cancer,
        "digits_contaminated": digits_contaminated,
        "breast_cancer_contaminated": breast_cancer_contaminated,
    }
    warm_up(args.device, args.methods)
    for dataset in datasets:
        records = run_dataset[dataset](**params)
        path = write_results(
            f"bench_outliers_{dataset}",
            records,
            summarise(dataset, records, candidate),
            out,
        )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
