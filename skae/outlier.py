"""AutoencoderOutlierDetector: anomaly scores from reconstruction error."""

import math
import warnings
from functools import partial
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import OutlierMixin
from sklearn.covariance import (
    empirical_covariance,
    ledoit_wolf,
    ledoit_wolf_shrinkage,
    shrunk_covariance,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from skae._base import _BaseAutoencoder
from skae._mixins import InputAxesMixin, NoiseMixin
from skae._networks import _fitted_pca
from skae._params import MEASURED_DEFAULTS, fill_doc, make_init
from skae._units import CHUNK_ROWS, total_squares
from skae._validation import (
    Interval,
    StrOptions,
    check_rows_ndim,
    user_stacklevel,
)
from skae.noise import NOISE_KINDS

# Floor of each feature's error scale, relative to the mean scale: a feature
# that training reconstructs (almost) perfectly, such as a pixel that is
# always 0, would otherwise weigh hundreds of times as much as the others.
_SCALE_FLOOR = 0.03
# Variance each feature's error scale adds for the network's rounding,
# relative to the square of the model units' scale: the networks compute in
# float32, and rows they reconstruct to rounding (rows on a subspace the PCA
# start fits) measured mean squared errors of up to 8 (eps * scale) ** 2 in
# a feature. Without it their relative errors were rounding divided by
# rounding, and float32 and float64 copies of the same rows scored and were
# flagged differently. (16 eps) ** 2, 4e-12, is far below real errors.
_ROUNDING_FLOOR = (16 * float(np.finfo(np.float32).eps)) ** 2
# contamination='auto' flags anomaly scores beyond Tukey's outer fence,
# Q3 + 3 IQR: "far out" in his exploratory data analysis.
_AUTO_FENCE = 3.0
# Scores come from a float64 copy of the network: float32 matrix products
# round differently for different numbers of rows, and dividing by small
# error scales magnifies that, so a row's score would depend on its batch.
_SCORE_DTYPE = torch.float64
# error_covariance='auto' whitens the residuals when their Ledoit-Wolf model
# gives held-out rows at least this much more log-likelihood per feature
# than the features one by one (error_covariance_gain_), and then by their
# sample covariance ('empirical'): Ledoit-Wolf's shrinkage towards the
# diagonal weighs down the directions in which the training residuals
# hardly vary, where outliers stand out, and with it breast cancer's mean
# AUC over 10 halvings was lower on every halving (0.9584 against 0.9598,
# bench_outliers --set error_covariance=ledoit_wolf; user guide, "How the
# defaults were chosen"). In the outlier
# benchmark (its *_whitening_gain columns): breast cancer 0.26 to 0.36 on
# every halving, where whitening lifted the mean AUC from 0.9565 to 0.9606
# (commit 0e86367, Ledoit-Wolf);
# Fashion-MNIST's pixels as flat rows -0.08 to 0.11 (-0.06 to 0.14 with
# the narrower network on principal coordinates, commit 3b38644), where it
# lowered the mean from 0.9252 to 0.9206 (0.9225 to 0.9098 on class 0, 0.822
# to 0.802 on class 6): many weakly correlated features, whose whitening weighs down
# the broad residuals in which other garments differ; digits below 0. The
# bound lies between Fashion-MNIST's highest and breast cancer's lowest.
_WHITENING_MIN_GAIN = 0.15
# Whitening the residuals builds n_features x n_features float64 matrices
# (the Ledoit-Wolf covariance, its eigenvectors, the precision) and
# eigendecomposes them, in time cubic in the features: one eigh took 30 s
# on one core for 5,000 features (a fit of 200 such rows 60 to 90 s, 2 s
# with the diagonal), so 128 MiB and about 17 s for 4,096 features, 3.2 GB
# and half an hour for 20,000. error_covariance='auto' keeps the diagonal
# beyond this.
_MAX_WHITENED_FEATURES = 4096
# error_covariance='empirical' weighs no direction of the scaled residuals
# at more than one over this fraction of their mean variance
# (_floored_inverse): low, as the gain over Ledoit-Wolf's shrinkage lies in
# the directions the residuals vary least in, yet bounded where they do not
# vary at all (the code's directions, for a network close to linear).
_WHITENED_VARIANCE_FLOOR = 1e-3
# Code variances below this fraction of the codes' mean square are rounding.
_CODE_VARIANCE_FLOOR = 1e-12
# With trim_fraction, the statistics are refitted on the rows trained on but
# the worst-scoring trim_fraction of them under the statistics before
# (concentration steps, as the minimum covariance determinant's C-steps),
# until the rows left out stop changing, at most this many times (a bound
# against rows that swap places for ever). Two steps, as before, left the
# statistics fitted on other rows than their own scores keep (user guide,
# "How the defaults were chosen").
_TRIM_STEPS = 20
# trim_fraction='auto' leaves out the rows beyond Tukey's inner fence,
# Q3 + 1.5 IQR, of a batch's row losses, and of the training rows' anomaly
# scores: of the fences 1, 1.5 and 3 IQR tried on the outlier benchmark's
# sets with planted outliers, 1.5 ranked the planted digits best and the
# breast cancer's within the spread of the best.
_TRIM_FENCE = 1.5
# trim_fraction=None follows contamination: a float says that the rows
# passed to fit hold that fraction of outliers, and the detector leaves out
# twice it, as batches hold varying shares of them. In the outlier
# benchmark, on rows of which a tenth were planted outliers, 0.1 ranked the
# planted digits 0.962 and 0.2 0.990 (IsolationForest 0.972), the planted
# tumours 0.922 and 0.929 (0.926; bench_outliers --datasets
# digits_contaminated breast_cancer_contaminated, commit 3b38644). At most
# _MAX_FOLLOWED_TRIM, as trim_fraction must stay below a half.
_TRIM_PER_CONTAMINATION = 2.0
_MAX_FOLLOWED_TRIM = 0.45
# hidden_layer_sizes='auto' and code_weight='auto': the network's widths and
# the code distance's weight on every feature, and on input axes
# (input_components_, which the network trains on where rows have many
# features). On Fashion-MNIST's classes (117 to 297 axes) the narrower
# network alone ranked a little worse (mean AUC 0.9331 on image rows,
# 0.9229 on flat rows, against 0.9345 and 0.9244) and the code distance at
# half weight brought it back (0.9348, 0.9245), in about 0.55 times the fit
# time, 0.88 times PyOD's AutoEncoder's (bench_outliers --datasets
# fashion_mnist --set "hidden_layer_sizes=(256, 128)" code_weight=0.5;
# user guide, "How the defaults were chosen").
# Breast cancer and the digits train on every feature.
_HIDDEN_SIZES = (512, 256)
_AXES_HIDDEN_SIZES = (256, 128)
_CODE_WEIGHT = 1.0
_AXES_CODE_WEIGHT = 0.5
# What the score needs from the training rows.
_FITTED_SCALES = ("_error_scale", "error_precision_", "code_mean_", "code_precision_")


def _column_mean_squares(rows, axes=None, *, indices=None, scale=1.0):
    """Mean square of each column of ``rows / scale`` (of ``rows / scale @ axes``).

    Over the rows ``indices`` only, if given. In float64, a chunk of rows
    at a time: the squares of the whole of ``rows`` would be another array
    of its size, and so would ``rows / scale``.
    """
    width = rows.shape[1] if axes is None else axes.shape[1]
    n_rows = len(rows) if indices is None else len(indices)
    total = np.zeros(width)
    for start in range(0, n_rows, CHUNK_ROWS):
        chunk = slice(start, start + CHUNK_ROWS)
        chunk = (rows[chunk] if indices is None else rows[indices[chunk]]) / scale
        total += np.sum((chunk if axes is None else chunk @ axes) ** 2, axis=0)
    return total / n_rows


def _scores_by_chunks(residuals, codes, fitted, code_weight):
    """:func:`_anomaly_scores` of every row, a chunk of rows at a time.

    The score's products and squares over the whole of ``residuals`` would
    be several arrays of its size.
    """
    return np.concatenate(
        [
            _anomaly_scores(
                residuals[start : start + CHUNK_ROWS],
                codes[start : start + CHUNK_ROWS],
                fitted,
                code_weight,
            )
            for start in range(0, len(residuals), CHUNK_ROWS)
        ]
    )


def _weighted_mean(relative, distance, code_weight):
    """``(relative + code_weight * distance) / (1 + code_weight)``.

    Each term weighed first: ``code_weight * distance`` overflows to inf
    for weights near float64's largest (1e308), and the score to NaN. The
    weights 1 / 2 of the default weight 1 are exact, so its scores are
    the same to the bit.
    """
    total = 1.0 + code_weight
    return relative / total + (code_weight / total) * distance


def _anomaly_scores(residuals, codes, fitted, code_weight):
    """Minus the weighted mean of each row's relative error and code distance.

    ``residuals`` holds each row's residuals the score is made of, ``codes``
    its code; ``fitted`` the scales and code statistics of the training rows
    (the attributes ``_training_pass`` sets).
    """
    scaled = residuals / np.sqrt(fitted["_error_scale"])
    precision = fitted["error_precision_"]
    if precision is None:
        relative = np.mean(scaled**2, axis=1)
    else:
        relative = np.sum(scaled @ precision * scaled, axis=1) / scaled.shape[1]
    centred = codes - fitted["code_mean_"]
    distance = (
        np.sum(centred @ fitted["code_precision_"] * centred, axis=1) / codes.shape[1]
    )
    return -_weighted_mean(relative, distance, code_weight)


def _pseudo_inverse(covariance, floor):
    """Pseudo-inverse of a covariance matrix.

    Directions along which the rows vary by no more than ``floor``, rounding
    (a unit that never fires, or all of them for a constant X), count for
    nothing rather than for 1 / rounding error.
    """
    variances, axes = np.linalg.eigh(np.atleast_2d(covariance))
    kept = variances > floor
    inverse = np.divide(1.0, variances, out=np.zeros_like(variances), where=kept)
    return (axes * inverse) @ axes.T


def _floored_inverse(covariance, relative_floor):
    """Inverse of a covariance whose variances are raised to a floor first.

    Each eigenvalue below ``relative_floor`` times their mean counts as that
    floor: along a direction in which the training rows hardly vary (the
    code's directions, which a network close to linear reconstructs almost
    exactly), a new row's residual is weighed at most ``1 / relative_floor``
    times a typical direction's, not by one over rounding. Zero where every
    variance is (a constant X).
    """
    variances, axes = np.linalg.eigh(covariance)
    floor = relative_floor * max(float(variances.mean()), 0.0)
    if floor == 0:
        return np.zeros_like(covariance)
    return (axes / np.maximum(variances, floor)) @ axes.T


def _code_precision(codes):
    """Pseudo-inverse of the covariance of ``codes`` (rows)."""
    if len(codes) < 2:
        # One row (two fitted, one held out) varies along no direction, as
        # a constant code does: np.cov's NaNs failed to converge in eigh.
        return np.zeros((codes.shape[1], codes.shape[1]))
    return _pseudo_inverse(
        np.cov(codes, rowvar=False), _CODE_VARIANCE_FLOOR * np.mean(codes**2)
    )


def _ledoit_wolf(rows):
    """Ledoit-Wolf covariance of ``rows`` about zero.

    ``ledoit_wolf(rows, assume_centered=True)[0]``, bit for bit, from
    sklearn's public shrinkage, empirical covariance and
    ``shrunk_covariance``: ``ledoit_wolf`` first subtracts a location of
    zeros, a copy
    of ``rows`` (of the residuals of 90,000 training rows of 784 features,
    540 MiB).
    """
    if rows.shape[1] == 1:
        return ledoit_wolf(rows, assume_centered=True)[0]
    return shrunk_covariance(
        empirical_covariance(rows, assume_centered=True),
        ledoit_wolf_shrinkage(rows, assume_centered=True),
    )


def _ledoit_wolf_by_chunks(rows, indices, scale):
    """Ledoit-Wolf covariance about zero of the rows ``indices`` of ``rows / scale``.

    :func:`_ledoit_wolf` of ``rows[indices] / scale`` up to rounding (the
    sums run in another order), a chunk of rows at a time: that copy, and
    the square of it that ``ledoit_wolf_shrinkage`` makes, would each be
    270 MiB for half of the residuals of 90,000 training rows of 784
    features. The shrinkage needs only the second moments and the sum over
    the rows of each one's squared norm squared, which is the sum of the
    entries of ``X2.T @ X2`` that ``ledoit_wolf_shrinkage`` adds up (``X2``
    the squared rows). It serves the gain of ``error_covariance='auto'``, a
    number compared with a bound; ``error_precision_`` keeps sklearn's sums
    (:func:`_ledoit_wolf`): summed in this order, its entries about zero
    differed in every digit (by 9e-14, on the digits, from entries up to 24).
    """
    n_rows, width = len(indices), rows.shape[1]
    gram = np.zeros((width, width))
    norms_squared = 0.0
    for start in range(0, n_rows, CHUNK_ROWS):
        chunk = rows[indices[start : start + CHUNK_ROWS]] / scale
        gram += chunk.T @ chunk
        norms_squared += np.sum(np.sum(chunk**2, axis=1) ** 2)
    covariance = gram / n_rows
    if width == 1:
        # One variance: nothing to shrink, as in ledoit_wolf.
        return covariance
    # ledoit_wolf_shrinkage's formula, with beta_ = norms_squared and
    # delta_ = the sum of the squared second moments.
    trace = np.trace(covariance)
    mu = trace / width
    delta_ = np.sum(covariance**2)
    beta = (norms_squared / n_rows - delta_) / (width * n_rows)
    delta = (delta_ - 2.0 * mu * trace + width * mu**2) / width
    beta = min(beta, delta)
    return shrunk_covariance(covariance, 0 if beta == 0 else beta / delta)


def _error_precision(residuals, rows, error_scale, error_covariance, rounding):
    """Precision of the scaled residuals of the rows ``rows``, or None.

    ``residuals`` (every row's) are divided by the square root of
    ``error_scale``. ``'empirical'`` inverts their sample covariance about
    zero, as the relative error is a mean square; ``'ledoit_wolf'`` their
    Ledoit-Wolf covariance, the sample covariance shrunk towards the
    identity, which gives back each feature's own relative error, by as much
    as Ledoit and Wolf's estimate of its error calls for. Either plus the
    variance ``rounding`` of each feature's rounding (which the residuals of
    rows reconstructed to rounding would otherwise whiten back to noise
    divided by noise). ``'diagonal'`` keeps each feature alone (None, the
    diagonal score).
    """
    if error_covariance == "diagonal":
        return None
    # One copy of the rows' residuals, scaled in place.
    scaled = residuals[rows]
    scaled /= np.sqrt(error_scale)
    if error_covariance == "empirical":
        covariance = empirical_covariance(scaled, assume_centered=True)
        covariance += np.diag(rounding / error_scale)
        return _floored_inverse(covariance, _WHITENED_VARIANCE_FLOOR)
    covariance = _ledoit_wolf(scaled) + np.diag(rounding / error_scale)
    return _pseudo_inverse(covariance, _CODE_VARIANCE_FLOOR * np.mean(scaled**2))


def _auto_error_covariance(residuals, rows=None, rounding=0.0):
    """Return what ``error_covariance='auto'`` takes, and the gain it decided on.

    Decided on the rows ``rows`` of ``residuals`` (every row by default),
    with ``rounding`` added to every variance as the score adds it.
    Returns ``('empirical' or 'diagonal', gain)``: the mean
    :func:`_likelihood_gain` of each half of the rows (even, odd) under the
    models fitted on the other, per feature, in nats; the whitened score
    where it reaches ``_WHITENING_MIN_GAIN`` and each half has at least as
    many rows as features. With fewer, the covariance of a half is mostly
    its shrinkage target, and its gain on the other half measured nothing
    new rows would share: on 200 rows of 1,000 features of noise the
    whitened score flagged most new rows of the same noise. The gain is
    Ledoit-Wolf's, a stable measure of how far the residuals go together;
    the score then whitens by their sample covariance (``'empirical'``),
    which ranked better (:data:`_WHITENING_MIN_GAIN`).
    """
    if rows is None:
        rows = np.arange(len(residuals))
    if len(rows) < 2:
        # A single training row (two rows, one held out) has no half to
        # measure the other on.
        return "diagonal", 0.0
    # Divided by their root mean square, which changes no gain: Ledoit-Wolf
    # takes fourth powers, past float64's range for residuals beyond 1e77.
    rms = np.sqrt(np.mean(_column_mean_squares(residuals, indices=rows)))
    rms = rms if rms > 0 else 1.0
    halves = (rows[0::2], rows[1::2])
    gain = (
        np.mean(
            [
                _likelihood_gain(residuals, fit, held, rms, rounding)
                for fit, held in (halves, halves[::-1])
            ]
        )
        / residuals.shape[1]
    )
    enough_rows = len(rows) // 2 >= residuals.shape[1]
    whiten = gain >= _WHITENING_MIN_GAIN and enough_rows
    return ("empirical" if whiten else "diagonal"), float(gain)


def _likelihood_gain(residuals, fit, held, scale, rounding):
    """How much better the residuals' correlations predict ``held`` than none.

    The mean Gaussian log-likelihood of the rows ``held`` of ``residuals /
    scale`` under the Ledoit-Wolf covariance of the rows ``fit``, minus that
    under their mean squares alone, both about zero and with the score's
    floors, ``_SCALE_FLOOR`` times the mean variance and the variance
    ``rounding`` of ``residuals``' rounding, added to every variance: the
    diagonal model is then the one the diagonal score uses.
    """
    errors = _column_mean_squares(residuals, indices=fit, scale=scale)
    floor = _SCALE_FLOOR * errors.mean() + rounding / scale**2
    if floor == 0:
        return 0.0
    covariance = _ledoit_wolf_by_chunks(residuals, fit, scale)
    variances, axes = np.linalg.eigh(covariance + floor * np.eye(len(errors)))
    full = np.sum(np.log(variances)) + np.sum(
        _column_mean_squares(residuals, axes, indices=held, scale=scale) / variances
    )
    diagonal_variances = errors + floor
    diagonal = np.sum(np.log(diagonal_variances)) + np.sum(
        _column_mean_squares(residuals, indices=held, scale=scale) / diagonal_variances
    )
    return -0.5 * (full - diagonal)


def _score_statistics(residuals, codes, rows, covariance, rounding):
    """Return the score's statistics of the rows ``rows``, and the whitening gain.

    ``residuals`` and ``codes`` hold every row's; ``rows`` indexes those the
    statistics come from (sorted); ``covariance`` is ``error_covariance``
    resolved for the data (``'auto'`` is decided on these rows);
    ``rounding`` is the variance of the residuals' rounding, which each
    feature's error scale adds (``_ROUNDING_FLOOR``). Returns
    ``(fitted, gain)``: the attributes ``_anomaly_scores`` reads, with
    ``feature_errors_``, and ``error_covariance_gain_`` (None unless
    ``'auto'``). The residuals of ``rows`` are read a chunk at a time, and
    copied only for the whitened score's covariance.
    """
    feature_errors = _column_mean_squares(residuals, indices=rows)
    scale = feature_errors + _SCALE_FLOOR * feature_errors.mean()
    # A constant X is reconstructed exactly: no feature has an error scale.
    if not scale.any():
        scale, rounding = np.ones_like(scale), 0.0
    error_scale = scale + rounding
    gain = None
    if covariance == "auto":
        covariance, gain = _auto_error_covariance(residuals, rows, rounding)
    fit_codes = codes[rows]
    precision = _error_precision(residuals, rows, error_scale, covariance, rounding)
    fitted = {
        "feature_errors_": feature_errors,
        "_error_scale": error_scale,
        "error_precision_": precision,
        "code_mean_": fit_codes.mean(axis=0),
        "code_precision_": _code_precision(fit_codes),
    }
    return fitted, gain


def _window_mean(rows, image_shape, window):
    """Mean of each pixel's ``window`` x ``window`` square, in each channel.

    ``rows`` is a 2-D tensor of flattened images of ``image_shape``
    ``(C, H, W)``; the result has its shape. Squares are cut off at the
    border, and their mean taken over the pixels inside the image.
    """
    images = rows.reshape(-1, *image_shape)
    means = torch.nn.functional.avg_pool2d(
        images, window, stride=1, padding=window // 2, count_include_pad=False
    )
    return means.reshape(len(rows), -1)


class _TrimmedLoss(torch.nn.Module):
    """Mean loss of a batch's rows but the worst ``trim_fraction`` of them.

    Each row's loss is the mean over its features of the elementwise
    ``loss``; the ``floor(trim_fraction * n_rows)`` rows with the largest
    are left out (a trimmed mean, as in least trimmed squares), so that
    outliers among the training rows, which reconstruct worst, do not steer
    the network towards reconstructing them.

    Parameters
    ----------
    loss : RowMeanLoss
        The reconstruction loss of a row.
    trim_fraction : float in (0, 0.5)
        The fraction of each batch's rows left out.
    """

    def __init__(self, loss, trim_fraction):
        super().__init__()
        self.loss = loss
        self.trim_fraction = trim_fraction

    def forward(self, output, rows):
        """Mean of the rows' losses, the largest left out."""
        errors = self.loss.rows(output, rows)
        kept = len(errors) - int(self.trim_fraction * len(errors))
        return torch.topk(errors, kept, largest=False, sorted=False).values.mean()


def _fence(values):
    """Tukey's fence, Q3 + ``_TRIM_FENCE`` IQR, of ``values`` (numpy or 1-D torch).

    The quartiles are interpolated as numpy's percentile does; in torch from
    the sorted values at positions that their count fixes, with no step that
    waits on the device (no boolean indexing, no tensor from the host), so
    that a CUDA graph can record the training step.
    """
    if not isinstance(values, torch.Tensor):
        q1, q3 = np.percentile(values, [25, 75])
        return q3 + _TRIM_FENCE * (q3 - q1)
    ordered = torch.sort(values).values
    last = len(ordered) - 1

    def quartile(fraction):
        position = fraction * last
        low = math.floor(position)
        return torch.lerp(ordered[low], ordered[min(low + 1, last)], position - low)

    q1, q3 = quartile(0.25), quartile(0.75)
    return q3 + _TRIM_FENCE * (q3 - q1)


def _least_anomalous(anomaly, trim_fraction, at_least=0):
    """Positions of the rows kept by ``trim_fraction``, in increasing order.

    ``anomaly`` holds the rows' anomaly scores (higher: more abnormal).
    ``'auto'`` keeps those within Tukey's fence (:func:`_fence`); a fraction
    leaves out the ``floor(trim_fraction * n_rows)`` highest (ties broken
    by position). Either way at least the ``at_least`` lowest are kept.
    """
    if trim_fraction == "auto":
        kept = np.flatnonzero(anomaly <= _fence(anomaly))
        if len(kept) >= at_least:
            return kept
        n_kept = at_least
    else:
        n_kept = max(len(anomaly) - int(trim_fraction * len(anomaly)), at_least)
    return np.sort(np.argsort(anomaly, kind="stable")[:n_kept])


def _start_rows(X_train, n_components, trim_fraction, code_weight):
    """Positions of the training rows the PCA start is fitted on.

    Outliers among the training rows tilt PCA's axes towards them, and the
    network starts from those axes. So PCA at ``n_components`` is fitted to
    ``X_train`` (model units), each row is scored as the detector scores,
    its squared residual and its code's Mahalanobis distance each over its
    mean across the rows, weighted by ``code_weight``, and the rows that
    ``trim_fraction`` leaves out (:func:`_least_anomalous`) are left out of
    the start. In float64, a chunk of rows at a time. At least
    ``n_components`` rows are kept, the least anomalous, so that PCA of
    the rows kept has the width of the start.
    """
    pca = _fitted_pca(X_train, n_components, None)
    # Units of no variance (constant rows) add no distance.
    variances = pca.explained_variance_
    varying = variances > _CODE_VARIANCE_FLOOR * variances.sum()
    residual, distance = np.empty(len(X_train)), np.empty(len(X_train))
    for start in range(0, len(X_train), CHUNK_ROWS):
        chunk = slice(start, start + CHUNK_ROWS)
        centred = X_train[chunk].astype(np.float64) - pca.mean_
        codes = centred @ pca.components_.T
        residual[chunk] = np.sum((centred - codes @ pca.components_) ** 2, axis=1)
        distance[chunk] = np.sum(codes[:, varying] ** 2 / variances[varying], axis=1)
    # Each over its mean: zero everywhere (a full-rank code) counts nothing.
    relative = residual / residual.mean() if residual.mean() > 0 else residual * 0
    distance = distance / distance.mean() if distance.mean() > 0 else distance * 0
    anomaly = _weighted_mean(relative, distance, code_weight)
    return _least_anomalous(anomaly, trim_fraction, at_least=n_components)


class _FencedLoss(torch.nn.Module):
    """Mean loss of a batch's rows but those that lie beyond Tukey's fence.

    Each row's loss is the mean over its features of the elementwise
    ``loss``; rows whose loss exceeds the batch's Q3 + 1.5 IQR are left out
    (``trim_fraction='auto'``): as many as the batch holds outliers that
    reconstruct far worse than the rest, and few or none of rows alike.

    Parameters
    ----------
    loss : RowMeanLoss
        The reconstruction loss of a row.
    """

    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def forward(self, output, rows):
        """Mean of the losses of the rows within the fence."""
        errors = self.loss.rows(output, rows)
        # A mask rather than indexing: the kept rows' count stays on the
        # device (at least three quarters of the rows lie within the fence).
        kept = (errors.detach() <= _fence(errors.detach())).to(errors.dtype)
        return (errors * kept).sum() / kept.sum()


@fill_doc
class AutoencoderOutlierDetector(
    InputAxesMixin, NoiseMixin, OutlierMixin, _BaseAutoencoder
):
    """Outlier detection by autoencoder reconstruction error.

    A dense (or, with ``image_shape``, convolutional) autoencoder, trained on
    rows assumed to be mostly normal, reconstructs normal rows well and
    abnormal ones badly. The detector follows scikit-learn's outlier
    contract, as :class:`~sklearn.ensemble.IsolationForest` does: ``predict``
    returns +1 for inliers and -1 for outliers, ``decision_function`` is
    negative for outliers, and ``score_samples`` is lower the more abnormal
    the row. It keeps :meth:`transform`, which encodes rows, e.g. to look at
    where the outliers lie.

    The anomaly score is minus the mean of two terms, each averaging at most
    1 over the rows trained on (with ``trim_fraction``, over those the
    statistics kept): about 1, less for the whitened error. The
    relative reconstruction error: each feature's squared
    error divided by that feature's mean squared error on the training rows
    (``feature_errors_``) plus ``0.03`` times their mean (and a floor for
    float32's rounding, far below real errors), averaged over
    the features, so that a row badly reconstructed where training rows are
    reconstructed well counts more than one badly reconstructed where every
    row is; for image rows (``image_shape``) the residual is first averaged
    over the 3x3 square around each pixel (``error_window``). Where the
    residuals of different features go together (``error_covariance``), the
    mean is taken after whitening them by their covariance, so
    that a row whose errors break the training rows' pattern counts more
    than one whose errors follow it. And the code
    distance: the squared Mahalanobis distance of the row's code from the
    training rows' codes, divided by ``n_components_``, which flags rows the
    network reconstructs well but places far out along the directions normal
    rows vary in (``code_weight`` weighs it). The rows trained on score -1
    or a little above on average (further above with the whitened error);
    with ``trim_fraction``, the rows the statistics kept do, and the rows
    left out of them score lower.

    It is a novelty detector first: fitted on normal rows, it scores new
    ones. Outliers among the training rows shape the network and the score's
    statistics as the normal rows do, so they score far less abnormal than
    new rows like them would, unless ``trim_fraction`` leaves the worst rows
    out of the training loss and the statistics
    (:doc:`/user_guide/anomaly_scores`).

    Parameters
    ----------
    n_components : int or float, default=0.8
        Width of the code. A float in (0, 1) means, as for PCA, as many
        components as PCA needs to explain that fraction of the training
        variance; an int must not exceed the number of features. A fraction,
        where the other estimators have 2, so that the default suits any
        number of features: in the outlier benchmark 0.8 ranked as well as
        wider codes.
    contamination : 'auto' or float, default='auto'
        The expected fraction of outliers in the training data, which sets
        ``offset_``. A float in (0, 0.5] puts the threshold at that quantile
        of the scores of the rows passed to fit, as
        :class:`~sklearn.ensemble.IsolationForest` does, so ``predict`` flags
        that fraction of them. With early stopping, the rows held out score
        as new rows, lower where the network fits the rows it trains on
        closely, and are flagged more often than those
        (``early_stopping=False`` scores every row as one trained on).
        ``'auto'`` flags rows whose anomaly score (minus
        :meth:`score_samples`: the relative error and, with ``code_weight``,
        the code distance) lies beyond Tukey's outer fence, ``Q3 + 3 *
        IQR``, of the training rows' scores, widened by the ratio of the
        held-out rows' median score to the training rows' (new rows
        reconstruct worse than the rows trained on; without early stopping
        there are no held-out rows and the fence stays as is). Read by fit
        only, as for IsolationForest: after ``set_params(contamination=...)``
        the threshold changes at the next fit. Unlike IsolationForest's, a
        float also shapes the training: the rows of fit are said to hold
        that fraction of outliers, and ``trim_fraction=None`` (the default)
        leaves out twice it.
    noise : {'gaussian', 'masking', 'salt_pepper'}, callable or None, default=None
        Train as a denoising autoencoder: the network sees corrupted rows
        and learns to reconstruct the clean ones, as
        :class:`DenoisingAutoencoder` does (see there for the kinds). Scores
        are always computed on the rows as given. None trains on clean rows.
        The level is in data units, so no one value suits every data set.
    noise_level : float, default=0.1
        Gaussian standard deviation in data units, or the fraction of each
        row's entries masked or flipped. Ignored when ``noise`` is None.
    clip : bool, default=True
        Clip corrupted rows to the training data's range. Ignored when
        ``noise`` is None.
    error_window : int, default=3
        For image rows (``image_shape`` set), the residual is averaged over
        the ``error_window`` x ``error_window`` square around each pixel, in
        each channel, before it is squared: an anomaly leaves a patch of
        error, where a normal image differs from its reconstruction in
        scattered pixels, such as edges shifted by one. ``1`` scores each
        pixel alone. Must be odd. Ignored for flat rows.
    code_weight : float or 'auto', default='auto'
        Weight of the code distance against the relative reconstruction
        error in the score, which is their weighted mean. ``0`` scores by
        the reconstruction error alone, the score before this parameter
        existed. In the outlier benchmark the code distance lifted breast
        cancer's AUC from 0.950 to 0.961, where the tumours that differ do so
        mostly along the directions benign ones vary in, and left the digits
        about where they were (:ref:`defaults_chosen`). ``'auto'`` is 1, or
        0.5 where the network trains on input axes (``input_components_``),
        whose narrower network (``hidden_layer_sizes='auto'``) it ranks as
        well as the wider one with the weight 1 (``code_weight_``).
    error_covariance : {'auto', 'empirical', 'ledoit_wolf', 'diagonal'}, default='auto'
        How the relative error treats the features' residuals.
        ``'diagonal'`` divides each feature's squared error by its own scale,
        the score before this parameter existed. ``'empirical'`` takes the
        squared Mahalanobis distance of the scaled residuals, divided by the
        number of features, in the metric of their sample covariance (about
        zero) on the training rows: for a linear network, with the code
        distance, the distance along every principal axis that PyOD's PCA
        detector takes. With fewer training rows than features that
        covariance is singular, and new rows whose residuals leave the
        training residuals' span score very high. ``'ledoit_wolf'`` takes
        their Ledoit-Wolf covariance instead, which shrinks the sample
        covariance towards a multiple of the identity, the diagonal score,
        as far as the number of rows calls for. ``'auto'`` decides from the
        data: it fits the Ledoit-Wolf and the diagonal models of the
        residuals on the even training rows and on the odd ones, and
        whitens (``'empirical'``) where Ledoit-Wolf gives the other rows a
        higher Gaussian log-likelihood by at least 0.15 nats per feature
        and each half has at least as many rows as features (with fewer, a
        half's covariance is mostly its shrinkage target); for
        image rows with ``error_window > 1`` it keeps the diagonal, as
        whitening would undo the window, and beyond 4,096 features, as
        whitening builds ``n_features`` x ``n_features`` float64 matrices
        (3.2 GB each for 20,000 features) and eigendecomposes them, in time
        cubic in the features; an explicit ``'empirical'`` or
        ``'ledoit_wolf'`` beyond 4,096 features warns.
        In the outlier benchmark it whitened on breast cancer (0.26 to 0.36
        nats per feature), where the mean AUC over 10 halvings was 0.9598
        with the sample covariance, 0.9584 with Ledoit-Wolf's (lower on
        every halving) and 0.9546 with the diagonal (:ref:`defaults_chosen`),
        and kept the diagonal on the digits (no gain) and on Fashion-MNIST's
        pixels as flat rows (at most 0.14), where whitening lowered the AUC.
    trim_fraction : float in [0, 0.5), 'auto' or None, default=None
        For training rows that hold outliers: the fraction of each batch's
        rows with the largest reconstruction errors left out of its loss
        (a trimmed mean: ``floor(trim_fraction * batch_size)`` rows, so
        batches need at least ``1 / trim_fraction`` rows, else fit warns),
        and of the rows trained on
        with the lowest scores left out of the score's statistics, which
        are refitted without them until the rows left out stop changing
        (as the minimum covariance determinant's concentration steps are;
        at most 20 times); the PCA start of the linear
        path (``init='pca'``) is fitted without the same share of the rows
        that PCA itself scores worst (its residual and code distance), whose
        pull would tilt its axes towards them. Outliers among the rows it
        is fitted on otherwise shape the network and the statistics as
        normal rows do, and score almost as normal. Set it to about the
        fraction of outliers expected, or up to twice it: a few normal rows
        left out cost less than outliers kept. In the outlier benchmark,
        fitted on rows of which a tenth were planted outliers and scoring
        those rows, 0.2 lifted the mean AUC from 0.896 to 0.990 on the
        digits and from 0.897 to 0.929 on the breast cancer data (0.1: 0.962
        and 0.922; IsolationForest 0.972 and 0.926; commit 3b38644). ``0``
        trains on every row, for rows known to be normal (novelty
        detection): fitted on half
        the benign tumours alone, 0.05 lowered the AUC from 0.960 to 0.952
        (:ref:`defaults_chosen`).
        ``'auto'``, for rows that hold an unknown fraction of outliers,
        leaves out of each batch's loss the rows whose error lies beyond
        Tukey's fence, Q3 + 1.5 IQR of the batch's row errors, and out of
        the statistics the rows trained on whose anomaly score lies beyond
        the same fence of theirs: as many rows as stand out, none of rows
        alike (the PCA start leaves out the rows beyond the fence of PCA's
        scores). There it reached 0.990 and 0.925; on rows known to be
        normal it trims their tail, as a fraction does. A tight cluster of
        outliers can mask itself (it widens the statistics' spread until
        none of its rows stands out): where the fraction is known, set it.
        None follows ``contamination``: 0 with ``'auto'``, where the rows of
        fit are taken as normal, and twice a float ``contamination``, the
        fraction of outliers they are said to hold (batches hold varying
        shares of them), at most 0.45 (``trim_fraction_``). Where batches
        are too small to lose a row at that share, only the score's
        statistics are trimmed, without the warning a value set by hand
        gives.
    input_components : int, 'auto' or None, default='auto'
        Train the network on the rows' coordinates along their first
        ``input_components`` principal axes (``input_components_``), as
        :class:`AutoencoderTransformer` does on large data: its first and
        last layers shrink. The score still sees every feature: the
        residual is taken on every feature, where the part of a row outside
        the axes is error too. ``'auto'``, for the dense network with
        ``loss='mse'``, no ``noise``, off CUDA and with more features than
        the widest hidden layer (512 with ``hidden_layer_sizes='auto'``:
        that of the network on every feature), whose cost the axes cut (on the breast
        cancer data and the digits they saved nothing and ranked slightly
        worse), keeps the fewest axes
        outside which PCA leaves at most 0.15 times its own residual
        variance at ``n_components_``, if they are at most half the
        features; otherwise, as with None, the network sees every feature.
        On a Fashion-MNIST class (784 pixels) that is 117 to 297 axes, and
        a fit took about half the time on every pixel for about the same AUC
        (5.5 to 9.6 s a class against 12 to 16 s, commit bde3405;
        :ref:`anomaly_scores`).
    hidden_layer_sizes : int, tuple of int or 'auto', default='auto'
        Hidden widths of the dense encoder; the decoder mirrors them. An int
        is one hidden layer. ``()`` gives a linear autoencoder. ``'auto'``
        is ``(512, 256)``, or ``(256, 128)`` where the network trains on
        input axes (``hidden_layer_sizes_``): on a Fashion-MNIST class the
        narrower network with the code distance at half weight
        (``code_weight='auto'``) ranked as well as the wider one, in half
        the time (:ref:`defaults_chosen`). Two layers, where
        :class:`AutoencoderTransformer` has three, because this estimator's
        benchmarks were measured with two.
    %(measured_activation)s
    image_shape : tuple of int (C, H, W), default=None
        Treat rows as flattened images of this shape, scored by the windowed
        error of ``error_window``. ``C * H * W`` must equal the number of
        features.
    conv_channels : tuple of int, default=()
        Channels of a convolutional network's stages for image rows, e.g.
        the other estimators' ``(16, 32, 64)``. Empty, so that image rows
        get the dense network too: the convolutional one ranked no better in
        the outlier benchmark and trains several times more slowly.
    %(init)s
    loss : {'mse', 'bce'}, default='mse'
        Mean squared error, or binary cross-entropy on a sigmoid output for
        data in [0, 1]. The score uses squared errors either way.
    %(batch_size)s
    %(planned_learning_rate)s
        A planned run because in the outlier benchmark 30 epochs of it
        ranked about as well as the ``'constant'`` rate of 1e-3 trained
        until early stopping (mean AUC 0.9348 against 0.9356 on
        Fashion-MNIST's image rows, 0.9596 against 0.9606 on breast cancer,
        0.9936 against 0.9943 on the digits' image rows, each within the
        spread between classes or halvings) in 15 s a Fashion-MNIST class
        instead of 58 s (on every pixel: the planned run at commit 2cd5b10,
        the constant rate at 0a991f5 and 764f8ba).
    %(planned_learning_rate_init, ema_decay, measured_alpha)s
    max_iter : int or 'auto', default=30
        Number of epochs: with ``'one_cycle'`` the length of the run, else
        the most (``'auto'``: as for :class:`AutoencoderTransformer`). 30,
        where ``'auto'`` plans 60, because 30
        epochs of a planned run ranked as well in the outlier benchmark (15
        lowered the AUC on Fashion-MNIST by up to 0.01).
    %(tol)s
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows and keep the weights
        that reconstruct them best; with a schedule other than
        ``'one_cycle'``, also stop when their loss stops improving. The
        held-out rows also calibrate ``contamination='auto'``.
    %(validation_fraction, n_iter_no_change, device, precision, callbacks)s
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the weights, the batch order and the
        noise.
    %(verbose)s

    Attributes
    ----------
    offset_ : float
        The threshold: ``decision_function = score_samples - offset_``.
    feature_errors_ : ndarray of shape (n_features,)
        Mean squared reconstruction error of each feature over the training
        rows, in the data's units: plus ``0.03`` times their mean and
        ``(16 * eps) ** 2`` times the square of the training rows' scale
        (the variance of float32's rounding, ``eps`` its machine epsilon,
        which the network computes in), the denominators of the score
        (added floors, not maxima). For image
        rows, of the residual averaged over ``error_window``. The score's
        statistics (this, ``error_precision_``, ``code_mean_``,
        ``code_precision_``) come from the rows the network trained on, not
        from those held out for early stopping, which ``contamination='auto'``
        then sees as new rows; with ``trim_fraction``, from those rows but
        the worst-scoring ``trim_fraction`` of them.
    error_precision_ : ndarray of shape (n_features, n_features) or None
        Inverse of the covariance (sample or Ledoit-Wolf, as
        ``error_covariance`` says) of the training residuals, each feature
        divided by the square root of its error scale: the metric of the
        relative error. None where ``error_covariance`` is, or resolved to,
        ``'diagonal'``.
    error_covariance_gain_ : float or None
        How much better, in nats per feature, the residuals' Ledoit-Wolf
        model predicted each half of the training rows (even, odd) than the
        features one by one, fitted on the other half: what
        ``error_covariance='auto'`` compared with 0.15. None where
        ``error_covariance`` is explicit, where image rows keep the
        diagonal, or where X has more than 4,096 features.
    input_components_ : ndarray of shape (n_axes, n_features) or None
        The principal axes the network sees (orthonormal rows), or None
        where it sees every feature.
    trim_fraction_ : float or 'auto'
        The trimming the fit applied (``trim_fraction``, None resolved from
        ``contamination``).
    hidden_layer_sizes_ : tuple of int
        The hidden widths of the network fitted (``hidden_layer_sizes``,
        ``'auto'`` resolved).
    code_weight_ : float
        The code distance's weight in the score (``code_weight``,
        ``'auto'`` resolved).
    code_mean_ : ndarray of shape (n_components,)
        Mean code of the training rows.
    code_precision_ : ndarray of shape (n_components, n_components)
        Pseudo-inverse of the training codes' covariance: the metric of the
        code distance.
    %(n_components_, n_components_pca_)s
    mean_ : ndarray of shape (n_features,)
        Per-feature mean of the rows passed to fit.
    n_samples_seen_ : int
        Number of rows passed to fit.
    %(explained_variance_score_, n_iter_)s
    %(training_plan_, best_epoch_)s
    loss_curve_ : list of float
        Training loss per epoch.
    validation_loss_curve_ : list of float or None
        Held-out loss per epoch; None without early stopping.
    %(net_)s
    module_ : torch.nn.Module
        The fitted network (with ``noise``, its corruption layer in front).
    %(n_features_in_, feature_names_in_)s

    See Also
    --------
    sklearn.ensemble.IsolationForest : Outliers isolated by random splits.
    sklearn.neighbors.LocalOutlierFactor : Outliers in sparse neighbourhoods.
    sklearn.decomposition.PCA : Its reconstruction error, the linear score.
    AutoencoderTransformer : The same network as a transformer.

    Notes
    -----
    Plain squared error is dominated by the features with the largest
    spread, such as the pixels on the outline of a class, where normal rows
    also reconstruct badly; the relative error weighs every feature by how
    well it is normally reconstructed. The floor on each feature's error
    scale caps the weight of features that training rows reconstruct almost
    perfectly (pixels that are always blank), whose training error is also
    the least reliable estimate. Reconstruction error alone misses rows
    that lie on the normal rows' manifold but far out along it (tumours like
    the benign ones, only larger): the network reconstructs them well. The
    code distance sees them; it is the code-space half of a Mahalanobis
    distance, which is what PyOD's PCA detector computes over all the
    principal axes. With ``error_covariance='empirical'`` (what ``'auto'``
    whitens with) the residual gets the other half: for a linear network
    the score is then a Mahalanobis distance along the major and the minor
    axes [3]_, each averaged over its dimensions; ``'ledoit_wolf'`` shrinks
    the minor half's covariance [4]_, which weighs down the directions the
    training residuals hardly vary in. The outlier benchmark, which compares
    these choices with PyOD's and scikit-learn's detectors on one-class
    Fashion-MNIST, the digits and the breast cancer data, is described in
    the user guide
    (:doc:`/user_guide/anomaly_scores`).

    References
    ----------
    .. [1] C. C. Aggarwal, "Outlier Analysis", 2nd ed., Springer, 2017,
       chapter 3 (linear models and reconstruction error).
    .. [2] J. W. Tukey, "Exploratory Data Analysis", Addison-Wesley, 1977.
    .. [3] M.-L. Shyu, S.-C. Chen, K. Sarinnapakorn and L. Chang, "A Novel
       Anomaly Detection Scheme Based on Principal Component Classifier",
       IEEE Foundations and New Directions of Data Mining Workshop (ICDM),
       2003 (distances along the major and the minor principal components).
    .. [4] O. Ledoit and M. Wolf, "A well-conditioned estimator for
       large-dimensional covariance matrices", Journal of Multivariate
       Analysis, 88(2), 2004.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderOutlierDetector
    >>> X, y = load_digits(return_X_y=True)
    >>> detector = AutoencoderOutlierDetector(max_iter=5, random_state=0)
    >>> detector = detector.fit(X[y == 0])
    >>> zeros, ones = X[y == 0][:5], X[y == 1][:5]
    >>> bool(detector.score_samples(ones).mean() < detector.score_samples(zeros).mean())
    True
    >>> detector.predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        **_BaseAutoencoder._parameter_constraints,
        "contamination": [
            StrOptions({"auto"}),
            Interval(Real, 0, 0.5, closed="right"),
        ],
        "noise": [StrOptions(set(NOISE_KINDS)), callable, None],
        "noise_level": [Interval(Real, 0, None, closed="left")],
        "clip": ["boolean"],
        "error_window": [Interval(Integral, 1, None, closed="left")],
        "code_weight": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "error_covariance": [
            StrOptions({"auto", "empirical", "ledoit_wolf", "diagonal"})
        ],
        "trim_fraction": [
            None,
            StrOptions({"auto"}),
            Interval(Real, 0, 0.5, closed="left"),
        ],
        **InputAxesMixin._parameter_constraints,
        "hidden_layer_sizes": [
            StrOptions({"auto"}),
            *_BaseAutoencoder._parameter_constraints["hidden_layer_sizes"],
        ],
    }

    __init__ = make_init(
        {
            "contamination": "auto",
            "noise": None,
            "noise_level": 0.1,
            "clip": True,
            "error_window": 3,
            "code_weight": "auto",
            "error_covariance": "auto",
            "trim_fraction": None,
            "input_components": "auto",
        },
        {
            **MEASURED_DEFAULTS,
            "hidden_layer_sizes": "auto",
            "n_components": 0.8,
            "conv_channels": (),
            "learning_rate": "one_cycle",
            "learning_rate_init": 4e-3,
            "max_iter": 30,
        },
    )

    def _check_data_params(self, X):
        super()._check_data_params(X)
        n_features = X.shape[1]
        if (
            self.error_covariance in ("empirical", "ledoit_wolf")
            and n_features > _MAX_WHITENED_FEATURES
        ):
            # Before training, rather than after it at the end of the fit.
            warnings.warn(
                f"error_covariance={self.error_covariance!r} on {n_features} features "
                f"builds {n_features} x {n_features} float64 matrices "
                f"({n_features**2 * 8 / 2**30:.1f} GiB each, several at once) "
                "and eigendecomposes them, in time cubic in the features. "
                "Use error_covariance='diagonal' (what 'auto' takes beyond "
                f"{_MAX_WHITENED_FEATURES} features) unless the memory and "
                "time are there.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        # Flat rows ignore the window, as documented.
        if self.image_shape is not None and self.error_window % 2 == 0:
            raise ValueError(
                "error_window must be odd, so that each window has a centre "
                f"pixel; got {self.error_window}."
            )

    def _errors(self, module, batch, window):
        """Codes and residuals, in data units, of a batch in model units.

        Returns a tensor of shape ``(n_rows, 1 + n_components_ + n_features)``.

        Column 0 holds each row's mean squared error (for
        ``explained_variance_score_``); the next ``n_components_`` its code;
        the others the residuals the score is made of: with ``window``, an
        image shape and a window side (:meth:`_scoring_window`), the mean
        residual over the square around each pixel (in each channel), else
        each entry's own residual.
        """
        # batch: rows on every feature (to_rows); the network sees their
        # coordinates on the input axes, if any.
        units = self._units
        codes = module.encode(units.project(batch))
        residuals = units.residuals(batch, units.unproject(module.decode(codes)))
        mse = (residuals**2).mean(dim=1, keepdim=True)
        if window is not None:
            residuals = _window_mean(residuals, *window)
        return torch.cat([mse, codes, residuals], dim=1).double()

    def _scoring_window(self):
        """``(image shape, window side)`` of the residual's average, or None."""
        if self.image_shape is None or self.error_window == 1:
            return None
        return tuple(int(s) for s in self.image_shape), self.error_window

    def _hidden_sizes(self, on_axes):
        if (
            isinstance(self.hidden_layer_sizes, str)
            and self.hidden_layer_sizes == "auto"
        ):
            return _AXES_HIDDEN_SIZES if on_axes else _HIDDEN_SIZES
        return super()._hidden_sizes(on_axes)

    def _resolve_code_weight(self):
        """``code_weight``, ``'auto'`` resolved for this fit's input axes."""
        if self.code_weight != "auto":
            return float(self.code_weight)
        on_axes = self.input_components_ is not None
        return _AXES_CODE_WEIGHT if on_axes else _CODE_WEIGHT

    def _auto_input_axes(self, n_train, device):
        # Measured on the CPU (the outlier benchmark); CUDA keeps every feature.
        return device.type != "cuda"

    def _resolve_error_covariance(self, n_features):
        # Whitening the windowed residual of image rows would undo the
        # window, a linear map of the residual, which is why it is there;
        # beyond _MAX_WHITENED_FEATURES its matrices would not fit.
        windowed = self.image_shape is not None and self.error_window != 1
        wide = n_features > _MAX_WHITENED_FEATURES
        if self.error_covariance == "auto" and (windowed or wide):
            return "diagonal"
        return self.error_covariance

    def _resolve_trim_fraction(self):
        """``trim_fraction``, None resolved from ``contamination``."""
        if self.trim_fraction is not None:
            return self.trim_fraction
        if self.contamination == "auto":
            return 0.0
        followed = _TRIM_PER_CONTAMINATION * self.contamination
        return min(followed, _MAX_FOLLOWED_TRIM)

    def _criterion(self, n_features):
        loss = super()._criterion(n_features)
        fraction = self.trim_fraction_
        if fraction == "auto":
            return _FencedLoss(loss)
        return _TrimmedLoss(loss, fraction) if fraction else loss

    def _start(self, network, X_train, rng):
        if self.trim_fraction_:
            X_train = X_train[
                _start_rows(
                    X_train,
                    self.n_components_,
                    self.trim_fraction_,
                    self._resolve_code_weight(),
                )
            ]
        return super()._start(network, X_train, rng)

    def _setup(self, X, rng, train_idx, valid_idx, **kwargs):
        # Before the loss and the PCA start, which read it.
        self.trim_fraction_ = self._resolve_trim_fraction()
        train = super()._setup(X, rng, train_idx, valid_idx, **kwargs)
        self.hidden_layer_sizes_ = self._hidden_sizes(
            on_axes=self.input_components_ is not None
        )
        batch_size = self.training_plan_["batch_size"]
        fraction = self.trim_fraction_
        # Only where set: a trim that follows contamination trims what the
        # batches allow, the score's statistics at least (documented).
        explicit = self.trim_fraction is not None
        small = fraction != "auto" and fraction and int(fraction * batch_size) == 0
        if explicit and small:
            # The loss leaves out floor(trim_fraction * rows) of each batch:
            # of small batches, none, and outliers train as normal rows do.
            n_train = len(train_idx)
            if int(fraction * n_train) == 0:
                # Nor do the statistics (nor the PCA start) leave out any of
                # so few training rows: trim_fraction does nothing at all.
                consequence = (
                    f"and the statistics of the {n_train} rows trained on lose "
                    f"floor({fraction} * {n_train}) = 0 rows too, so nothing "
                    "is trimmed. Use a trim_fraction of at least "
                    f"1 / {n_train} or more rows."
                )
            else:
                # ceil(1 / fraction) rows can still lose none: 0.3 - 0.1 is
                # 0.19999999999999998, and floor(it * 5) = 0.
                least = math.ceil(1 / fraction)
                least += int(fraction * least) == 0
                consequence = (
                    "so only the score's statistics are trimmed. Use batches "
                    f"of at least {least} rows (batch_size) "
                    "or a larger trim_fraction."
                )
            warnings.warn(
                f"trim_fraction={fraction} leaves no row out of the "
                f"training loss: batches of {batch_size} rows lose "
                f"floor({fraction} * {batch_size}) = 0 rows each, {consequence}",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return train

    def _training_pass(self, X, valid_idx):
        # The score's settings as fitted (kept below): the scales and the
        # threshold hold for them, whatever set_params changes before a refit.
        window = self._scoring_window()
        # One pass gives every row's errors; the scales, the training scores
        # and the threshold all come from them.
        # On every feature: the residual outside the input axes counts too.
        outputs = self.net_.map_batches(
            X,
            partial(self._errors, window=window),
            self._units.to_rows,
            dtype=_SCORE_DTYPE,
        )
        codes, residuals = np.split(outputs[:, 1:], [self.n_components_], axis=1)
        # The score's statistics come from the rows the network trained on:
        # the rows held out for early stopping stay new to the whole score,
        # so that contamination='auto' widens its fence by how much worse
        # rows new to it score (fitted on them too, the whitening made them
        # score as the training rows, and on 1,000 features of noise the
        # fence flagged nearly every new row).
        trained = np.arange(len(X))
        if valid_idx is not None:
            trained = np.setdiff1d(trained, valid_idx, assume_unique=True)
        covariance = self._resolve_error_covariance(X.shape[1])
        # In data units, as the residuals are.
        rounding = _ROUNDING_FLOOR * self._units.scale**2
        statistics = partial(
            _score_statistics,
            residuals,
            codes,
            covariance=covariance,
            rounding=rounding,
        )
        code_weight = self._resolve_code_weight()
        fitted, gain = statistics(trained)
        scores = _scores_by_chunks(residuals, codes, fitted, code_weight)
        kept = trained
        for _ in range(_TRIM_STEPS if self.trim_fraction_ else 0):
            # The worst-scoring trim_fraction of the rows trained on (with
            # 'auto', those beyond the fence) are left out of the statistics
            # too, which are refitted without them, until the same rows are
            # left out twice running.
            before = kept
            kept = trained[_least_anomalous(-scores[trained], self.trim_fraction_)]
            if np.array_equal(kept, before):
                break
            fitted, gain = statistics(kept)
            scores = _scores_by_chunks(residuals, codes, fitted, code_weight)
        if self.contamination == "auto":
            offset = -self._auto_threshold(-scores, trained, valid_idx)
        else:
            offset = float(np.percentile(scores, 100.0 * self.contamination))
        sse = float(np.sum(outputs[:, 0])) * X.shape[1]
        sst = total_squares(X, self.mean_)
        return {
            **fitted,
            "_residual_window": window,
            "code_weight_": code_weight,
            "error_covariance_gain_": gain,
            "explained_variance_score_": 1.0 - sse / sst if sst > 0 else 0.0,
            "offset_": offset,
        }

    @staticmethod
    def _auto_threshold(errors, trained, held_out):
        """Anomaly score above which contamination='auto' flags a row.

        ``errors`` are the rows' anomaly scores (minus ``score_samples``);
        ``trained`` and ``held_out`` index the rows trained on and those held
        out (None without early stopping). Tukey's outer fence, Q3 + 3 IQR,
        of the training rows' scores, widened by the ratio of the held-out
        rows' median score to theirs: rows the network never saw reconstruct
        worse than those it trained on.
        """
        q1, median, q3 = np.percentile(errors[trained], [25, 50, 75])
        fence = q3 + _AUTO_FENCE * (q3 - q1)
        if held_out is not None and median > 0:
            fence *= max(np.median(errors[held_out]) / median, 1.0)
        return float(fence)

    def score_samples(self, X):
        """Anomaly score of each row: the lower, the more abnormal.

        %(parameters_X)s

        Returns
        -------
        scores : ndarray of shape (n_samples,), dtype float64
            Minus the weighted mean of the relative reconstruction error (the
            mean over features of the squared error divided by that feature's
            training error scale, or with ``error_precision_`` the squared
            Mahalanobis distance of the scaled residuals, divided by the
            number of features) and the code distance (the squared
            Mahalanobis distance of the code from the training codes, divided
            by ``n_components_``); -1 or a little above on average for the
            rows trained on (with ``trim_fraction``, for those the statistics
            kept, the others scoring lower). In float64 whatever the dtype of
            ``X``, as scikit-learn's detectors score: a float32 row far from
            the training rows can score beyond float32's range.
        """
        check_is_fitted(self)
        check_rows_ndim(X, self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        fitted = {name: getattr(self, name) for name in _FITTED_SCALES}

        def batch_scores(outputs):
            codes, residuals = np.split(outputs[:, 1:], [self.n_components_], axis=1)
            return _anomaly_scores(residuals, codes, fitted, self.code_weight_)

        scores = self.net_.map_batches(
            X,
            partial(self._errors, window=self._residual_window),
            self._units.to_rows,
            dtype=_SCORE_DTYPE,
            finish=batch_scores,
        )
        return scores

    def decision_function(self, X):
        """Score shifted by the threshold: negative for outliers.

        The threshold ``offset_`` was set at fit by ``contamination``; as
        for scikit-learn's other detectors, :meth:`predict` flags the rows
        where this is negative.

        %(parameters_X)s

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Label rows as inliers (+1) or outliers (-1).

        %(parameters_X)s

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 where :meth:`decision_function` is negative, +1 elsewhere.
        """
        return np.where(self.decision_function(X) < 0, -1, 1)
