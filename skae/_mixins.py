"""Mixins shared by some of skae's estimators: chunked training and noise.

Each is mixed in before :class:`~skae._base._BaseAutoencoder`, whose hooks
it overrides; the estimators import them from here, never from each other.
"""

import numpy as np
import torch
from sklearn.utils.validation import validate_data
from torch import nn

from skae._training import drop_early_stopping, rows_to_device, shared_random_state
from skae._validation import _fit_context, check_rows_ndim, torch_seed
from skae.noise import make_noise


class PartialFitMixin:
    """Training on chunks of rows, one epoch per call: ``partial_fit``.

    For autoencoders whose fitted state is the network alone.
    """

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train one epoch on ``X``, one chunk of the training rows.

        For data that do not fit in memory, read in chunks (a loop over
        files, or slices of a :class:`numpy.memmap`), as with
        :class:`~sklearn.decomposition.IncrementalPCA`. The first call on an
        unfitted estimator sets the model up from its chunk: the code width
        (``n_components``, an int or a fraction of that chunk's variance),
        the scaling (the chunk's mean and root mean square) and, with
        ``init='pca'``, the PCA start; make it a representative chunk with at
        least as many rows as components. Every call, the first included,
        then trains one epoch over its rows, in batches of ``batch_size``.

        No rows are held out and nothing stops early: ``early_stopping``,
        ``validation_fraction``, ``n_iter_no_change``, ``tol`` and
        ``max_iter`` do not apply, and the latest weights are kept. Decide
        when to stop from :meth:`score` on held-out rows. After :meth:`fit`,
        ``partial_fit`` goes on training the fitted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training rows.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            The estimator, trained one more epoch.
        """
        first = not hasattr(self, "net_")
        check_rows_ndim(X, self)
        X = validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            reset=first,
            ensure_min_samples=2 if first else 1,
        )
        if first:
            rng = shared_random_state(self.random_state)
            _, train = self._setup(X, rng, np.arange(len(X)), None, stopping=False)
            self.net_.initialize()
        else:
            drop_early_stopping(self.net_, self)
            train = rows_to_device(
                self._units.to_model(X), torch.device(self.net_.device)
            )
            # The running mean of every row seen; the model's own offset
            # stays the one it was set up with.
            self.n_samples_seen_ += len(X)
            self.mean_ = self.mean_ + (X.mean(axis=0) - self.mean_) * (
                len(X) / self.n_samples_seen_
            )
        self.net_.partial_fit(train, epochs=1)
        self._record_training(X, train, None)
        return self


class CorruptedInput(nn.Module):
    """Corrupt the input in data units, then run the network.

    The network works in model units (centred and scaled); noise levels and
    clipping ranges are the user's, in data units, so corruption converts
    there and back. In eval mode the input goes straight through. ``skip``,
    a module from the (corrupted) input to the output, adds its output to
    the network's reconstruction: a path for what the code does not carry.
    """

    def __init__(
        self,
        network: nn.Module,
        corruption: nn.Module,
        offset,
        scale,
        skip: nn.Module | None = None,
    ):
        super().__init__()
        self.network = network
        self.corruption = corruption
        self.register_buffer("offset", torch.as_tensor(offset, dtype=torch.float32))
        self.scale = float(scale)
        self.skip = skip

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
        if self.training:
            x = self.corrupt(x)
        out = self.network.decode(self.network.encode(x))
        if self.skip is not None:
            out = out + self.skip(x)
        return out


class NoiseMixin:
    """Train on rows corrupted by ``noise`` (None: on the rows as given).

    For estimators with ``noise``, ``noise_level`` and ``clip`` parameters:
    the network gets a corruption layer in front that works in train mode
    only, and early stopping watches held-out rows corrupted once.
    """

    def _wrap_network(self, network, start, X, device, rng):
        if self.noise is None:
            return super()._wrap_network(network, start, X, device, rng)
        low, high = float(X.min()), float(X.max())
        # A constant X has no range to clip to.
        clip = (low, high) if self.clip and low < high else None
        corruption = make_noise(
            self.noise, self.noise_level, clip=clip, low=low, high=high
        )
        corruption.set_generator(
            torch.Generator(device=device).manual_seed(torch_seed(rng))
        )
        units = self._units
        return CorruptedInput(network, corruption, units.offset, units.scale)

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
