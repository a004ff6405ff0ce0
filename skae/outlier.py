"""AutoencoderOutlierDetector: anomaly scores from reconstruction error."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from skae._base import _BaseAutoencoder
from skae._validation import Interval, StrOptions, check_rows_ndim
from skae.denoising import _NoiseMixin
from skae.noise import NOISE_KINDS

# Floor of each feature's error scale, relative to the mean scale: a feature
# that training reconstructs (almost) perfectly, such as a pixel that is
# always 0, would otherwise weigh hundreds of times as much as the others.
# Chosen by measurement (see the Notes of AutoencoderOutlierDetector).
_SCALE_FLOOR = 0.03
# contamination='auto' flags relative errors beyond Tukey's outer fence,
# Q3 + 3 IQR: "far out" in his exploratory data analysis.
_AUTO_FENCE = 3.0


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


class AutoencoderOutlierDetector(_NoiseMixin, OutlierMixin, _BaseAutoencoder):
    """Outlier detection by autoencoder reconstruction error.

    A dense (or, with ``image_shape``, convolutional) autoencoder, trained on
    rows assumed to be mostly normal, reconstructs normal rows well and
    abnormal ones badly. The detector follows scikit-learn's outlier
    contract, as :class:`~sklearn.ensemble.IsolationForest` does: ``predict``
    returns +1 for inliers and -1 for outliers, ``decision_function`` is
    negative for outliers, and ``score_samples`` is lower the more abnormal
    the row. It keeps :meth:`transform`, which encodes rows, e.g. to look at
    where the outliers lie.

    The anomaly score is minus the mean relative squared reconstruction
    error: each feature's squared error is divided by that feature's mean
    squared error on the training rows (``feature_errors_``, floored at
    ``0.03`` times their mean), so training rows score about -1 and a row
    that is badly reconstructed where training rows are reconstructed well
    counts more than one that is badly reconstructed where every row is.
    For image rows (``image_shape``) the residual is first averaged over
    the 3x3 square around each pixel (``error_window``). See the Notes for
    why.

    Parameters
    ----------
    n_components : int or float, default=0.8
        Width of the code. A float in (0, 1) means, as for PCA, as many
        components as PCA needs to explain that fraction of the training
        variance (16 to 28 for one class of Fashion-MNIST, 5 for the
        standardised breast cancer data). An int must not exceed the number
        of features.
    contamination : 'auto' or float, default='auto'
        The expected fraction of outliers in the training data, which sets
        ``offset_``. A float in (0, 0.5] puts the threshold at that quantile
        of the training rows' scores, so ``predict`` flags that fraction of
        them. ``'auto'`` flags rows whose relative error lies beyond Tukey's
        outer fence, ``Q3 + 3 * IQR``, of the training rows' errors, widened
        by the ratio of the held-out rows' median error to the training rows'
        (new rows reconstruct worse than the rows trained on; without early
        stopping there are no held-out rows and the fence stays as is).
    noise : {'gaussian', 'masking', 'salt_pepper'}, callable or None, default=None
        Train as a denoising autoencoder: the network sees corrupted rows
        and learns to reconstruct the clean ones, as
        :class:`DenoisingAutoencoder` does (see there for the kinds). Scores
        are always computed on the rows as given. None trains on clean rows.
        The level is in data units, so no one value suits every data set;
        see the Notes for what it gained on data on a unit scale.
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
    hidden_layer_sizes : int or tuple of int, default=(512, 256)
        Hidden widths of the dense encoder; the decoder mirrors them. An int
        is one hidden layer.
    activation : {'relu', 'silu', 'elu', 'tanh', 'logistic', 'identity'}, default='relu'
        Nonlinearity of the hidden layers.
    image_shape : tuple of int (C, H, W), default=None
        Treat rows as flattened images of this shape, scored by the windowed
        error of ``error_window``. ``C * H * W`` must equal the number of
        features.
    conv_channels : tuple of int, default=()
        Channels of a convolutional network's stages for image rows, e.g.
        the other estimators' ``(16, 32, 64)``. The default ``()`` keeps the
        dense network for image rows too: the convolutional one ranked no
        better in the benchmarks and trains several times more slowly on a
        CPU (see the Notes).
    init : {'pca', 'random'}, default='pca'
        Start from PCA's solution (plus a zero residual), or at random.
    loss : {'mse', 'bce'}, default='mse'
        Mean squared error, or binary cross-entropy on a sigmoid output for
        data in [0, 1]. The score uses squared errors either way.
    batch_size : int or 'auto', default='auto'
        Rows per training batch; ``'auto'`` is ``n_train // 16`` clipped to
        [32, 256].
    learning_rate : {'constant', 'adaptive'}, default='constant'
        Schedule of Adam's learning rate. ``'constant'`` keeps
        ``learning_rate_init``. ``'adaptive'`` starts there and multiplies
        the rate by 0.3 each time the loss that early stopping monitors has
        not improved by ``tol`` for ``n_iter_no_change // 4`` epochs
        (skorch's ``LRScheduler`` with ``ReduceLROnPlateau``), as
        :class:`AutoencoderTransformer` does by default.
    learning_rate_init : float, default=1e-3
        Adam's learning rate.
    alpha : float, default=1e-4
        L2 penalty (Adam's weight decay).
    max_iter : int, default=200
        Maximum number of epochs.
    tol : float, default=1e-4
        Relative improvement of the monitored loss that counts as progress.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows and stop when their loss
        stops improving, restoring the best weights. The held-out rows also
        calibrate ``contamination='auto'``.
    validation_fraction : float, default=0.1
        Fraction of rows held out for early stopping.
    n_iter_no_change : int, default=20
        Epochs without improvement before training stops.
    device : str or torch.device, default='auto'
        ``'auto'``, ``'cpu'``, ``'cuda'`` or ``'cuda:<index>'``.
    precision : {'float32', 'bfloat16', 'float16'}, default='float32'
        Mixed precision (:func:`torch.autocast`) for the network's
        computations; see :class:`AutoencoderTransformer`.
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks, cloned at each fit.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the weights and the batch order.
    verbose : int, default=0
        0 is silent; 1 prints a line per epoch (losses, learning rate, time
        taken and left), plain text unless stdout is a terminal; 2 adds a
        per-batch progress bar on a terminal.

    Attributes
    ----------
    offset_ : float
        The threshold: ``decision_function = score_samples - offset_``.
    feature_errors_ : ndarray of shape (n_features,)
        Mean squared reconstruction error of each feature over the training
        rows, in the data's units: the denominators of the score. For image
        rows, of the residual averaged over ``error_window``.
    n_components_ : int
        Width of the code.
    mean_ : ndarray of shape (n_features,)
        Per-feature mean of the training data.
    explained_variance_score_ : float
        Fraction of the training data's variance explained by the
        reconstruction.
    n_iter_ : int
        Number of epochs run.
    best_epoch_ : int
        Epoch whose weights were kept (0: the initial PCA state; a random
        start is never kept, so with ``init='random'`` it is at least 1).
    loss_curve_ : list of float
        Training loss per epoch.
    validation_loss_curve_ : list of float or None
        Held-out loss per epoch; None without early stopping.
    net_ : AutoencoderNet
        The fitted skorch net.
    module_ : torch.nn.Module
        The fitted network (with ``noise``, its corruption layer in front).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.ensemble.IsolationForest : Outliers isolated by random splits.
    sklearn.neighbors.LocalOutlierFactor : Outliers in sparse neighbourhoods.
    sklearn.decomposition.PCA : Its reconstruction error, the linear score.
    AutoencoderTransformer : The same network as a transformer.

    Notes
    -----
    The score was chosen on Fashion-MNIST's one-class protocol (fit on one
    class, rank the 10,000 test images, ROC AUC of "not that class";
    ``benchmarks/outlier.py``). With PCA's 32-component reconstruction, plain
    squared error gives a mean AUC of 0.905 over the ten classes and the
    relative error 0.917, better on eight classes of ten; a combination with
    the Mahalanobis distance of the code (Hotelling's T², as in process
    monitoring) gave 0.904. Plain squared error is dominated by the features
    with the largest spread, such as the pixels on the outline of a class,
    where normal rows also reconstruct badly; the relative error weighs
    every feature by how well it is normally reconstructed.

    The floor on each feature's error scale caps the weight of features that
    training rows reconstruct almost perfectly (pixels that are always
    blank), whose training error is also the least reliable estimate. With
    the detector's own reconstructions, the mean AUC for floors of 0.001,
    0.03 and 0.3 times the mean scale, and for plain squared error, was
    0.9252, 0.9256, 0.9260 and 0.9202 on Fashion-MNIST, 0.980, 0.989, 0.994
    and 0.997 on the digits (about 90 training rows per class), and 0.952,
    0.951, 0.940 and 0.910 on the breast cancer data (the ``auc_floor_*``
    columns of ``benchmarks/outlier.py``): 0.03 helps the small image set
    without costing the tabular one.

    ``n_components=0.8`` is the fraction of variance, not a fixed width, so
    that the default works for any number of features. On Fashion-MNIST with
    PCA, 80 % of the variance (16 to 28 components) ranks as well as 32
    components, while 90 % (36 to 81) is worse (0.903 against 0.912 on
    class 0); on the breast cancer data and the digits the detector's AUC
    with 0.8 was 0.952 and 0.980, with 0.9 0.959 and 0.981, with half the
    features 0.948 and 0.975 (measured with a floor of 0.001, below).

    Training on corrupted rows (``noise='gaussian', noise_level=0.2``)
    raised the mean AUC from 0.926 to 0.927 on Fashion-MNIST and from 0.951
    to 0.958 on the standardised breast cancer data, and moved the digits
    from 0.989 to 0.988 (``benchmarks/results/outlier_*_noise-gaussian0.2.md``).

    For image rows, the residual averaged over a small square ranks better
    than each pixel's own: with ``image_shape=(1, 28, 28)`` the mean AUC on
    Fashion-MNIST was 0.926, 0.937 and 0.936 for windows of 1, 3 and 5
    pixels (the same fitted networks; the ``auc_window_*`` columns of
    ``benchmarks/results/outlier_fashion_mnist_image-rows.md``), and 0.989,
    0.994 and 0.990 on the digits. The hardest classes gained most: bags
    from 0.909 to 0.945, shirts from 0.807 to 0.834, pullovers from 0.891
    to 0.905.

    The convolutional network (``conv_channels=(16, 32, 64)``) ranked no
    better than the dense one: with a window of 3, 0.993 against 0.994 on
    the digits (``outlier_digits_conv.md``), and 0.906 and 0.833 against
    0.905 and 0.834 on Fashion-MNIST's pullovers and shirts
    (``outlier_fashion_mnist_conv_classes2-6.md``); per pixel, 0.990 against
    0.989 on the digits, and 0.892 and 0.807 against 0.891 and 0.807 on
    Fashion-MNIST's pullovers and shirts
    (``outlier_fashion_mnist_conv_window1_classes2-6.md``), after 200 epochs
    of about 260 s a class on 2 CPU threads, where the dense network stops
    after 30 to 120 s on one. Hence the dense default for image rows.

    References
    ----------
    .. [1] C. C. Aggarwal, "Outlier Analysis", 2nd ed., Springer, 2017,
       chapter 3 (linear models and reconstruction error).
    .. [2] J. W. Tukey, "Exploratory Data Analysis", Addison-Wesley, 1977.

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
    }

    def __init__(
        self,
        n_components=0.8,
        *,
        contamination="auto",
        noise=None,
        noise_level=0.1,
        clip=True,
        error_window=3,
        hidden_layer_sizes=(512, 256),
        activation="relu",
        image_shape=None,
        conv_channels=(),
        init="pca",
        loss="mse",
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=1e-3,
        alpha=1e-4,
        max_iter=200,
        tol=1e-4,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        device="auto",
        precision="float32",
        callbacks=None,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            n_components,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            image_shape=image_shape,
            conv_channels=conv_channels,
            init=init,
            loss=loss,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            alpha=alpha,
            max_iter=max_iter,
            tol=tol,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            device=device,
            precision=precision,
            callbacks=callbacks,
            random_state=random_state,
            verbose=verbose,
        )
        self.contamination = contamination
        self.noise = noise
        self.noise_level = noise_level
        self.clip = clip
        self.error_window = error_window

    def _check_data_params(self, X):
        super()._check_data_params(X)
        if self.error_window % 2 == 0:
            raise ValueError(
                "error_window must be odd, so that each window has a centre "
                f"pixel; got {self.error_window}."
            )

    def _feature_errors(self, batch):
        """Squared errors the score is made of, for a batch in model units.

        For image rows, the squared mean residual over the ``error_window``
        square around each pixel (in each channel); else each entry's own
        squared error.
        """
        if self.image_shape is None or self.error_window == 1:
            return self._squared_errors(batch)
        return (
            _window_mean(
                self._residuals(batch),
                tuple(int(s) for s in self.image_shape),
                self.error_window,
            )
            ** 2
        )

    def _after_fit(self, X, valid_idx):
        sums = self._batched(
            X,
            lambda batch: (
                self._feature_errors(batch)
                .double()
                .cpu()
                .numpy()
                .sum(axis=0, keepdims=True)
            ),
        )
        self.feature_errors_ = sums.sum(axis=0) / len(X)
        scale = self.feature_errors_ + _SCALE_FLOOR * self.feature_errors_.mean()
        # A constant X is reconstructed exactly: no feature has an error scale.
        self._error_scale = scale if scale.any() else np.ones_like(scale)

        scores = self._score_samples(X)
        if self.contamination == "auto":
            self.offset_ = -self._auto_threshold(-scores, valid_idx)
        else:
            self.offset_ = float(np.percentile(scores, 100.0 * self.contamination))

    @staticmethod
    def _auto_threshold(errors, held_out):
        """Relative error above which contamination='auto' flags a row.

        Tukey's outer fence, Q3 + 3 IQR, of the training rows' errors,
        widened by the ratio of the held-out rows' median error to theirs:
        rows the network never saw reconstruct worse than those it trained on.
        """
        trained = np.ones(len(errors), dtype=bool)
        if held_out is not None:
            trained[held_out] = False
        q1, median, q3 = np.percentile(errors[trained], [25, 50, 75])
        fence = q3 + _AUTO_FENCE * (q3 - q1)
        if held_out is not None and median > 0:
            fence *= max(np.median(errors[held_out]) / median, 1.0)
        return float(fence)

    def _score_samples(self, X):
        """Negative mean relative squared error of the rows of validated ``X``."""
        scale = self._error_scale
        return -self._batched(
            X,
            lambda batch: (
                self._feature_errors(batch).double().cpu().numpy() / scale
            ).mean(axis=1),
        )

    def score_samples(self, X):
        """Anomaly score of each row: the lower, the more abnormal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Minus the mean over features of the squared reconstruction error
            divided by that feature's training error scale; about -1 for
            training rows.
        """
        check_is_fitted(self)
        check_rows_ndim(X, self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self._score_samples(X).astype(X.dtype, copy=False)

    def decision_function(self, X):
        """Score shifted by the threshold: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Label rows as inliers (+1) or outliers (-1).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to label.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 where :meth:`decision_function` is negative, +1 elsewhere.
        """
        return np.where(self.decision_function(X) < 0, -1, 1)

    def score(self, X, y=None):
        """Mean anomaly score of ``X``: higher is more normal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.
        y : Ignored
            Not used.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))
