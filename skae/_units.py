"""The one map between the user's rows and the network's model units.

The networks train on rows centred and divided by one overall scale
(``loss='mse'``), or on the rows as given, returning logits
(``loss='bce'``); with input components, on the centred rows' coordinates
along their leading principal axes. :class:`ModelUnits` converts rows to
model units as one float32 tensor, and the network's outputs and residuals
back.
"""

import math

import numpy as np
import torch
from scipy.special import expit
from sklearn.decomposition import PCA

from skae._networks import spectrum_solver
from skae._validation import finite_float32, host_tensor

# input_components='auto' keeps the principal axes that leave at most this
# fraction of the residual variance of PCA at n_components outside them.
_INPUT_TAIL = 0.15
# Residual variance below this fraction of the total is rounding.
_ROUNDING = 1e-12
# What to do about rows beyond float32's range once centred and scaled.
_RESCALE = (
    "rescale X (e.g. with a StandardScaler), or leave out rows that far from "
    "the training rows."
)
# Rows per chunk where work over every row goes a chunk at a time (the
# conversion to model units, sums in NumPy, the detector's statistics): its
# temporaries then take a chunk's memory, not X's. A multiple of the
# inference batch, so that chunked inference batches the rows as whole.
CHUNK_ROWS = 8192


def total_squares(X, mean):
    """Sum of squares of ``X`` about ``mean``, in float64, chunk by chunk.

    float32 squares of data far from unit scale (1e20, 1e-30) overflow or
    vanish; chunks spare a float64 copy of the whole of ``X``.
    """
    return float(
        sum(
            np.sum((X[start : start + CHUNK_ROWS].astype(np.float64) - mean) ** 2)
            for start in range(0, len(X), CHUNK_ROWS)
        )
    )


# float64's largest value, past which a sum of squares overflows.
_FLOAT64_MAX = float(np.finfo(np.float64).max)


def check_square_range(X):
    """Raise if the squared deviations of ``X`` from its mean overflow float64.

    The scale of the model units, the PCA start and the explained variance
    are sums of such squares: past about 1e154 they are inf, and the fit
    gave all-zero codes and NaN scores, or failed inside LAPACK. Two
    reductions clear any realistic X (a sum of ``X.size`` squares of its
    span fits); the rest get the exact sum (:func:`total_squares`).
    """
    span = float(X.max()) - float(X.min())
    if span <= math.sqrt(_FLOAT64_MAX / X.size):
        return
    with np.errstate(over="ignore"):
        total = total_squares(X, X.mean(axis=0, dtype=np.float64))
    if not np.isfinite(total):
        raise ValueError(
            "X deviates from its mean by more than float64 can square (about "
            "1e154); rescale X (e.g. with a StandardScaler)."
        )


def _check_variation(rms, dtype):
    """Raise if rows of ``dtype`` varying by ``rms`` are too small to compute on.

    The other end of :func:`check_square_range`. float32 rows below
    float32's normal range read as zeros where denormals are flushed, as
    inference flushes them; float64 rows below about 1e-154 have squares of
    0, a scale taken for that of rows all alike.
    """
    if dtype == np.float32:
        bound = float(np.finfo(np.float32).tiny)
        why = (
            "float32's smallest normal number, below which the CPU flushes "
            "numbers to zero"
        )
    else:
        bound = math.sqrt(np.finfo(np.float64).tiny)
        why = "below which float64 squares vanish"
    if rms < bound:
        raise ValueError(
            f"X varies about its mean by less than {bound:.2g}, {why}; rescale X "
            "(e.g. with a StandardScaler)."
        )


def unit_span(X):
    """Return ``X`` centred and scaled by a power of two to entries of at most 1.

    PCA computes in X's dtype, its covariance solver from the uncentred
    rows' squares: in float32, an offset of 1e3 on rows of unit spread
    cancelled the covariance to rounding and rows at 1e-30 squared below
    the normal range (axes at random, both), and rows at 1e20 overflowed
    it (LinAlgError). The axes do not change with the scale, and a
    power of two scales without rounding.
    """
    centred = X - X.mean(axis=0, dtype=np.float64).astype(X.dtype)
    # Without np.abs, whose temporary would hold another copy of X.
    largest = max(float(centred.max()), -float(centred.min()))
    exponent = math.frexp(largest)[1]
    if exponent:
        np.ldexp(centred, -exponent, out=centred)
    return centred


def unit_pca(X, n_components=None):
    """Return PCA fitted to :func:`unit_span` of ``X``, by :func:`spectrum_solver`.

    Rows all alike have a total variance of 0, by which PCA divides for its
    ``explained_variance_ratio_``: NumPy's "invalid value" RuntimeWarning
    leaked from inside scikit-learn, and is silenced here (the NaN ratios
    count one component for a fractional ``n_components``, as they should).
    """
    solver = spectrum_solver(X)
    with np.errstate(divide="ignore", invalid="ignore"):
        return PCA(n_components, svd_solver=solver, copy=False).fit(unit_span(X))


def input_axes(X, input_components, n_components, *, auto):
    """Principal axes of ``X`` the network sees, or None for every feature.

    ``input_components`` is an int (that many leading axes), None, or
    ``'auto'``, which applies only where ``auto`` is true: the fewest
    leading axes (at least ``n_components``) outside which PCA leaves at
    most ``_INPUT_TAIL`` times its residual variance at ``n_components``,
    and none where that is more than half the features, which would save
    little. Returns an array of shape ``(n_axes, n_features)`` with
    orthonormal rows.
    """
    if input_components is None or (input_components == "auto" and not auto):
        return None
    n_samples, n_features = X.shape
    if input_components != "auto" and input_components > min(n_samples, n_features):
        raise ValueError(
            f"input_components={input_components} must not exceed "
            f"n_samples={n_samples} nor n_features={n_features}."
        )
    if input_components != "auto" and input_components < n_components:
        raise ValueError(
            f"input_components={input_components} must be >= the code's width, "
            f"n_components_={n_components}: the network cannot encode more "
            "directions than it sees."
        )
    if input_components != "auto":
        return unit_pca(X, input_components).components_
    pca = unit_pca(X)
    # outside[j]: PCA's residual variance outside the first j axes.
    outside = np.append(np.cumsum(pca.explained_variance_[::-1])[::-1], 0.0)
    # Variance at the level of rounding is none: rank-deficient rows.
    outside[outside <= _ROUNDING * outside[0]] = 0.0
    n_axes = int(np.argmax(outside <= _INPUT_TAIL * outside[n_components]))
    n_axes = max(n_axes, n_components)
    return pca.components_[:n_axes] if n_axes <= n_features // 2 else None


class ModelUnits:
    """Affine map from data units to model units: ``(X - offset) / scale``.

    With ``axes``, the result's coordinates along them: ``(X - offset) /
    scale @ axes.T``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The rows that fix the map: with ``loss='mse'``, the offset is their
        mean and the scale the root mean square of the centred rows (with
        ``axes``, of their coordinates along the axes; 1 where the rows are
        all alike);
        with ``loss='bce'``, the map is the identity and the network's
        outputs are logits.
    loss : {'mse', 'bce'}
        The estimator's loss.
    axes : ndarray of shape (n_axes, n_features), default=None
        Orthonormal principal axes (:func:`input_axes`): model units are the
        centred, scaled rows' coordinates along them, and the network's
        outputs lie in their span. None keeps every feature.
    """

    def __init__(self, X, loss, axes=None):
        self.loss = loss
        self.axes = axes
        if loss == "mse":
            # A feature all alike is centred on its value, not on its mean,
            # which misses it by rounding: 1e39 by 3e23, whose square float32
            # cannot hold, and which as the scale squeezed the other features.
            constant = np.ptp(X, axis=0) == 0
            self.offset = X.mean(axis=0)
            self.offset[constant] = X[0, constant]
            rms = np.sqrt(np.mean(self._centred_squares(X)))
            # Rows all alike (0.1 every time) have no scale: one of 0 would
            # blow every other row up.
            alike = constant.all()
            if not alike:
                _check_variation(rms, X.dtype)
            self.scale = 1.0 if alike else float(rms)
        else:
            # BCE compares probabilities with data in [0, 1]: no rescaling.
            self.offset = np.zeros(X.shape[1])
            self.scale = 1.0

    def _chunks(self, X, dtype=None):
        """Yield each chunk of rows of ``X`` centred, and along the axes.

        ``(centred, along)`` in ``dtype`` (X's own by default); ``along`` is
        None without axes.
        """
        for start in range(0, len(X), CHUNK_ROWS):
            rows = X[start : start + CHUNK_ROWS].astype(dtype or X.dtype, copy=False)
            centred = rows - self.offset
            yield centred, None if self.axes is None else centred @ self.axes.T

    def _centred_squares(self, X):
        """Mean squared entry of each centred row, along the axes if any.

        In float64: float32 squares of data far from unit scale overflow
        (1e20) or vanish (1e-30), and the scale with them.
        """
        return np.concatenate(
            [
                np.mean((centred if along is None else along) ** 2, axis=1)
                for centred, along in self._chunks(X, np.float64)
            ]
        )

    def to_model(self, X, indices=None):
        """Rows of ``X`` as one float32 tensor in model units, on the host.

        ``indices``, if given, selects the rows (in that order). The offset
        is subtracted (and the rows projected on the axes) in X's own
        precision, a chunk of rows at a time, so that no more than the
        result and a chunk are held; torch rather than numpy, because its
        element-wise ops round as numpy's do and use every core
        (:func:`host_tensor` copies what torch cannot share).
        """
        n_rows = len(X) if indices is None else len(indices)
        width = X.shape[1] if self.axes is None else len(self.axes)
        result = torch.empty((n_rows, width), dtype=torch.float32)
        for start in range(0, n_rows, CHUNK_ROWS):
            chunk = slice(start, start + CHUNK_ROWS)
            rows = X[chunk] if indices is None else X[indices[chunk]]
            result[chunk] = self._finite(self.project(self._centred(rows)))
        return result

    def to_rows(self, X):
        """Rows of ``X`` centred and scaled as model units are, on every feature.

        The network's input is ``project`` of these; residuals in data
        units over every feature come from them and ``unproject`` of its
        output. Without axes, the same as :meth:`to_model`.
        """
        return self._finite(self._centred(X))

    def _finite(self, rows):
        """Centred, scaled ``rows`` as float32, or an error giving the scale.

        Beyond float32's range once divided by the scale, not in X itself:
        with training rows of scale 1e-20, a new row of 1e30 is out.
        """
        name = f"X, centred and divided by its training rows' scale ({self.scale:.3g}),"
        return finite_float32(rows, name, _RESCALE)

    def _centred(self, X):
        rows = host_tensor(X)
        # host_tensor: a model loaded with joblib's mmap_mode='r' holds a
        # read-only offset, on which torch.from_numpy warns.
        offset = host_tensor(self.offset).to(rows.dtype)
        return rows.sub(offset).div_(self.scale)

    def project(self, rows):
        """Return the coordinates along the axes of rows from :meth:`to_rows`."""
        if self.axes is None:
            return rows
        return rows @ self._axes_like(rows).T

    def unproject(self, out):
        """Map the network's outputs (a tensor) back to every feature."""
        if self.axes is None:
            return out
        return out @ self._axes_like(out)

    def _axes_like(self, tensor):
        """Return the axes as a tensor of ``tensor``'s dtype and device.

        Converted (and sent to a GPU) once for each, not for each batch:
        the axes never change once fitted. Not pickled (``__getstate__``).
        """
        key = (tensor.dtype, tensor.device)
        # One dict per object, never replaced once made; entries are only
        # added, so threads at worst convert the same axes twice.
        axes = self.__dict__.setdefault("_axes_tensors", {}).get(key)
        if axes is None:
            axes = host_tensor(self.axes).to(dtype=tensor.dtype, device=tensor.device)
            self._axes_tensors[key] = axes
        return axes

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_axes_tensors", None)
        return state

    def from_model(self, out, dtype):
        """Network outputs (an array in model units) as rows in data units."""
        if self.loss == "bce":
            return expit(out.astype(np.float64)).astype(dtype)
        if self.axes is not None:
            out = out.astype(np.float64) @ self.axes
        # Scaled in the rows' dtype: float32 outputs times the scale of
        # float64 rows beyond float32's range (1e39) overflowed to inf.
        out = out.astype(dtype, copy=False)
        return (out * self.scale + self.offset).astype(dtype, copy=False)

    def outside(self, X):
        """Squared norm of each row's part outside the axes, in data units.

        What the network's reconstruction misses whatever it does, as its
        outputs lie in the axes' span: added to the squared residual along
        the axes (:meth:`residuals`), it gives the whole squared error. Zeros
        without axes.
        """
        if self.axes is None:
            return np.zeros(len(X))
        # In float64: a difference of two squared norms.
        norms = [
            np.sum(centred**2, axis=1) - np.sum(along**2, axis=1)
            for centred, along in self._chunks(X, np.float64)
        ]
        return np.maximum(np.concatenate(norms), 0.0)

    def residuals(self, batch, out):
        """Residual ``batch - out`` of a batch in model units, in data units.

        With ``loss='mse'`` model units are the data's divided by ``scale``,
        and the residual is float64: data far from unit scale (1e40, 1e-40)
        leave float32's range once multiplied back by it. With ``loss='bce'``
        ``out`` holds logits. With axes, the residual's coordinates along
        them, whose squared norm is the squared error along the axes
        (:meth:`outside` gives the rest).
        """
        if self.loss == "bce":
            return batch - torch.sigmoid(out)
        return (batch - out).double() * self.scale
