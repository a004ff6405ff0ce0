"""How long does a GridSearchCV over n_components take, with and without n_jobs?

Times the two searches the documentation shows, as they are written there,
on the digits (1,797 rows, ``LogisticRegression(max_iter=1000)`` after the
autoencoder, ``random_state=0``, ``cv=3``):

- ``readme``: the README's search, ``n_components`` in [8, 16]: 7 fits
  (6 in the folds, one refit of the best width on every row);
- ``guide``: the user guide's ("Choosing n_components"), ``n_components``
  in [2, 4, 8, 16, 32]: 16 fits.

Each search runs with ``n_jobs=None`` (one fit at a time, on torch's thread
count) and ``n_jobs=2`` (two fits side by side in joblib's worker
processes, one thread each), alternating, ``--repeats`` times each (the
median is reported). The worker processes are started before, by a small
untimed search; their start-up (importing torch and skae in each) is
recorded apart, as a user's first search with ``n_jobs`` pays it once.
The refit always runs alone, in the calling process; its epochs are
recorded, as it trains on more rows than the folds' fits and for longer.

Commands and their durations on 2 CPU cores of an Intel Xeon, which must
be otherwise idle (about 3 times as long on an AMD EPYC)::

    python -m benchmarks.bench_search          # ~6 min: both, 2 repeats
    python -m benchmarks.bench_search --quick  # ~1 min: 400 rows, 5 epochs

Results: ``benchmarks/results/bench_search_digits.{json,md}``
(``--quick``, ``--repeats`` or ``--searches``: ``bench_quick_output/``).
"""

import argparse
import os
import statistics
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from benchmarks._common import (
    default_out,
    markdown_table,
    positive_int,
    writable_folder,
    write_results,
)
from skae import AutoencoderTransformer

# The widths each documented search tries.
SEARCHES = {"readme": [8, 16], "guide": [2, 4, 8, 16, 32]}


def make_search(widths, n_jobs, max_iter):
    autoencoder = AutoencoderTransformer(n_components=widths[-1], random_state=0)
    if max_iter is not None:
        autoencoder.set_params(max_iter=max_iter)
    pipe = make_pipeline(autoencoder, LogisticRegression(max_iter=1000))
    return GridSearchCV(
        pipe, {"autoencodertransformer__n_components": widths}, cv=3, n_jobs=n_jobs
    )


def timed_search(X, y, widths, n_jobs, max_iter):
    search = make_search(widths, n_jobs, max_iter)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # Where --quick caps the epochs; in the workers, joblib shows it anyway.
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    seconds = time.perf_counter() - start
    refit = search.best_estimator_[0]
    return seconds, {
        "best_n_components": refit.n_components,
        "best_cv_accuracy": float(search.best_score_),
        "refit_epochs": refit.n_iter_,
        "refit_s": search.refit_time_,
    }


def start_workers(X, y):
    """Start joblib's two worker processes (torch and skae imported); seconds.

    A search with ``n_jobs=2`` starts them the first time, and later ones
    reuse them: a small untimed search does it here, so that the timed
    searches compare the fits, not the start-up, which is recorded apart.
    """
    start = time.perf_counter()
    timed_search(X[:200], y[:200], [2], 2, max_iter=1)
    return time.perf_counter() - start


def measure(X, y, searches, repeats, max_iter):
    workers_start_s = start_workers(X, y)
    print(f"workers started in {workers_start_s:.1f} s", flush=True)
    records = []
    for name in searches:
        widths = SEARCHES[name]
        times = {None: [], 2: []}
        outcome = {}
        for _ in range(repeats):
            for n_jobs in times:
                seconds, outcome[n_jobs] = timed_search(X, y, widths, n_jobs, max_iter)
                times[n_jobs].append(seconds)
                print(name, n_jobs, f"{seconds:.1f} s", outcome[n_jobs], flush=True)
        for n_jobs, seconds in times.items():
            records.append(
                {
                    "search": name,
                    "n_components": str(widths),
                    "fits": len(widths) * 3 + 1,
                    "n_jobs": str(n_jobs),
                    "search_s": statistics.median(seconds),
                    "workers_start_s": workers_start_s if n_jobs else 0.0,
                    "runs_s": " / ".join(f"{s:.1f}" for s in seconds),
                    **outcome[n_jobs],
                }
            )
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", nargs="+", choices=list(SEARCHES), default=None)
    parser.add_argument("--repeats", type=positive_int, default=None)
    parser.add_argument(
        "--quick", action="store_true", help="400 rows, 5 epochs, one repeat"
    )
    parser.add_argument("--out", type=writable_folder, default=None)
    args = parser.parse_args(argv)
    X, y = load_digits(return_X_y=True)
    max_iter = None
    if args.quick:
        X, y, max_iter = X[:400], y[:400], 5
    searches = args.searches or list(SEARCHES)
    repeats = args.repeats or (1 if args.quick else 2)
    records = measure(X, y, searches, repeats, max_iter)
    table = (
        f"GridSearchCV over n_components on the digits ({len(X)} rows, cv=3, "
        f"{os.cpu_count()} CPU cores), one fit at a time (n_jobs None) and "
        "two side by side (n_jobs 2), alternating; search_s: the median of "
        "the runs; workers_start_s: starting joblib's workers, once, before "
        "the timed runs; refit_*: the last run's refit of the best width on "
        "every row, which runs alone.\n\n" + markdown_table(records, list(records[0]))
    )
    candidate = args.searches is not None or args.repeats is not None
    out = args.out or default_out(args.quick or candidate)
    print(write_results("bench_search_digits", records, table, out))


if __name__ == "__main__":
    main()
