import copy
import pickle
import re
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.covariance import ledoit_wolf
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderOutlierDetector, _units, outlier
from skae._base import _BaseAutoencoder
from skae._losses import RowMeanLoss
from skae.outlier import (
    _SCALE_FLOOR,
    _WHITENED_VARIANCE_FLOOR,
    _WHITENING_MIN_GAIN,
    _auto_error_covariance,
    _ledoit_wolf_by_chunks,
    _start_rows,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def make_detector(**params):
    """A small, fast, seeded detector; ``params`` override the defaults."""
    defaults = dict(
        n_components=2, hidden_layer_sizes=(16,), max_iter=5, random_state=0
    )
    return AutoencoderOutlierDetector(**{**defaults, **params})


BASIS = np.linalg.qr(np.random.RandomState(0).normal(size=(8, 2)))[0].T


def plane(n_samples=300, seed=0):
    """Rows near the 2-D subspace spanned by BASIS, with a little noise."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, 2)) @ BASIS
    return X + 0.05 * rng.normal(size=X.shape)


def off_plane(n_samples=20, seed=1):
    """Rows far off the subspace: clear outliers."""
    X = np.random.RandomState(seed).normal(size=(n_samples, BASIS.shape[1]))
    return 3 * (X - (X @ BASIS.T) @ BASIS)


def test_scores_keep_the_settings_fitted_with():
    # The error scales and the threshold hold for the score as fitted.
    X = np.random.RandomState(0).uniform(size=(200, 16))
    detector = make_detector(image_shape=(1, 4, 4)).fit(X)
    scores = detector.score_samples(X)
    detector.set_params(image_shape=None, error_window=1, code_weight=100.0)
    assert_array_equal(detector.score_samples(X), scores)


def test_a_value_beyond_float32_is_an_error_not_a_nan_inlier():
    detector = make_detector().fit(plane())
    rows = plane(3)
    rows[0, 0] = 1e39
    with pytest.raises(ValueError, match=r"beyond float32's range"):
        detector.predict(rows)


def test_float32_rows_far_out_score_finite_in_float64():
    # Cast back to X's dtype, a float32 row 1e30 out scored -inf, tied with
    # any other beyond float32's range.
    X = plane().astype(np.float32)
    detector = make_detector().fit(X)
    rows = X[:3].copy()
    rows[0, 0], rows[1, 0] = 1e30, 1e18
    scores = detector.score_samples(rows)
    assert scores.dtype == np.float64
    assert np.isfinite(scores).all()
    assert scores[0] < scores[1] < scores[2]
    assert detector.decision_function(rows).dtype == np.float64


def test_predict_and_decision_function_agree():
    X = plane()
    detector = make_detector().fit(X)
    decision = detector.decision_function(X)
    assert_allclose(decision, detector.score_samples(X) - detector.offset_)
    assert_array_equal(detector.predict(X), np.where(decision < 0, -1, 1))


def test_fit_predict_equals_fit_then_predict():
    X = plane()
    assert_array_equal(
        make_detector().fit_predict(X), make_detector().fit(X).predict(X)
    )


@pytest.mark.parametrize("contamination", [0.01, 0.05, 0.1, 0.25, 0.5])
def test_float_contamination_flags_that_fraction_of_training_rows(contamination):
    X = plane()
    detector = make_detector(contamination=contamination).fit(X)
    n_flagged = np.sum(detector.predict(X) == -1)
    assert n_flagged == round(contamination * len(X))


@pytest.mark.parametrize(
    "contamination, expected", [("auto", 0.0), (0.1, 0.2), (0.3, 0.45)]
)
def test_trim_fraction_none_follows_contamination(contamination, expected):
    # A float contamination says the rows of fit hold that fraction of
    # outliers: twice it is left out of training, at most 0.45.
    X = plane()
    detector = make_detector(contamination=contamination).fit(X)
    assert detector.trim_fraction_ == expected
    # The same training and statistics as the trim set by hand; only the
    # threshold follows contamination.
    by_hand = make_detector(trim_fraction=expected).fit(X)
    assert_array_equal(detector.score_samples(X), by_hand.score_samples(X))
    # A trim set by hand wins over contamination.
    kept = make_detector(contamination=contamination, trim_fraction=0.0).fit(X)
    assert kept.trim_fraction_ == 0.0


def test_trim_that_follows_contamination_does_not_warn_on_small_batches():
    # 300 rows in batches of 32: floor(0.02 * 32) = 0 rows of a batch's loss,
    # so only the statistics are trimmed; set by hand, that warns.
    X = plane()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detector = make_detector(contamination=0.01).fit(X)
    assert detector.trim_fraction_ == 0.02
    with pytest.warns(UserWarning, match="leaves no row out"):
        make_detector(trim_fraction=0.02).fit(X)


def test_contamination_set_after_fit_takes_effect_at_the_next_fit():
    # As for IsolationForest: offset_ is fitted, the parameter only read by fit.
    X = plane()
    detector = make_detector(contamination=0.1).fit(X)
    offset = detector.offset_
    detector.set_params(contamination=0.25)
    assert detector.offset_ == offset
    assert np.sum(detector.predict(X) == -1) == 30
    assert np.sum(detector.fit(X).predict(X) == -1) == 75


def test_auto_flags_clear_outliers_and_few_inliers():
    X = plane(n_samples=600)
    detector = make_detector().fit(X)
    new_inliers = plane(n_samples=1000, seed=2)
    assert np.mean(detector.predict(new_inliers) == -1) < 0.05
    assert np.all(detector.predict(off_plane()) == -1)
    assert np.mean(detector.predict(X) == -1) < 0.05


def test_outliers_score_lower():
    X = plane()
    detector = make_detector().fit(X)
    assert detector.score_samples(off_plane()).max() < np.median(
        detector.score_samples(X)
    )


def test_training_scores_average_about_minus_one():
    # Each feature's error is divided by its mean training error, floored at
    # a fraction of the mean: the relative error of training rows averages
    # just under 1. Their code distance averages (n - 1) / n, the covariance
    # having n - 1 degrees of freedom. The score is minus the mean of both.
    X = plane()
    detector = make_detector(early_stopping=False, error_covariance="diagonal")
    detector.fit(X)
    errors = detector.feature_errors_
    scales = errors + _SCALE_FLOOR * errors.mean()
    relative = np.mean(errors / scales)
    expected = -(relative + (len(X) - 1) / len(X)) / 2
    assert detector.score_samples(X).mean() == pytest.approx(expected, rel=1e-6)
    # x / (x + c) is concave: the mean is at most that of the mean error.
    assert 0.5 < relative <= 1 / (1 + _SCALE_FLOOR) + 1e-12


@pytest.mark.parametrize("code_weight", [0.0, 1.0, 3.0])
def test_score_weighs_relative_error_and_code_distance(code_weight):
    X, X_new = plane(), np.vstack([plane(n_samples=30, seed=3), off_plane()])
    # Without a hold-out every row trains: the statistics are over all of X
    # (with one, over the training rows only).
    detector = make_detector(
        code_weight=code_weight, error_covariance="diagonal", early_stopping=False
    )
    detector.fit(X)
    assert detector.error_precision_ is None
    residuals = X_new - detector.inverse_transform(detector.transform(X_new))
    errors = detector.feature_errors_
    relative = np.mean(residuals**2 / (errors + _SCALE_FLOOR * errors.mean()), axis=1)
    codes = detector.transform(X)
    assert_allclose(detector.code_mean_, codes.mean(axis=0), rtol=1e-5, atol=1e-6)
    precision = np.linalg.inv(np.cov(codes.T))
    assert_allclose(detector.code_precision_, precision, rtol=1e-4, atol=1e-6)
    centred = detector.transform(X_new) - codes.mean(axis=0)
    distance = np.sum(centred @ np.linalg.inv(np.cov(codes.T)) * centred, axis=1) / 2
    expected = -(relative + code_weight * distance) / (1 + code_weight)
    assert_allclose(detector.score_samples(X_new), expected, rtol=1e-4)


def whitened_detector(error_covariance="ledoit_wolf"):
    """A detector scored by its whitened relative error alone, on every row."""
    return make_detector(
        code_weight=0.0, error_covariance=error_covariance, early_stopping=False
    )


def scaled_residuals(detector, X):
    """Residuals of ``X`` divided by the square root of each feature's scale."""
    errors = detector.feature_errors_
    scale = np.sqrt(errors + _SCALE_FLOOR * errors.mean())
    return (X - detector.inverse_transform(detector.transform(X))) / scale


def test_ledoit_wolf_scores_the_whitened_scaled_residuals():
    # The relative error becomes the squared Mahalanobis distance of the
    # scaled residuals, in the metric of their Ledoit-Wolf covariance about
    # zero on the training rows, divided by the number of features.
    X, X_new = plane(), np.vstack([plane(n_samples=30, seed=3), off_plane()])
    detector = whitened_detector().fit(X)
    training = scaled_residuals(detector, X)
    precision = np.linalg.inv(ledoit_wolf(training, assume_centered=True)[0])
    assert_allclose(detector.error_precision_, precision, rtol=1e-3)
    scaled = scaled_residuals(detector, X_new)
    expected = -np.sum(scaled @ precision * scaled, axis=1) / X.shape[1]
    assert_allclose(detector.score_samples(X_new), expected, rtol=1e-3)


def test_empirical_scores_the_residuals_whitened_by_their_sample_covariance():
    # The relative error becomes the squared Mahalanobis distance of the
    # scaled residuals in the metric of their sample covariance about zero
    # on the training rows (with the code distance, for a linear network,
    # the distance along every principal axis, as PyOD's PCA detector's),
    # its variances raised to the floor, divided by the number of features:
    # over those rows it averages trace(S @ inv(S)) / p = 1 where no
    # variance is raised, less where some are.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8))
    X_new = rng.normal(size=(40, 8)) @ rng.normal(size=(8, 8))
    detector = whitened_detector("empirical").fit(X)
    training = scaled_residuals(detector, X)
    variances, axes = np.linalg.eigh(training.T @ training / len(X))
    # The network reconstructs the rows almost exactly along its code's two
    # directions: the floor raises their variances.
    floor = _WHITENED_VARIANCE_FLOOR * variances.mean()
    assert np.sum(variances < floor) == 2
    precision = (axes / np.maximum(variances, floor)) @ axes.T
    assert_allclose(detector.error_precision_, precision, rtol=1e-4)
    scaled = scaled_residuals(detector, X_new)
    expected = -np.sum(scaled @ precision * scaled, axis=1) / X.shape[1]
    assert_allclose(detector.score_samples(X_new), expected, rtol=1e-4)
    expected_mean = np.sum(np.minimum(variances / floor, 1.0)) / 8
    assert -detector.score_samples(X).mean() == pytest.approx(expected_mean, rel=1e-4)


def test_empirical_weighs_directions_without_variance_at_the_floor():
    # Rows near a plane, which the network reconstructs almost exactly
    # along it: the scaled residuals hardly vary in two directions. Their
    # inverse variances would be one over rounding; raised to the floor,
    # no direction weighs more than 1 / _WHITENED_VARIANCE_FLOOR times the
    # mean variance's inverse, and rows far along the plane score finite.
    X = plane()
    detector = whitened_detector("empirical").fit(X)
    training = scaled_residuals(detector, X)
    variances = np.linalg.eigvalsh(training.T @ training / len(X))
    assert variances.min() < 1e-6 * variances.mean()
    largest = np.linalg.eigvalsh(detector.error_precision_).max()
    bound = 1 / (_WHITENED_VARIANCE_FLOOR * variances.mean())
    assert largest == pytest.approx(bound, rel=1e-3)
    far = 8 * plane(n_samples=20, seed=3)
    assert np.all(np.isfinite(detector.score_samples(far)))
    # Ledoit-Wolf's shrinkage weighs those directions down further still.
    shrunk = whitened_detector("ledoit_wolf").fit(X)
    assert np.linalg.eigvalsh(shrunk.error_precision_).max() < largest


def test_whitened_relative_error_of_training_rows_averages_at_most_one():
    # Over the rows it is fitted on, the whitened relative error averages
    # trace(S @ inv(shrunk)) / p, with S their second moments about zero
    # and shrunk = (1 - delta) S + delta mu I, mu the mean eigenvalue of S:
    # the mean over those eigenvalues of a function concave in them and 1
    # at mu, so at most 1, and less the more unequal they are.
    X = plane()
    detector = whitened_detector().fit(X)
    scaled = scaled_residuals(detector, X)
    eigenvalues = np.linalg.eigvalsh(scaled.T @ scaled / len(X))
    delta = ledoit_wolf(scaled, assume_centered=True)[1]
    shrunk = (1 - delta) * eigenvalues + delta * eigenvalues.mean()
    relative = -detector.score_samples(X).mean()
    assert relative == pytest.approx(np.mean(eigenvalues / shrunk), rel=1e-3)
    assert relative < 0.9


def heteroscedastic(seed, correlated):
    """Residuals of unequal scales, independent or all along one direction."""
    rng = np.random.RandomState(seed)
    scales = np.geomspace(0.1, 10, 20)
    independent = rng.normal(size=(60, 20)) * scales
    if not correlated:
        return independent
    return rng.normal(size=(60, 1)) * scales + 0.1 * independent


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("correlated", [False, True])
def test_auto_whitens_residuals_whose_correlations_predict_new_rows(seed, correlated):
    # 'auto' whitens where the Ledoit-Wolf model gives the held-out half of
    # the rows the higher likelihood: where the residuals go together. It
    # then whitens by their sample covariance.
    residuals = heteroscedastic(seed, correlated)
    chosen, gain = _auto_error_covariance(residuals)
    if correlated:
        assert chosen == "empirical" and gain >= _WHITENING_MIN_GAIN
    else:
        assert chosen == "diagonal" and gain < _WHITENING_MIN_GAIN


def test_auto_keeps_the_diagonal_where_correlations_gain_little_per_feature():
    # Many features with a weak common part, as the pixels of images given
    # as flat rows: the Ledoit-Wolf model predicts held-out rows a little
    # better in all, but not by the bound per feature, and whitening them
    # would weigh down the broad residuals in which outliers differ.
    rng = np.random.RandomState(0)
    residuals = 0.5 * rng.normal(size=(2000, 1)) + rng.normal(size=(2000, 200))
    chosen, gain = _auto_error_covariance(residuals)
    assert 0 < gain < _WHITENING_MIN_GAIN
    assert chosen == "diagonal"


def test_auto_resolves_to_one_of_the_explicit_scores():
    X, X_new = plane(), off_plane()
    auto = make_detector().fit(X)
    explicit = "diagonal" if auto.error_precision_ is None else "empirical"
    assert (auto.error_covariance_gain_ >= _WHITENING_MIN_GAIN) == (
        explicit == "empirical"
    )
    chosen = make_detector(error_covariance=explicit).fit(X)
    assert_array_equal(auto.score_samples(X_new), chosen.score_samples(X_new))
    assert auto.error_covariance == "auto"
    # An explicit choice, or image rows' window, measures no gain.
    assert chosen.error_covariance_gain_ is None


def test_auto_keeps_the_window_of_image_rows_diagonal(digits):
    # Whitening would undo the window; without a window, image rows are
    # treated as any rows.
    X = digits[0][:100] / 16
    windowed = make_detector(image_shape=(1, 8, 8)).fit(X)
    assert windowed.error_precision_ is None
    assert windowed.error_covariance_gain_ is None
    whitened = make_detector(image_shape=(1, 8, 8), error_covariance="ledoit_wolf")
    assert whitened.fit(X).error_precision_.shape == (64, 64)


def test_auto_keeps_the_diagonal_beyond_the_whitened_features(monkeypatch):
    # Whitening needs n_features x n_features matrices and their
    # eigendecompositions: on 20,000 features 3.2 GB each and hours. Beyond
    # the bound 'auto' keeps the diagonal without measuring a gain.
    monkeypatch.setattr(outlier, "_MAX_WHITENED_FEATURES", 7)
    detector = make_detector().fit(plane())
    assert detector.error_precision_ is None
    assert detector.error_covariance_gain_ is None
    monkeypatch.setattr(outlier, "_MAX_WHITENED_FEATURES", 8)
    assert make_detector().fit(plane()).error_covariance_gain_ is not None


@pytest.mark.parametrize("error_covariance", ["empirical", "ledoit_wolf"])
def test_explicit_whitening_beyond_the_bound_warns_of_its_cost(
    monkeypatch, error_covariance
):
    monkeypatch.setattr(outlier, "_MAX_WHITENED_FEATURES", 7)
    detector = make_detector(error_covariance=error_covariance)
    message = (
        rf"error_covariance='{error_covariance}' on 8 features builds 8 x 8 float64 "
        r"matrices \(0.0 GiB each, several at once\).*error_covariance='diagonal'"
    )
    with pytest.warns(UserWarning, match=message):
        detector.fit(plane())
    assert detector.error_precision_.shape == (8, 8)


def test_code_distance_flags_rows_far_out_along_the_normal_directions():
    # Rows on the plane, eight times as far out as a typical training row: a
    # linear autoencoder (PCA) reconstructs them perfectly, but their codes
    # lie far from the training codes.
    X = plane()
    directions = np.random.RandomState(3).normal(size=(20, 2))
    far = 8 * directions / np.linalg.norm(directions, axis=1, keepdims=True) @ BASIS
    with_code = make_detector(hidden_layer_sizes=()).fit(X)
    # The diagonal error: whitened, the residuals that a linear network not
    # quite at PCA leaves along the plane, in proportion to the row's
    # distance, weigh up to 1 / _WHITENED_VARIANCE_FLOOR times the others.
    errors_only = make_detector(
        hidden_layer_sizes=(), code_weight=0.0, error_covariance="diagonal"
    ).fit(X)
    assert with_code.score_samples(far).max() < with_code.score_samples(X).min()
    assert errors_only.score_samples(far).min() > np.median(
        errors_only.score_samples(X)
    )


def test_constant_rows_score_zero():
    # Reconstructed exactly, with codes that do not vary: both terms vanish.
    X = np.ones((50, 4))
    detector = make_detector(init="random", max_iter=2).fit(X)
    assert_array_equal(detector.code_precision_, 0.0)


@pytest.mark.parametrize("trim_fraction", [0.0, 0.1])
def test_largest_code_weight_scores_finite(trim_fraction):
    # code_weight * distance overflowed to inf near float64's largest
    # weight, the scores to -inf and NaN, offset_ to NaN: nothing flagged.
    X = plane(60)
    params = dict(contamination=0.1, early_stopping=False, trim_fraction=trim_fraction)
    heaviest = make_detector(code_weight=1e308, **params).fit(X)
    heavy = make_detector(code_weight=1e200, **params).fit(X)
    scores = heaviest.score_samples(X)
    assert np.isfinite(scores).all() and np.isfinite(heaviest.offset_)
    assert_allclose(scores, heavy.score_samples(X))
    assert np.mean(heaviest.predict(X) == -1) == pytest.approx(0.1)


@pytest.mark.parametrize("code_weight", [-0.5, "best"])
def test_bad_code_weight(code_weight):
    with pytest.raises(ValueError, match="'code_weight' parameter"):
        make_detector(code_weight=code_weight).fit(plane())


@pytest.mark.parametrize("error_covariance", ["full", None, 1])
def test_bad_error_covariance(error_covariance):
    with pytest.raises(ValueError, match="'error_covariance' parameter"):
        make_detector(error_covariance=error_covariance).fit(plane())


@pytest.mark.parametrize("contamination", [0.0, 0.6, -0.1, "max"])
def test_bad_contamination(contamination):
    message = (
        "The 'contamination' parameter of AutoencoderOutlierDetector must be a str "
        "among {'auto'} or a float in the range (0.0, 0.5]. "
        f"Got {contamination!r} instead."
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        make_detector(contamination=contamination).fit(plane())


def test_conv_on_images(digits):
    X = digits[0][:200] / 16
    detector = make_detector(
        n_components=4, image_shape=(1, 8, 8), conv_channels=(4, 8), max_iter=2
    ).fit(X)
    scores = detector.score_samples(X)
    assert scores.shape == (200,)
    # A flipped image is not an image of a digit.
    flipped = X[:20].reshape(-1, 8, 8)[:, ::-1, :].reshape(20, -1)
    assert detector.score_samples(flipped).mean() < scores.mean()


# ------------------------------------------------------------ error window


def box_mean(images, window):
    """Mean over each pixel's window x window square inside the image."""
    n, height, width = images.shape
    half = window // 2
    out = np.empty_like(images)
    for i in range(height):
        for j in range(width):
            square = images[
                :, max(i - half, 0) : i + half + 1, max(j - half, 0) : j + half + 1
            ]
            out[:, i, j] = square.reshape(n, -1).mean(axis=1)
    return out


@pytest.mark.parametrize("window", [3, 5])
def test_image_rows_score_the_windowed_residual(digits, window):
    X_train, X_test = digits[0][:200] / 16, digits[0][200:260] / 16
    detector = make_detector(
        image_shape=(1, 8, 8),
        error_window=window,
        code_weight=0.0,
        early_stopping=False,
    ).fit(X_train)

    def windowed_errors(X):
        residuals = X - detector.inverse_transform(detector.transform(X))
        return box_mean(residuals.reshape(-1, 8, 8), window).reshape(len(X), -1) ** 2

    errors = windowed_errors(X_train).mean(axis=0)
    assert_allclose(detector.feature_errors_, errors, rtol=1e-4)
    scales = errors + _SCALE_FLOOR * errors.mean()
    expected = -(windowed_errors(X_test) / scales).mean(axis=1)
    assert_allclose(detector.score_samples(X_test), expected, rtol=1e-4)


def test_window_one_and_flat_rows_score_each_pixel(digits):
    X = digits[0][:200] / 16
    flat = make_detector().fit(X)
    for params in (
        dict(image_shape=(1, 8, 8), error_window=1),
        dict(error_window=5),
        # Ignored for flat rows, even where it would be refused for images.
        dict(error_window=4),
    ):
        detector = make_detector(**params).fit(X)
        assert_array_equal(detector.score_samples(X), flat.score_samples(X))


@pytest.mark.parametrize("window", [2, 0, 1.5])
def test_bad_error_window(window):
    with pytest.raises(ValueError, match="error_window"):
        make_detector(error_window=window, image_shape=(1, 2, 4)).fit(plane())


def test_same_random_state_gives_identical_scores():
    X = plane()
    first = make_detector().fit(X)
    second = make_detector().fit(X)
    assert_array_equal(first.score_samples(X), second.score_samples(X))
    assert first.offset_ == second.offset_


@pytest.mark.parametrize("contamination", ["auto", 0.1])
def test_fitted_attributes(contamination):
    # Without early stopping every row trains, and no held-out rows widen
    # the 'auto' threshold: both attributes follow from the training rows.
    X = plane()
    detector = make_detector(
        contamination=contamination, early_stopping=False, trim_fraction=0.0
    )
    detector.fit(X)
    # Each feature's mean squared reconstruction error over the training rows.
    residuals = X - detector.inverse_transform(detector.transform(X))
    assert_allclose(detector.feature_errors_, np.mean(residuals**2, axis=0), rtol=1e-4)
    scores = detector.score_samples(X)
    if contamination == "auto":
        # Minus Tukey's outer fence, Q3 + 3 IQR, of the relative errors.
        q1, q3 = np.percentile(-scores, [25, 75])
        expected = -(q3 + 3 * (q3 - q1))
    else:
        expected = np.percentile(scores, 100 * contamination)
    assert isinstance(detector.offset_, float)
    assert detector.offset_ == pytest.approx(expected, rel=1e-12)
    assert detector.transform(X).shape == (len(X), 2)


# -------------------------------------------------------------------- noise


@pytest.mark.parametrize("noise", ["gaussian", "masking", "salt_pepper"])
def test_noise_trains_a_denoising_detector(noise):
    X, outliers = plane(), off_plane()
    detector = make_detector(noise=noise, noise_level=0.2).fit(X)
    clean = make_detector().fit(X)
    # The network saw corrupted rows, so it learned something else ...
    assert not np.allclose(detector.score_samples(X), clean.score_samples(X))
    # ... while scores are computed on the rows as given, reproducibly.
    assert_array_equal(
        detector.score_samples(X),
        make_detector(noise=noise, noise_level=0.2).fit(X).score_samples(X),
    )
    assert detector.score_samples(outliers).max() < detector.score_samples(X).mean()


def test_noise_none_is_the_plain_detector():
    X = plane()
    assert_array_equal(
        make_detector(noise=None).fit(X).score_samples(X),
        make_detector().fit(X).score_samples(X),
    )


def test_noisy_detector_pickles():
    X = plane()
    detector = make_detector(noise="gaussian", noise_level=0.2).fit(X)
    loaded = pickle.loads(pickle.dumps(detector))
    assert_array_equal(loaded.score_samples(X), detector.score_samples(X))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"noise": "blur"}, "noise"),
        ({"noise": "gaussian", "noise_level": -0.1}, "noise_level"),
        ({"noise": "masking", "noise_level": 1.5}, "noise_level"),
        ({"clip": "yes"}, "clip"),
    ],
)
def test_bad_noise_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        make_detector(**params).fit(plane())


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"contamination": 0.1, "noise": "gaussian"},
        {"contamination": 0.1, "init": "random", "early_stopping": False},
    ],
    ids=["defaults", "noise", "random"],
)
def test_a_row_scores_the_same_whatever_its_batch_mates(params, seed):
    # scikit-learn's check_methods_subset_invariance, over more seeds: float32
    # matrix products round differently for one row than for twenty, and
    # dividing by small error scales magnified that past rtol=1e-7.
    X = 3 * np.random.RandomState(0).uniform(size=(20, 3))
    detector = AutoencoderOutlierDetector(
        n_components=1, max_iter=3, random_state=seed, **params
    ).fit(X)
    for method in ["score_samples", "decision_function"]:
        together = getattr(detector, method)(X)
        alone = np.ravel([getattr(detector, method)(row[None]) for row in X])
        assert_allclose(together, alone, rtol=1e-7, atol=1e-7, err_msg=method)


# ------------------------------------------------------- input components


def test_scores_on_input_axes_see_the_residual_on_every_feature(digits):
    X = digits[0][digits[1] == 0] / 16
    detector = make_detector(
        input_components=12,
        n_components=4,
        code_weight=0.0,
        error_covariance="diagonal",
        early_stopping=False,
    ).fit(X)
    assert detector.input_components_.shape == (12, 64)
    assert detector.module_.encoder[0].in_features == 12
    # The relative error over every pixel of the reconstruction the public
    # API gives, whose part outside the axes the network cannot touch.
    residuals = X - detector.inverse_transform(detector.transform(X))
    errors = detector.feature_errors_
    assert_allclose(errors, np.mean(residuals**2, axis=0), rtol=1e-4)
    scale = errors + _SCALE_FLOOR * errors.mean()
    assert_allclose(
        detector.score_samples(X), -np.mean(residuals**2 / scale, axis=1), rtol=1e-4
    )


def test_auto_input_axes_need_the_dense_network_on_clean_rows(digits):
    X = digits[0][digits[1] == 0] / 16
    assert make_detector().fit(X).input_components_ is not None
    assert make_detector(noise="gaussian").fit(X).input_components_ is None
    conv = make_detector(image_shape=(1, 8, 8), conv_channels=(4,), max_iter=1)
    assert conv.fit(X).input_components_ is None
    # Image rows on the dense network (the default conv_channels=()) may.
    assert make_detector(image_shape=(1, 8, 8)).fit(X).input_components_ is not None
    # Where the widest hidden layer is wider than the rows (the default
    # (512, 256) on 64 pixels), the axes would save nothing: none.
    wide = make_detector(hidden_layer_sizes=(128,), max_iter=1)
    assert wide.fit(X).input_components_ is None
    with pytest.raises(ValueError, match="no noise"):
        make_detector(noise="gaussian", input_components=10).fit(X)


def test_auto_network_and_code_weight_follow_the_input_axes(digits):
    X = digits[0][digits[1] == 0] / 16
    auto = dict(hidden_layer_sizes="auto", code_weight="auto", max_iter=1)
    # On every feature (64 pixels, fewer than the 512 of the widest layer).
    everywhere = make_detector(**auto).fit(X)
    assert everywhere.input_components_ is None
    assert everywhere.hidden_layer_sizes_ == (512, 256)
    assert everywhere.code_weight_ == 1.0
    on_axes = make_detector(**auto, input_components=12).fit(X)
    assert on_axes.hidden_layer_sizes_ == (256, 128)
    assert on_axes.module_.encoder[0].out_features == 256
    assert on_axes.code_weight_ == 0.5
    # Rows wider than the network on every feature get axes by themselves,
    # and then the narrower network.
    rng = np.random.RandomState(0)
    wide = rng.normal(size=(120, 6)) @ rng.normal(size=(6, 600))
    wide += 0.01 * rng.normal(size=wide.shape)
    fitted = make_detector(**auto).fit(wide)
    assert fitted.input_components_ is not None
    assert fitted.hidden_layer_sizes_ == (256, 128)
    assert fitted.code_weight_ == 0.5
    # 'auto' is the values it resolves to, which explicit ones keep.
    explicit = make_detector(
        hidden_layer_sizes=(256, 128), code_weight=0.5, max_iter=1, input_components=12
    ).fit(X)
    assert explicit.hidden_layer_sizes_ == (256, 128)
    assert_allclose(explicit.score_samples(X), on_axes.score_samples(X))
    assert make_detector(code_weight=2.0).fit(X).code_weight_ == 2.0


def test_scores_follow_the_weights_and_copies_score_alike(digits):
    # Scores run a float64 copy of the network, made once for each state of
    # its weights: it must follow a change of them, and copies of the
    # detector must score as it does without carrying it.
    X = digits[0][:200]
    detector = make_detector().fit(X)
    before = detector.score_samples(X[:10])
    assert_array_equal(detector.score_samples(X[:10]), before)
    for copied in (pickle.loads(pickle.dumps(detector)), copy.deepcopy(detector)):
        assert "_float64_module" not in vars(copied.net_)
        assert_array_equal(copied.score_samples(X[:10]), before)
    assert not hasattr(clone(detector), "net_")
    with torch.no_grad():
        for parameter in detector.module_.parameters():
            parameter.mul_(0.5)
    after = detector.score_samples(X[:10])
    assert not np.array_equal(after, before)
    assert_array_equal(
        after, pickle.loads(pickle.dumps(detector)).score_samples(X[:10])
    )
    # Refitted on other rows: a new network, new scores.
    refitted = detector.fit(X[100:])
    assert_array_equal(
        refitted.score_samples(X[:10]),
        make_detector().fit(X[100:]).score_samples(X[:10]),
    )


def test_whitened_threshold_does_not_flag_new_rows_like_the_training_rows():
    # The whitening is fitted on the training rows alone, so that the rows
    # held out for early stopping score as new rows do and widen the fence:
    # fitted on them too, it flagged 34% of fresh rows of the same noise.
    rng = np.random.RandomState(0)
    X, new = rng.normal(size=(800, 300)), rng.normal(size=(300, 300))
    detector = AutoencoderOutlierDetector(max_iter=10, random_state=0).fit(X)
    assert detector.error_precision_ is not None  # whitened
    assert np.mean(detector.predict(new) == -1) < 0.05


def test_auto_keeps_the_diagonal_with_fewer_rows_per_half_than_features():
    # A covariance of 90 rows in 1,000 features is mostly its shrinkage
    # target: whitened by it, the score flagged every fresh row.
    rng = np.random.RandomState(0)
    X, new = rng.normal(size=(200, 1000)), rng.normal(size=(300, 1000))
    detector = AutoencoderOutlierDetector(max_iter=5, random_state=0).fit(X)
    assert detector.error_covariance_gain_ >= 0.15  # the gain alone would whiten
    assert detector.error_precision_ is None
    assert np.mean(detector.predict(new) == -1) < 0.05


def test_two_rows_fit_with_early_stopping():
    # One row trains, one is held out: the whitening test has no half to
    # measure the other on (LedoitWolf raised on 0 rows); PCA and
    # IsolationForest fit two rows.
    X = np.random.RandomState(0).normal(size=(2, 5))
    detector = AutoencoderOutlierDetector(1, max_iter=2, random_state=0).fit(X)
    assert detector.error_precision_ is None
    assert detector.predict(X).shape == (2,)


def test_one_training_row_fits_a_code_wider_than_one():
    # Two rows with early stopping leave one to train on, whose code has no
    # covariance: with a random start and a 3-wide code, eigh of np.cov's
    # NaNs raised "Eigenvalues did not converge" (and numpy warned of the
    # degrees of freedom). The code distance counts for nothing, as for a
    # constant code.
    X = np.random.RandomState(0).normal(size=(2, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        detector = make_detector(init="random", n_components=3).fit(X)
    assert_array_equal(detector.code_precision_, np.zeros((3, 3)))
    assert np.isfinite(detector.score_samples(X)).all()


@pytest.mark.parametrize("factor", [1e-100, 1e100])
def test_auto_error_covariance_is_the_same_at_any_scale(factor):
    # Ledoit-Wolf takes fourth powers: residuals of 1e100 gave NaN.
    residuals = np.random.RandomState(0).normal(size=(60, 5))
    residuals[:, 1] += residuals[:, 0]
    chosen, gain = _auto_error_covariance(residuals)
    scaled = _auto_error_covariance(residuals * factor)
    assert scaled == (chosen, pytest.approx(gain, rel=1e-9))


def test_trimmed_loss_leaves_out_the_worst_rows():
    # Row errors 0, 1, 4, 9 (squared); a quarter trimmed leaves out the 9.
    loss = outlier._TrimmedLoss(RowMeanLoss(torch.nn.MSELoss()), 0.25)
    rows = torch.zeros(4, 2)
    output = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    assert loss(output, rows).item() == pytest.approx((0 + 1 + 4) / 3)
    # Fewer rows than one trimmed: every row counts.
    assert loss(output[:3], rows[:3]).item() == pytest.approx((0 + 1 + 4) / 3)


@pytest.mark.parametrize("n_values", [1, 2, 3, 4, 7, 256])
def test_the_fence_in_torch_is_numpys(n_values):
    # Quartiles interpolated as np.percentile does, without its host steps.
    values = np.random.RandomState(n_values).exponential(size=n_values)
    fence = outlier._fence(torch.from_numpy(values))
    assert fence.item() == pytest.approx(outlier._fence(values), rel=1e-12)


def test_fenced_loss_leaves_out_the_rows_beyond_the_fence():
    # Row errors 1, 1, 1, 1, 4 and 100: Q1 1, Q3 3.25, fence 6.625.
    loss = outlier._FencedLoss(RowMeanLoss(torch.nn.MSELoss()))
    rows = torch.zeros(6, 1)
    output = torch.tensor([[1.0], [-1.0], [1.0], [-1.0], [2.0], [10.0]])
    assert loss(output, rows).item() == pytest.approx((1 + 1 + 1 + 1 + 4) / 5)
    # Rows alike all count: none lies beyond the fence.
    assert loss(output[:4], rows[:4]).item() == pytest.approx(1.0)
    # The fence is no path for gradients: the kept rows' mean is.
    output.requires_grad_(True)
    loss(output, rows).backward()
    assert output.grad[-1].item() == 0.0
    assert output.grad[0].item() == pytest.approx(2 * 1.0 / 5)


@pytest.mark.parametrize(
    "params, batch_size",
    [(dict(trim_fraction=0.1, batch_size=8), 8), (dict(trim_fraction=0.02), 32)],
)
def test_trim_fraction_too_small_for_the_batches_warns(params, batch_size):
    # floor(trim_fraction * batch_size) rows of each batch leave the loss:
    # none here, and the outliers trained as normal rows did, silently.
    message = (
        f"trim_fraction={params['trim_fraction']} leaves no row out of the "
        f"training loss: batches of {batch_size} rows lose "
        f"floor({params['trim_fraction']} * {batch_size}) = 0 rows each"
    )
    with pytest.warns(UserWarning, match=f"^{re.escape(message)}"):
        make_detector(**params).fit(plane())


def test_trim_fraction_too_small_for_the_batches_advises_batches_that_trim():
    # 1 / (0.3 - 0.1) rounds to 5, but floor((0.3 - 0.1) * 5) = 0: the
    # advice must name batches that do lose a row.
    fraction = 0.3 - 0.1
    assert int(fraction * 5) == 0 and int(fraction * 6) == 1
    with pytest.warns(UserWarning, match=r"Use batches of at least 6 rows"):
        make_detector(trim_fraction=fraction, batch_size=5).fit(plane())


def test_trim_fraction_too_small_for_the_training_rows_warns_nothing_is_trimmed():
    # Eight rows trained on: floor(0.1 * 8) = 0 leave the statistics too, so
    # the warning must not claim that the statistics are trimmed.
    X = plane(8)
    message = (
        "trim_fraction=0.1 leaves no row out of the training loss: batches of "
        "8 rows lose floor(0.1 * 8) = 0 rows each, and the statistics of the 8 "
        "rows trained on lose floor(0.1 * 8) = 0 rows too, so nothing is trimmed."
    )
    with pytest.warns(UserWarning, match=f"^{re.escape(message)}"):
        trimmed = make_detector(
            n_components=1, trim_fraction=0.1, early_stopping=False
        ).fit(X)
    untrimmed = make_detector(n_components=1, early_stopping=False).fit(X)
    assert_array_equal(trimmed.score_samples(X), untrimmed.score_samples(X))


def test_trim_fraction_that_trims_each_batch_fits_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        make_detector(trim_fraction=0.1, batch_size=10).fit(plane())


def test_trim_fraction_fits_the_statistics_without_the_worst_rows():
    # A tenth of the rows lie far out along the plane: the code distance's
    # mean and spread, fitted on every row, follow them; trimmed, they are
    # the normal rows'.
    rng = np.random.RandomState(0)
    normal = plane(270)
    far = (rng.normal(size=(30, 2)) * 0.1 + [8.0, 0.0]) @ BASIS
    X = np.vstack([normal, far])
    params = dict(n_components=2, early_stopping=False, max_iter=20)
    abnormal = np.r_[np.zeros(270, bool), np.ones(30, bool)]
    shift, auc = {}, {}
    for trim in (0.0, 0.2):
        detector = make_detector(trim_fraction=trim, **params).fit(X)
        codes = detector.transform(normal)
        off = np.linalg.norm(detector.code_mean_ - codes.mean(axis=0))
        shift[trim] = off / codes.std(axis=0).mean()
        auc[trim] = roc_auc_score(abnormal, -detector.score_samples(X))
    assert shift[0.0] > 0.3
    assert shift[0.2] < 0.1
    assert auc[0.2] > auc[0.0]


def test_trimmed_statistics_are_refitted_until_the_rows_left_out_settle():
    # Two concentration steps left the statistics fitted on other rows than
    # the ones their own scores keep: on breast cancer rows with malignant
    # ones planted, the code mean of the rows that the final scores keep was
    # off code_mean_; refitted until the rows settle, it is code_mean_.
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.RandomState(0)
    planted = X[y == 0][rng.choice(np.sum(y == 0), 40, replace=False)]
    rows = StandardScaler().fit_transform(np.vstack([X[y == 1], planted]))
    detector = make_detector(
        n_components=0.8, trim_fraction=0.2, early_stopping=False, max_iter=5
    ).fit(rows)
    scores = detector.score_samples(rows)
    n_kept = len(rows) - int(0.2 * len(rows))
    kept = np.sort(np.argsort(-scores, kind="stable")[:n_kept])
    codes = detector.transform(rows)
    assert_allclose(codes[kept].mean(axis=0), detector.code_mean_, atol=1e-6)


def test_with_trim_fraction_the_rows_kept_average_minus_one_or_above():
    # The docs said every row trained on scores -1 or a little above on
    # average: with trim_fraction only the rows the statistics kept do; the
    # rows left out of them (planted far out here) pull the mean below -1.
    rng = np.random.RandomState(0)
    far = (rng.normal(size=(30, 2)) * 0.1 + [8.0, 0.0]) @ BASIS
    X = np.vstack([plane(270), far])
    detector = make_detector(trim_fraction=0.2, early_stopping=False, max_iter=20)
    scores = detector.fit(X).score_samples(X)
    n_kept = len(X) - int(0.2 * len(X))
    # The best n_kept scores average at least what the rows kept do.
    assert np.sort(scores)[::-1][:n_kept].mean() >= -1
    assert scores.mean() < -1


def test_trim_fraction_ranks_outliers_among_the_training_rows(digits):
    # Twenty other digits among the ones: the plain loss learns them.
    X, y = digits
    X = X / 16
    rng = np.random.RandomState(0)
    others = X[y != 1][rng.choice(np.sum(y != 1), 20, replace=False)]
    rows = np.vstack([X[y == 1], others])
    abnormal = np.r_[np.zeros(np.sum(y == 1), bool), np.ones(20, bool)]
    aucs = [
        roc_auc_score(
            abnormal,
            -make_detector(
                n_components=0.8,
                hidden_layer_sizes=(64,),
                max_iter=20,
                trim_fraction=trim,
            )
            .fit(rows)
            .score_samples(rows),
        )
        for trim in (0.0, 0.1, "auto")
    ]
    assert aucs[1] > 0.99
    assert aucs[1] > aucs[0]
    # 'auto' knows no fraction: the other digits stand out beyond the fence.
    assert aucs[2] > aucs[0]


@pytest.mark.parametrize("trim, n_kept", [(0.1, 270), (0.2, 240), ("auto", None)])
def test_start_rows_leave_out_rows_that_tilt_pcas_axes(monkeypatch, trim, n_kept):
    # A tenth of the rows lie far off the plane: PCA of every row turns its
    # axes towards them. Scored by PCA as the detector scores, they are the
    # rows the start leaves out, and PCA of the rows kept finds the plane.
    monkeypatch.setattr(outlier, "CHUNK_ROWS", 64)
    X = np.vstack([plane(270), off_plane(30)]).astype(np.float32)
    kept = _start_rows(X, 2, trim, code_weight=1.0)
    assert_array_equal(kept, np.sort(kept))
    assert not np.isin(np.arange(270, 300), kept).any()
    if n_kept is not None:
        assert len(kept) == n_kept
    else:
        # Tukey's fence keeps the normal rows, whose scores are alike.
        assert len(kept) >= 260

    def off_the_plane(rows):
        axes = PCA(2).fit(rows).components_
        return np.linalg.norm(axes - axes @ BASIS.T @ BASIS)

    assert off_the_plane(X) > 1
    assert off_the_plane(X[kept]) < 0.05


@pytest.mark.parametrize(
    "X, n_components, trim",
    [
        # Constant rows: every code unit of no variance, whose distance was
        # 0 / 0, and no row was kept (PCA then refused 0 rows).
        (np.ones((20, 5)), 2, "auto"),
        (np.ones((20, 5)), 2, 0.2),
        # Five rows at width 4: a share of 0.45 kept 3 rows, too few for
        # PCA at width 4.
        (np.random.RandomState(0).normal(size=(5, 6)), 4, 0.45),
    ],
)
def test_trimmed_start_fits_rows_left_few_or_constant(X, n_components, trim):
    kept = _start_rows(X.astype(np.float32), n_components, trim, code_weight=1.0)
    assert len(kept) >= n_components
    detector = make_detector(
        n_components=n_components, trim_fraction=trim, early_stopping=False
    ).fit(X)
    assert np.isfinite(detector.score_samples(X)).all()


def test_trim_fraction_starts_the_linear_path_without_the_rows_left_out(
    monkeypatch,
):
    # The PCA start sees the training rows but those _start_rows leaves out.
    seen, start = [], _BaseAutoencoder._start

    def spy(self, network, X_train, rng):
        seen.append(len(X_train))
        return start(self, network, X_train, rng)

    monkeypatch.setattr(_BaseAutoencoder, "_start", spy)
    for trim in (0.0, 0.1):
        make_detector(trim_fraction=trim, early_stopping=False).fit(plane(200))
    assert seen == [200, 180]


@pytest.mark.parametrize("n_features", [1, 6])
def test_ledoit_wolf_by_chunks_is_ledoit_wolfs_covariance(monkeypatch, n_features):
    monkeypatch.setattr(outlier, "CHUNK_ROWS", 7)
    rows = np.random.RandomState(0).normal(size=(50, n_features)) * 3.0
    indices = np.arange(1, 50, 2)
    scale = np.linspace(1.0, 2.0, n_features)
    expected = ledoit_wolf(rows[indices] / scale, assume_centered=True)[0]
    assert_allclose(_ledoit_wolf_by_chunks(rows, indices, scale), expected, rtol=1e-12)


@pytest.mark.parametrize(
    "error_covariance, bound",
    [("auto", 2.0), ("empirical", 2.5), ("ledoit_wolf", 3.5)],
)
def test_statistics_allocate_little_beyond_the_residuals(
    monkeypatch, error_covariance, bound
):
    # The pass after training holds every row's codes and float64 residuals
    # (1.05 times X here), and works a chunk of rows at a time beyond them,
    # copying the training rows' residuals only for the whitened score's
    # covariance. Copies of them (and Ledoit-Wolf's copies of each half)
    # took 3.1 to 3.8 times X with 'auto', 4.1 to 4.8 with 'ledoit_wolf':
    # the fit in bench_memory (100,000 rows of 784 float32 features) peaked
    # at 8.3 times X, 3.5 without them. 'empirical' copies the training
    # rows' residuals once (2.1 times X here with the residuals).
    # Chunks of 512 rows, so that 4,000 rows are many chunks.
    monkeypatch.setattr(outlier, "CHUNK_ROWS", 512)
    monkeypatch.setattr(_units, "CHUNK_ROWS", 512)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(4000, 4)) @ rng.normal(size=(4, 100))
    X += 0.1 * rng.normal(size=X.shape)
    detector = make_detector(
        n_components=4, max_iter=2, error_covariance=error_covariance
    ).fit(X)
    tracemalloc.start()
    try:
        detector._training_pass(X, np.arange(0, len(X), 10))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < bound * X.nbytes


# ------------------------------------------------------------- rounding floor


@pytest.mark.parametrize(
    "error_covariance", ["auto", "diagonal", "empirical", "ledoit_wolf"]
)
def test_rows_reconstructed_to_rounding_score_alike_in_float32_and_float64(
    error_covariance,
):
    # Rows on a 3-D subspace, which the PCA start reconstructs to float32's
    # rounding: the error scales were rounding too, and the relative errors
    # rounding divided by rounding, which float32 and float64 copies of the
    # same rows drew differently (scores 0.13 apart in relative terms at the
    # median, 1.3 at most, and other rows flagged).
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 10))
    outliers = 2 * rng.normal(size=(20, 10))
    fitted = {
        dtype: AutoencoderOutlierDetector(
            n_components=3,
            max_iter=2,
            error_covariance=error_covariance,
            random_state=0,
        ).fit(X.astype(dtype))
        for dtype in (np.float64, np.float32)
    }
    scores = {
        dtype: detector.score_samples(X.astype(dtype))
        for dtype, detector in fitted.items()
    }
    assert_allclose(scores[np.float32], scores[np.float64], rtol=0.02)
    assert_array_equal(
        fitted[np.float32].predict(X.astype(np.float32)),
        fitted[np.float64].predict(X),
    )
    for dtype, detector in fitted.items():
        # Rows off the subspace still score far below every training row.
        far = detector.score_samples(outliers.astype(dtype))
        assert far.max() < 1e6 * scores[dtype].min()
        assert_array_equal(detector.predict(outliers.astype(dtype)), -1)
