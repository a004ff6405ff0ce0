"""Mixins shared by some of skae's estimators: chunked training, noise, order.

Each is mixed in before :class:`~skae._base._BaseAutoencoder`, whose hooks
it overrides; the estimators import them from here, never from each other.
"""

import copy
import warnings
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from skae._callbacks import fit_task
from skae._ordering import nested_dropout
from skae._threads import one_blas_thread
from skae._training import (
    TrainingDivergedError,
    agreed_validation,
    rank_seed,
    resume_training,
    rows_to_device,
    shared_random_state,
    torch_training_state,
    undone_on_error,
)
from skae._units import input_axes
from skae._validation import (
    Interval,
    StrOptions,
    check_rows_ndim,
    partial_fit_context,
    torch_seed,
    user_stacklevel,
)
from skae.noise import _n_replaced, make_noise


class PartialFitMixin:
    """Training on chunks of rows, one epoch per call: ``partial_fit``.

    For autoencoders whose fitted state is the network alone.
    """

    @partial_fit_context
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
        Each call reads the parameters of the training loss and loop as
        they stand (``alpha``, ``batch_size``, ``verbose``, ``callbacks``,
        a denoiser's ``noise``, ``noise_level`` and ``clip``, a VAE's
        ``beta``): :meth:`set_params` between calls anneals them. The
        model's own parameters (``hidden_layer_sizes``, ``activation``,
        ``image_shape``, ``conv_channels``, ``init``, ``input_components``,
        ``device``, ``precision``, ``random_state``) are read when the model
        is set up, by :meth:`fit` or a first call: set between calls, they
        take effect at the next :meth:`fit`.

        No rows are held out and nothing stops early: ``early_stopping``,
        ``validation_fraction``, ``n_iter_no_change``, ``tol`` and
        ``max_iter`` do not apply, and the latest weights are kept. Decide
        when to stop from :meth:`score` on held-out rows. After :meth:`fit`,
        ``partial_fit`` goes on training the fitted model, at its width: an
        int ``n_components`` other than ``n_components_`` raises a
        ValueError, except for a prefix of an ordered model's code (see
        :meth:`truncate`), and so does a ``loss`` other than the fitted
        one. No schedule
        applies either: calls on an unfitted estimator train at
        ``learning_rate_init`` throughout, which for ``'one_cycle'`` is the
        peak of a planned run, higher than a constant rate should be: pass
        a lower ``learning_rate_init``, such as the transformer's 1e-3, to
        stream into a :class:`~skae.DenoisingAutoencoder`.

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
        X_given = X
        with agreed_validation(self):
            check_rows_ndim(X, self)
            X = validate_data(
                self,
                X,
                dtype=[np.float64, np.float32],
                reset=first,
                ensure_min_samples=2 if first else 1,
            )
        # A first call that fails leaves the estimator unfitted, as fit does;
        # a later one leaves it as it was. Also when a callback's hook fails
        # at the end of the call, after training: a retry of the chunk would
        # otherwise train on it twice.
        undone = self._undone_on_error() if first else self._unchanged_on_error()
        with (
            torch_training_state(),
            undone,
            fit_task(self, X_given, y, epochs=False),
        ):
            if first:
                self._first_partial_fit(X)
            else:
                self._next_partial_fit(X)
        return self

    def _first_partial_fit(self, X):
        """Set up the model on the first chunk and train one epoch on it."""
        rng = shared_random_state(self.random_state)
        with one_blas_thread():
            train = self._setup(X, rng, np.arange(len(X)), None, stopping=False)
        self.net_.initialize()
        self.net_.partial_fit(train, epochs=1)
        self._record_training(X, None)

    def _next_partial_fit(self, X):
        """Train the fitted model one epoch on a further chunk.

        When it fails, :meth:`partial_fit` undoes all of it
        (:meth:`_unchanged_on_error`).
        """
        self._check_loss()
        self._check_data_params(X)
        self._check_width()
        resume_training(self.net_, self)
        train = rows_to_device(self._units.to_model(X), torch.device(self.net_.device))
        try:
            self.net_.partial_fit(train, epochs=1)
        except TrainingDivergedError as error:
            raise TrainingDivergedError(
                f"{error} This partial_fit changed nothing: the model is the "
                "one the earlier calls trained, whose rate learning_rate_init "
                "no longer sets (a fit or a first partial_fit does); look "
                "for extreme values in this chunk."
            ) from error
        # The running mean of every row seen (the model's own offset stays
        # the one it was set up with), in the dtype the setup gave it,
        # whatever the dtype of this chunk.
        self.n_samples_seen_ += len(X)
        step = (X.mean(axis=0) - self.mean_) * (len(X) / self.n_samples_seen_)
        self.mean_ = (self.mean_ + step).astype(self.mean_.dtype, copy=False)
        self._record_training(X, None)

    @contextmanager
    def _unchanged_on_error(self):
        """Put the fitted estimator back as it was when the block raises.

        Its network (:func:`undone_on_error`, and the net's own attributes,
        which :func:`resume_training` sets: its optimizer, batch size,
        callbacks), the width its code keeps and its fitted attributes: the
        pass over the chunk after training can fail too (out of memory), when
        the epoch's weights, the running mean and the rows counted were
        already in, and a retry of the chunk then trained on it twice.
        """
        attributes = dict(vars(self))
        net = self.net_
        net_attributes = dict(vars(net))
        layer = nested_dropout(net.module_)
        kept = layer.kept
        try:
            with undone_on_error(net):
                yield
        except BaseException:
            # After undone_on_error, which loads the optimizer state into the
            # net's optimizer as it stands: a snapshot's own new one, which
            # goes, or the one it kept, which comes back to that state.
            vars(net).clear()
            vars(net).update(net_attributes)
            vars(self).clear()
            vars(self).update(attributes)
            layer.kept = kept
            raise

    def _check_loss(self):
        """Refuse a ``loss`` other than the one the fitted network trains with.

        Its criterion and scaling were set up for the fitted loss: checking
        the chunk against another one would let a chunk outside [0, 1] into
        ``'bce'``'s cross-entropy, whose value then falls below zero without
        bound.
        """
        fitted = self._units.loss
        if self.loss != fitted:
            raise ValueError(
                f"loss={self.loss!r} differs from the fitted model's "
                f"loss={fitted!r}: partial_fit goes on training the fitted "
                f"network with its loss. Set loss={fitted!r} again, or fit "
                "anew for another loss."
            )

    def _check_width(self):
        """Refuse an int ``n_components`` the fitted network cannot give.

        Training goes on with the fitted network, whose code cannot grow; only
        an ordered code can be cut to a prefix (as :meth:`truncate` does).
        """
        if not isinstance(self.n_components, Integral):
            return
        layer = nested_dropout(self.net_.module_)
        width = layer.n_units
        # The fitted network says whether its code is ordered: ``ordered``
        # set after fit does not change how the code was trained.
        if self.n_components == self.n_components_ or (
            layer.ordered and self.n_components <= width
        ):
            return
        if self.n_components > width:
            why = f"exceeds the fitted network's code, {width} units wide"
        else:
            why = (
                f"is narrower than the fitted code's {self.n_components_} units, "
                "which were not trained in order (ordered=False)"
            )
        raise ValueError(
            f"n_components={self.n_components} {why}: partial_fit goes on "
            f"training the fitted network. Set n_components={self.n_components_} "
            "again, or fit anew for another width."
        )


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

    def _check_data_params(self, X):
        super()._check_data_params(X)
        # Levels that are no fraction are refused by make_noise, later.
        level, n_features = self.noise_level, X.shape[1]
        if (
            isinstance(self.noise, str)
            and self.noise in ("masking", "salt_pepper")
            and isinstance(level, Real)
            and not isinstance(level, bool)
            and 0 < level <= 1
            and _n_replaced(float(level), n_features) == 0
        ):
            warnings.warn(
                f"noise={self.noise!r} replaces round(noise_level * n_features) "
                f"entries of each row, and noise_level={level!r} on {n_features} "
                "features replaces none: the network trains on clean rows. Set "
                f"noise_level to at least {1 / n_features:.3g} (one entry a row).",
                UserWarning,
                stacklevel=user_stacklevel(),
            )

    def _corruption(self, low, high):
        """Return the corruption layer of the noise parameters, for [low, high]."""
        # A constant X has no range to clip to.
        clip = (low, high) if self.clip and low < high else None
        return make_noise(self.noise, self.noise_level, clip=clip, low=low, high=high)

    def _wrap_network(self, network, start, X, device, rng):
        if self.noise is None:
            return super()._wrap_network(network, start, X, device, rng)
        # The corruption's round trip through data units divides by the
        # scale in float32: one below its normal range is flushed to zero,
        # and the fit "diverged" with advice on learning_rate_init.
        tiny = float(np.finfo(np.float32).tiny)
        if self._units.scale < tiny:
            raise ValueError(
                f"noise={self.noise!r} corrupts the rows in their own units, in "
                f"float32, whose smallest normal number (about {tiny:.2g}) is "
                "above the rows' variation about their mean "
                f"({self._units.scale:.2g}), and which the CPU flushes to zero. "
                "Rescale X (e.g. with a StandardScaler)."
            )
        corruption = self._corruption(float(X.min()), float(X.max()))
        corruption.set_generator(
            torch.Generator(device=device).manual_seed(rank_seed(torch_seed(rng)))
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


class OrderedMixin:
    """:meth:`truncate`: the model of a prefix of an ordered code.

    For estimators with an ``ordered`` parameter, whose code can be trained
    in order (nested dropout, see :mod:`skae._ordering`) so that its
    prefixes are codes too.
    """

    def truncate(self, n_components):
        """Return the fitted model of the first ``n_components`` code units.

        Without refitting: a copy of this ordered model whose
        :meth:`transform` returns the first ``n_components`` columns of this
        one's and whose decoder sees the other units dropped, as in
        training; its ``explained_variance_ratio_`` is this one's, cut. Use
        it to keep the width chosen from ``explained_variance_ratio_``. In a
        Pipeline, wrap it in :class:`~sklearn.frozen.FrozenEstimator`: the
        Pipeline's ``fit`` would otherwise train it anew, from scratch.

        Parameters
        ----------
        n_components : int
            Code units to keep, from 1 to ``n_components_``.

        Returns
        -------
        truncated : estimator
            A fitted copy with ``n_components=n_components``. The parameter
            is set too: :func:`~sklearn.base.clone` of the copy gives an
            unfitted model that ``fit`` trains anew at that width.

        Raises
        ------
        ValueError
            If the fitted network's code was not trained in order (fitted
            with ``ordered=False``, whatever ``ordered`` says now), or if
            ``n_components`` is outside ``[1, n_components_]``.
        TypeError
            If ``n_components`` is not an int (a bool or a float is refused).

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skae import AutoencoderTransformer
        >>> X, _ = load_digits(return_X_y=True)
        >>> ae = AutoencoderTransformer(
        ...     8, ordered=True, hidden_layer_sizes=(32,), max_iter=3, random_state=0
        ... )
        >>> ae = ae.fit(X)
        >>> ae.truncate(3).transform(X[:2]).shape
        (2, 3)
        """
        check_is_fitted(self)
        # The fitted network's order, not the parameter, which set_params may
        # have changed since the fit.
        if not nested_dropout(self.net_.module_).ordered:
            raise ValueError(
                "truncate needs an ordered model: the prefixes of a code "
                "trained with ordered=False are not codes of their own. Fit "
                "with ordered=True."
            )
        if isinstance(n_components, bool) or not isinstance(n_components, Integral):
            raise TypeError(f"n_components must be an int, got {n_components!r}.")
        if not 1 <= n_components <= self.n_components_:
            raise ValueError(
                f"n_components={n_components} must be in [1, "
                f"n_components_={self.n_components_}]."
            )
        truncated = copy.deepcopy(self)
        truncated.n_components = truncated.n_components_ = int(n_components)
        truncated.n_components_pca_ = None
        # Cut from the copy's arrays: slices of this model's would be views,
        # through which changing one model's spectrum changes the other's.
        ratio = truncated.explained_variance_ratio_[:n_components]
        truncated.explained_variance_ratio_ = ratio
        truncated.explained_variance_ = truncated.explained_variance_[:n_components]
        truncated.explained_variance_score_ = float(np.sum(ratio))
        nested_dropout(truncated.net_.module_).kept = int(n_components)
        return truncated


class InputAxesMixin:
    """``input_components``: the network on the rows' principal coordinates.

    For estimators with an ``input_components`` parameter (see
    :func:`~skae._units.input_axes`); ``_auto_input_axes(n_train, device)``
    says where ``'auto'`` applies, on top of a dense network with
    ``loss='mse'`` on clean rows whose features outnumber its widest hidden
    layer. Sets ``input_components_``.
    """

    _parameter_constraints: dict = {
        "input_components": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
    }

    def _axes_possible(self):
        """Whether the network can train on principal coordinates."""
        dense = self.image_shape is None or not len(self.conv_channels)
        clean = getattr(self, "noise", None) is None
        return dense and clean and self.loss == "mse"

    def _check_data_params(self, X):
        super()._check_data_params(X)
        # The constraints take True for the int 1, as for n_components.
        if isinstance(self.input_components, bool | np.bool_):
            raise TypeError(
                "input_components must be an int, 'auto' or None, got the bool "
                f"{self.input_components!r}; pass input_components=1 for one axis."
            )
        if isinstance(self.input_components, Integral) and not self._axes_possible():
            raise ValueError(
                "input_components needs a dense network, loss='mse' and no "
                "noise, as principal coordinates are neither images, nor "
                "probabilities, nor corrupted in data units; got "
                f"image_shape={self.image_shape!r}, "
                f"conv_channels={self.conv_channels!r}, loss={self.loss!r}, "
                f"noise={getattr(self, 'noise', None)!r}. Set "
                "input_components=None."
            )

    def _input_axes(self, X, n_train, device):
        # Only where the input layer is the widest, whose cost the axes cut
        # (of the network on every feature).
        widest = max(self._hidden_sizes(on_axes=False), default=0)
        auto = (
            self._axes_possible()
            and X.shape[1] > widest
            and self._auto_input_axes(n_train, device)
        )
        self.input_components_ = input_axes(
            X, self.input_components, self.n_components_, auto=auto
        )
        return self.input_components_
