import copy
import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from conftest import requires_cuda
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from skae import (
    AutoencoderOutlierDetector,
    DenoisingAutoencoder,
    TrainingDivergedError,
    denoising,
)
from skae.noise import GaussianNoise, MaskingNoise, SaltPepperNoise

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

NOISES = [("gaussian", 0.3), ("masking", 0.25), ("salt_pepper", 0.2)]


def make_dae(**params):
    """A small, fast, seeded estimator; ``params`` override the defaults."""
    defaults = dict(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
    return DenoisingAutoencoder(**{**defaults, **params})


def uniform(n_samples=60, n_features=8, dtype=np.float64, seed=0):
    """Rows in (0.1, 1.1): no entry equals the masking value 0."""
    rng = np.random.RandomState(seed)
    return (0.1 + rng.uniform(size=(n_samples, n_features))).astype(dtype)


def images(digits, n_samples=200):
    """Digits scaled to [0, 1]."""
    return digits[0][:n_samples] / 16


def low_rank(n_samples=400, n_features=20, rank=3, seed=0):
    """Rows on a ``rank``-dimensional subspace, scaled to [0, 1]."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, rank)) @ rng.normal(size=(rank, n_features))
    return (X - X.min()) / (X.max() - X.min())


def mse(X, X_hat):
    return float(np.mean((np.asarray(X) - np.asarray(X_hat)) ** 2))


def model_units(dae, X):
    """Rows as the network sees them, from the wrapper's own offset and scale."""
    module = dae.module_
    return torch.from_numpy(
        ((X - module.offset.numpy()) / module.scale).astype(np.float32)
    )


def data_units(dae, x):
    module = dae.module_
    return (x * module.scale + module.offset).numpy()


def corrupt(dae, X):
    """Corrupt rows of X as training does; returns them in data units."""
    module = dae.module_
    module.train()
    with torch.no_grad():
        return data_units(dae, module.corrupt(model_units(dae, X)))


def add_noise(x, generator):
    """Module-level, so that an estimator using it can be pickled."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + 0.1 * noise


def to_zeros(x, generator):
    return torch.zeros_like(x)


def drop_a_row(x, generator):
    return x[1:]


def to_numpy(x, generator):
    return x.numpy()


def to_nan(x, generator):
    return x * float("nan")


class Recorder:
    """A noise function that adds Gaussian noise and records each call."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, generator):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        self.calls.append((x.clone(), noise, generator))
        return x + 0.1 * noise


# ----------------------------------------------------------- reproducibility


@pytest.mark.parametrize("noise, noise_level", NOISES)
def test_same_random_state_gives_bit_identical_fits(noise, noise_level):
    X = uniform()
    first = make_dae(noise=noise, noise_level=noise_level, random_state=3).fit(X)
    second = make_dae(noise=noise, noise_level=noise_level, random_state=3).fit(X)
    assert_array_equal(first.transform(X), second.transform(X))
    assert first.loss_curve_ == second.loss_curve_
    assert first.validation_loss_curve_ == second.validation_loss_curve_


def test_different_random_state_gives_different_noise():
    X = uniform()
    first = corrupt(make_dae(random_state=0).fit(X), X)
    second = corrupt(make_dae(random_state=1).fit(X), X)
    assert not np.array_equal(first, second)


def test_global_torch_seed_does_not_matter():
    X = uniform()
    torch.manual_seed(1)
    first = make_dae(init="random", random_state=0).fit(X)
    torch.manual_seed(2)
    second = make_dae(init="random", random_state=0).fit(X)
    assert_array_equal(first.transform(X), second.transform(X))
    assert first.loss_curve_ == second.loss_curve_


def test_fit_leaves_global_torch_rng_alone():
    state = torch.get_rng_state()
    make_dae(noise="salt_pepper", noise_level=0.3).fit(uniform())
    assert torch.equal(torch.get_rng_state(), state)


def test_noise_is_fresh_at_every_call():
    X = uniform()
    dae = make_dae().fit(X)
    assert not np.array_equal(corrupt(dae, X), corrupt(dae, X))


def test_noise_differs_between_epochs_and_comes_from_the_estimator():
    X = uniform(n_samples=20)
    recorder = Recorder()
    # One batch per epoch, no held-out rows: every call sees all the rows.
    # skip=None: the skip's start would corrupt the rows once more.
    make_dae(
        noise=recorder, batch_size=20, early_stopping=False, max_iter=3, skip=None
    ).fit(X)
    # The initial loss of early stopping, then one call per epoch.
    assert len(recorder.calls) == 4
    noises = []
    for x, noise, generator in recorder.calls:
        # The function works in data units and draws from a seeded generator.
        assert isinstance(generator, torch.Generator)
        order = np.argsort(x[:, 0].numpy())
        assert_allclose(x.numpy()[order], X[np.argsort(X[:, 0])], atol=1e-5)
        noises.append(noise.numpy()[order])
    for i, first in enumerate(noises):
        for second in noises[i + 1 :]:
            assert not np.allclose(first, second)


def test_noise_differs_between_batches():
    X = uniform(n_samples=20)
    recorder = Recorder()
    make_dae(
        noise=recorder, batch_size=10, early_stopping=False, max_iter=1, skip=None
    ).fit(X)
    noises = [noise.numpy() for _, noise, _ in recorder.calls]
    assert len(noises) == 4
    for i, first in enumerate(noises):
        for second in noises[i + 1 :]:
            assert not np.allclose(first, second)


# ------------------------------------------------------- no noise at inference


@pytest.mark.parametrize("noise, noise_level", NOISES)
def test_inference_is_noise_free(noise, noise_level):
    X = uniform()
    dae = make_dae(noise=noise, noise_level=noise_level).fit(X)
    Z = dae.transform(X)
    assert_array_equal(dae.transform(X), Z)
    assert_array_equal(dae.inverse_transform(Z), dae.inverse_transform(Z))
    assert_array_equal(dae.score_samples(X), dae.score_samples(X))
    assert_array_equal(dae.denoise(X), dae.denoise(X))
    with torch.no_grad():
        expected = dae.module_.network.encode(model_units(dae, X)).numpy()
    assert_allclose(Z, expected, rtol=1e-6, atol=1e-6)


def test_transform_does_not_depend_on_training_mode_left_behind():
    X = uniform()
    dae = make_dae(noise_level=1.0).fit(X)
    Z = dae.transform(X)
    dae.module_.train()
    assert_array_equal(dae.transform(X), Z)


def test_denoise_without_skip_is_inverse_transform_of_transform():
    X = uniform()
    dae = make_dae(skip=None).fit(X)
    assert dae.module_.skip is None
    assert_array_equal(dae.denoise(X), dae.inverse_transform(dae.transform(X)))


@pytest.mark.parametrize(
    "copier", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))]
)
def test_partial_fit_of_a_copy_draws_the_noise_the_original_would(copier):
    X = uniform()
    dae = make_dae(max_iter=2).fit(X)
    copied = copier(dae)
    assert_array_equal(
        copied.partial_fit(X).transform(X), dae.partial_fit(X).transform(X)
    )


def test_a_lambda_noise_is_copied_and_truncated():
    # A lambda cannot be pickled, but deepcopy keeps it as it is: copying a
    # fitted model and truncate (which copies) went through skorch's pickle
    # of the module and failed with "Can't pickle local object".
    X = uniform()
    dae = make_dae(
        noise=lambda x, generator: x, n_components=3, ordered=True, skip=None
    ).fit(X)
    copied = copy.deepcopy(dae)
    assert copied.module_ is not dae.module_
    assert copied.net_.module is copied.net_.module_
    assert_array_equal(
        copied.partial_fit(X).transform(X), dae.partial_fit(X).transform(X)
    )
    assert_allclose(dae.truncate(2).transform(X), dae.transform(X)[:, :2])


def test_denoise_keeps_pandas_output_like_inverse_transform():
    # Rows in, rows out: the input's columns and index, as inverse_transform.
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(uniform(), columns=list("abcdefgh")).iloc[::-1]
    dae = make_dae().set_output(transform="pandas").fit(df)
    denoised = dae.denoise(df)
    assert isinstance(denoised, pd.DataFrame)
    assert list(denoised.columns) == list("abcdefgh")
    assert denoised.index.equals(df.index)
    assert_array_equal(
        denoised.to_numpy(), dae.set_output(transform="default").denoise(df)
    )
    # Without feature names there are no columns to restore.
    X = uniform()
    assert isinstance(
        make_dae().set_output(transform="pandas").fit(X).denoise(X), np.ndarray
    )


def test_partial_fit_reads_the_noise_parameters_at_each_call():
    # As partial_fit reads alpha: set_params between calls changes the
    # corruption of the next epoch (e.g. to anneal the noise), from the
    # generator the earlier calls drew from, within the range fit saw.
    X = uniform()
    dae = make_dae(clip=False).fit(X)
    generator = dae.module_.corruption.generator
    dae.set_params(noise="salt_pepper", noise_level=0.5, clip=True).partial_fit(X)
    layer = dae.module_.corruption
    assert type(layer) is SaltPepperNoise
    assert layer.fraction == 0.5
    assert (layer.low, layer.high) == (X.min(), X.max())
    assert layer.clip == (X.min(), X.max())
    assert layer.generator is generator


def test_partial_fit_clips_to_the_range_of_every_chunk_so_far():
    # The first chunk's range alone clipped the wider rows of later chunks,
    # even without noise: the network saw them cut, the loss wanted them whole.
    X = np.random.RandomState(0).normal(size=(60, 4))
    first, later = X[np.abs(X).max(axis=1) < 1.5], X
    dae = make_dae(noise_level=0.0, learning_rate_init=1e-3).partial_fit(first)
    assert dae.module_.data_range == (first.min(), first.max())
    dae.partial_fit(later)
    layer = dae.module_.corruption.train()
    assert layer.clip == (X.min(), X.max())
    rows = torch.from_numpy(X)
    assert_array_equal(layer(rows), rows)
    # Nor does a narrower chunk narrow it.
    dae.partial_fit(first)
    assert dae.module_.corruption.clip == (X.min(), X.max())


def test_partial_fit_with_bad_noise_parameters_changes_nothing():
    X = uniform()
    dae = make_dae().fit(X)
    layer = dae.module_.corruption
    dae.set_params(noise="masking", noise_level=1.5)
    with pytest.raises(ValueError, match=r"noise_level \(the fraction masked\)"):
        dae.partial_fit(X + 1)
    assert dae.module_.corruption is layer
    assert dae.module_.data_range == (X.min(), X.max())
    assert dae.n_iter_ == 3


def test_ordered_needs_no_skip():
    # The default skip would leave the prefixes part of every row to miss.
    with pytest.raises(ValueError, match=r"ordered=True needs skip=None"):
        make_dae(ordered=True).fit(uniform())


def test_ordered_without_skip_orders_the_denoising_code():
    X = uniform()
    dae = make_dae(n_components=4, ordered=True, skip=None).fit(X)
    assert dae.module_.skip is None
    assert dae.explained_variance_ratio_.shape == (4,)
    assert dae.explained_variance_ratio_.sum() == pytest.approx(
        dae.explained_variance_score_
    )
    short = dae.truncate(2)
    assert_allclose(short.transform(X), dae.transform(X)[:, :2])
    assert_allclose(
        short.inverse_transform(short.transform(X)),
        dae.inverse_transform(dae.transform(X)[:, :2]),
    )


def test_denoise_adds_the_skip_path_to_the_decoded_code():
    X = uniform()
    dae = make_dae().fit(X)
    module = dae.module_
    x = model_units(dae, X)
    with torch.no_grad():
        skipped = (module.skip(x) * module.scale).double().numpy()
    decoded = dae.inverse_transform(dae.transform(X))
    assert_allclose(dae.denoise(X), decoded + skipped, rtol=1e-5, atol=1e-6)
    assert not np.allclose(skipped, 0)
    # score is the whole network's, as denoise is.
    assert dae.score(X) == pytest.approx(-np.mean((dae.denoise(X) - X) ** 2))


def test_a_skip_too_wide_for_memory_warns_of_its_cost(monkeypatch):
    # The skip is n_features x n_features: on 20,000 features 400 million
    # weights, about 15 GiB with its training state and its start.
    monkeypatch.setattr(denoising, "_SKIP_WARN_FEATURES", 7)
    message = (
        r"skip='linear' on 8 features is a linear map of 8 x 8 \(64 weights\)"
        r".*about 0.0 GiB.*skip=None"
    )
    with pytest.warns(UserWarning, match=message):
        make_dae().fit(uniform())
    monkeypatch.setattr(denoising, "_SKIP_WARN_FEATURES", 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        make_dae().fit(uniform())
        make_dae(skip=None).fit(uniform(n_features=9))


def test_skip_starts_as_the_ridge_regression_of_the_residual():
    from sklearn.linear_model import Ridge

    from skae.denoising import _SKIP_RIDGE, _linear_denoiser

    X = uniform(n_samples=200)
    dae = make_dae(noise_level=0.2).fit(X)
    module = copy.deepcopy(dae.module_).cpu()
    clean = model_units(dae, X)
    weight, bias = _linear_denoiser(module, clean.numpy(), seed=3)
    # The same corruption, drawn again from the same seed.
    module.corruption.set_generator(torch.Generator().manual_seed(3))
    module.corruption.train()
    with torch.no_grad():
        noisy = module.corrupt(clean)
        residual = (clean - module.network(noisy)).double().numpy()
    noisy = noisy.double().numpy()
    centred = noisy - noisy.mean(axis=0)
    alpha = _SKIP_RIDGE * np.mean(np.sum(centred**2, axis=0))
    ridge = Ridge(alpha=alpha).fit(noisy, residual)
    assert_allclose(weight.numpy(), ridge.coef_.T, rtol=1e-4, atol=1e-5)
    assert_allclose(bias.numpy(), ridge.intercept_, rtol=1e-4, atol=1e-5)


def test_skip_beats_the_noisy_input_and_pca_under_light_noise(digits):
    from sklearn.decomposition import PCA

    X_all, _ = digits
    X, X_test = X_all[:1200] / 16, X_all[1200:] / 16
    noise = np.random.RandomState(1).normal(0, 0.05, X_test.shape)
    noisy = np.clip(X_test + noise, 0, 1)
    dae = DenoisingAutoencoder(
        8, noise_level=0.05, hidden_layer_sizes=(32,), max_iter=5, random_state=0
    ).fit(X)
    pca = PCA(8).fit(X)

    def error(estimate):
        return np.mean((estimate - X_test) ** 2)

    denoised = dae.denoise(noisy)
    assert error(denoised) < error(noisy)
    assert error(denoised) < error(pca.inverse_transform(pca.transform(noisy)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_denoise_keeps_dtype(dtype):
    X = uniform(dtype=dtype)
    X_clean = make_dae().fit(X).denoise(X)
    assert X_clean.dtype == dtype
    assert X_clean.shape == X.shape


# ------------------------------------------------------ each noise as it says


@pytest.mark.parametrize(
    "noise, noise_level, layer, attributes",
    [
        ("gaussian", 0.3, GaussianNoise, {"std": 0.3}),
        ("masking", 0.25, MaskingNoise, {"fraction": 0.25, "value": 0.0}),
        ("salt_pepper", 0.2, SaltPepperNoise, {"fraction": 0.2}),
    ],
)
def test_corruption_layer_from_parameters(noise, noise_level, layer, attributes):
    X = uniform()
    dae = make_dae(noise=noise, noise_level=noise_level).fit(X)
    corruption = dae.module_.corruption
    assert type(corruption) is layer
    for name, value in attributes.items():
        assert getattr(corruption, name) == value
    assert corruption.clip == (X.min(), X.max())


def test_salt_pepper_uses_the_data_range():
    X = uniform()
    corruption = make_dae(noise="salt_pepper").fit(X).module_.corruption
    assert (corruption.low, corruption.high) == (X.min(), X.max())


def test_no_clip():
    X = uniform()
    assert make_dae(clip=False).fit(X).module_.corruption.clip is None


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_constant_data_has_no_clip():
    X = np.ones((20, 3))
    assert make_dae(n_components=1).fit(X).module_.corruption.clip is None


def test_clipped_gaussian_noise_stays_in_unit_interval(digits):
    X = images(digits)
    dae = make_dae(noise_level=0.5, n_components=4).fit(X)
    X_noisy = corrupt(dae, X)
    assert X_noisy.min() >= -1e-6
    assert X_noisy.max() <= 1 + 1e-6
    # It did corrupt: not just the clean rows.
    assert mse(X_noisy, X) > 0.05


def test_unclipped_gaussian_noise_leaves_unit_interval(digits):
    X = images(digits)
    dae = make_dae(noise_level=0.5, n_components=4, clip=False).fit(X)
    X_noisy = corrupt(dae, X)
    assert X_noisy.min() < -0.5
    assert X_noisy.max() > 1.5
    assert_allclose(np.std(X_noisy - X), 0.5, rtol=0.05)


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 1.0])
def test_masking_masks_the_fraction_of_each_row(fraction):
    # Unclipped: the masking value 0 lies outside these rows' range, and
    # clip=True would raise it to X.min().
    X = uniform(n_features=20)
    dae = make_dae(noise="masking", noise_level=fraction, clip=False).fit(X)
    X_noisy = corrupt(dae, X)
    masked = np.abs(X_noisy) < 1e-5
    assert_array_equal(masked.sum(axis=1), round(fraction * 20))
    assert_allclose(X_noisy[~masked], X[~masked], rtol=1e-5)


@pytest.mark.parametrize("noise", ["masking", "salt_pepper"])
def test_a_level_that_replaces_no_entry_warns(noise):
    # round(0.1 * 4) = 0: the default level on 4 features trained on clean
    # rows without a word.
    X = uniform(n_features=4)
    message = (
        rf"noise='{noise}' replaces round\(noise_level \* n_features\) entries "
        r"of each row, and noise_level=0.1 on 4 features replaces none: .* "
        r"at least 0.25 \(one entry a row\)"
    )
    with pytest.warns(UserWarning, match=message):
        dae = make_dae(noise=noise, max_iter=1).fit(X)
    with pytest.warns(UserWarning, match=message):
        dae.partial_fit(X)
    detector = AutoencoderOutlierDetector(
        noise=noise, hidden_layer_sizes=(8,), max_iter=1, random_state=0
    )
    with pytest.warns(UserWarning, match=message):
        detector.fit(X)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="noise=")
        make_dae(noise=noise, noise_level=0.25, max_iter=1).fit(X)
        make_dae(noise=noise, noise_level=0.0, max_iter=1).fit(X)


def test_salt_pepper_flips_the_fraction_of_each_row():
    X = uniform(n_features=20)
    low, high = X.min(), X.max()
    dae = make_dae(noise="salt_pepper", noise_level=0.25).fit(X)
    X_noisy = corrupt(dae, X)
    salt = np.isclose(X_noisy, high, rtol=0, atol=1e-5) & (X != high)
    pepper = np.isclose(X_noisy, low, rtol=0, atol=1e-5) & (X != low)
    assert_array_equal((salt | pepper).sum(axis=1), 5)
    assert salt.any()
    assert pepper.any()
    kept = ~(salt | pepper)
    assert_allclose(X_noisy[kept], X[kept], rtol=1e-5)


# ----------------------------------------------------- what the network learns


def test_target_is_the_clean_input():
    # Every input is replaced by zeros: the best reconstruction of the clean
    # rows is then their mean; were the target the corrupted input, it would
    # be zero.
    X = uniform(n_samples=64, n_features=5) + 3
    dae = make_dae(
        noise=to_zeros,
        clip=False,
        early_stopping=False,
        learning_rate_init=1e-2,
        max_iter=150,
    ).fit(X)
    X_back = dae.denoise(np.zeros_like(X))
    assert_allclose(X_back, np.broadcast_to(dae.mean_, X.shape), atol=0.05)


def test_losses_are_measured_against_the_clean_rows():
    # Inputs replaced by zeros carry no information: the best loss is then the
    # variance of the clean rows, 1 in the network's units (X centred and
    # divided by its root mean square); against the zeros it would be ~100.
    X = uniform(n_samples=80, n_features=5) + 3
    dae = make_dae(
        noise=to_zeros,
        clip=False,
        validation_fraction=0.25,
        learning_rate_init=1e-2,
        max_iter=100,
    ).fit(X)
    assert min(dae.loss_curve_) == pytest.approx(1, abs=0.1)
    assert min(dae.validation_loss_curve_) == pytest.approx(1, abs=0.3)


def test_validation_rows_are_corrupted_once():
    # With a learning rate of 1e-12 the weights stay put: a validation loss on
    # fixed noisy rows stays the same, while fresh training noise moves the
    # training loss.
    X = uniform(n_samples=100)
    dae = make_dae(
        noise_level=0.5,
        learning_rate_init=1e-12,
        max_iter=5,
        n_iter_no_change=10,
    ).fit(X)
    valid = np.array(dae.validation_loss_curve_)
    train = np.array(dae.loss_curve_)
    assert len(valid) == 5
    assert_allclose(valid, valid[0], rtol=1e-6)
    assert np.ptp(train) > 1e-3 * train.mean()


def test_validation_loss_is_a_denoising_loss():
    # Rows corrupted by a large noise are reconstructed worse than clean ones.
    X = uniform(n_samples=100)
    clean = make_dae(noise_level=1e-6, learning_rate_init=1e-12).fit(X)
    noisy = make_dae(noise_level=1.0, learning_rate_init=1e-12).fit(X)
    assert noisy.validation_loss_curve_[0] > 2 * clean.validation_loss_curve_[0]


def test_denoising_beats_identity_on_low_rank_data():
    X = low_rank()
    rng = np.random.RandomState(1)
    X_noisy = X + 0.2 * rng.normal(size=X.shape)
    dae = make_dae(n_components=3, noise_level=0.2, clip=False, max_iter=5).fit(X)
    assert mse(dae.denoise(X_noisy), X) < 0.5 * mse(X_noisy, X)


def test_denoising_beats_identity_on_masked_digits(digits):
    X = digits[0][:500] / 16
    rng = np.random.RandomState(1)
    X_noisy = np.where(rng.uniform(size=X.shape) < 0.25, 0.0, X)
    dae = make_dae(n_components=16, noise="masking", noise_level=0.25, max_iter=10)
    assert mse(dae.fit(X).denoise(X_noisy), X) < mse(X_noisy, X)


def test_bce_on_images(digits):
    X = images(digits)
    dae = make_dae(n_components=4, loss="bce", noise="masking", noise_level=0.2)
    X_clean = dae.fit(X).denoise(X)
    assert X_clean.min() >= 0
    assert X_clean.max() <= 1
    assert np.isfinite(dae.loss_curve_).all()
    # With bce the network works on raw X: corruption needs no conversion.
    assert dae.module_.scale == 1.0
    assert_array_equal(dae.module_.offset.numpy(), 0)


@pytest.mark.parametrize("noise, noise_level", NOISES)
def test_conv_on_digits(digits, noise, noise_level):
    X = images(digits)
    dae = make_dae(
        n_components=4,
        noise=noise,
        noise_level=noise_level,
        image_shape=(1, 8, 8),
        conv_channels=(4, 8),
        max_iter=2,
    ).fit(X)
    assert dae.transform(X).shape == (200, 4)
    X_clean = dae.denoise(X)
    assert X_clean.shape == (200, 64)
    assert np.isfinite(X_clean).all()


# ------------------------------------------------------------ bad parameters


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"noise": "unknown"}, r"The 'noise' parameter of DenoisingAutoencoder must"),
        ({"noise": 3}, r"The 'noise' parameter of DenoisingAutoencoder must"),
        (
            {"noise_level": -1},
            r"The 'noise_level' parameter of DenoisingAutoencoder must be a float "
            r"in the range \[0.0, inf\)",
        ),
        (
            {"clip": "yes"},
            r"The 'clip' parameter of DenoisingAutoencoder must be an instance of",
        ),
    ],
)
def test_invalid_parameters(params, expected):
    # InvalidParameterError is both a ValueError and a TypeError.
    with pytest.raises(ValueError, match=expected):
        make_dae(**params).fit(uniform())


@pytest.mark.parametrize(
    "noise, message",
    [
        (
            "masking",
            r"noise_level \(the fraction masked\) must be in the range \[0, 1\], "
            r"got 1.5",
        ),
        (
            "salt_pepper",
            r"noise_level \(the fraction flipped\) must be in the range \[0, 1\], "
            r"got 1.5",
        ),
    ],
)
def test_fraction_above_one(noise, message):
    dae = make_dae(noise=noise, noise_level=1.5)
    with pytest.raises(ValueError, match=message):
        dae.fit(uniform())
    with pytest.raises(NotFittedError):
        dae.transform(uniform())


def test_gaussian_noise_level_above_one_is_fine():
    # For noise='gaussian' the level is a standard deviation, not a fraction:
    # 1.5 is accepted and used as is.
    X = uniform()
    dae = make_dae(noise_level=1.5)
    assert dae.fit(X) is dae
    assert dae.n_iter_ == 3
    layer = dae.module_.corruption
    assert isinstance(layer, GaussianNoise)
    assert layer.std == 1.5
    assert layer.clip == (X.min(), X.max())
    assert np.isfinite(dae.transform(X)).all()


@pytest.mark.parametrize(
    "fn, error, message",
    [
        (
            drop_a_row,
            ValueError,
            r"The noise function drop_a_row must return a tensor of the input's "
            r"shape \(\d+, 8\), got shape \(\d+, 8\)",
        ),
        (
            to_numpy,
            TypeError,
            r"The noise function to_numpy must return a torch.Tensor, got ndarray",
        ),
        (
            to_nan,
            ValueError,
            r"The noise function to_nan returned NaN or infinite values",
        ),
    ],
)
def test_bad_noise_function(fn, error, message):
    dae = make_dae(noise=fn)
    with pytest.raises(error, match=message):
        dae.fit(uniform())
    with pytest.raises(NotFittedError):
        dae.transform(uniform())


# ------------------------------------------------ parameters, clone, pickle


def test_noise_function_gets_rows_also_with_image_shape():
    # As documented: rows, which the function views as images itself.
    shapes = []

    def cutout(x, generator):
        shapes.append(x.shape[1:])
        images = x.view(len(x), 1, 4, 4).clone()
        images[:, :, 1:3, 1:3] = 0
        return images.view(x.shape)

    dae = make_dae(
        noise=cutout,
        image_shape=(1, 4, 4),
        conv_channels=(2,),
        hidden_layer_sizes=(8,),
        max_iter=1,
    ).fit(uniform(n_samples=20, n_features=16))
    assert set(shapes) == {torch.Size([16])}
    assert dae.denoise(uniform(n_samples=2, n_features=16)).shape == (2, 16)


def test_get_params_and_clone():
    dae = make_dae(noise=add_noise, noise_level=0.5, clip=False)
    params = dae.get_params()
    assert params["noise"] is add_noise
    assert params["noise_level"] == 0.5
    assert params["clip"] is False
    cloned = clone(dae)
    assert cloned.get_params() == params
    X = uniform()
    assert_array_equal(cloned.fit(X).transform(X), dae.fit(X).transform(X))


def test_set_params_changes_the_noise():
    X = uniform()
    dae = make_dae().fit(X)
    dae.set_params(noise="masking", noise_level=0.5).fit(X)
    assert type(dae.module_.corruption) is MaskingNoise


@pytest.mark.parametrize("noise", ["gaussian", add_noise], ids=["gaussian", "fn"])
def test_pickle_round_trip(noise):
    X = uniform()
    dae = make_dae(noise=noise).fit(X)
    loaded = pickle.loads(pickle.dumps(dae))
    assert_array_equal(loaded.denoise(X), dae.denoise(X))
    assert_array_equal(loaded.transform(X), dae.transform(X))
    assert_array_equal(loaded.score_samples(X), dae.score_samples(X))


@pytest.mark.cuda
@requires_cuda
@pytest.mark.parametrize("early_stopping", [True, False])
def test_cuda_reproducible_and_loads_without_cuda(monkeypatch, early_stopping):
    # With early stopping the held-out rows are corrupted on the device too.
    X = uniform(dtype=np.float32)
    params = dict(device="cuda", noise="salt_pepper", early_stopping=early_stopping)
    first = make_dae(**params).fit(X)
    second = make_dae(**params).fit(X)
    assert first.module_.corruption.generator.device.type == "cuda"
    assert_array_equal(first.transform(X), second.transform(X))
    assert first.loss_curve_ == second.loss_curve_
    X_clean = first.denoise(X)
    data = pickle.dumps(first)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(Warning):
        loaded = pickle.loads(data)
    assert torch.device(loaded.net_.device).type == "cpu"
    assert all(p.device.type == "cpu" for p in loaded.module_.parameters())
    assert loaded.module_.offset.device.type == "cpu"
    assert_allclose(loaded.denoise(X), X_clean, rtol=1e-4, atol=1e-5)


def test_noise_that_overflows_before_training_does_not_blame_the_rate():
    # The untrained network's loss: "Lower learning_rate_init" misled.
    with pytest.raises(
        TrainingDivergedError,
        match=r"initial loss is inf .* learning_rate_init is not the cause: .* "
        r"noise far beyond the data's range",
    ):
        make_dae(noise_level=1e30, clip=False).fit(uniform())


def test_rows_beyond_float32_range_are_refused():
    # The noise corrupts the rows in their own units, in float32: a clamp
    # crashed in torch, or with clip=False the fit "diverged".
    X = np.random.RandomState(0).uniform(0, 16, size=(50, 4)) * 1e40
    message = (
        "noise='gaussian' corrupts the rows in their own units, in float32, "
        "whose range (about 3.4e38) X leaves: its values reach "
        f"{np.abs(X).max():.3g}. Rescale X (e.g. with a StandardScaler)."
    )
    # The check itself overflowed in its cast, with a RuntimeWarning that
    # filterwarnings("error") raised instead of this message.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            make_dae(n_components=2).fit(X)


# ------------------------------------------------------- unusual but legitimate data


@pytest.mark.parametrize(
    "estimator", [DenoisingAutoencoder, AutoencoderOutlierDetector]
)
@pytest.mark.parametrize("noise", ["gaussian", "masking"])
def test_rows_below_float32_normal_range_are_refused(estimator, noise):
    # float64 rows varying by 1e-39: the noise corrupts them in their own
    # units, in float32, where the scale is below the smallest normal
    # number and flushed to zero. The fit "diverged" with "Lower
    # learning_rate_init", which was not the cause. Both estimators that
    # take noise corrupt through NoiseMixin.
    X = np.random.RandomState(0).normal(size=(50, 4)) * 1e-39
    message = (
        f"noise={noise!r} corrupts the rows in their own units, in float32, "
        "whose smallest normal number (about 1.2e-38) is above the rows' "
        "variation about their mean"
    )
    params = dict(noise=noise, noise_level=0.25, hidden_layer_sizes=(16,), max_iter=3)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        estimator(**params, random_state=0).fit(X)
    # Just above the bound the rows fit.
    fitted = estimator(**params, random_state=0).fit(X * 100)
    assert np.isfinite(fitted.transform(X * 100)).all()
