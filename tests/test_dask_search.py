"""Hyperparameter search on a dask.distributed cluster through joblib.

A real ``LocalCluster`` with worker processes: the estimators are pickled to
other Python processes, fitted there, and the scores come back. The search
must give exactly what the same search gives sequentially in this process.
"""

import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skae import AutoencoderTransformer

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

N_ROWS = 300


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each, one torch thread per worker."""
    one_thread = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    # Without dask's eager malloc trimming, which halves PyTorch's speed.
    no_trim = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    with (
        dask.config.set(no_trim),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=one_thread,
        ) as cluster,
    ):
        with distributed.Client(cluster) as client:
            # The env applies before torch is imported in the worker; set the
            # count explicitly as well, in the threads that run the tasks.
            client.run(torch.set_num_threads, 1)
            yield client


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:N_ROWS], y[:N_ROWS]


def _search(grid):
    pipe = Pipeline(
        [
            (
                "ae",
                AutoencoderTransformer(
                    hidden_layer_sizes=(32,),
                    max_iter=5,
                    device="cpu",
                    random_state=0,
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    )
    return GridSearchCV(pipe, {"ae__n_components": grid}, cv=2)


def _fit(search, X, y):
    with warnings.catch_warnings():
        # max_iter is capped on purpose; scikit-learn passes the filter on to
        # the workers.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return search.fit(X, y)


def _assert_same_results(dask_search, sequential):
    assert dask_search.best_params_ == sequential.best_params_
    dask_results, seq_results = dask_search.cv_results_, sequential.cv_results_
    assert set(dask_results) == set(seq_results)
    for key in seq_results:
        if key.endswith("_time"):
            continue
        if key == "params":
            assert dask_results[key] == seq_results[key]
        else:
            np.testing.assert_array_equal(dask_results[key], seq_results[key])


def test_workers_use_one_torch_thread(client):
    assert set(client.run(torch.get_num_threads).values()) == {1}
    # The tasks run in the workers' executor threads, not in the thread that
    # client.run uses.
    assert client.submit(torch.get_num_threads, pure=False).result() == 1


@pytest.mark.parametrize("grid", [[2, 4], [0.5, 0.8]], ids=["int", "float"])
def test_grid_search_on_dask_matches_sequential(client, data, grid):
    X, y = data
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config(backend="dask"):
            dask_search = _fit(_search(grid).set_params(n_jobs=-1), X, y)

    # The fits ran as tasks on the cluster's workers.
    fit_tasks = [t for t in stream.data if "_fit_and_score" in t["key"]]
    assert fit_tasks, [t["key"] for t in stream.data]
    workers = set(client.scheduler_info()["workers"])
    assert {t["worker"] for t in fit_tasks} <= workers

    assert dask_search.best_params_["ae__n_components"] in grid
    sequential = _fit(_search(grid).set_params(n_jobs=1), X, y)
    _assert_same_results(dask_search, sequential)
