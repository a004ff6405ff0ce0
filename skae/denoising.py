"""DenoisingAutoencoder: an autoencoder trained to undo corruption."""

import warnings
from numbers import Real

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from skae._base import _BaseAutoencoder
from skae._mixins import NoiseMixin, OrderedMixin, PartialFitMixin
from skae._params import MEASURED_DEFAULTS, fill_doc, make_init
from skae._threads import one_thread
from skae._validation import (
    Interval,
    StrOptions,
    check_rows_ndim,
    torch_seed,
    user_stacklevel,
    wrap_like_input,
)
from skae.noise import NOISE_KINDS

# Ridge penalty of the skip's start, relative to the mean variance of the
# corrupted rows: enough to pin down pixels that never vary.
_SKIP_RIDGE = 1e-3
# Beyond this many features the skip warns of its memory: about 40 bytes per
# weight (float32 weight, gradient and Adam's two moments; the float64
# Gram matrix, right-hand side and solution of its start), measured as 1.0
# GiB above the import for 5,000 features and 2.3 GiB for 8,000, so about
# 3.7 GiB for 10,000 and 15 GiB for 20,000.
_SKIP_WARN_FEATURES = 10_000
_SKIP_BYTES_PER_WEIGHT = 40


@fill_doc
class DenoisingAutoencoder(NoiseMixin, OrderedMixin, PartialFitMixin, _BaseAutoencoder):
    """Autoencoder trained to reconstruct clean rows from corrupted ones.

    The same transformer as :class:`AutoencoderTransformer`, whose network
    sees, during training only, a corrupted copy of each batch (drawn afresh
    for every batch, on the training device, from the estimator's own seeded
    generator) and learns to reconstruct the clean rows. Early stopping
    watches the denoising loss on held-out rows corrupted once, so epochs
    compare fairly. Inference never adds noise: :meth:`transform` encodes X as
    given, and :meth:`denoise` cleans noisy rows: the decoded code plus, by
    default, a linear path from the input (``skip``).

    Parameters
    ----------
    %(n_components)s
    noise : {'gaussian', 'masking', 'salt_pepper'} or callable, default='gaussian'
        The corruption: additive Gaussian noise, a fraction of each row's
        entries set to 0, or a fraction set to the data's minimum or maximum
        (salt and pepper). A callable ``fn(x, generator) -> x_noisy`` works on
        torch tensors in data units, rows of shape ``(batch, n_features)``
        also with ``image_shape`` (``x.view(len(x), *image_shape)`` gives
        the images; return the rows' shape), and should draw its noise from
        ``generator``. To pickle the model (``joblib.dump``), make it a
        module-level function, not a lambda.
    noise_level : float, default=0.1
        Gaussian standard deviation in data units, or the fraction of each
        row's entries masked or flipped (in [0, 1]). :meth:`partial_fit`
        reads ``noise``, ``noise_level`` and ``clip`` at each call, as it
        does ``alpha``: set them between calls to anneal the noise.
    clip : bool, default=True
        Clip corrupted inputs to the training data's range ``[min(X),
        max(X)]`` (with :meth:`partial_fit`, of every chunk so far), so
        images in [0, 1] stay in [0, 1]. Clipping comes after
        corruption: where 0 lies outside that range, masked entries end up at
        the nearest bound.
    skip : {'linear'} or None, default='linear'
        A linear map from the (corrupted) input straight to the output, added
        to the decoded code: the path for the detail that a narrow code
        cannot carry, which matters most when the noise is light. With
        ``init='pca'`` and ``loss='mse'`` it starts as the best linear
        denoiser of the corrupted training rows given the PCA start (a ridge
        regression), so the first state early stopping scores is already at
        least as good as the noisy input and as PCA at any k; training then
        improves on it. Otherwise it starts at zero. With a skip,
        :meth:`denoise` runs the whole network, and the code from
        :meth:`transform` carries what the linear map misses; for codes that
        describe the rows alone (features for another model), use
        ``skip=None``, the earlier layout. ``ordered=True`` needs
        ``skip=None``: the prefixes of a code that leaves part of every row
        to the linear map are not codes of the rows. The map is
        ``n_features`` by ``n_features`` and its start solves a system of
        that size: on very wide rows (20,000 features: 400 million weights,
        1.6 GB in float32 for the weights, as much for their gradient and
        for each of Adam's two moments, and 3.2 GB for each float64 matrix
        of the start) use ``skip=None``; beyond 10,000 features ``fit``
        warns of the memory.
    %(ordered)s
    %(measured_hidden_layer_sizes, measured_activation, image_shape)s
    %(conv_channels, init, loss, batch_size)s
    %(planned_learning_rate)s
        A planned run because in the denoising benchmark 60 epochs of it
        denoised about as well as the ``'constant'`` rate of 1e-3 trained
        until early stopping or 200 epochs, in a fraction of the time
        (:ref:`defaults_chosen`).
    %(planned_learning_rate_init, ema_decay, measured_alpha)s
    max_iter : int or 'auto', default=60
        Number of epochs: with ``'one_cycle'`` the length of the run, else
        the most (``'auto'``: as for :class:`AutoencoderTransformer`). 60,
        the length ``'auto'`` gives a planned run, where the transformer's
        other schedules allow 200,
        because in the denoising benchmark 60 epochs of a planned run
        denoised as well as the constant rate's longer runs, where 30 lost
        up to 0.6 dB on the digits (about 16 steps an epoch there).
    %(tol)s
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows, corrupt them once, and
        keep the weights (the initial state included) that denoise them
        best; with a schedule other than ``'one_cycle'``, also stop when
        their denoising loss stops improving.
    %(validation_fraction, n_iter_no_change, device, precision, callbacks)s
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the weights, the batch order and the noise.
    %(verbose)s

    Attributes
    ----------
    %(n_components_, n_components_pca_, mean_, n_samples_seen_)s
    %(held_out_explained_variance_score_, explained_variance_)s
    %(n_iter_, partial_fit_training_plan_, best_epoch_)s
    loss_curve_ : list of float
        Training (denoising) loss per epoch.
    validation_loss_curve_ : list of float or None
        Held-out denoising loss per epoch; None without early stopping
        and once ``partial_fit`` has trained (it holds nothing out).
    %(net_)s
    module_ : torch.nn.Module
        The fitted network, with its corruption layer in front.
    %(n_features_in_, feature_names_in_)s

    See Also
    --------
    AutoencoderTransformer : The same without corruption.
    sklearn.decomposition.PCA : Project and reconstruct, the linear denoiser.

    References
    ----------
    .. [1] P. Vincent, H. Larochelle, Y. Bengio and P.-A. Manzagol,
       "Extracting and composing robust features with denoising
       autoencoders", ICML 2008.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skae import DenoisingAutoencoder
    >>> X = load_digits().data / 16
    >>> dae = DenoisingAutoencoder(16, noise_level=0.3, max_iter=5, random_state=0)
    >>> dae = dae.fit(X)
    >>> noisy = np.clip(X + np.random.RandomState(0).normal(0, 0.3, X.shape), 0, 1)
    >>> dae.denoise(noisy).shape
    (1797, 64)
    """

    _parameter_constraints: dict = {
        **_BaseAutoencoder._parameter_constraints,
        "noise": [StrOptions(set(NOISE_KINDS)), callable],
        "noise_level": [Interval(Real, 0, None, closed="left")],
        "clip": ["boolean"],
        "skip": [StrOptions({"linear"}), None],
        "ordered": ["boolean"],
    }

    __init__ = make_init(
        {
            "noise": "gaussian",
            "noise_level": 0.1,
            "clip": True,
            "skip": "linear",
            "ordered": False,
        },
        {
            **MEASURED_DEFAULTS,
            "learning_rate": "one_cycle",
            "learning_rate_init": 4e-3,
            "max_iter": 60,
        },
    )

    def _check_data_params(self, X):
        super()._check_data_params(X)
        largest = max(abs(float(X.min())), abs(float(X.max())))
        # A Python float: compared with a float32 bound, numpy would cast
        # largest to float32, overflowing with a RuntimeWarning.
        if largest > float(np.finfo(np.float32).max):
            raise ValueError(
                f"noise={self.noise!r} corrupts the rows in their own units, in "
                "float32, whose range (about 3.4e38) X leaves: its values "
                f"reach {largest:.3g}. Rescale X (e.g. with a StandardScaler)."
            )
        if self.ordered and self.skip is not None:
            raise ValueError(
                f"ordered=True needs skip=None, got skip={self.skip!r}: with a "
                "linear map from the input beside the code, the code carries "
                "only what the map misses, so its prefixes are not codes of "
                "the rows. Set skip=None to order the code."
            )

    def _start(self, network, X_train, rng):
        """Start at PCA; the skip's start needs the training rows too."""
        super()._start(network, X_train, rng)
        return X_train

    def _wrap_network(self, network, start, X, device, rng):
        module = super()._wrap_network(network, start, X, device, rng)
        # Where a later partial_fit clips and flips to, widened by its rows.
        module.data_range = (float(X.min()), float(X.max()))
        if self.skip is None:
            return module
        n_features = X.shape[1]
        if n_features > _SKIP_WARN_FEATURES:
            # Here, set up once, rather than at each partial_fit.
            n_weights = n_features**2
            warnings.warn(
                f"skip={self.skip!r} on {n_features} features is a linear map "
                f"of {n_features} x {n_features} ({n_weights:,} weights): with "
                "its gradient, Adam's state and the ridge regression it starts "
                f"from, about {n_weights * _SKIP_BYTES_PER_WEIGHT / 2**30:.1f} "
                "GiB. Set skip=None to denoise through the code alone, or "
                "reduce the features first (e.g. with PCA).",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        # No random start to draw: it starts at zero or at the ridge fit.
        skip = nn.utils.skip_init(nn.Linear, n_features, n_features)
        nn.init.zeros_(skip.weight)
        nn.init.zeros_(skip.bias)
        if start is not None and self.loss == "mse":
            weight, bias = _linear_denoiser(module, start, torch_seed(rng))
            with torch.no_grad():
                skip.weight.copy_(weight.T)
                skip.bias.copy_(bias)
        module.skip = skip
        return module

    def _next_partial_fit(self, X):
        # The noise parameters shape the training loss: read at each call, as
        # alpha is, so set_params between calls can anneal the noise. The
        # generator the earlier calls drew from goes on drawing.
        module = self.net_.module_
        previous, previous_range = module.corruption, module.data_range
        # The range of every row trained on, as fit's is of all its rows:
        # the first chunk's alone would clip a later chunk's wider rows,
        # even without noise.
        low, high = previous_range
        data_range = (min(low, float(X.min())), max(high, float(X.max())))
        corruption = self._corruption(*data_range)
        module.corruption = corruption.set_generator(previous.generator)
        module.data_range = data_range
        try:
            super()._next_partial_fit(X)
        except BaseException:
            # A call that fails changes nothing.
            module.corruption, module.data_range = previous, previous_range
            raise

    def denoise(self, X):
        """Reconstruct clean rows from noisy ``X``.

        The whole network in inference mode (no noise is added): the decoded
        code, plus the ``skip`` path's map of ``X``. With ``skip=None`` the
        same as ``inverse_transform(transform(X))``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Noisy rows.

        Returns
        -------
        X_clean : ndarray of shape (n_samples, n_features)
            The denoised rows, in the input's units and float dtype; a
            DataFrame (pandas or polars, as ``set_output(transform=...)``
            asks) with the original column names (and a pandas ``X``'s index)
            when ``fit`` saw feature names, as for :meth:`inverse_transform`.
        """
        check_is_fitted(self)
        check_rows_ndim(X, self)
        X_given = X
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        denoised = self.net_.map_batches(
            X,
            lambda module, batch: module(batch).float(),
            self._units.to_model,
        )
        return wrap_like_input(
            self,
            self._units.from_model(denoised, X.dtype),
            X_given,
            getattr(self, "feature_names_in_", None),
        )


def _linear_denoiser(module, X_train, seed):
    """Best linear map from corrupted rows to what the network misses.

    ``X_train`` holds clean training rows in model units. They are
    corrupted once, with a generator of their own, and the ridge regression
    of the network's residual (clean minus its reconstruction of the
    corrupted row) on the corrupted row gives the skip's weight and bias, in
    float64: network plus skip then start as the best linear denoiser of
    those rows that keeps the network's start.
    """
    clean = torch.from_numpy(np.asarray(X_train, dtype=np.float32))
    corruption = module.corruption
    training_generator = corruption.generator
    corruption.set_generator(torch.Generator().manual_seed(seed))
    corruption.train()
    network = module.network.cpu().eval()
    with torch.no_grad():
        noisy = module.corrupt(clean)
        # In batches: a convolutional network's activations for every row
        # at once would not fit in memory.
        residual = clean - torch.cat([network(rows) for rows in noisy.split(4096)])
    corruption.set_generator(training_generator)
    noisy, residual = noisy.double(), residual.double()
    noisy_mean, residual_mean = noisy.mean(dim=0), residual.mean(dim=0)
    noisy, residual = noisy - noisy_mean, residual - residual_mean
    gram = noisy.T @ noisy
    ridge = _SKIP_RIDGE * gram.diagonal().mean().clamp_min(1e-12)
    gram.diagonal().add_(ridge)
    with one_thread():
        weight = torch.linalg.solve(gram, noisy.T @ residual)
    bias = residual_mean - noisy_mean @ weight
    return weight.float(), bias.float()
