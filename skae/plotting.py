"""Display objects that show what an autoencoder learned.

Each display follows scikit-learn's visualization API (as
:class:`sklearn.metrics.RocCurveDisplay`): the constructor stores the data to
draw, :meth:`plot` draws it and keeps the matplotlib artists as attributes
ending in ``_``, and the classmethod ``from_estimator`` computes the data from
a fitted estimator, then plots it. matplotlib is imported only when something
is drawn, so importing this module stays cheap.
"""

import inspect
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.utils import check_random_state

from skae._plotting import (
    _check_axes,
    _check_estimator,
    _check_labels,
    _check_positive_int,
    _check_reconstructor,
    _check_rows,
    _check_same_shape,
    _check_series,
    _display_range,
    _fill_doc,
    _head,
    _imshow,
    _new_figure,
    _reconstruct,
    _resolve_image_shape,
    _RowsDisplay,
)
from skae._validation import _num_samples, check_flag, in_container_of, torch_seed
from skae.noise import make_noise

__all__ = [
    "DenoisingDisplay",
    "LatentSpaceDisplay",
    "LossCurveDisplay",
    "ReconstructionDisplay",
    "SamplesDisplay",
]

# Up to this many distinct labels get a colour and a legend entry each; more
# are coloured along a continuous colormap with a colorbar.
_MAX_CLASSES = 20
# Loss curves up to this many epochs mark each epoch with a dot.
_MAX_MARKED_EPOCHS = 30


# ------------------------------------------------------------------ helpers


def _psnr(clean, other, data_range):
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range**2 / MSE)``."""
    mse = np.mean((clean - other) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(10 * np.log10(data_range**2 / mse))


def _losses(name, values):
    """Return ``values`` as a float array, or raise naming ``name``."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a sequence of numbers, one loss per epoch: {exc}."
        ) from exc


def _corrupt(rows, noise, noise_level, *, clip, low, high, random_state):
    """Corrupt rows with the corruption layer a denoising estimator trains with.

    The layer comes from :func:`skae.noise.make_noise`, with the estimator's
    clipping range and salt-and-pepper values ``[low, high]``, and draws its
    noise from a generator seeded by ``random_state``.
    """
    layer = make_noise(
        noise,
        noise_level,
        # A constant X has no range to clip to.
        clip=(low, high) if clip and low < high else None,
        low=low,
        high=high,
    )
    seed = torch_seed(check_random_state(random_state))
    layer.set_generator(torch.Generator().manual_seed(seed)).train()
    with torch.no_grad():
        # A copy: the shown rows are few, and the user's X stays untouched.
        return layer(torch.tensor(rows)).numpy()


# ----------------------------------------------------------- reconstruction


@_fill_doc
class ReconstructionDisplay(_RowsDisplay):
    """Rows next to their reconstructions.

    Images are drawn as two rows, the originals over the reconstructions,
    with a shared value range. Tabular rows get one small axis per sample, the
    original as a line with markers and the reconstruction dashed over it.

    %(create)s

    Parameters
    ----------
    originals : array-like of shape (n_samples, n_features)
        Input rows.
    reconstructions : array-like of shape (n_samples, n_features)
        Their reconstructions, ``inverse_transform(transform(originals))``.
    %(image_shape)s
    labels : array-like of shape (n_samples,), default=None
        Shown as the title of each sample's column.

    Attributes
    ----------
    %(rows_attributes)s

    See Also
    --------
    DenoisingDisplay : Clean, noisy and denoised rows.
    sklearn.decomposition.PCA : Reconstructs too, through ``inverse_transform``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> from skae.plotting import ReconstructionDisplay
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(
    ...     8, hidden_layer_sizes=(8,), max_iter=2, random_state=0
    ... ).fit(X)
    >>> display = ReconstructionDisplay.from_estimator(ae, X, n_samples=6)
    >>> display.axes_.shape
    (2, 6)
    """

    def __init__(self, originals, reconstructions, *, image_shape=None, labels=None):
        self.originals = originals
        self.reconstructions = reconstructions
        self.image_shape = image_shape
        self.labels = labels

    _names = ("originals", "reconstructions")

    def _series(self, originals, reconstructions):
        column_titles = None
        if self.labels is not None:
            labels = _check_labels(self.labels, "originals", len(originals))
            column_titles = [str(label) for label in labels]
        series = [
            ("original", originals, {"marker": "o", "markersize": 3}),
            ("reconstruction", reconstructions, {"linestyle": "--"}),
        ]
        return series, column_titles

    @classmethod
    def from_estimator(
        cls, estimator, X, y=None, *, n_samples=8, image_shape=None, fig=None
    ):
        """Reconstruct the first rows of ``X`` with a fitted estimator and plot.

        Parameters
        ----------
        estimator : fitted transformer with ``inverse_transform``
            An autoencoder (or e.g. :class:`~sklearn.decomposition.PCA`).
        X : array-like of shape (n_samples, n_features)
            Rows to reconstruct; the first ``n_samples`` are shown.
        y : array-like of shape (n_samples,), default=None
            Labels of the rows of ``X``, shown as column titles.
        n_samples : int, default=8
            How many rows to show (all when ``X`` has fewer).
        %(image_shape_from_estimator)s
        %(fig)s

        Returns
        -------
        display : ReconstructionDisplay
            The drawn display.
        """
        _check_reconstructor(estimator)
        if getattr(X, "ndim", 2) > 2:
            # Refused with the whole X's shape: the estimator saw the shown
            # rows only, and its message gave their shape as X's.
            _check_rows("X", X, images=True)
        X_shown = _head(X, n_samples)
        originals = np.asarray(X_shown, dtype=np.float64)
        labels = None
        if y is not None:
            labels = _check_labels(y, "X", _num_samples(X))[: len(originals)]
        return cls(
            originals,
            _reconstruct(estimator, X_shown),
            image_shape=_resolve_image_shape(
                image_shape, estimator, originals.shape[1], "X"
            ),
            labels=labels,
        ).plot(fig=fig)


# -------------------------------------------------------------- latent space


@_fill_doc
class LatentSpaceDisplay:
    """Scatter plot of the codes, optionally beside PCA's.

    The first two code dimensions are drawn, coloured by label. Up to 20
    distinct labels each get a colour and a legend entry; more numeric labels
    are coloured along a colormap with a colorbar, and more labels of other
    kinds (text) cycle through 20 colours, without a legend.

    %(create)s

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_components)
        The codes, ``transform(X)``; ``n_components >= 2``.
    labels : array-like of shape (n_samples,), default=None
        Colour of each point. None draws all points in one colour.
    pca_codes : array-like of shape (n_samples, 2), default=None
        PCA's codes of the same rows, drawn in a second axis when given.

    Attributes
    ----------
    %(figure_)s
    axes_ : ndarray of matplotlib Axes of shape (n_panels,)
        The codes' axis, then PCA's when ``pca_codes`` is given.
    scatters_ : ndarray of matplotlib PathCollection of shape (n_panels,)
        One scatter per axis.

    See Also
    --------
    sklearn.decomposition.PCA : The linear codes compared with.

    Examples
    --------
    >>> from skae import AutoencoderTransformer
    >>> from skae.datasets import make_embedded_moons
    >>> from skae.plotting import LatentSpaceDisplay
    >>> X, y = make_embedded_moons(n_samples=200, random_state=0)
    >>> ae = AutoencoderTransformer(2, max_iter=2, random_state=0).fit(X)
    >>> display = LatentSpaceDisplay.from_estimator(ae, X, y)
    >>> [ax.get_title() for ax in display.axes_]
    ['Autoencoder codes', 'PCA codes']
    """

    def __init__(self, codes, *, labels=None, pca_codes=None):
        self.codes = codes
        self.labels = labels
        self.pca_codes = pca_codes

    def plot(self, axes=None, **kwargs):
        """Draw the codes, and PCA's beside them.

        Parameters
        ----------
        axes : matplotlib Axes or sequence of Axes, default=None
            One axis per panel (two with ``pca_codes``), all of one figure;
            a new figure when None.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.scatter`. With ``labels``,
            the points are coloured by label: ``c`` and ``color`` are refused,
            while ``cmap``, ``vmin`` and ``vmax`` restyle the colours, the
            legend's included.

        Returns
        -------
        self : LatentSpaceDisplay
            With the artists as attributes.
        """
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
        from matplotlib.lines import Line2D

        if "ax" in kwargs:
            # scikit-learn's displays take ax; here it would reach scatter,
            # which failed with "got multiple values for argument 'ax'".
            raise TypeError(
                "LatentSpaceDisplay draws one panel per axis: pass axes=, one "
                "axis per panel (two with PCA's codes), not ax=."
            )
        codes = _check_rows("codes", self.codes)
        n_samples, n_components = codes.shape
        if n_components < 2:
            raise ValueError(
                f"codes has {n_components} column, but a latent space scatter "
                "plot needs at least 2; fit with n_components >= 2."
            )
        panels = [("codes", codes)]
        if self.pca_codes is not None:
            pca_codes = _check_rows("pca_codes", self.pca_codes)
            if pca_codes.shape[0] != n_samples or pca_codes.shape[1] < 2:
                raise ValueError(
                    f"pca_codes has shape {pca_codes.shape}, but codes has "
                    f"{n_samples} rows; pass PCA's 2-D codes of the same rows, of "
                    f"shape ({n_samples}, 2)."
                )
            panels.append(("pca_codes", pca_codes))

        if axes is None:
            fig = _new_figure(None, (4.2 * len(panels) + 1.4, 4.2))
            axes = fig.subplots(1, len(panels), squeeze=False)
        axes = np.ravel(np.asarray(axes, dtype=object))
        _check_axes("axes", axes)
        if len(axes) != len(panels):
            raise ValueError(
                f"axes holds {len(axes)} axes, but {len(panels)} panel(s) are "
                "drawn; pass one axis per panel (two when pca_codes is given)."
            )
        if any(ax.figure is not axes[0].figure for ax in axes[1:]):
            # figure_ is one figure, and the colorbar of many labels spans all
            # axes: matplotlib failed with "not all parents share the same
            # figure".
            raise ValueError(
                "axes holds axes of different figures (or subfigures); pass axes "
                "of one figure, e.g. plt.subplots(1, 2)[1]."
            )

        style = {"s": 10, "alpha": 0.8, **kwargs}
        classes, colorbar = None, False
        if self.labels is not None:
            for colour in ("c", "color"):
                if colour in kwargs:
                    raise ValueError(
                        f"{colour}={kwargs[colour]!r} colours every point, but "
                        "labels colour them by label; pass labels=None (y=None "
                        f"to from_estimator) or drop {colour}."
                    )
            labels = _check_labels(self.labels, "codes", n_samples)
            classes, index = np.unique(labels, return_inverse=True)
            if len(classes) <= _MAX_CLASSES or labels.dtype.kind not in "biuf":
                palette = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
                colours = [palette(k % palette.N) for k in range(len(classes))]
                style = {
                    "c": index,
                    "cmap": ListedColormap(colours),
                    "vmin": -0.5,
                    "vmax": len(classes) - 0.5,
                    **style,
                }
            else:
                style = {"c": labels, "cmap": "viridis", **style}
                colorbar = True

        scatters = np.empty(len(panels), dtype=object)
        for k, (ax, (name, points)) in enumerate(zip(axes, panels, strict=True)):
            scatters[k] = ax.scatter(points[:, 0], points[:, 1], **style)
            if name == "codes":
                title = "Autoencoder codes"
                if n_components > 2:
                    title += f"\n(dimensions 1-2 of {n_components})"
                ax.set(title=title, xlabel="code 1", ylabel="code 2")
            else:
                ax.set(title="PCA codes", xlabel="PC 1", ylabel="PC 2")

        self.figure_ = axes[0].figure
        # One entry per label: unreadable past _MAX_CLASSES, and seconds to
        # lay out with thousands (say, sample ids).
        if classes is not None and len(classes) <= _MAX_CLASSES:
            # The colour the scatter maps each label to, whatever cmap, vmin
            # or vmax the kwargs gave it.
            colours = scatters[0].to_rgba(np.arange(len(classes)))
            legend_handles = [
                Line2D([], [], linestyle="", marker="o", color=colour, label=c)
                for c, colour in zip(classes, colours, strict=True)
            ]
            axes[-1].legend(
                handles=legend_handles,
                title="label",
                loc="center left",
                bbox_to_anchor=(1.02, 0.5),
                fontsize="small",
                ncols=1 + len(legend_handles) // 11,
            )
        elif colorbar:
            self.figure_.colorbar(scatters[0], ax=list(axes), label="label")
        self.axes_, self.scatters_ = axes, scatters
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y=None,
        *,
        compare_pca=True,
        random_state=0,
        axes=None,
        **kwargs,
    ):
        """Encode ``X`` with a fitted estimator and plot the codes.

        Parameters
        ----------
        estimator : fitted transformer
            An autoencoder with at least 2 components.
        X : array-like of shape (n_samples, n_features)
            Rows to encode.
        y : array-like of shape (n_samples,), default=None
            Labels colouring the points.
        compare_pca : bool, default=True
            Also draw the codes of ``PCA(n_components=2)`` fitted on ``X``.
        random_state : int, RandomState instance or None, default=0
            Seeds PCA's solver, for randomized SVD on large data.
        axes : matplotlib Axes or sequence of Axes, default=None
            One axis per panel, all of one figure; a new figure when None.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.scatter`.

        Returns
        -------
        display : LatentSpaceDisplay
            The drawn display.
        """
        _check_estimator(
            estimator,
            ("transform",),
            "transform to encode rows with; pass a fitted autoencoder",
        )
        # Before encoding: truthiness read compare_pca="no" as True.
        compare_pca = check_flag("compare_pca", compare_pca)
        if y is not None:
            # Before encoding, and against X: plot would name codes.
            _check_labels(y, "X", _num_samples(X))
        codes = np.asarray(estimator.transform(X))
        pca_codes = None
        # Codes of one column: the display's own check says why they do not do.
        compare_pca = compare_pca and codes.shape[1] >= 2
        if compare_pca and min(codes.shape[0], np.shape(X)[1]) < 2:
            raise ValueError(
                "compare_pca=True needs PCA's 2 components, hence X with at least "
                f"2 rows and 2 features; X has shape {np.shape(X)}. Pass "
                "compare_pca=False."
            )
        if compare_pca:
            pca = PCA(n_components=2, random_state=random_state)
            pca_codes = np.asarray(pca.fit_transform(X))
        return cls(codes, labels=y, pca_codes=pca_codes).plot(axes=axes, **kwargs)


# --------------------------------------------------------------- loss curve


@_fill_doc
class LossCurveDisplay:
    """Training and validation loss per epoch, on a log scale.

    The scale is linear when a loss is 0 or negative, as the negative
    log-likelihood of a :class:`~skae.VariationalAutoencoder` can be: a log
    scale would drop those epochs.

    A dashed vertical line marks the best epoch, whose weights the estimator
    kept; with ``best_epoch=0`` the initial weights were kept, which the
    title says.

    %(create)s

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        Training loss per epoch.
    validation_loss_curve : array-like of shape (n_epochs,), default=None
        Held-out loss per epoch.
    best_epoch : int, default=None
        Epoch whose weights were kept, in ``[0, n_epochs]``; 0 is the initial
        state. None draws no marker.

    Attributes
    ----------
    %(figure_)s
    ax_ : matplotlib Axes
        The axis drawn into.
    lines_ : dict of matplotlib Line2D
        Keys ``'train'``, ``'validation'`` and ``'best_epoch'``; a value is
        None when that line is not drawn.

    See Also
    --------
    sklearn.model_selection.LearningCurveDisplay : Scores against data size.

    Examples
    --------
    >>> from skae.plotting import LossCurveDisplay
    >>> train, validation = [0.9, 0.5, 0.4, 0.45], [1.0, 0.6, 0.5, 0.6]
    >>> display = LossCurveDisplay(
    ...     train, validation_loss_curve=validation, best_epoch=3
    ... ).plot()
    >>> display.lines_["best_epoch"].get_xdata()
    [3, 3]
    """

    def __init__(self, loss_curve, *, validation_loss_curve=None, best_epoch=None):
        self.loss_curve = loss_curve
        self.validation_loss_curve = validation_loss_curve
        self.best_epoch = best_epoch

    def plot(self, ax=None):
        """Draw the loss curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        self : LossCurveDisplay
            With the artists as attributes.
        """
        from matplotlib.ticker import MaxNLocator, NullFormatter, StrMethodFormatter

        loss = _losses("loss_curve", self.loss_curve)
        if loss.ndim != 1 or len(loss) == 0:
            raise ValueError(
                "loss_curve must be a non-empty 1-D sequence of losses, got shape "
                f"{loss.shape}."
            )
        n_epochs = len(loss)
        validation = None
        if self.validation_loss_curve is not None:
            validation = _losses("validation_loss_curve", self.validation_loss_curve)
            if validation.shape != loss.shape:
                raise ValueError(
                    f"validation_loss_curve has shape {validation.shape}, but "
                    f"loss_curve has shape {loss.shape}; pass one loss per epoch."
                )
        best = self.best_epoch
        if best is not None and (
            isinstance(best, bool)
            or not isinstance(best, Integral)
            or not 0 <= best <= n_epochs
        ):
            raise ValueError(
                f"best_epoch must be an int in [0, {n_epochs}] (0: the initial "
                f"state), got {best!r}."
            )

        if ax is None:
            ax = _new_figure(None, None).subplots()
        _check_axes("ax", [ax])
        epochs = np.arange(1, n_epochs + 1)
        marker = "o" if n_epochs <= _MAX_MARKED_EPOCHS else None
        lines = {"train": None, "validation": None, "best_epoch": None}
        (lines["train"],) = ax.plot(epochs, loss, marker=marker, label="train")
        if validation is not None:
            (lines["validation"],) = ax.plot(
                epochs, validation, marker=marker, label="validation"
            )
        title = "Loss per epoch"
        if best is not None and best > 0:
            lines["best_epoch"] = ax.axvline(
                best, color="0.4", linestyle="--", label=f"best epoch ({best})"
            )
        elif best == 0:
            title += "\n(best_epoch=0: the initial weights were kept)"
        drawn = loss if validation is None else np.r_[loss, validation]
        drawn = drawn[np.isfinite(drawn)]
        if drawn.size and drawn.min() > 0:
            ax.set_yscale("log")
            if drawn.max() < 10 * drawn.min():
                # Within a decade, log ticks are one or two labels like
                # 3 x 10^-1; evenly spaced plain numbers read better.
                ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
                ax.yaxis.set_major_formatter(StrMethodFormatter("{x:.3g}"))
                ax.yaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set(title=title, xlabel="epoch", ylabel="loss")
        ax.legend()
        self.ax_, self.figure_, self.lines_ = ax, ax.figure, lines
        return self

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Plot the loss curves of a fitted estimator.

        Parameters
        ----------
        estimator : fitted autoencoder
            An estimator with ``loss_curve_`` and, optionally,
            ``validation_loss_curve_`` and ``best_epoch_``.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        display : LossCurveDisplay
            The drawn display.
        """
        _check_estimator(
            estimator,
            ("loss_curve_",),
            "loss_curve_ to plot; pass an autoencoder fitted by skae",
        )
        return cls(
            estimator.loss_curve_,
            validation_loss_curve=getattr(estimator, "validation_loss_curve_", None),
            best_epoch=getattr(estimator, "best_epoch_", None),
        ).plot(ax=ax)


# ---------------------------------------------------------------- denoising


@_fill_doc
class DenoisingDisplay(_RowsDisplay):
    """Clean rows, their corrupted copies, and the denoised copies.

    Images are drawn as three rows, clean over noisy over denoised, whose
    titles give the peak signal-to-noise ratio (PSNR) of the noisy and the
    denoised rows against the clean ones. Tabular rows get one axis per
    sample with the three overlaid as lines, the PSNR in the legend.

    %(create)s

    Parameters
    ----------
    clean, noisy, denoised : array-like of shape (n_samples, n_features)
        Clean rows, their corrupted copies, and the estimator's
        reconstructions of ``noisy``.
    %(image_shape)s
    data_range : float, default=None
        The data's range, ``max - min``, in the PSNR. None takes the range of
        ``clean``, which must then not be constant.

    Attributes
    ----------
    %(rows_attributes)s
    psnr_ : dict
        PSNR in dB of the ``'noisy'`` and the ``'denoised'`` rows:
        ``10 log10(data_range**2 / MSE)``, the MSE over all shown entries.

    See Also
    --------
    ReconstructionDisplay : Rows and their reconstructions.
    skae.DenoisingAutoencoder : The estimator this display shows.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import DenoisingAutoencoder
    >>> from skae.plotting import DenoisingDisplay
    >>> X = load_digits().data / 16
    >>> dae = DenoisingAutoencoder(
    ...     8, noise_level=0.3, hidden_layer_sizes=(8,), max_iter=2, random_state=0
    ... ).fit(X)
    >>> display = DenoisingDisplay.from_estimator(dae, X)
    >>> sorted(display.psnr_)
    ['denoised', 'noisy']
    """

    def __init__(self, clean, noisy, denoised, *, image_shape=None, data_range=None):
        self.clean = clean
        self.noisy = noisy
        self.denoised = denoised
        self.image_shape = image_shape
        self.data_range = data_range

    _names = ("clean", "noisy", "denoised")

    def _series(self, clean, noisy, denoised):
        data_range = self.data_range
        if data_range is None:
            data_range = float(clean.max() - clean.min())
            if data_range == 0:
                # The PSNR would be -inf dB, or nan where the MSE is 0 too.
                raise ValueError(
                    f"clean is constant (every entry is {clean.flat[0]:g}): it has "
                    "no range to give the PSNR; pass data_range."
                )
        elif (
            isinstance(data_range, bool)
            or not isinstance(data_range, Real)
            or not 0 < data_range < np.inf
        ):
            raise ValueError(
                f"data_range must be a positive finite number, got {data_range!r}."
            )
        # A result of drawing, kept like the artists.
        self.psnr_ = {}
        series = [("clean", clean, {"marker": "o", "markersize": 3})]
        for name, rows, style in [
            ("noisy", noisy, {"linestyle": ":", "alpha": 0.8}),
            ("denoised", denoised, {"linestyle": "--"}),
        ]:
            self.psnr_[name] = _psnr(clean, rows, data_range)
            series.append((f"{name} (PSNR {self.psnr_[name]:.1f} dB)", rows, style))
        return series, None

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X_clean,
        *,
        X_noisy=None,
        noise=None,
        noise_level=None,
        n_samples=8,
        image_shape=None,
        random_state=0,
        fig=None,
    ):
        """Corrupt clean rows, denoise them with a fitted estimator and plot.

        The first ``n_samples`` rows of ``X_clean`` are corrupted by the
        layer the estimator trains with (:func:`skae.noise.make_noise`),
        unless ``X_noisy`` is given, then denoised by
        ``inverse_transform(transform(X_noisy))``.

        Parameters
        ----------
        estimator : fitted transformer with ``inverse_transform``
            A :class:`~skae.DenoisingAutoencoder`, or any autoencoder when
            ``noise`` and ``noise_level`` are given.
        X_clean : array-like of shape (n_samples, n_features)
            Clean rows; the first ``n_samples`` are shown. Their range is the
            clipping range and the PSNR's data range.
        X_noisy : array-like of shape (n_samples, n_features), default=None
            Corrupted copies of the rows of ``X_clean``, for a corruption of
            your own. None corrupts ``X_clean`` here.
        noise : {'gaussian', 'masking', 'salt_pepper'} or callable, default=None
            The corruption, as :class:`~skae.DenoisingAutoencoder` takes it:
            additive Gaussian noise, entries set to 0, entries set to the
            data's minimum or maximum, or a callable ``fn(x, generator) ->
            x_noisy`` on float64 tensors in the data's units. None takes the
            estimator's ``noise``.
        noise_level : float, default=None
            Gaussian standard deviation, or the fraction of each row's entries
            masked or flipped; not used by a callable ``noise``. None takes
            the estimator's ``noise_level``.
        n_samples : int, default=8
            How many rows to show (all when ``X_clean`` has fewer).
        %(image_shape_from_estimator)s
        random_state : int, RandomState instance or None, default=0
            Seeds the noise.
        %(fig)s

        Returns
        -------
        display : DenoisingDisplay
            The drawn display.
        """
        _check_reconstructor(estimator)
        X_all = _check_rows("X_clean", X_clean, images=True)
        clean = _head(X_all, n_samples)
        low, high = float(X_all.min()), float(X_all.max())
        if low == high:
            raise ValueError(
                f"X_clean is constant (every entry is {low:g}): it has no range "
                "to give the PSNR, nor to clip the noise to."
            )
        if X_noisy is not None:
            if noise is not None or noise_level is not None:
                raise ValueError(
                    "Pass either X_noisy or noise/noise_level, not both: the rows "
                    "in X_noisy are already corrupted."
                )
            noisy = _check_rows("X_noisy", X_noisy, images=True)
            _check_same_shape("X_clean", X_all, "X_noisy", noisy)
            noisy = noisy[: len(clean)]
            # The user's container, whose feature names the estimator checks.
            noisy_input = _head(X_noisy, len(clean))
        else:
            if noise is None:
                noise = getattr(estimator, "noise", None)
            if noise_level is None:
                noise_level = getattr(estimator, "noise_level", None)
            # A callable noise has no level.
            if noise is None or (noise_level is None and not callable(noise)):
                raise ValueError(
                    f"{type(estimator).__name__} has no noise or noise_level; pass "
                    "them (e.g. noise='gaussian', noise_level=0.1) or X_noisy."
                )
            noisy = _corrupt(
                clean,
                noise,
                noise_level,
                clip=getattr(estimator, "clip", True),
                low=low,
                high=high,
                random_state=random_state,
            )
            # Back in X_clean's container, whose feature names the estimator
            # checks.
            noisy_input = in_container_of(noisy, _head(X_clean, len(clean)))
        return cls(
            clean,
            noisy,
            _reconstruct(estimator, noisy_input),
            image_shape=_resolve_image_shape(
                image_shape, estimator, clean.shape[1], "X_clean"
            ),
            data_range=high - low,
        ).plot(fig=fig)


# ------------------------------------------------------------------ samples


@_fill_doc
class SamplesDisplay:
    """Rows drawn from a generative model, as a grid of images or as lines.

    Images are drawn in a grid, ``n_cols`` to a row, over one value range.
    Tabular rows share one axis, one line per sample over the feature index.

    %(create)s

    Parameters
    ----------
    samples : array-like of shape (n_samples, n_features)
        The drawn rows, e.g. ``VariationalAutoencoder.sample(n_samples)``.
    %(image_shape)s
    value_range : tuple of (float, float), default=None
        The values the colormap of images spans, ``(low, high)``; values
        beyond show as the nearest end. None is [0, 1] for samples in [0, 1],
        else the samples' own range. Not used by tabular rows.

    Attributes
    ----------
    %(figure_)s
    axes_ : ndarray of matplotlib Axes
        Shape (n_rows, n_cols) for images, the cells past the last sample
        hidden; (1, 1) for tabular rows.
    images_ : ndarray of matplotlib AxesImage of shape (n_samples,) or None
        One image per sample, in order. None for tabular rows.
    lines_ : ndarray of matplotlib Line2D of shape (n_samples,) or None
        One line per sample. None for images.

    See Also
    --------
    skae.VariationalAutoencoder.sample : Draws the rows this display shows.
    ReconstructionDisplay : Rows and their reconstructions.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VariationalAutoencoder
    >>> X, _ = load_digits(return_X_y=True)
    >>> vae = VariationalAutoencoder(4, max_iter=2, random_state=0).fit(X / 16)
    >>> from skae.plotting import SamplesDisplay
    >>> display = SamplesDisplay.from_estimator(vae, n_samples=12, n_cols=6)
    >>> display.axes_.shape
    (2, 6)
    """

    def __init__(self, samples, *, image_shape=None, value_range=None):
        self.samples = samples
        self.image_shape = image_shape
        self.value_range = value_range

    def plot(self, *, fig=None, cmap="gray", n_cols=8):
        """Draw the samples.

        Parameters
        ----------
        %(fig)s
        cmap : str or Colormap, default='gray'
            Colormap of grayscale images.
        n_cols : int, default=8
            Images per row of the grid.

        Returns
        -------
        self : SamplesDisplay
            With the artists as attributes.
        """
        (samples,), image_shape = _check_series(self, ["samples"])
        n_samples, n_features = samples.shape
        _check_positive_int("n_cols", n_cols)
        if self.value_range is None:
            value_range = _display_range(samples)
        else:
            try:
                value_range = tuple(float(v) for v in np.ravel(self.value_range))
            except (TypeError, ValueError):
                value_range = ()  # not numbers: refused below
            if (
                len(value_range) != 2
                or not value_range[0] < value_range[1]
                or not np.isfinite(value_range).all()
            ):
                raise ValueError(
                    "value_range must be a pair (low, high) of finite numbers "
                    "with low < high, got "
                    f"{self.value_range!r}."
                )

        if image_shape is None:
            fig = _new_figure(fig, (6.4, 3.6))
            ax = fig.subplots()
            features = np.arange(n_features)
            lines = np.empty(n_samples, dtype=object)
            for i, row in enumerate(samples):
                (lines[i],) = ax.plot(features, row, linewidth=1, alpha=0.7)
            ax.set(title=f"{n_samples} samples", xlabel="feature", ylabel="value")
            ax.xaxis.get_major_locator().set_params(integer=True)
            self.figure_, self.axes_ = fig, np.array([[ax]], dtype=object)
            self.images_, self.lines_ = None, lines
            return self

        n_cols = min(n_cols, n_samples)
        n_rows = -(-n_samples // n_cols)
        fig = _new_figure(fig, (1.1 * n_cols + 0.3, 1.1 * n_rows + 0.3))
        axes = fig.subplots(n_rows, n_cols, squeeze=False)
        images = np.empty(n_samples, dtype=object)
        for k, ax in enumerate(axes.flat):
            if k < n_samples:
                images[k] = _imshow(ax, samples[k], image_shape, value_range, cmap)
            else:
                ax.set_visible(False)
        self.figure_, self.axes_ = fig, axes
        self.images_, self.lines_ = images, None
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        *,
        n_samples=16,
        image_shape=None,
        clip=False,
        random_state=0,
        n_cols=8,
        fig=None,
    ):
        """Draw rows from a fitted generative estimator and plot them.

        Parameters
        ----------
        estimator : fitted estimator with ``sample``
            A :class:`~skae.VariationalAutoencoder`, or any estimator whose
            ``sample(n_samples, random_state=..., clip=...)`` returns the rows.
        n_samples : int, default=16
            How many rows to draw.
        %(image_shape_from_estimator)s
        clip : bool, default=False
            Passed to ``sample``: clip each feature to its training range.
        random_state : int, RandomState instance or None, default=0
            Seeds the draws.
        n_cols : int, default=8
            Images per row of the grid.
        %(fig)s

        Returns
        -------
        display : SamplesDisplay
            The drawn display. Images span the training data's range
            (``data_min_`` to ``data_max_``) when the estimator has one.
        """
        _check_estimator(
            estimator,
            ("sample",),
            "sample method to draw rows with; pass a fitted VariationalAutoencoder",
        )
        # GaussianMixture.sample takes neither, KernelDensity.sample no clip:
        # the call failed with "got an unexpected keyword argument".
        accepted = inspect.signature(estimator.sample).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
            missing = [
                name for name in ("random_state", "clip") if name not in accepted
            ]
            if missing:
                raise ValueError(
                    f"{type(estimator).__name__}.sample takes no "
                    f"{' or '.join(missing)}, which the display passes it; pass "
                    "a fitted VariationalAutoencoder."
                )
        _check_positive_int("n_samples", n_samples)
        samples = np.asarray(
            estimator.sample(n_samples, random_state=random_state, clip=clip),
            dtype=np.float64,
        )
        value_range = None
        if hasattr(estimator, "data_min_") and hasattr(estimator, "data_max_"):
            value_range = _display_range(
                np.array([np.min(estimator.data_min_), np.max(estimator.data_max_)])
            )
        return cls(
            samples,
            image_shape=_resolve_image_shape(
                image_shape, estimator, samples.shape[1], "samples"
            ),
            value_range=value_range,
        ).plot(fig=fig, n_cols=n_cols)
