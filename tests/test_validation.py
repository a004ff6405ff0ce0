import pickle
import re

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import requires_cuda
from numpy.testing import assert_array_equal

import skae.noise
from skae import AutoencoderTransformer, DenoisingAutoencoder
from skae._validation import (
    check_image_shape,
    check_n_components,
    check_rows_ndim,
    check_sizes,
    finite_float32,
    resolve_device,
    seeded_torch,
    torch_seed,
    wrap_like_input,
)


@pytest.mark.parametrize("device", ["cpu", "cpu:0"])
def test_resolve_cpu(device):
    assert resolve_device(device).type == "cpu"


def test_resolve_auto_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


@requires_cuda
@pytest.mark.cuda
def test_resolve_auto_with_cuda():
    assert resolve_device("auto").type == "cuda"


@pytest.mark.parametrize("device", ["nonsense", "cuda:abc", "", "gpu"])
def test_resolve_rejects_unknown_devices(device):
    with pytest.raises(
        ValueError,
        match=rf"device='{device}' is not a torch device; use 'auto', 'cpu', "
        r"'cuda' or 'cuda:<index>'\.",
    ):
        resolve_device(device)


@pytest.mark.parametrize("device", ["mps", "xla", "meta", "ipu"])
def test_resolve_rejects_device_types_skae_does_not_train_on(device):
    with pytest.raises(ValueError, match=r"skae trains on 'cpu' and 'cuda' devices"):
        resolve_device(device)


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_resolve_cuda_without_cuda(monkeypatch, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        ValueError,
        match=rf"device='{device}' asks for CUDA, but torch sees no CUDA device; "
        r"use device='auto' or 'cpu'\.",
    ):
        resolve_device(device)


def test_resolve_missing_cuda_index(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(
        ValueError,
        match=r"device='cuda:3', but only 1 CUDA device\(s\) are visible\.",
    ):
        resolve_device("cuda:3")


def test_seeded_torch_is_reproducible_and_restores_global_state():
    state = torch.get_rng_state()
    with seeded_torch(7):
        first = torch.rand(5)
    assert torch.equal(torch.get_rng_state(), state)
    with seeded_torch(7):
        second = torch.rand(5)
    with seeded_torch(8):
        other = torch.rand(5)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    assert torch.equal(torch.get_rng_state(), state)


def test_seeded_torch_restores_state_after_an_error():
    state = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="boom"), seeded_torch(0):
        torch.rand(3)
        raise RuntimeError("boom")
    assert torch.equal(torch.get_rng_state(), state)


def test_seeded_torch_leaves_device_generators_alone(monkeypatch):
    # torch.manual_seed seeds every CUDA device too (lazily, at CUDA's first
    # use, where it has none yet), which the CPU-only fork does not restore:
    # a fit reset the caller's CUDA random stream to its own seed.
    seeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", seeded.append)
    monkeypatch.setattr(torch.cuda, "manual_seed", seeded.append)
    with seeded_torch(7):
        first = torch.rand(5)
    assert seeded == []
    with seeded_torch(7):
        assert torch.equal(torch.rand(5), first)


@requires_cuda
def test_fit_leaves_global_cuda_rng_alone():
    X = np.random.RandomState(0).normal(size=(40, 5))
    torch.cuda.manual_seed_all(3)
    state = torch.cuda.get_rng_state()
    AutoencoderTransformer(2, max_iter=2, device="cuda", random_state=0).fit(X)
    assert torch.equal(torch.cuda.get_rng_state(), state)


def test_cuda_generator_loads_without_cuda_as_a_seeded_cpu_one(monkeypatch):
    # A denoiser (or a VAE) fitted on CUDA pickles its noise generator as a
    # CUDA one. Loaded without CUDA it drew from torch's global RNG, so a
    # partial_fit there advanced the caller's random stream and drew other
    # noise at each load.
    dae = DenoisingAutoencoder(2, hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    X = np.random.RandomState(0).normal(size=(30, 4))
    dae.fit(X)
    monkeypatch.setattr(
        skae.noise, "generator_state", lambda g: ("cuda:0", g.get_state())
    )
    saved = pickle.dumps(dae)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    first, second = pickle.loads(saved), pickle.loads(saved)
    generator = first.module_.corruption.generator
    assert generator.device.type == "cpu"
    state = torch.get_rng_state()
    first.partial_fit(X)
    assert torch.equal(torch.get_rng_state(), state)
    assert_array_equal(first.transform(X), second.partial_fit(X).transform(X))


def test_torch_seed_draws_from_the_random_state():
    seeds = [torch_seed(np.random.RandomState(0)) for _ in range(2)]
    assert seeds[0] == seeds[1]
    assert isinstance(seeds[0], int)
    assert 0 <= seeds[0] < np.iinfo(np.int32).max
    rng = np.random.RandomState(0)
    assert torch_seed(rng) != torch_seed(rng)


@pytest.fixture
def estimator():
    # set_output needs no fit: the container is a configuration.
    return AutoencoderTransformer()


def test_wrap_like_input_without_pandas_output(estimator):
    data = np.zeros((2, 3))
    assert wrap_like_input(estimator, data, data, ["a", "b", "c"]) is data


def test_wrap_like_input_without_names(estimator):
    estimator.set_output(transform="pandas")
    data = np.zeros((2, 3))
    assert wrap_like_input(estimator, data, data, None) is data


def test_wrap_like_input_with_pandas_output(estimator):
    estimator.set_output(transform="pandas")
    data = np.arange(6.0).reshape(2, 3)
    original = pd.DataFrame(np.zeros((2, 1)), index=[10, 11])
    wrapped = wrap_like_input(estimator, data, original, ["a", "b", "c"])
    assert isinstance(wrapped, pd.DataFrame)
    assert list(wrapped.columns) == ["a", "b", "c"]
    assert list(wrapped.index) == [10, 11]
    assert_array_equal(wrapped.to_numpy(), data)


# ------------------------------------------------------------------ checks


@pytest.mark.parametrize(
    "value, expected", [(16, (16,)), ((16,), (16,)), ([32, 8], (32, 8)), ((), ())]
)
def test_check_sizes_takes_an_int_as_one_size(value, expected):
    assert check_sizes("hidden_layer_sizes", value, allow_empty=True) == expected


@pytest.mark.parametrize("value", [(16, (2,)), [[16, 8], [4]], (16, 0), (16, True)])
def test_check_sizes_names_the_parameter_for_any_bad_value(value):
    with pytest.raises(ValueError, match=r"^hidden_layer_sizes must hold positive"):
        check_sizes("hidden_layer_sizes", value, allow_empty=True)


def test_check_sizes_refuses_an_empty_sequence_where_it_must_not_be():
    with pytest.raises(
        ValueError, match=r"^image_shape must not be empty, got \(\)\.$"
    ):
        check_sizes("image_shape", (), allow_empty=False)


@pytest.mark.parametrize(
    "image_shape, expected", [((1, 8, 8), (1, 8, 8)), ([3, 4, 4], (3, 4, 4))]
)
def test_check_image_shape(image_shape, expected):
    assert check_image_shape(image_shape, int(np.prod(expected))) == expected


@pytest.mark.parametrize(
    "image_shape, n_features, message",
    [
        (
            (8, 8),
            64,
            r"image_shape must be (channels, height, width), got (8, 8); for "
            r"single-channel images pass image_shape=(1, 8, 8).",
        ),
        (
            (8, 8, 1, 1),
            64,
            r"image_shape must be (channels, height, width), got (8, 8, 1, 1).",
        ),
        ((1, 0, 6), 0, r"image_shape must hold positive integers, got (1, 0, 6)."),
        (
            (1, 28, 28),
            780,
            r"image_shape=(1, 28, 28) implies 784 features, but X has 780 features.",
        ),
        # An int64 product would wrap to exactly 64.
        (
            (2**58 + 1, 2**58 + 1, 64),
            64,
            f"image_shape={(2**58 + 1, 2**58 + 1, 64)} implies "
            f"{(2**58 + 1) ** 2 * 64} features, but X has 64 features.",
        ),
    ],
)
def test_check_image_shape_refuses(image_shape, n_features, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_image_shape(image_shape, n_features)


def test_check_image_shape_names_the_input():
    with pytest.raises(ValueError, match=r"but originals has 63 features\.$"):
        check_image_shape((1, 8, 8), 63, input_name="originals")


@pytest.mark.parametrize("X", [np.zeros((3, 4)), np.zeros(4), [[[0.0]]]])
def test_check_rows_ndim_passes_what_it_need_not_refuse(X):
    # 1-D input is scikit-learn's to refuse; lists are not converted here.
    check_rows_ndim(X, AutoencoderTransformer())


@pytest.mark.parametrize(
    "shape, message",
    [
        (
            (5, 8, 8),
            "X has shape (5, 8, 8), but AutoencoderTransformer takes a 2-D array of "
            "shape (n_samples, n_features), images as flat rows. Reshape it with "
            "X.reshape(len(X), -1), to shape (5, 64). For the convolutional "
            "network, also pass image_shape=(1, 8, 8) (channels, height, width).",
        ),
        (
            (5, 3, 4, 4),
            "X has shape (5, 3, 4, 4), but AutoencoderTransformer takes a 2-D array "
            "of shape (n_samples, n_features), images as flat rows. Reshape it "
            "with X.reshape(len(X), -1), to shape (5, 48). For the convolutional "
            "network, also pass image_shape=(3, 4, 4) (channels, height, width); "
            "images with the channels last need X.transpose(0, 3, 1, 2) before "
            "the reshape.",
        ),
        (
            # Channels last, as image libraries give them: the plain reshape
            # would interleave the channels, and image_shape=(28, 28, 1) read
            # as 28 channels of 28x1 images.
            (5, 28, 28, 1),
            "X has shape (5, 28, 28, 1), but AutoencoderTransformer takes a 2-D "
            "array of shape (n_samples, n_features), images as flat rows. Reshape "
            "it with X.reshape(len(X), -1), to shape (5, 784). Its last axis looks "
            "like channels: flatten it channels first, X.transpose(0, 3, 1, "
            "2).reshape(len(X), -1), and for the convolutional network pass "
            "image_shape=(1, 28, 28) (channels, height, width).",
        ),
        (
            (5, 2, 2, 2, 2),
            "X has shape (5, 2, 2, 2, 2), but AutoencoderTransformer takes a 2-D "
            "array of shape (n_samples, n_features), images as flat rows. Reshape "
            "it with X.reshape(len(X), -1), to shape (5, 16).",
        ),
    ],
)
def test_check_rows_ndim_refuses(shape, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_rows_ndim(np.zeros(shape), AutoencoderTransformer())


@pytest.mark.parametrize(
    "shape, image_shape, hint",
    [
        # Small images of one channel, channels last: by their lengths alone
        # (4 is no longer than a colour axis) they read as (C, H, W).
        ((5, 4, 4, 1), (1, 4, 4), "image_shape=(1, 4, 4) (channels, height, width)."),
        ((5, 2, 4, 3), (3, 2, 4), "image_shape=(3, 2, 4) (channels, height, width)."),
        # The estimator's own image_shape is channels first: no swap.
        ((5, 8, 8, 3), (8, 8, 3), "image_shape=(8, 8, 3) (channels, height, width); "),
    ],
)
def test_check_rows_ndim_reads_the_channels_from_image_shape(shape, image_shape, hint):
    estimator = AutoencoderTransformer(image_shape=image_shape)
    with pytest.raises(ValueError, match=re.escape(hint)):
        check_rows_ndim(np.zeros(shape), estimator)


@pytest.mark.parametrize("value", [2, 0.5])
def test_check_n_components_passes_skae_values(value):
    check_n_components(value)


@pytest.mark.parametrize(
    "value, what",
    [
        (None, "keep every component"),
        ("mle", "estimate the number of components (Minka's MLE)"),
    ],
)
def test_check_n_components_explains_pca_values(value, what):
    message = (
        f"n_components={value!r} is PCA's way to {what}, but an autoencoder needs "
        "the width of its code up front, to build its network. Pass an int >= 1, "
        "the width, or a float in (0, 1), for as many components as PCA needs to "
        "explain that fraction of the variance: e.g. n_components=0.95."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_n_components(value)


def test_finite_float32_checks_every_row_chunk_by_chunk():
    # Checked in chunks of rows (bounded memory): a value past the first
    # chunk is found too.
    rows = torch.zeros(20_000, 3, dtype=torch.float64)
    assert finite_float32(rows, "X", "").dtype == torch.float32
    rows[-1, 2] = 1e39
    with pytest.raises(ValueError, match="X holds values beyond float32's range"):
        finite_float32(rows, "X", "scale it.")


# ------------------------------------------------------------------ bad input


def tiny_rows(n_samples=20, n_features=5):
    return np.random.RandomState(0).normal(size=(n_samples, n_features))


def tiny_ae(**params):
    defaults = dict(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    return AutoencoderTransformer(**{**defaults, **params})


@pytest.mark.parametrize("value", [True, np.True_])
def test_check_n_components_refuses_a_bool(value):
    # scikit-learn's Interval(Integral) lets True through as 1, and the
    # fitted n_components_ would be True.
    message = (
        f"n_components must be an int or a float, got the bool {value!r}; pass "
        "n_components=1 for a one-unit code."
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        check_n_components(value)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_refuses_a_bool_n_components():
    with pytest.raises(TypeError, match=r"^n_components must be an int or a float"):
        tiny_ae(n_components=True).fit(tiny_rows())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_conv_channels_are_checked_without_image_shape():
    # As hidden_layer_sizes is checked where the conv network replaces it: a
    # value that is never valid is refused wherever it is set.
    with pytest.raises(
        ValueError, match=r"^conv_channels must hold positive integers, got \(0,\)\.$"
    ):
        tiny_ae(conv_channels=(0,)).fit(tiny_rows())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "name, value",
    [("batch_size", 0), ("batch_size", 2.5), ("alpha", -1.0), ("verbose", -1)],
)
def test_partial_fit_after_fit_validates_the_parameters(name, value):
    # scikit-learn validates at the first call only; a set_params between
    # calls crashed in the batch loop (batch_size=0) or trained with a
    # negative weight decay (alpha=-1).
    X = tiny_rows()
    ae = tiny_ae().fit(X)
    n_iter = ae.n_iter_
    ae.set_params(**{name: value})
    with pytest.raises(
        ValueError,
        match=rf"^The '{name}' parameter of AutoencoderTransformer must be .*"
        rf"Got {re.escape(repr(value))} instead\.$",
    ):
        ae.partial_fit(X)
    assert ae.n_iter_ == n_iter


@pytest.mark.parametrize(
    "fn, signature",
    [(lambda x: x, "(x)"), (lambda x, generator, scale: x, "(x, generator, scale)")],
)
def test_noise_function_of_the_wrong_signature_is_refused_at_fit(fn, signature):
    # It failed in the first epoch with Python's "takes 1 positional argument
    # but 2 were given", which names neither the parameter nor the signature.
    message = (
        f"The noise function <lambda> must take (x, generator), but its signature "
        f"is {signature}; draw the noise from generator, e.g. "
        "torch.randn(x.shape, generator=generator, device=x.device)."
    )
    dae = DenoisingAutoencoder(hidden_layer_sizes=(4,), max_iter=2, noise=fn)
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        dae.fit(tiny_rows())


@pytest.mark.parametrize("n_components", [2, 0.5])
def test_fit_refuses_rows_whose_squares_overflow(n_components):
    # Finite float64 rows beyond about 1e154 have squares beyond float64's
    # range: the scale of the model units was inf, and the fit returned
    # all-zero codes and NaN scores without a word.
    X = tiny_rows() * 1e200
    with pytest.raises(
        ValueError,
        match=r"^X deviates from its mean by more than float64 can square "
        r"\(about 1e154\); rescale X \(e\.g\. with a StandardScaler\)\.$",
    ):
        tiny_ae(n_components=n_components).fit(X)
