import copy
import io
import pickle
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from conftest import requires_cuda
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback, EarlyStopping, LRScheduler

import skae._base
import skae._training
from skae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    DenoisingAutoencoder,
    DenseAutoencoder,
    TrainingDivergedError,
    VariationalAutoencoder,
)
from skae._training import INFERENCE_BATCH_SIZE, OneCycleSchedule

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def make_ae(**params):
    """A small, fast, seeded estimator; ``params`` override the defaults."""
    defaults = dict(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
    return AutoencoderTransformer(**{**defaults, **params})


def gaussian(n_samples=40, n_features=6, dtype=np.float64, seed=0):
    rng = np.random.RandomState(seed)
    return rng.normal(size=(n_samples, n_features)).astype(dtype)


def spectrum(n_samples=300, seed=0):
    """Rotated Gaussian rows in 8-D with a clearly decaying spectrum."""
    rng = np.random.RandomState(seed)
    scales = np.array([4.0, 3.0, 2.0, 1.0, 0.3, 0.2, 0.1, 0.05])
    rotation = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    return (rng.normal(size=(n_samples, 8)) * scales) @ rotation


def row_ids_2d(n_rows, n_features=6):
    """Rows whose first column is their index, so batches show which rows came."""
    return np.repeat(np.arange(n_rows, dtype=np.float64)[:, None], n_features, 1)


def pca_reconstruction(pca, X):
    return pca.inverse_transform(pca.transform(X))


def reconstruction(ae, X):
    return ae.inverse_transform(ae.transform(X))


def mse(X, X_hat):
    return float(np.mean((np.asarray(X) - np.asarray(X_hat)) ** 2))


# ------------------------------------------------------------ the sklearn API


def test_grid_search_in_pipeline(digits):
    X, y = digits
    X, y = X[:400], y[:400]
    pipe = make_pipeline(
        StandardScaler(),
        make_ae(max_iter=2),
        LogisticRegression(max_iter=300),
    )
    search = GridSearchCV(
        pipe, {"autoencodertransformer__n_components": [4, 8]}, cv=2
    ).fit(X, y)
    assert search.best_params_["autoencodertransformer__n_components"] in (4, 8)
    assert search.predict(X).shape == y.shape
    assert search.score(X, y) > 0.5


def test_grid_search_on_reconstruction_score():
    # score is the negative reconstruction error: more components score higher.
    X = spectrum(100)
    search = GridSearchCV(make_ae(max_iter=2), {"n_components": [1, 3]}, cv=2).fit(X)
    assert search.best_params_ == {"n_components": 3}


def test_fit_ignores_y(digits):
    X, y = digits
    X = X[:200]
    with_y = make_ae(n_components=4).fit(X, y[:200]).transform(X)
    without_y = make_ae(n_components=4).fit(X).transform(X)
    assert_array_equal(with_y, without_y)


def test_fit_returns_self():
    ae = make_ae()
    assert ae.fit(gaussian()) is ae


def test_fit_transform_equals_fit_then_transform():
    X = gaussian()
    assert_array_equal(make_ae().fit_transform(X), make_ae().fit(X).transform(X))


# ------------------------------------------------------------------ pickling


def test_pickle_round_trip():
    X = gaussian()
    ae = make_ae().fit(X)
    loaded = pickle.loads(pickle.dumps(ae))
    Z = ae.transform(X)
    assert_array_equal(loaded.transform(X), Z)
    assert_array_equal(loaded.inverse_transform(Z), ae.inverse_transform(Z))
    assert_array_equal(loaded.score_samples(X), ae.score_samples(X))
    assert torch.device(loaded.net_.device).type == "cpu"


def test_pickle_does_not_hold_training_rows():
    # The fitted model is its weights; its pickle should not grow with the data
    # (nor should a CUDA fit keep the held-out rows on the GPU).
    small = pickle.dumps(make_ae(max_iter=1).fit(gaussian(200, 64)))
    large = pickle.dumps(make_ae(max_iter=1).fit(gaussian(4000, 64)))
    assert len(large) < 1.1 * len(small)


class TensorSpy(pickle.Pickler):
    """A pickler that records every tensor it pickles itself."""

    def __init__(self, file):
        super().__init__(file)
        self.tensors = []

    def reducer_override(self, obj):
        if isinstance(obj, torch.Tensor):
            self.tensors.append(tuple(obj.shape))
        return NotImplemented


@pytest.mark.parametrize(
    "params",
    [
        dict(early_stopping=False),
        dict(early_stopping=True),
        dict(learning_rate="constant"),
        dict(callbacks=[LRScheduler("StepLR", step_size=1)]),
        # Its criterion holds the prefixes' weights.
        dict(ordered=True),
    ],
    ids=["no_stopping", "stopping", "constant_rate", "user_scheduler", "ordered"],
)
@pytest.mark.parametrize("partial", [False, True], ids=["fit", "partial_fit"])
def test_pickle_leaves_tensors_to_skorch(params, partial):
    # skorch pickles its CUDA-dependent attributes (module_, optimizer_, ...)
    # in a stream it can map to the CPU when loading. A tensor pickled anywhere
    # else (a learning-rate scheduler holds the optimizer) is restored on the
    # device it was saved from, so a CUDA-fitted model would not load on a
    # machine without CUDA.
    ae = make_ae(max_iter=2, **params).fit(gaussian())
    if partial:
        ae.partial_fit(gaussian(seed=1))
    spy = TensorSpy(io.BytesIO())
    spy.dump(ae)
    assert spy.tensors == []
    # The net's module and criterion parameters are its fitted ones again.
    net = pickle.loads(pickle.dumps(ae)).net_
    assert net.module is net.module_
    assert net.criterion is net.criterion_


@pytest.mark.cuda
@requires_cuda
def test_cuda_pickle_loads_without_cuda(monkeypatch):
    X = gaussian(dtype=np.float32)
    ae = make_ae(device="cuda").fit(X)
    Z = ae.transform(X)
    data = pickle.dumps(ae)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(Warning):
        loaded = pickle.loads(data)
    assert torch.device(loaded.net_.device).type == "cpu"
    assert all(p.device.type == "cpu" for p in loaded.module_.parameters())
    assert_allclose(loaded.transform(X), Z, rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
@requires_cuda
def test_cuda_fit_streams_from_pinned_memory_when_the_device_is_full(monkeypatch):
    X = gaussian(n_samples=400, dtype=np.float32)
    reference = make_ae(device="cuda", max_iter=5).fit(X)
    # Report almost no free memory: the rows stay on the host, pinned.
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1, 1))
    tensors = []
    original = skae._base.rows_to_device

    def spy(rows, device):
        tensors.append(original(rows, device))
        return tensors[-1]

    monkeypatch.setattr(skae._base, "rows_to_device", spy)
    streamed = make_ae(device="cuda", max_iter=5).fit(X)
    assert all(t.device.type == "cpu" and t.is_pinned() for t in tensors)
    assert_allclose(streamed.transform(X), reference.transform(X), rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
@requires_cuda
def test_cuda_transform_holds_one_batch_on_the_device():
    X = np.random.RandomState(0).rand(1000, 784).astype(np.float32)
    ae = make_ae(n_components=32, hidden_layer_sizes=(512, 256), device="cuda")
    ae.fit(X)
    big = np.repeat(X, 200, axis=0)  # 200k rows, 627 MB
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    baseline = torch.cuda.memory_allocated()
    ae.transform(big)
    peak = torch.cuda.max_memory_allocated() - baseline
    # A float64 copy of the network, a batch of inputs and its activations
    # (float64 on a GPU): far below the 627 MB of rows.
    batch_bytes = INFERENCE_BATCH_SIZE * 784 * 8
    assert peak < 4 * batch_bytes


@pytest.mark.cuda
@requires_cuda
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_cuda_mixed_precision_pickle_loads_without_cuda(monkeypatch, precision):
    X = gaussian(n_samples=400, dtype=np.float32)
    ae = make_ae(device="cuda", precision=precision, max_iter=10).fit(X)
    assert np.isfinite(ae.loss_curve_).all()
    Z = ae.transform(X)
    data = pickle.dumps(ae)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(Warning):
        loaded = pickle.loads(data)
    assert torch.device(loaded.net_.device).type == "cpu"
    # On the CPU the model runs under CPU autocast: close, not equal.
    assert_allclose(loaded.transform(X), Z, rtol=0.05, atol=0.05)


# ----------------------------------------------------------- reproducibility


def test_same_random_state_gives_bit_identical_fits():
    X = gaussian()
    first = make_ae(random_state=3).fit(X)
    second = make_ae(random_state=3).fit(X)
    assert_array_equal(first.transform(X), second.transform(X))
    assert first.loss_curve_ == second.loss_curve_


def test_random_state_instance_and_none_follow_scikit_learn():
    # A RandomState is consumed: successive fits differ, and the sequence
    # repeats from a fresh one; None draws from NumPy's global RandomState,
    # never from torch's.
    X = gaussian()

    def two_fits(random_state):
        ae = make_ae(init="random", random_state=random_state)
        return [ae.fit(X).transform(X) for _ in range(2)]

    first, second = two_fits(np.random.RandomState(0))
    assert not np.array_equal(first, second)
    again = two_fits(np.random.RandomState(0))
    assert_array_equal(again[0], first)
    assert_array_equal(again[1], second)
    np.random.seed(0)  # noqa: NPY002
    unseeded = make_ae(init="random", random_state=None).fit(X).transform(X)
    np.random.seed(0)  # noqa: NPY002
    torch.manual_seed(1)
    assert_array_equal(
        make_ae(init="random", random_state=None).fit(X).transform(X), unseeded
    )


@pytest.mark.parametrize("init", ["pca", "random"])
def test_different_random_state_gives_different_fits(init):
    X = gaussian()
    first = make_ae(init=init, random_state=0).fit(X)
    second = make_ae(init=init, random_state=1).fit(X)
    assert not np.array_equal(first.transform(X), second.transform(X))


@pytest.mark.parametrize("init", ["pca", "random"])
def test_fits_in_threads_are_the_fits_alone(init):
    # torch's global RNG, from which the initial weights come, is one for
    # the process: concurrent fits must not draw from each other's seeds.
    X = gaussian()
    alone = make_ae(init=init, random_state=0).fit(X).transform(X)
    torch_state = torch.get_rng_state()
    with ThreadPoolExecutor(4) as pool:
        codes = list(
            pool.map(
                lambda _: make_ae(init=init, random_state=0).fit(X).transform(X),
                range(8),
            )
        )
    for code in codes:
        assert_array_equal(code, alone)
    assert torch.equal(torch.get_rng_state(), torch_state)


@pytest.mark.parametrize("factor", [1e20, 1e-20, 1e-30])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_any_scale_fits_as_unit_scale(factor, dtype):
    # Squares of data far from unit scale overflow or vanish in float32.
    X = gaussian()
    unit = make_ae(n_components=2).fit(X)
    scaled = make_ae(n_components=2).fit((X * factor).astype(dtype))
    assert_allclose(
        scaled.explained_variance_score_, unit.explained_variance_score_, rtol=1e-3
    )
    assert_allclose(
        scaled.explained_variance_ratio_,
        unit.explained_variance_ratio_,
        rtol=1e-2,
        atol=1e-3,
    )
    # Scores are in the data's dtype: float32 squares of 1e20 do not fit.
    assert np.isfinite(scaled.transform((X * factor).astype(dtype))).all()


@pytest.mark.parametrize("value", [1e30, 1e39])
@pytest.mark.parametrize("alone", [True, False], ids=["rows_all_alike", "with_others"])
def test_constant_feature_far_from_zero(value, alone):
    # Its mean misses it by rounding (1e39 by 3e23): centred on the mean, rows
    # all alike crashed the PCA start (LinAlgError), and beside other features
    # it set the scale, which squeezed their codes to 1e-15 and scored -1e32.
    X = gaussian()
    if alone:
        X[:] = value
    else:
        X[:, 0] = value
    ae = make_ae(n_components=1).fit(X)
    codes = ae.transform(X)
    assert_array_equal(ae.inverse_transform(codes)[:, 0], value)
    assert ae.score(X) > -1
    assert alone or np.std(codes) > 0.1


def test_values_beyond_float32_are_an_error_not_nan():
    ae = make_ae(n_components=2).fit(gaussian())
    with pytest.raises(
        ValueError, match=r"scale \(.*\), holds values beyond float32's"
    ):
        ae.transform(gaussian() * 1e39)
    with pytest.raises(ValueError, match=r"pass codes as transform gives them"):
        ae.inverse_transform([[1e39, 0.0]])


def test_fit_leaves_global_rngs_alone():
    # The legacy global numpy state is the one a careless fit would advance.
    torch_state = torch.get_rng_state()
    numpy_state = np.random.get_state()  # noqa: NPY002
    make_ae(random_state=0).fit(gaussian())
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == numpy_state[0]
    assert_array_equal(after[1], numpy_state[1])
    assert after[2:] == numpy_state[2:]


# ----------------------------------------------------- PCA as starting point


@pytest.mark.parametrize("hidden_layer_sizes", [(), (16,), (16, 8)])
@pytest.mark.parametrize("n_components", [1, 3])
def test_pca_init_starts_at_pca(digits, hidden_layer_sizes, n_components):
    # A learning rate of 1e-12 leaves the weights where init put them.
    X = digits[0][:300]
    ae = make_ae(
        n_components=n_components,
        hidden_layer_sizes=hidden_layer_sizes,
        max_iter=1,
        learning_rate_init=1e-12,
        early_stopping=False,
    ).fit(X)
    pca = PCA(n_components=n_components).fit(X)
    expected = pca_reconstruction(pca, X)
    assert_allclose(reconstruction(ae, X), expected, atol=1e-5 * np.abs(expected).max())
    # The codes are PCA's, up to the internal scaling of the data.
    codes = ae.transform(X)
    pca_codes = pca.transform(X)
    scale = np.abs(pca_codes).max() / np.abs(codes).max()
    assert_allclose(codes * scale, pca_codes, atol=1e-5 * np.abs(pca_codes).max())


def test_pca_init_is_never_worse_than_pca_on_training_data():
    # Without early stopping the training loss is monitored from the initial
    # state on, so the kept model explains at least PCA's share of variance.
    X = spectrum(200)
    ae = make_ae(n_components=2, early_stopping=False, max_iter=10).fit(X)
    ratio = PCA(n_components=2).fit(X).explained_variance_ratio_.sum()
    assert ae.explained_variance_score_ >= ratio - 1e-5


def test_pca_init_keeps_initial_state_when_training_only_hurts():
    # A huge learning rate makes every epoch worse: the initial PCA state is kept.
    X = spectrum(200)
    ae = make_ae(
        n_components=2, learning_rate_init=10.0, max_iter=5, n_iter_no_change=3
    ).fit(X)
    assert ae.best_epoch_ == 0
    pca = PCA(n_components=2).fit(X)
    assert mse(X, reconstruction(ae, X)) <= 1.05 * mse(X, pca_reconstruction(pca, X))


def test_linear_autoencoder_lands_on_pca():
    X = spectrum()
    ae = make_ae(
        n_components=3,
        hidden_layer_sizes=(),
        init="random",
        activation="identity",
        max_iter=300,
        learning_rate_init=1e-2,
        early_stopping=False,
        tol=0,
    ).fit(X)
    pca = PCA(n_components=3).fit(X)
    pca_error = mse(X, pca_reconstruction(pca, X))
    assert mse(X, reconstruction(ae, X)) <= 1.01 * pca_error


# ---------------------------------------------------------------- it learns


def test_beats_pca_on_a_curved_manifold(curved):
    X_train, X_test = curved[:300], curved[300:]
    ae = make_ae(n_components=1, hidden_layer_sizes=(32,), max_iter=100).fit(X_train)
    pca = PCA(n_components=1).fit(X_train)
    assert mse(X_test, reconstruction(ae, X_test)) < 0.9 * mse(
        X_test, pca_reconstruction(pca, X_test)
    )


def test_random_init_loss_falls(curved):
    ae = make_ae(
        n_components=1, init="random", max_iter=20, learning_rate_init=1e-2
    ).fit(curved)
    assert ae.loss_curve_[-1] < 0.8 * ae.loss_curve_[0]


def test_beats_predicting_the_mean(curved):
    ae = make_ae(n_components=1, init="random", max_iter=20, learning_rate_init=1e-2)
    ae.fit(curved)
    assert mse(curved, reconstruction(ae, curved)) < 0.5 * mse(curved, ae.mean_)


# -------------------------------------------------------- fitted attributes


@pytest.mark.parametrize("fraction", [0.5, 0.8, 0.95])
@pytest.mark.parametrize("n_features", [None, 150])
def test_float_n_components_matches_pca(fraction, n_features):
    # Tall rows take the spectrum from the covariance, wide ones from the SVD.
    X = spectrum(100)
    if n_features is not None:
        X = np.hstack([X, 0.01 * np.random.default_rng(0).normal(size=(100, 150))])
    ae = make_ae(n_components=fraction, max_iter=1, early_stopping=False).fit(X)
    assert ae.n_components_ == PCA(n_components=fraction).fit(X).n_components_
    assert ae.transform(X).shape == (100, ae.n_components_)


def test_float_n_components_is_at_most_the_training_rows_with_pca_init():
    # PCA on all 40 rows needs more components than the 20 training rows
    # of the PCA start have: they explain all of their variance with 20.
    X = np.random.default_rng(0).normal(size=(40, 60))
    ae = make_ae(n_components=0.999, validation_fraction=0.5, max_iter=1).fit(X)
    assert ae.n_components_pca_ == ae.n_components_ == 20
    assert ae.transform(X).shape == (40, 20)


def test_fitted_attributes():
    X = spectrum(100)
    ae = make_ae(n_components=2, max_iter=4).fit(X)
    assert ae.n_components_ == 2
    assert ae.n_features_in_ == 8
    assert not hasattr(ae, "feature_names_in_")
    assert_allclose(ae.mean_, X.mean(axis=0))
    assert 0 <= ae.explained_variance_score_ <= 1
    assert ae.n_iter_ == len(ae.loss_curve_) == len(ae.validation_loss_curve_)
    assert 0 <= ae.best_epoch_ <= ae.n_iter_
    assert ae.module_ is ae.net_.module_
    assert isinstance(ae.module_, torch.nn.Module)


def test_no_validation_curve_without_early_stopping():
    ae = make_ae(early_stopping=False).fit(gaussian())
    assert ae.validation_loss_curve_ is None
    assert ae.n_iter_ == len(ae.loss_curve_)


def test_explained_variance_score_matches_reconstruction():
    # Without early stopping it is measured on the training rows.
    X = spectrum(100)
    ae = make_ae(n_components=2, early_stopping=False).fit(X)
    residual = np.sum((X - reconstruction(ae, X)) ** 2)
    total = np.sum((X - X.mean(axis=0)) ** 2)
    assert_allclose(ae.explained_variance_score_, 1 - residual / total, rtol=1e-5)


def test_module_not_fitted():
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        _ = AutoencoderTransformer().module_
    assert not hasattr(AutoencoderTransformer(), "module_")


def test_feature_names_in_from_dataframe():
    df = pd.DataFrame(gaussian(), columns=list("abcdef"))
    ae = make_ae().fit(df)
    assert_array_equal(ae.feature_names_in_, list("abcdef"))


# --------------------------------------------------------------- partial_fit


def chunks(X, n_chunks=4):
    return np.array_split(X, n_chunks)


def test_partial_fit_sets_up_from_the_first_chunk(curved):
    first, *rest = chunks(curved)
    ae = make_ae(n_components=0.9).partial_fit(first)
    expected = PCA(n_components=0.9).fit(first).n_components_
    assert ae.n_components_ == expected
    assert ae.n_iter_ == 1 and ae.best_epoch_ == 1
    assert ae.validation_loss_curve_ is None
    assert "early_stopping" not in dict(ae.net_.callbacks_)
    for chunk in rest:
        ae.partial_fit(chunk)
    assert ae.n_iter_ == 4
    assert len(ae.loss_curve_) == 4
    # The width and the model's scaling stay those of the first chunk.
    assert ae.n_components_ == expected
    assert ae.n_samples_seen_ == len(curved)
    assert_allclose(ae.mean_, curved.mean(axis=0))


def test_partial_fit_improves_over_chunks(curved):
    X_train, X_test = curved[:300], curved[300:]
    ae = make_ae(n_components=1, hidden_layer_sizes=(32,), learning_rate_init=3e-3)
    scores = []
    for _ in range(5):
        for chunk in chunks(X_train):
            ae.partial_fit(chunk)
        scores.append(ae.score(X_test))
    assert scores[-1] > scores[0]
    assert np.mean(np.diff(scores) > 0) >= 0.75


def test_partial_fit_streams_from_a_memmap(curved, tmp_path):
    path = tmp_path / "rows.f32"
    on_disk = np.memmap(path, dtype=np.float32, mode="w+", shape=curved.shape)
    on_disk[:] = curved
    on_disk.flush()
    rows = np.memmap(path, dtype=np.float32, mode="r", shape=curved.shape)
    streamed = make_ae(n_components=1)
    for start in range(0, len(rows), 100):
        streamed.partial_fit(rows[start : start + 100])
    in_memory = make_ae(n_components=1)
    for chunk in np.split(curved.astype(np.float32), 4):
        in_memory.partial_fit(chunk)
    assert_array_equal(streamed.transform(curved), in_memory.transform(curved))
    assert streamed.transform(rows).dtype == np.float32


def test_partial_fit_is_reproducible(curved):
    def run():
        ae = make_ae(n_components=1, random_state=5)
        for chunk in chunks(curved):
            ae.partial_fit(chunk)
        return ae

    first, second = run(), run()
    assert_array_equal(first.transform(curved), second.transform(curved))
    assert first.loss_curve_ == second.loss_curve_


def test_partial_fit_shuffles_each_call_differently():
    X = row_ids_2d(64)
    orders = []

    class Spy(Callback):
        def on_batch_begin(self, net, batch=None, training=False, **kwargs):
            if training:
                orders.append(batch[0][:, 0].tolist())

    ae = make_ae(init="random", batch_size=64, callbacks=[Spy()])
    ae.partial_fit(X).partial_fit(X)
    assert sorted(orders[0]) == sorted(orders[1])
    assert orders[0] != orders[1]


def test_partial_fit_after_fit_trains_on(curved):
    ae = make_ae(max_iter=3).fit(curved)
    weights = [p.detach().clone() for p in ae.module_.parameters()]
    ae.partial_fit(curved)
    assert ae.n_iter_ == 4
    assert "early_stopping" not in dict(ae.net_.callbacks_)
    assert any(
        not torch.equal(p, q)
        for p, q in zip(ae.module_.parameters(), weights, strict=True)
    )


def test_partial_fit_rejects_a_chunk_of_another_width(curved):
    ae = make_ae().partial_fit(curved)
    with pytest.raises(
        ValueError,
        match="X has 5 features, but AutoencoderTransformer is expecting 6 features",
    ):
        ae.partial_fit(curved[:, :5])


@pytest.mark.parametrize("n_components", [1, 4])
def test_partial_fit_keeps_an_unordered_models_width(curved, n_components):
    # Fewer columns would cut a code not trained in order; more, grow it.
    ae = make_ae(n_components=2, max_iter=2).fit(curved)
    ae.set_params(n_components=n_components)
    with pytest.raises(ValueError, match=rf"n_components={n_components} (is|exc)"):
        ae.partial_fit(curved)
    assert ae.set_params(n_components=2).partial_fit(curved).n_components_ == 2


def test_partial_fit_cuts_an_ordered_model_to_a_prefix(curved):
    ae = make_ae(n_components=3, ordered=True, max_iter=2).fit(curved)
    ae.set_params(n_components=2).partial_fit(curved)
    assert ae.transform(curved).shape == (len(curved), 2)
    with pytest.raises(ValueError, match=r"exceeds the fitted network's code"):
        ae.set_params(n_components=4).partial_fit(curved)


def test_partial_fit_after_fit_checks_the_data_as_fit_does():
    X = np.random.default_rng(0).uniform(size=(60, 6))
    ae = make_ae(loss="bce", max_iter=2).fit(X)
    with pytest.raises(ValueError, match=r"loss='bce' needs data in \[0, 1\]"):
        ae.partial_fit(X * 16)


def test_partial_fit_reads_the_current_training_parameters(curved, capsys):
    # As MLPRegressor.partial_fit does: batch_size, alpha, verbose, callbacks.
    ae = make_ae(max_iter=2).fit(curved)
    counter = EpochCounter()
    ae.set_params(batch_size=len(curved), alpha=0.5, verbose=1, callbacks=[counter])
    ae.partial_fit(curved)
    assert ae.net_.history[-1]["train_batch_count"] == 1
    assert all(g["weight_decay"] == 0.5 for g in ae.net_.optimizer_.param_groups)
    assert "EpochCounter" in dict(ae.net_.callbacks_)
    assert "epoch" in capsys.readouterr().out.lower()
    ae.set_params(callbacks=None, verbose=0).partial_fit(curved)
    assert "EpochCounter" not in dict(ae.net_.callbacks_)
    assert capsys.readouterr().out == ""


class FailingEpoch(Callback):
    def on_epoch_end(self, net, **kwargs):
        raise RuntimeError("epoch failed")


def test_a_failed_first_partial_fit_leaves_the_estimator_unfitted(curved):
    ae = make_ae(callbacks=[FailingEpoch()])
    with pytest.raises(RuntimeError, match="epoch failed"):
        ae.partial_fit(curved)
    with pytest.raises(NotFittedError):
        ae.transform(curved)
    ae.set_params(callbacks=None).partial_fit(curved)
    assert ae.n_samples_seen_ == len(curved)
    assert ae.n_iter_ == 1


def test_partial_fit_needs_two_rows_to_start_and_one_after(curved):
    with pytest.raises(ValueError, match=r"Found array with 1 sample\(s\)"):
        make_ae().partial_fit(curved[:1])
    ae = make_ae().partial_fit(curved[:50])
    ae.partial_fit(curved[50:51])
    assert ae.n_samples_seen_ == 51


def test_partial_fit_first_chunk_needs_enough_rows_for_pca(curved):
    with pytest.raises(ValueError, match=r"n_components=4 must be <= "):
        make_ae(n_components=4).partial_fit(curved[:3])


# ------------------------------------------------------------ output format


def test_get_feature_names_out():
    ae = make_ae(n_components=3).fit(gaussian())
    assert_array_equal(
        ae.get_feature_names_out(),
        [
            "autoencodertransformer0",
            "autoencodertransformer1",
            "autoencodertransformer2",
        ],
    )


def test_pandas_output_with_feature_names():
    df = pd.DataFrame(gaussian(), columns=list("abcdef"))
    ae = make_ae().set_output(transform="pandas").fit(df)
    Z = ae.transform(df)
    assert isinstance(Z, pd.DataFrame)
    assert list(Z.columns) == list(ae.get_feature_names_out())
    X_back = ae.inverse_transform(Z)
    assert isinstance(X_back, pd.DataFrame)
    assert list(X_back.columns) == list("abcdef")
    assert_array_equal(X_back.to_numpy(), ae.inverse_transform(Z.to_numpy()))


def test_pandas_inverse_transform_keeps_the_index():
    df = pd.DataFrame(gaussian(), columns=list("abcdef"), index=range(100, 140))
    ae = make_ae().set_output(transform="pandas").fit(df)
    Z = ae.fit_transform(df)
    assert list(Z.index) == list(df.index)
    assert list(ae.inverse_transform(Z).index) == list(df.index)


def test_polars_output_with_feature_names():
    pl = pytest.importorskip("polars")
    df = pl.DataFrame(gaussian(), schema=list("abcdef"))
    ae = make_ae().set_output(transform="polars").fit(df)
    Z = ae.transform(df)
    assert isinstance(Z, pl.DataFrame)
    assert Z.columns == list(ae.get_feature_names_out())
    X_back = ae.inverse_transform(Z)
    assert isinstance(X_back, pl.DataFrame)
    assert X_back.columns == list("abcdef")
    assert_array_equal(X_back.to_numpy(), ae.inverse_transform(Z.to_numpy()))


def test_pandas_output_without_feature_names():
    X = gaussian()
    ae = make_ae().set_output(transform="pandas").fit(X)
    assert isinstance(ae.transform(X), pd.DataFrame)
    assert isinstance(ae.inverse_transform(ae.transform(X)), np.ndarray)


def test_default_output_is_ndarray():
    df = pd.DataFrame(gaussian(), columns=list("abcdef"))
    ae = make_ae().fit(df)
    assert isinstance(ae.transform(df), np.ndarray)
    assert isinstance(ae.inverse_transform(ae.transform(df)), np.ndarray)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_preserves_float_dtype(dtype):
    X = gaussian(dtype=dtype)
    ae = make_ae().fit(X)
    Z = ae.transform(X)
    assert Z.dtype == dtype
    assert ae.inverse_transform(Z).dtype == dtype
    assert ae.score_samples(X).dtype == dtype
    assert isinstance(ae.score(X), float)


def test_int_input_gives_float64():
    X = np.random.RandomState(0).randint(0, 10, size=(40, 6))
    ae = make_ae().fit(X)
    Z = ae.transform(X)
    assert Z.dtype == np.float64
    assert ae.inverse_transform(Z.astype(int)).dtype == np.float64
    assert ae.score_samples(X).dtype == np.float64


def read_only(X):
    X = X.copy()
    X.flags.writeable = False
    return X


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "layout",
    [read_only, np.asfortranarray, lambda X: X[::-1].copy()[::-1]],
    ids=["read_only", "fortran", "negative_strides"],
)
def test_input_memory_layout_does_not_change_results(dtype, layout):
    X = gaussian(dtype=dtype) * 100 + 1e4
    ae = make_ae().fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert_array_equal(ae.transform(layout(X)), ae.transform(X))
        assert_array_equal(ae.score_samples(layout(X)), ae.score_samples(X))
        # Fitting sums in the memory's order: the same up to rounding, which
        # Adam's normalised steps then amplify a little over the epochs.
        again = make_ae().fit(layout(X))
    assert_allclose(again.mean_, ae.mean_, rtol=1e-6)
    assert_allclose(again.transform(X), ae.transform(X), rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("method", ["transform", "score_samples", "inverse_transform"])
@pytest.mark.parametrize("chunk", [1, 7, 1000, INFERENCE_BATCH_SIZE, 5000])
def test_inference_does_not_depend_on_batching(method, chunk):
    n_rows = 10_000
    assert n_rows > 2 * INFERENCE_BATCH_SIZE
    X = gaussian(n_rows, 6, dtype=np.float32)
    ae = make_ae(max_iter=1).fit(X[:200])
    data = ae.transform(X) if method == "inverse_transform" else X
    whole = getattr(ae, method)(data)
    # Many small chunks are slow; a prefix is enough for them.
    stop = n_rows if chunk >= 1000 else 350
    parts = [
        getattr(ae, method)(data[start : start + chunk])
        for start in range(0, stop, chunk)
    ]
    result = np.concatenate(parts)[:stop]
    if chunk == INFERENCE_BATCH_SIZE:
        # The same batches as inside: the same arithmetic.
        assert_array_equal(result, whole)
    else:
        # BLAS may round differently for other batch shapes (one row: a
        # matrix-vector product), by an ulp or so.
        assert_allclose(result, whole[:stop], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------- scores


def test_score_samples_is_negative_row_mse():
    X = gaussian()
    ae = make_ae().fit(X)
    expected = -np.mean((X - reconstruction(ae, X)) ** 2, axis=1)
    assert_allclose(ae.score_samples(X), expected, rtol=1e-6, atol=1e-12)
    assert ae.score(X) == pytest.approx(np.mean(ae.score_samples(X)))


def test_score_of_float32_rows_averages_without_overflow():
    # Each float32 row's score fits, their sum does not: a float32 mean
    # gave -inf.
    X = gaussian(dtype=np.float32)
    ae = make_ae(n_components=2).fit(X)
    far = X * np.float32(1e19)
    scores = ae.score_samples(far)
    assert scores.dtype == np.float32
    assert np.isfinite(scores).all()
    assert np.sum(scores, dtype=np.float32) == -np.inf
    assert ae.score(far) == pytest.approx(np.mean(scores, dtype=np.float64))


def test_score_samples_in_the_dtype_of_X():
    # As documented: float32 rows score in float32, where an error beyond
    # float32's range is -inf; the same rows in float64 score finite.
    X = gaussian(dtype=np.float32)
    ae = make_ae(n_components=2).fit(X)
    assert ae.score_samples(X).dtype == np.float32
    assert ae.score_samples(X.astype(np.float64)).dtype == np.float64
    far = X * np.float32(1e20)
    assert np.isneginf(ae.score_samples(far)).any()
    assert np.isfinite(ae.score_samples(far.astype(np.float64))).all()


def test_outliers_score_lower(curved):
    ae = make_ae(n_components=1, max_iter=30).fit(curved)
    outliers = curved[:20] + 10 * np.random.RandomState(1).normal(size=(20, 6))
    assert ae.score_samples(outliers).max() < np.median(ae.score_samples(curved))


# ---------------------------------------------------------------------- conv


@pytest.mark.parametrize("init", ["pca", "random"])
@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_conv_on_digits(digits, init, loss):
    X = digits[0][:200] / 16
    ae = make_ae(
        n_components=4,
        image_shape=(1, 8, 8),
        conv_channels=(4, 8),
        init=init,
        loss=loss,
        max_iter=2,
    ).fit(X)
    Z = ae.transform(X)
    assert Z.shape == (200, 4)
    assert ae.inverse_transform(Z).shape == (200, 64)


@pytest.mark.parametrize(
    "image_shape, conv_channels",
    [
        ((1, 28, 28), (16, 32, 64)),
        ((1, 28, 28), (4, 8)),
        ((3, 32, 32), (16, 32, 64)),
        ((1, 7, 9), (4, 8)),
    ],
    ids=["mnist_default", "mnist_small", "cifar_default", "odd"],
)
@pytest.mark.parametrize("init", ["pca", "random"])
def test_conv_image_shapes(image_shape, conv_channels, init):
    n_features = int(np.prod(image_shape))
    X = np.random.RandomState(0).rand(12, n_features).astype(np.float32)
    ae = make_ae(
        n_components=2,
        image_shape=image_shape,
        conv_channels=conv_channels,
        init=init,
        max_iter=1,
    ).fit(X)
    assert ae.transform(X).shape == (12, 2)
    assert ae.inverse_transform(ae.transform(X)).shape == (12, n_features)


def test_no_conv_channels_gives_image_rows_the_dense_network():
    X = np.random.RandomState(0).rand(12, 64).astype(np.float32)
    params = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=2)
    image = make_ae(image_shape=(1, 8, 8), conv_channels=(), **params).fit(X)
    flat = make_ae(**params).fit(X)
    assert isinstance(image.module_, DenseAutoencoder)
    assert_array_equal(image.transform(X), flat.transform(X))


# ----------------------------------------------------------------------- bce


def test_bce_reconstructs_in_unit_interval(digits):
    X = digits[0][:200] / 16
    ae = make_ae(n_components=4, loss="bce").fit(X)
    X_back = reconstruction(ae, X)
    assert X_back.min() >= 0
    assert X_back.max() <= 1


@pytest.mark.parametrize("shift", [-0.5, 0.5])
def test_bce_rejects_data_outside_unit_interval(shift):
    X = np.random.RandomState(0).rand(20, 4) + shift
    with pytest.raises(ValueError, match=r"loss='bce' needs data in \[0, 1\]"):
        make_ae(loss="bce").fit(X)


# --------------------------------------------- verbosity, callbacks, warnings


def test_verbose_prints_a_line_per_epoch(capsys):
    make_ae(verbose=1, max_iter=2).fit(gaussian())
    out = capsys.readouterr().out
    assert "train_loss" in out
    assert "valid_loss" in out
    assert len([line for line in out.splitlines() if line.startswith("epoch 2/2")]) == 1


def test_silent_by_default(capsys):
    make_ae(verbose=0).fit(gaussian())
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


class EpochCounter(Callback):
    def initialize(self):
        self.n_epochs_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.n_epochs_ += 1


@pytest.mark.parametrize("named", [False, True])
def test_callbacks_run_each_epoch_on_a_clone(named):
    counter = EpochCounter()
    callbacks = [("counter", counter)] if named else [counter]
    ae = make_ae(max_iter=3, early_stopping=False, tol=0, callbacks=callbacks)
    ae.fit(gaussian())
    used = dict(ae.net_.callbacks_)["counter" if named else "EpochCounter"]
    assert used is not counter
    assert used.n_epochs_ == ae.n_iter_ == 3
    assert vars(counter) == {}
    assert ae.callbacks == callbacks


def test_a_callback_class_is_instantiated():
    ae = make_ae(max_iter=2, callbacks=[EpochCounter]).fit(gaussian())
    assert dict(ae.net_.callbacks_)["EpochCounter"].n_epochs_ == 2


@pytest.mark.parametrize(
    "entry, error, message",
    [
        (("counter",), ValueError, r"\(name, callback\) pairs with a str name"),
        ((1, EpochCounter()), ValueError, r"\(name, callback\) pairs with a str"),
        ("abc", TypeError, r"must hold skorch callbacks .*got 'abc'"),
        (None, TypeError, r"must hold skorch callbacks .*got None"),
        (("early_stopping", EpochCounter()), ValueError, r"is skae's own"),
        (("print_log", EpochCounter()), ValueError, r"is skae's own"),
    ],
)
def test_bad_callbacks_are_named(entry, error, message):
    with pytest.raises(error, match=message):
        make_ae(max_iter=1, callbacks=[entry]).fit(gaussian())


class WritesTo(Callback):
    def __init__(self, stream=None):
        self.stream = stream


def test_a_callback_that_cannot_be_cloned_is_named():
    # A callback holding a lock (a TensorBoard SummaryWriter, an open file)
    # failed in copy.deepcopy with "cannot pickle '_thread.lock' object",
    # which named neither the callback nor why it was copied.
    callbacks = [("log", WritesTo(threading.Lock()))]
    message = r"callback 'log' cannot be cloned: skae clones the callbacks .*_thread"
    ae = make_ae(max_iter=1, callbacks=callbacks)
    with pytest.raises(TypeError, match=message):
        ae.fit(gaussian())
    assert not hasattr(ae, "net_")


def test_a_callback_on_held_out_rows_needs_rows_held_out():
    # skorch's history raised KeyError "Key 'valid_loss' was not found in
    # history" at the first epoch's end, from inside the callback.
    callbacks = [("stop", EarlyStopping(monitor="valid_loss"))]
    message = r"callback 'stop' monitors 'valid_loss', which this fit does not"
    with pytest.raises(ValueError, match=message):
        make_ae(max_iter=2, early_stopping=False, callbacks=callbacks).fit(gaussian())
    ae = make_ae(max_iter=2, callbacks=callbacks).fit(gaussian())
    codes = ae.transform(gaussian())
    with pytest.raises(ValueError, match=r"partial_fit never does"):
        ae.partial_fit(gaussian())
    assert_array_equal(ae.transform(gaussian()), codes)
    # A key that partial_fit records is watched as usual.
    ae.set_params(callbacks=[EarlyStopping(monitor="train_loss")])
    ae.partial_fit(gaussian())


def test_convergence_warning_at_max_iter():
    with pytest.warns(ConvergenceWarning, match="reached max_iter=2 epochs"):
        make_ae(max_iter=2, early_stopping=False, tol=0).fit(gaussian())


def test_convergence_warning_points_at_the_caller():
    with pytest.warns(ConvergenceWarning) as record:
        make_ae(max_iter=2, early_stopping=False, tol=0).fit(gaussian())
    assert record[0].filename == __file__


def test_no_convergence_warning_when_stopped_early(recwarn):
    ae = make_ae(max_iter=50, n_iter_no_change=2, tol=0.5).fit(gaussian())
    assert ae.n_iter_ < 50
    assert not [w for w in recwarn if issubclass(w.category, ConvergenceWarning)]


@pytest.mark.parametrize("early_stopping", [True, False])
def test_adaptive_learning_rate_drops_on_plateaus(early_stopping):
    # tol=0.5: no epoch counts as progress, so once more than
    # n_iter_no_change // 4 = 2 epochs go without it the rate is multiplied
    # by 0.3, and again after as many more, until training stops.
    ae = make_ae(
        max_iter=50,
        n_iter_no_change=8,
        tol=0.5,
        early_stopping=early_stopping,
        learning_rate_init=0.01,
    ).fit(gaussian())
    scheduler = dict(ae.net_.callbacks_)["lr_scheduler"]
    monitor = "valid_loss" if early_stopping else "train_loss"
    assert scheduler.monitor == monitor
    assert scheduler.patience == 2
    lr = ae.net_.optimizer_.param_groups[0]["lr"]
    n_drops = round(np.log(lr / 0.01) / np.log(0.3))
    assert n_drops >= 2
    assert lr == pytest.approx(0.01 * 0.3**n_drops)
    assert ae.learning_rate_init == 0.01


def test_constant_learning_rate_keeps_learning_rate_init():
    ae = make_ae(max_iter=20, n_iter_no_change=4, tol=0.5, learning_rate="constant")
    ae.fit(gaussian())
    assert "lr_scheduler" not in dict(ae.net_.callbacks_)
    # learning_rate_init='auto' is 1e-3 for a constant rate.
    assert ae.training_plan_["learning_rate_init"] == 1e-3
    assert ae.net_.optimizer_.param_groups[0]["lr"] == 1e-3
    ae.set_params(learning_rate_init=0.02).fit(gaussian())
    assert ae.net_.optimizer_.param_groups[0]["lr"] == 0.02


def test_fit_plans_the_run_on_large_data(monkeypatch):
    monkeypatch.setattr(skae._training, "PLANNED_RUN_ROWS", 30)
    ae = make_ae(max_iter="auto").fit(gaussian(n_samples=40))
    # 36 training rows after the hold-out of 4: a planned one-cycle run.
    assert ae.training_plan_ == {
        "learning_rate": "one_cycle",
        "learning_rate_init": 4e-3,
        "max_iter": 60,
        "batch_size": 36,
        "ema_decay": 0.0,
    }
    assert ae.n_iter_ == 60
    assert isinstance(dict(ae.net_.callbacks_)["lr_scheduler"], OneCycleSchedule)
    small = make_ae(max_iter="auto").fit(gaussian(n_samples=20))
    assert small.training_plan_["learning_rate"] == "adaptive"


def test_partial_fit_trains_on_at_the_rate_fit_ended_with():
    ae = make_ae(max_iter=50, n_iter_no_change=8, tol=0.5, learning_rate_init=0.01)
    ae.fit(gaussian())
    lr = ae.net_.optimizer_.param_groups[0]["lr"]
    assert lr < 0.01
    ae.partial_fit(gaussian(seed=1))
    assert "lr_scheduler" not in dict(ae.net_.callbacks_)
    assert ae.net_.optimizer_.param_groups[0]["lr"] == lr


class RateLog(Callback):
    """The optimizer's learning rate at each training batch."""

    def initialize(self):
        self.rates_ = []
        return self

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.rates_.append(net.optimizer_.param_groups[0]["lr"])


def test_one_cycle_plans_the_rate_over_max_iter_epochs(recwarn):
    # 36 training rows in batches of 8: 5 steps an epoch, 50 in all.
    # n_iter_no_change=2 with tol=0.5 would stop any other schedule at once.
    ae = make_ae(
        learning_rate="one_cycle",
        learning_rate_init=0.01,
        max_iter=10,
        batch_size=8,
        n_iter_no_change=2,
        tol=0.5,
        callbacks=[("rates", RateLog())],
    ).fit(gaussian())
    rates = np.array(dict(ae.net_.callbacks_)["rates"].rates_)
    assert ae.n_iter_ == 10 and len(rates) == 50
    # Up from a 25th of the peak to the peak over 30% of the steps, then
    # down to almost zero.
    assert rates[0] == pytest.approx(0.01 / 25)
    assert np.argmax(rates) == 14 and rates.max() == pytest.approx(0.01, rel=1e-3)
    assert np.all(np.diff(rates[:15]) > 0) and np.all(np.diff(rates[15:]) < 0)
    assert rates[-1] < 1e-4
    # The best epoch is kept, and the planned end is not a failure to converge.
    assert 0 <= ae.best_epoch_ <= 10
    assert not [w for w in recwarn if issubclass(w.category, ConvergenceWarning)]


def test_partial_fit_after_one_cycle_trains_on_at_its_starting_rate():
    ae = make_ae(learning_rate="one_cycle", learning_rate_init=0.01, max_iter=4)
    ae.fit(gaussian()).partial_fit(gaussian(seed=1))
    assert "lr_scheduler" not in dict(ae.net_.callbacks_)
    assert ae.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(0.01 / 25)


# ---------------------------------------------------------------- bad input


def strings():
    return np.array([["a", "b"], ["c", "d"], ["e", "f"]], dtype=object)


@pytest.mark.parametrize(
    "X, error, message",
    [
        (
            np.where(gaussian() > 2, np.nan, gaussian()),
            ValueError,
            "Input X contains NaN",
        ),
        (
            np.where(gaussian() > 2, np.inf, gaussian()),
            ValueError,
            "Input X contains infinity",
        ),
        (strings(), ValueError, "could not convert string to float"),
        (gaussian() + 1j, ValueError, "Complex data not supported"),
        (sp.csr_matrix(gaussian()), TypeError, "Sparse data was passed for X"),
        (gaussian()[:, 0], ValueError, "Expected 2D array, got 1D array instead"),
        (gaussian()[:0], ValueError, r"Found array with 0 sample\(s\)"),
        (
            gaussian()[:1],
            ValueError,
            r"Found array with 1 sample\(s\) \(shape=\(1, 6\)\) while a minimum "
            "of 2 is required",
        ),
    ],
    ids=["nan", "inf", "strings", "complex", "sparse", "1d", "empty", "one_row"],
)
def test_fit_rejects_bad_input(X, error, message):
    with pytest.raises(error, match=message):
        make_ae().fit(X)


@pytest.mark.parametrize(
    "method", ["transform", "score_samples", "score", "inverse_transform"]
)
def test_not_fitted(method):
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        getattr(AutoencoderTransformer(), method)(gaussian())


def test_transform_rejects_wrong_n_features():
    ae = make_ae().fit(gaussian())
    with pytest.raises(
        ValueError,
        match="X has 5 features, but AutoencoderTransformer is expecting 6 features",
    ):
        ae.transform(gaussian()[:, :5])


def test_inverse_transform_rejects_wrong_latent_width():
    ae = make_ae(n_components=2).fit(gaussian())
    with pytest.raises(
        ValueError,
        match=r"X has 3 features, but inverse_transform expects codes of width "
        r"n_components_=2\.",
    ):
        ae.inverse_transform(np.zeros((4, 3)))


def test_inverse_transform_takes_any_array_layout():
    # Torch refuses negative strides and warns on read-only arrays (pandas
    # 3's DataFrame values): codes in any layout decode as contiguous ones.
    ae = make_ae(n_components=2).fit(gaussian())
    codes = ae.transform(gaussian())
    expected = ae.inverse_transform(codes[::-1].copy())
    read_only = codes[::-1].copy()
    read_only.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_array_equal(ae.inverse_transform(codes[::-1]), expected)
        assert_array_equal(ae.inverse_transform(read_only), expected)
        assert_array_equal(
            ae.inverse_transform(np.asfortranarray(codes)), expected[::-1]
        )


@pytest.mark.parametrize(
    "params, n_samples, message",
    [
        (
            dict(n_components=7, init="random"),
            40,
            # Held-out rows do not limit a random start: not mentioned.
            r"n_components=7 must be <= n_features=6 with init='random' "
            r"\(X has n_samples=40, n_features=6\)\.",
        ),
        (
            dict(n_components=7),
            40,
            r"n_components=7 must be <= min\(n_train_samples, n_features\)=6 "
            r"with init='pca'",
        ),
        (
            dict(n_components=5, early_stopping=False),
            4,
            r"n_components=5 must be <= min\(n_train_samples, n_features\)=4 "
            r"with init='pca' \(X has n_samples=4, n_features=6\)\.",
        ),
        (
            dict(n_components=5),
            5,
            r"n_components=5 must be <= min\(n_train_samples, n_features\)=4 "
            r"with init='pca' \(X has n_samples=5, n_features=6, of which 1 are "
            r"held out for early stopping\)\.",
        ),
    ],
    ids=["random_features", "pca_features", "pca_samples", "pca_held_out"],
)
def test_n_components_too_large(params, n_samples, message):
    with pytest.raises(ValueError, match=message):
        make_ae(**params).fit(gaussian(n_samples))


def test_validation_fraction_leaving_no_training_rows():
    with pytest.raises(
        ValueError,
        match=r"early_stopping with validation_fraction=0.99 leaves no training "
        r"rows out of n_samples=40",
    ):
        make_ae(validation_fraction=0.99).fit(gaussian())


@pytest.mark.parametrize(
    "image_shape, n_features, message",
    [
        (
            (1, 28, 28),
            780,
            r"image_shape=\(1, 28, 28\) implies 784 features, but X has 780 "
            r"features\.",
        ),
        ((6,), 6, r"image_shape must be \(channels, height, width\), got \(6,\)\."),
        ((1, 0, 6), 6, r"image_shape must hold positive integers, got \(1, 0, 6\)\."),
    ],
)
def test_bad_image_shape(image_shape, n_features, message):
    X = np.random.RandomState(0).rand(10, n_features)
    with pytest.raises(ValueError, match=message):
        make_ae(image_shape=image_shape).fit(X)


def test_image_too_small_for_conv_stages():
    X = np.random.RandomState(0).rand(10, 6)
    with pytest.raises(
        ValueError,
        match=r"image_shape=\(1, 2, 3\) is too small for 2 pooling stages",
    ):
        make_ae(image_shape=(1, 2, 3), conv_channels=(4, 8)).fit(X)


@pytest.mark.parametrize(
    "params, message",
    [
        (
            dict(hidden_layer_sizes=(0,)),
            r"hidden_layer_sizes must hold positive integers, got \(0,\)\.",
        ),
        (
            dict(hidden_layer_sizes=(-3,)),
            r"hidden_layer_sizes must hold positive integers, got \(-3,\)\.",
        ),
        (
            dict(hidden_layer_sizes=(2.5,)),
            r"hidden_layer_sizes must hold positive integers, got \(2.5,\)\.",
        ),
        (
            dict(hidden_layer_sizes=((4, 4),)),
            r"hidden_layer_sizes must hold positive integers, got \(\(4, 4\),\)\.",
        ),
        (
            dict(image_shape=(1, 2, 3), conv_channels=(0,)),
            r"conv_channels must hold positive integers, got \(0,\)\.",
        ),
    ],
    ids=["zero", "negative", "float", "nested", "zero_channels"],
)
def test_bad_sizes(params, message):
    with pytest.raises(ValueError, match=message):
        make_ae(n_components=1, **params).fit(gaussian())


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("learning_rate_init", 0, r"a float in the range \(0.0, inf\)"),
        ("learning_rate_init", -1, r"a float in the range \(0.0, inf\)"),
        ("validation_fraction", 0, r"a float in the range \(0.0, 1.0\)"),
        ("validation_fraction", 1.5, r"a float in the range \(0.0, 1.0\)"),
        ("alpha", -1, r"a float in the range \[0.0, inf\)"),
        ("max_iter", 0, r"an int in the range \[1, inf\)"),
        ("batch_size", 0, r"an int in the range \[1, inf\) or a str among"),
        ("n_components", 0, r"an int in the range \[1, inf\) or a float"),
        ("n_components", 1.5, r"an int in the range \[1, inf\) or a float"),
        ("activation", "gelu", "a str among"),
        ("init", "zeros", "a str among"),
        ("loss", "l1", "a str among"),
    ],
)
def test_invalid_parameters(name, value, expected):
    # InvalidParameterError is both a ValueError and a TypeError.
    message = (
        f"The '{name}' parameter of AutoencoderTransformer must be {expected}.*"
        f"Got {value!r} instead"
    )
    with pytest.raises(ValueError, match=message):
        make_ae(**{name: value}).fit(gaussian())


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
def test_cuda_device_without_cuda():
    with pytest.raises(
        ValueError,
        match=r"device='cuda' asks for CUDA, but torch sees no CUDA device; use "
        r"device='auto' or 'cpu'\.",
    ):
        make_ae(device="cuda").fit(gaussian())


def test_nonsense_device():
    with pytest.raises(
        ValueError, match=r"device='nonsense' is not a torch device; use 'auto'"
    ):
        make_ae(device="nonsense").fit(gaussian())


def test_huge_learning_rate_raises_and_leaves_no_model():
    # At this rate the first epoch's loss overflows (inf, or nan on some
    # platforms): a clear error, and no half-trained model that would pass
    # check_is_fitted and yield NaN.
    ae = make_ae(
        learning_rate_init=1e6, init="random", early_stopping=False, max_iter=5
    )
    X = gaussian()
    with pytest.raises(
        TrainingDivergedError,
        match=r"^Training diverged: the train loss is (inf|nan) at epoch 1\. Lower "
        r"learning_rate_init \(the optimizer's lr is 1000000\.0\)\.$",
    ):
        ae.fit(X)
    assert [name for name in vars(ae) if name.endswith("_")] == []
    with pytest.raises(NotFittedError):
        ae.transform(X)


# ------------------------------------------------------- input components


def test_input_components_train_on_principal_coordinates(digits):
    X = digits[0]
    ae = make_ae(n_components=4, input_components=20).fit(X)
    assert ae.input_components_.shape == (20, 64)
    assert ae.module_.encoder[0].in_features == 20
    reconstruction = ae.inverse_transform(ae.transform(X))
    assert reconstruction.shape == X.shape
    # Reconstructions lie in the axes' span, about the mean.
    centred = reconstruction - ae.mean_
    axes = ae.input_components_
    assert_allclose(centred @ axes.T @ axes, centred, atol=1e-3)
    # Scores count the error outside the axes too: the whole error.
    assert_allclose(
        ae.score_samples(X), -np.mean((X - reconstruction) ** 2, axis=1), rtol=1e-4
    )


def test_input_components_explained_variance_is_the_whole_error(digits):
    X = digits[0][:800]  # fewer than CURVE_ROWS: the curve is on every row
    ae = make_ae(n_components=4, input_components=20, early_stopping=False).fit(X)
    residual = np.sum((X - ae.inverse_transform(ae.transform(X))) ** 2)
    expected = 1 - residual / np.sum((X - ae.mean_) ** 2)
    assert_allclose(ae.explained_variance_score_, expected, rtol=1e-4)


def test_auto_input_components_on_large_wide_data():
    # 20,000 training rows (the planned-run regime) of 40 features whose
    # variance falls steeply: 'auto' keeps a few axes; on the digits (1,797
    # rows) none.
    rng = np.random.RandomState(0)
    rotation = np.linalg.qr(rng.normal(size=(40, 40)))[0]
    X = (rng.normal(size=(22_300, 40)) * 0.5 ** np.arange(40)) @ rotation
    ae = make_ae(n_components=2, max_iter=1).fit(X.astype(np.float32))
    assert 2 <= len(ae.input_components_) <= 20
    assert ae.training_plan_["batch_size"] == 256
    assert ae.module_.encoder[0].in_features == len(ae.input_components_)
    assert make_ae().fit(X[:500]).input_components_ is None
    # On CUDA the run is not planned, and 'auto' keeps every feature there.
    ae.n_components_ = 2
    assert ae._input_axes(X, 22_300, torch.device("cuda")) is None
    assert ae._input_axes(X, 22_300, torch.device("cpu")) is not None


@pytest.mark.parametrize(
    "params", [dict(image_shape=(1, 8, 8)), dict(loss="bce")], ids=["image", "bce"]
)
def test_input_components_need_a_dense_mse_network(digits, params):
    X = digits[0] / 16.0
    with pytest.raises(ValueError, match="input_components needs a dense network"):
        make_ae(input_components=10, **params).fit(X)


def test_input_components_refuse_a_bool(digits):
    # The constraints take True for the int 1, as they do for n_components.
    with pytest.raises(TypeError, match="input_components must be an int, 'auto'"):
        make_ae(n_components=1, input_components=True).fit(digits[0])


@pytest.mark.parametrize("scale, offset", [(1e20, 0.0), (1.0, 1e3)])
def test_input_components_of_float32_rows_far_from_unit_scale(digits, scale, offset):
    # PCA in float32 overflowed at 1e20 (LinAlgError) and cancelled to
    # rounding on rows offset by 1e3: the axes are those of the rows at unit scale.
    X = (digits[0] / 16.0).astype(np.float32)
    expected = make_ae(n_components=4, input_components=8).fit(X).input_components_
    far = (X * np.float32(scale) + np.float32(offset)).astype(np.float32)
    axes = make_ae(n_components=4, input_components=8).fit(far).input_components_
    assert_allclose(axes.T @ axes, expected.T @ expected, atol=1e-4)


@pytest.mark.parametrize("scale, offset", [(1e20, 0.0), (1e-30, 0.0), (1.0, 1e4)])
def test_fraction_n_components_of_float32_rows_far_from_unit_scale(
    digits, scale, offset
):
    # PCA's count for a fraction, in float32: LinAlgError at 1e20, one
    # component at 1e-30, and about half the count on rows offset by 1e4.
    X = (digits[0] / 16.0).astype(np.float32)
    expected = make_ae(n_components=0.9, max_iter=1).fit(X).n_components_
    far = (X * np.float32(scale) + np.float32(offset)).astype(np.float32)
    assert make_ae(n_components=0.9, max_iter=1).fit(far).n_components_ == expected


def test_partial_fit_keeps_the_first_chunks_axes(digits):
    X = digits[0]
    ae = make_ae(n_components=4, input_components=10).partial_fit(X[:900])
    axes = ae.input_components_
    ae.partial_fit(X[900:])
    assert ae.input_components_ is axes
    assert ae.transform(X).shape == (len(X), 4)


# ------------------------------------- persistence of every estimator's model


@pytest.mark.parametrize(
    "Estimator, params",
    [
        (AutoencoderTransformer, dict(image_shape=(1, 4, 4), conv_channels=(2,))),
        (AutoencoderTransformer, dict(input_components=8)),
        (DenoisingAutoencoder, dict()),
        (DenoisingAutoencoder, dict(noise="masking", ordered=True, skip=None)),
        (VariationalAutoencoder, dict()),
        (AutoencoderOutlierDetector, dict(noise="gaussian")),
        (AutoencoderOutlierDetector, dict(image_shape=(1, 4, 4), conv_channels=(2,))),
    ],
    ids=[
        "conv",
        "input_components",
        "denoiser",
        "ordered_denoiser",
        "vae",
        "noisy_detector",
        "conv_detector",
    ],
)
def test_every_model_pickles_its_tensors_through_skorch(Estimator, params):
    # As test_pickle_leaves_tensors_to_skorch, for the layers and buffers the
    # other estimators add (noise generators, skip paths, a VAE's heads, a
    # detector's scores): a tensor pickled outside skorch's stream would pin
    # a CUDA-fitted model to CUDA. The round trip scores bit for bit.
    X = gaussian(n_samples=60, n_features=16, dtype=np.float32)
    X = (X - X.min()) / (X.max() - X.min())
    model = Estimator(hidden_layer_sizes=(8,), max_iter=2, random_state=0, **params)
    model.fit(X)
    if hasattr(model, "partial_fit"):
        model.partial_fit(X)
    spy = TensorSpy(io.BytesIO())
    spy.dump(model)
    assert spy.tensors == []
    loaded = pickle.loads(pickle.dumps(model))
    assert_array_equal(loaded.score_samples(X), model.score_samples(X))


@pytest.mark.parametrize("copy_made", ["pickle", "deepcopy", "truncate"])
def test_model_copied_under_inference_mode_trains_on(digits, copy_made):
    # Loaded, copied or truncated inside torch.inference_mode() (around
    # inference code), the weights were inference tensors: a later
    # partial_fit failed with "Error(s) in loading state_dict". They train
    # on as the copy made outside does.
    X = digits[0]
    model = make_ae(n_components=2, ordered=True, max_iter=2).fit(X)
    blob = pickle.dumps(model)
    make = {
        "pickle": lambda: pickle.loads(blob),
        "deepcopy": lambda: copy.deepcopy(pickle.loads(blob)),
        "truncate": lambda: pickle.loads(blob).truncate(2),
    }[copy_made]
    expected = make().partial_fit(X).transform(X[:5])
    with torch.inference_mode():
        copied = make()
    assert_array_equal(copied.partial_fit(X).transform(X[:5]), expected)
