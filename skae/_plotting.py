"""Machinery the displays of :mod:`skae.plotting` share.

Checks of the arrays a display draws, the image shape to draw rows with,
images from flat rows, and series of rows drawn one above the other as images
or overlaid as lines. Like the displays, it imports matplotlib only when
something is drawn.
"""

import re
import textwrap
from math import isqrt, prod
from numbers import Integral

import numpy as np
from scipy.sparse import issparse
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from skae._validation import _safe_indexing, check_image_shape, looks_channels_last

# Paragraphs several displays document alike, written once: a docstring line
# ``%(name)s`` of a class decorated with _fill_doc, or of one of its methods,
# becomes the paragraph of that name.
_DOCS = {
    "create": """\
Create it with :meth:`from_estimator`; the constructor only stores the
data.""",
    "image_shape": """\
image_shape : tuple of int (C, H, W), default=None
    Shape of the images stored as flat rows, with 1 (grayscale) or 3
    (RGB, shown channel-last) channels. None draws the rows as lines.""",
    "image_shape_from_estimator": """\
image_shape : tuple of int (C, H, W), default=None
    Shape of the images stored as rows. None takes the estimator's
    ``image_shape``; failing that, rows of ``s * s`` features with
    ``s >= 4`` are taken for square grayscale images, and others are
    drawn as lines.""",
    "figure_": """\
figure_ : matplotlib.figure.Figure or SubFigure
    The figure drawn into.""",
    "rows_attributes": """\
%(figure_)s
axes_ : ndarray of matplotlib Axes
    Shape (%(n_series)d, n_samples) for images, (1, n_samples) for tabular rows.
images_ : ndarray of matplotlib AxesImage or None
    Shape (%(n_series)d, n_samples): %(series)s. None for
    tabular rows.
lines_ : ndarray of matplotlib Line2D or None
    Shape (%(n_series)d, n_samples): %(series)s. None for
    images.""",
    "fig": """\
fig : matplotlib Figure or SubFigure, default=None
    Where to draw; a new figure when None.""",
}
_PLACEHOLDER = re.compile(r"^( *)%\((\w+)\)s$", re.MULTILINE)


def _fill_doc(cls):
    """Class decorator: fill the shared paragraphs into the docstrings.

    Those of ``cls`` and of the methods defined in its body, classmethods
    included; the series a display draws (its ``_names``) fill in their
    number and names.
    """
    names = getattr(cls, "_names", ())
    facts = {
        "n_series": len(names),
        "series": ", then ".join(names),
        "figure_": _DOCS["figure_"],
    }
    for member in [cls, *vars(cls).values()]:
        function = getattr(member, "__func__", member)
        if callable(function) and function.__doc__:
            function.__doc__ = _PLACEHOLDER.sub(
                lambda m: textwrap.indent(_DOCS[m[2]] % facts, m[1]), function.__doc__
            )
    return cls


def _check_rows(name, rows, *, images=False):
    """Return ``rows`` as a 2-D float array, or raise naming ``name``.

    With ``images``, an array of images (3-D, or 4-D with channels) is refused
    with the reshape and the ``image_shape`` that draw it: scikit-learn's
    message ("Found array with dim 3") names neither. Only containers with an
    ``ndim`` are looked at, as the estimators do.
    """
    ndim = getattr(rows, "ndim", None)
    if images and ndim in (3, 4):
        shape = tuple(rows.shape)
        flatten = f"{name}.reshape(len({name}), -1)"
        image_shape = (1, *shape[1:]) if ndim == 3 else shape[1:]
        if ndim == 4 and looks_channels_last(shape[1:]):
            # (n, H, W, C): the plain reshape would interleave the channels.
            flatten = f"{name}.transpose(0, 3, 1, 2).reshape(len({name}), -1)"
            image_shape = (shape[3], *shape[1:3])
        raise ValueError(
            f"{name} has shape {shape}, but the display takes images as flat "
            f"rows, of shape (n_samples, n_features). Pass {flatten}, to shape "
            f"({shape[0]}, {prod(shape[1:])}), with "
            f"image_shape={image_shape} (channels, height, width)."
        )
    return check_array(rows, dtype=np.float64, input_name=name)


def _check_same_shape(reference_name, reference, name, rows):
    if rows.shape != reference.shape:
        raise ValueError(
            f"{name} has shape {rows.shape}, but {reference_name} has shape "
            f"{reference.shape}; pass one row of {name} per row of "
            f"{reference_name}."
        )


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")


def _check_labels(labels, rows_name, n_samples):
    """Return ``labels`` as an array of one label per row, or raise."""
    labels = np.asarray(labels)
    if labels.dtype == object:
        # Labels of mixed types (1 and "a") sort, and colour, as text.
        labels = labels.astype(str)
    if labels.shape != (n_samples,):
        raise ValueError(
            f"labels has shape {labels.shape}, but {rows_name} has {n_samples} "
            "rows; pass one label per row."
        )
    return labels


def _check_image_shape(image_shape, n_features, input_name):
    """Return ``image_shape`` as (C, H, W), checked as the estimators check it.

    Drawing adds one condition: 1 (grayscale) or 3 (RGB) channels.
    """
    shape = check_image_shape(image_shape, n_features, input_name=input_name)
    if shape[0] not in (1, 3):
        raise ValueError(
            f"image_shape={shape} has {shape[0]} channels; only 1 (grayscale) or "
            "3 (RGB) channels can be shown as images."
        )
    return shape


def _check_series(display, names):
    """Return the rows ``display`` holds under ``names``, and its image shape.

    Each array must have the shape of the first, whose rows the image shape
    must fit.
    """
    rows = [_check_rows(name, getattr(display, name), images=True) for name in names]
    for name, other in zip(names[1:], rows[1:], strict=True):
        _check_same_shape(names[0], rows[0], name, other)
    image_shape = display.image_shape
    if image_shape is not None:
        image_shape = _check_image_shape(image_shape, rows[0].shape[1], names[0])
    return rows, image_shape


def _resolve_image_shape(image_shape, estimator, n_features, input_name):
    """Return the image shape to draw rows with, or None for tabular rows.

    The argument wins, then the estimator's ``image_shape``; otherwise rows
    of a perfect square number of features, at least 4 x 4, are taken for
    square grayscale images (smaller squares are more likely tabular data).
    """
    if image_shape is None:
        image_shape = getattr(estimator, "image_shape", None)
    if image_shape is not None:
        return _check_image_shape(image_shape, n_features, input_name)
    side = isqrt(n_features)
    if side >= 4 and side * side == n_features:
        return (1, side, side)
    return None


def _check_estimator(estimator, attributes, missing):
    """Check that ``estimator`` is fitted and has all ``attributes``, or raise.

    ``missing`` completes the message "<class> has no ...".
    """
    check_is_fitted(estimator)
    if any(getattr(estimator, name, None) is None for name in attributes):
        raise ValueError(f"{type(estimator).__name__} has no {missing}.")


def _check_reconstructor(estimator):
    """Check that ``estimator`` is fitted and can reconstruct rows, or raise."""
    _check_estimator(
        estimator,
        ("transform", "inverse_transform"),
        "transform and inverse_transform to reconstruct rows with; pass a "
        "fitted autoencoder (or e.g. PCA)",
    )


def _head(X, n_samples):
    """Return the first ``n_samples`` rows of X, in X's own container."""
    _check_positive_int("n_samples", n_samples)
    if issparse(X):
        raise TypeError(
            "Sparse data was passed for X, but dense data is required. Use "
            "'.toarray()' to convert to a dense numpy array."
        )
    return _safe_indexing(X, slice(0, n_samples))


def _reconstruct(estimator, X):
    """Denoise (a denoiser's whole network) or reconstruct ``X``."""
    if hasattr(estimator, "denoise"):
        return np.asarray(estimator.denoise(X))
    return np.asarray(estimator.inverse_transform(estimator.transform(X)))


def _display_range(reference):
    """Value range images are shown over: [0, 1] for data there, else its own."""
    low, high = float(reference.min()), float(reference.max())
    if low >= 0 and high <= 1:
        return 0.0, 1.0
    return low, high


def _to_image(row, image_shape, value_range):
    """Turn a flat (C, H, W) row into what imshow draws: (H, W) or (H, W, 3)."""
    channels, height, width = image_shape
    if channels == 1:
        return row.reshape(height, width)
    low, high = value_range
    # RGB has no colormap to rescale: map the range to [0, 1] and clip.
    scaled = (row - low) / (high - low) if high > low else row - low
    return np.clip(scaled.reshape(image_shape).transpose(1, 2, 0), 0, 1)


def _imshow(ax, row, image_shape, value_range, cmap):
    """Draw a flat row as an image over ``value_range``, without ticks."""
    ax.set_xticks([])
    ax.set_yticks([])
    low, high = value_range
    image = _to_image(row, image_shape, value_range)
    return ax.imshow(image, cmap=cmap, vmin=low, vmax=high)


def _new_figure(fig, figsize):
    """Return ``fig``, or a new figure of ``figsize`` when it is None."""
    if fig is None:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, layout="constrained")
    from matplotlib.figure import FigureBase

    if not isinstance(fig, FigureBase):
        raise TypeError(
            "fig must be a matplotlib Figure or SubFigure, got "
            f"{type(fig).__name__}. The display lays out axes of its own: pass "
            "a figure, or fig.subfigures() to embed it in a larger one."
        )
    return fig


def _check_axes(name, axes):
    """Raise unless every element of ``axes`` is a matplotlib Axes."""
    from matplotlib.axes import Axes

    for ax in axes:
        if not isinstance(ax, Axes):
            raise TypeError(f"{name} must be matplotlib Axes, got {type(ax).__name__}.")


def _plot_rows(fig, series, image_shape, *, column_titles, cmap):
    """Draw rows of samples: one image row per series, or overlaid lines.

    ``series`` is a list of ``(title, rows, line_style)``. With an image
    shape, each series is a row of images under its title; the value range of
    the first series applies to all, so they compare at a glance. Without one,
    each sample gets one axis with the series overlaid as lines and a legend
    names the series.

    Returns the figure, the 2-D array of axes, and the 2-D arrays of images
    and of lines (the one not drawn is None).
    """
    n_series, n_samples = len(series), len(series[0][1])
    if image_shape is not None:
        # About 1.5 in a series; column titles take 0.3 in more.
        height = 1.5 * n_series - 0.4 + 0.3 * bool(column_titles)
        fig = _new_figure(fig, (1.1 * n_samples + 0.3, height))
        value_range = _display_range(series[0][1])
        axes = np.empty((n_series, n_samples), dtype=object)
        images = np.empty((n_series, n_samples), dtype=object)
        # Column titles take room from the first row's images: give it more.
        height_ratios = [1.15 if column_titles else 1.0] + [1.0] * (n_series - 1)
        subfigs = fig.subfigures(n_series, 1, height_ratios=height_ratios)
        for i, subfig in enumerate(np.ravel(subfigs)):
            title, rows, _ = series[i]
            subfig.suptitle(title, fontsize="medium")
            axes[i] = subfig.subplots(1, n_samples, squeeze=False)[0]
            for j, ax in enumerate(axes[i]):
                images[i, j] = _imshow(ax, rows[j], image_shape, value_range, cmap)
        for ax, title in zip(axes[0], column_titles or [], strict=False):
            ax.set_title(title, fontsize="small")
        return fig, axes, images, None

    fig = _new_figure(fig, (1.6 * n_samples + 0.4, 2.0 + 0.2 * n_series))
    axes = fig.subplots(1, n_samples, sharey=True, squeeze=False)
    lines = np.empty((n_series, n_samples), dtype=object)
    features = np.arange(series[0][1].shape[1])
    for j, ax in enumerate(axes[0]):
        for i, (title, rows, style) in enumerate(series):
            (lines[i, j],) = ax.plot(features, rows[j], label=title, **style)
        ax.set_title(column_titles[j] if column_titles else f"sample {j}")
        ax.set_xlabel("feature")
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.legend(handles=list(lines[:, 0]), loc="outside lower center", ncols=n_series)
    return fig, axes, None, lines


class _RowsDisplay:
    """Base of the displays that draw series of rows, one above the other.

    A subclass names the attributes holding its series in ``_names``, the
    reference first, and returns what to draw from :meth:`_series`.
    """

    _names = ()

    def _series(self, *rows):
        """Return the series to draw and the column titles, or None.

        ``rows`` are the checked arrays of ``_names``; a series is a tuple
        ``(title, rows, line_style)``.
        """
        raise NotImplementedError

    def plot(self, *, fig=None, cmap="gray"):
        """Draw the rows, as rows of images or as overlaid lines.

        Parameters
        ----------
        fig : matplotlib Figure or SubFigure, default=None
            Where to draw; a new figure when None. Images take one subfigure
            per row, so a SubFigure embeds the display in a larger figure.
        cmap : str or Colormap, default='gray'
            Colormap of grayscale images.

        Returns
        -------
        self : object
            The display, with the artists (and a DenoisingDisplay's
            ``psnr_``) as attributes.
        """
        rows, image_shape = _check_series(self, self._names)
        series, column_titles = self._series(*rows)
        self.figure_, self.axes_, self.images_, self.lines_ = _plot_rows(
            fig, series, image_shape, column_titles=column_titles, cmap=cmap
        )
        return self
