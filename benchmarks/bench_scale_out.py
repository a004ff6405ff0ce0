"""How much faster does a grid search run on a dask.distributed cluster of N workers?

``GridSearchCV`` over ``n_components`` of a Pipeline (AutoencoderTransformer
with its defaults but ``max_iter`` capped and recorded, ``random_state=0``,
``device='cpu'``; then LogisticRegression) on digits, ``cv=3``,
``refit=False`` (the refit is one sequential fit in the calling process and
does not scale with workers). Timed once sequentially (``n_jobs=1``, in this
process) and once through joblib's dask backend on a ``LocalCluster`` of 1, 2,
... worker processes with one thread each. Every process runs torch on one
thread, so the workers add processes, not threads.

Each cluster is started and warmed up (skae imported on every worker, then an
untimed small search) before its search is timed; the start-up is recorded
separately. The sequential search gets the same untimed warm-up. Each record
also says how many of the search's fits ran as tasks on the workers and
whether the cross-validation scores equal the sequential search's exactly.

Note: joblib runs a search sequentially in the calling process when the
backend offers a single slot, so with one worker of one thread no task goes to
the cluster (``fits_on_workers`` is 0).

Commands and their durations on 2 CPU cores::

    python -m benchmarks.bench_scale_out            # ~2 to 4 min (1 and 2 workers)
    python -m benchmarks.bench_scale_out --quick    # ~30 s: a small grid on 400 rows

Needs ``dask[distributed]``. Results:
``benchmarks/results/bench_scale_out_digits.{json,md}`` (``--quick``,
``--workers``, ``--max-iter`` or ``--repeats``: ``bench_quick_output/``).
"""

import argparse
import statistics
import time
import warnings
from contextlib import contextmanager

import dask
import joblib
import numpy as np
import torch
from distributed import Client, LocalCluster, get_task_stream
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from benchmarks._common import (
    default_out,
    markdown_table,
    positive_int,
    writable_folder,
    write_results,
)
from skae import AutoencoderTransformer

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which returns
# freed memory to the system eagerly; PyTorch's many small allocations then
# make a fit in a worker about twice as slow as in the calling process (the
# user guide's "How the defaults were chosen"). The search is timed as the
# user guide tells users to run it: with the variable unset.
NO_MALLOC_TRIM = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def make_search(grid, cv, max_iter, n_jobs):
    pipe = Pipeline(
        [
            (
                "ae",
                AutoencoderTransformer(max_iter=max_iter, device="cpu", random_state=0),
            ),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    )
    return GridSearchCV(
        pipe, {"ae__n_components": grid}, cv=cv, refit=False, n_jobs=n_jobs
    )


def timed_search(search, X, y):
    start = time.perf_counter()
    with warnings.catch_warnings():
        # max_iter is capped: the question is scheduling, not convergence.
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    return time.perf_counter() - start


def scores(search):
    results = search.cv_results_
    keys = sorted(k for k in results if k.startswith("split"))
    return np.array([results[k] for k in keys])


def one_thread():
    """Import skae and run torch on one thread in a worker; return its count."""
    import skae  # noqa: F401

    torch.set_num_threads(1)
    return torch.get_num_threads()


def warm_up(X, y, settings, n_jobs):
    """An untimed small search: imports, first-call set-up, data transfer."""
    small = {**settings, "cv": 2, "max_iter": 1}
    timed_search(make_search(n_jobs=n_jobs, **small), X[:200], y[:200])


@contextmanager
def cluster_client(n_workers, config):
    """Client of a LocalCluster of one-thread worker processes, under ``config``."""
    with (
        dask.config.set(config),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=ONE_THREAD,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def on_cluster(n_workers, X, y, settings, repeats, reference):
    start = time.perf_counter()
    with cluster_client(n_workers, NO_MALLOC_TRIM) as client:
        worker_threads = set(client.run(one_thread).values())
        with joblib.parallel_config(backend="dask"):
            warm_up(X, y, settings, n_jobs=-1)
        startup = time.perf_counter() - start
        times, fits_on_workers = [], []
        for _ in range(repeats):
            search = make_search(n_jobs=-1, **settings)
            with get_task_stream(client) as stream:
                with joblib.parallel_config(backend="dask"):
                    times.append(timed_search(search, X, y))
            fits_on_workers.append(
                sum(
                    int(task["key"].split("_calls")[0].rsplit("_", 1)[1])
                    for task in stream.data
                    if "_fit_and_score" in task["key"]
                )
            )
    return {
        "mode": f"dask, {n_workers} worker(s)",
        "workers": n_workers,
        "torch_threads_per_worker": max(worker_threads),
        "cluster_start_s": startup,
        "search_s": statistics.median(times),
        "fits_on_workers": max(fits_on_workers),
        "same_scores": bool(np.array_equal(scores(search), reference)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers", type=positive_int, nargs="+", default=None, help="default: 1 2"
    )
    parser.add_argument("--max-iter", type=positive_int, default=None)
    parser.add_argument("--repeats", type=positive_int, default=None, help="default: 1")
    parser.add_argument(
        "--quick", action="store_true", help="a small grid, to bench_quick_output/"
    )
    parser.add_argument("--out", type=writable_folder, default=None)
    args = parser.parse_args(argv)
    workers = args.workers or [1, 2]
    repeats = args.repeats or 1
    # A run with other settings than the defaults is not the result.
    candidate = any(
        value is not None for value in (args.workers, args.max_iter, args.repeats)
    )
    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    if args.quick:
        X, y = X[:400], y[:400]
        settings = {"grid": [2, 4], "cv": 2, "max_iter": args.max_iter or 3}
    else:
        settings = {"grid": [2, 4, 8, 16], "cv": 3, "max_iter": args.max_iter or 30}
    common = {
        "dataset": "digits",
        "rows": len(X),
        "grid": str(settings["grid"]),
        "cv": settings["cv"],
        "fits": len(settings["grid"]) * settings["cv"],
        "max_iter": settings["max_iter"],
    }

    warm_up(X, y, settings, n_jobs=1)
    times = []
    for _ in range(repeats):
        search = make_search(n_jobs=1, **settings)
        times.append(timed_search(search, X, y))
    reference = scores(search)
    sequential = {
        "mode": "sequential (n_jobs=1)",
        "workers": 0,
        "torch_threads_per_worker": torch.get_num_threads(),
        "cluster_start_s": 0.0,
        "search_s": statistics.median(times),
        "fits_on_workers": 0,
        "same_scores": True,
    }
    records = [{**common, **sequential}]
    print(records[-1], flush=True)
    for n_workers in workers:
        record = on_cluster(n_workers, X, y, settings, repeats, reference)
        records.append({**common, **record})
        print(records[-1], flush=True)
    for record in records:
        record["speedup"] = sequential["search_s"] / record["search_s"]

    columns = [
        "mode",
        "workers",
        "search_s",
        "speedup",
        "cluster_start_s",
        "fits_on_workers",
        "same_scores",
    ]
    title = (
        f"GridSearchCV wall time on {common['rows']} digits rows: "
        f"n_components in {settings['grid']}, cv={settings['cv']} "
        f"({common['fits']} fits, refit=False), AutoencoderTransformer "
        f"max_iter={settings['max_iter']}, otherwise its defaults, "
        "+ LogisticRegression; one torch thread "
        "per process; median of "
        f"{repeats} run(s). speedup = sequential / search_s; "
        "cluster_start_s (start the LocalCluster, import skae on the workers, "
        "an untimed small search) is not in search_s.\n\n"
    )
    path = write_results(
        "bench_scale_out_digits",
        records,
        title + markdown_table(records, columns),
        args.out or default_out(args.quick or candidate),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
