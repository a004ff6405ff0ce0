"""DenoisingAutoencoder: an autoencoder trained to undo corruption."""

from numbers import Real

from skae._base import _BaseAutoencoder
from skae._mixins import NoiseMixin, OrderedMixin, PartialFitMixin
from skae._params import MEASURED_DEFAULTS, fill_doc, make_init
from skae._validation import Interval, StrOptions
from skae.noise import NOISE_KINDS


@fill_doc
class DenoisingAutoencoder(NoiseMixin, OrderedMixin, PartialFitMixin, _BaseAutoencoder):
    """Autoencoder trained to reconstruct clean rows from corrupted ones.

    The same transformer as :class:`AutoencoderTransformer`, whose network
    sees, during training only, a corrupted copy of each batch (drawn afresh
    for every batch, on the training device, from the estimator's own seeded
    generator) and learns to reconstruct the clean rows. Early stopping
    watches the denoising loss on held-out rows corrupted once, so epochs
    compare fairly. Inference never adds noise: :meth:`transform` encodes X as
    given, and :meth:`denoise` (``inverse_transform(transform(X))``) cleans
    noisy rows.

    Parameters
    ----------
    %(n_components)s
    noise : {'gaussian', 'masking', 'salt_pepper'} or callable, default='gaussian'
        The corruption: additive Gaussian noise, a fraction of each row's
        entries set to 0, or a fraction set to the data's minimum or maximum
        (salt and pepper). A callable ``fn(x, generator) -> x_noisy`` works on
        torch tensors in data units and should draw its noise from
        ``generator``.
    noise_level : float, default=0.1
        Gaussian standard deviation in data units, or the fraction of each
        row's entries masked or flipped (in [0, 1]).
    clip : bool, default=True
        Clip corrupted inputs to the training data's range ``[min(X),
        max(X)]``, so images in [0, 1] stay in [0, 1]. Clipping comes after
        corruption: where 0 lies outside that range, masked entries end up at
        the nearest bound.
    %(ordered)s
    %(measured_hidden_layer_sizes, measured_activation, image_shape)s
    %(conv_channels, init, loss, batch_size, measured_learning_rate)s
    %(learning_rate_init, measured_alpha, max_iter, tol)s
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows, corrupt them once, and
        stop when their denoising loss stops improving, restoring the best
        weights (the initial state included).
    %(validation_fraction, n_iter_no_change, device, precision, callbacks)s
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the weights, the batch order and the noise.
    %(verbose)s

    Attributes
    ----------
    %(n_components_, n_components_pca_, mean_)s
    %(held_out_explained_variance_score_, explained_variance_)s
    %(n_iter_, best_epoch_)s
    loss_curve_ : list of float
        Training (denoising) loss per epoch.
    validation_loss_curve_ : list of float or None
        Held-out denoising loss per epoch; None without early stopping.
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
        "ordered": ["boolean"],
    }

    __init__ = make_init(
        {"noise": "gaussian", "noise_level": 0.1, "clip": True, "ordered": False},
        MEASURED_DEFAULTS,
    )

    def denoise(self, X):
        """Reconstruct clean rows from noisy ``X``.

        The same as ``inverse_transform(transform(X))``: no noise is added.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Noisy rows.

        Returns
        -------
        X_clean : ndarray of shape (n_samples, n_features)
            The denoised rows, in the input's units and float dtype.
        """
        return self.inverse_transform(self.transform(X))
