"""DenoisingAutoencoder: an autoencoder trained to undo corruption."""

from numbers import Real

import torch
from torch import nn

from skae._base import PartialFitMixin, _BaseAutoencoder
from skae._validation import Interval, StrOptions, torch_seed
from skae.noise import NOISE_KINDS, make_noise


class _CorruptedInput(nn.Module):
    """Corrupt the input in data units, then run the network.

    The network works in model units (centred and scaled); noise levels and
    clipping ranges are the user's, in data units, so corruption converts
    there and back. In eval mode the input goes straight through.
    """

    def __init__(self, network: nn.Module, corruption: nn.Module, offset, scale):
        super().__init__()
        self.network = network
        self.corruption = corruption
        self.register_buffer("offset", torch.as_tensor(offset, dtype=torch.float32))
        self.scale = float(scale)

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """Corrupt rows in model units (the corruption layer's mode applies)."""
        return (
            self.corruption(x * self.scale + self.offset) - self.offset
        ) / self.scale

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ``x``, corrupted first in train mode."""
        return self.network.encode(self.corrupt(x) if self.training else x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode codes with the network's decoder."""
        return self.network.decode(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct the clean rows from (in train mode, corrupted) ``x``."""
        return self.decode(self.encode(x))


class _NoiseMixin:
    """Train on rows corrupted by ``noise`` (None: on the rows as given).

    For estimators with ``noise``, ``noise_level`` and ``clip`` parameters:
    the network gets a corruption layer in front that works in train mode
    only, and early stopping watches held-out rows corrupted once.
    """

    def _wrap_network(self, network, X, device, rng):
        if self.noise is None:
            return super()._wrap_network(network, X, device, rng)
        low, high = float(X.min()), float(X.max())
        # A constant X has no range to clip to.
        clip = (low, high) if self.clip and low < high else None
        corruption = make_noise(
            self.noise, self.noise_level, clip=clip, low=low, high=high
        )
        corruption.set_generator(
            torch.Generator(device=device).manual_seed(torch_seed(rng))
        )
        return _CorruptedInput(network, corruption, self._offset, self._scale)

    def _validation_set(self, module, X_valid, device, rng):
        if self.noise is None:
            return super()._validation_set(module, X_valid, device, rng)
        # Corrupted once with a generator of its own, so every epoch is
        # scored on the same noisy rows and the training noise is untouched.
        training_generator = module.corruption.generator
        module.corruption.set_generator(
            torch.Generator(device=device).manual_seed(torch_seed(rng))
        )
        module.to(device).corruption.train()
        with torch.no_grad():
            # On the training device, where the generator lives; the result
            # goes back to wherever the clean rows are kept.
            noisy = module.corrupt(X_valid.to(device)).to(X_valid.device)
        module.corruption.set_generator(training_generator)
        return noisy, X_valid


class DenoisingAutoencoder(_NoiseMixin, PartialFitMixin, _BaseAutoencoder):
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
    n_components : int or float, default=2
        Width of the code. A float in (0, 1) means, as for PCA, as many
        components as PCA needs to explain that fraction of the variance.
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
    hidden_layer_sizes : int or tuple of int, default=(512, 256)
        Hidden widths of the dense encoder; the decoder mirrors them. An int
        is one hidden layer.
    activation : {'relu', 'silu', 'elu', 'tanh', 'logistic', 'identity'}, default='relu'
        Nonlinearity of the hidden layers.
    image_shape : tuple of int (C, H, W), default=None
        Treat rows as flattened images and use the convolutional network.
    conv_channels : tuple of int, default=(16, 32, 64)
        Channels of the convolutional encoder's stages; ``()`` gives image
        rows the dense network.
    init : {'pca', 'random'}, default='pca'
        Start from PCA's solution (plus a zero residual), or at random.
    loss : {'mse', 'bce'}, default='mse'
        Mean squared error, or binary cross-entropy on a sigmoid output for
        data in [0, 1].
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
        :meth:`partial_fit` trains on at the rate ``fit`` ended with.
    learning_rate_init : float, default=1e-3
        Adam's learning rate.
    alpha : float, default=1e-4
        L2 penalty (Adam's weight decay).
    max_iter : int, default=200
        Maximum number of epochs.
    tol : float, default=1e-4
        Relative improvement of the monitored loss that counts as progress.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows, corrupt them once, and
        stop when their denoising loss stops improving, restoring the best
        weights (the initial state included).
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
        Seeds the split, the weights, the batch order and the noise.
    verbose : int, default=0
        0 is silent; 1 prints a line per epoch (losses, learning rate, time
        taken and left), plain text unless stdout is a terminal; 2 adds a
        per-batch progress bar on a terminal.

    Attributes
    ----------
    n_components_ : int
        Width of the code.
    mean_ : ndarray of shape (n_features,)
        Per-feature mean of the training data.
    explained_variance_score_ : float
        Fraction of the (clean) training data's variance explained by the
        reconstruction.
    n_iter_ : int
        Number of epochs run.
    best_epoch_ : int
        Epoch whose weights were kept (0: the initial PCA state; a random
        start is never kept, so with ``init='random'`` it is at least 1).
    loss_curve_ : list of float
        Training (denoising) loss per epoch.
    validation_loss_curve_ : list of float or None
        Held-out denoising loss per epoch; None without early stopping.
    net_ : AutoencoderNet
        The fitted skorch net.
    module_ : torch.nn.Module
        The fitted network, with its corruption layer in front.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit, when X has string column names.

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
    }

    def __init__(
        self,
        n_components=2,
        *,
        noise="gaussian",
        noise_level=0.1,
        clip=True,
        hidden_layer_sizes=(512, 256),
        activation="relu",
        image_shape=None,
        conv_channels=(16, 32, 64),
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
        self.noise = noise
        self.noise_level = noise_level
        self.clip = clip

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
