"""Shared machinery of skae's estimators: parameters, fit, transform, score.

The data path: ``fit`` validates X once and turns it into one float32 tensor
in model units (:class:`~skae._units.ModelUnits`); the net trains on it, and
the attributes that need the trained model come from one pass over it.
Inference converts each batch of rows the same way and gathers the results
into one array at the end (:meth:`~skae.AutoencoderNet.map_batches`).
"""

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from skae._callbacks import CallbackSupportMixin, EpochTasks
from skae._networks import ACTIVATIONS, ConvAutoencoder, DenseAutoencoder, pca_start
from skae._training import (
    AUTOCAST_DTYPES,
    build_net,
    rows_to_device,
    shared_random_state,
    split_rows,
)
from skae._units import ModelUnits
from skae._validation import (
    Interval,
    StrOptions,
    _fit_context,
    resolve_device,
    seeded_torch,
    torch_seed,
    wrap_like_input,
)

# The family's defaults, the transformer's. Every estimator's signature takes
# its defaults from here; one that differs says why in its docstring.
DEFAULTS = {
    "hidden_layer_sizes": (512, 256, 128),
    "activation": "silu",
    "image_shape": None,
    "conv_channels": (16, 32, 64),
    "init": "pca",
    "loss": "mse",
    "batch_size": "auto",
    "learning_rate": "adaptive",
    "learning_rate_init": 1e-3,
    "alpha": 0.0,
    "max_iter": 200,
    "tol": 1e-4,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 20,
    "device": "auto",
    "precision": "float32",
    "callbacks": None,
    "random_state": None,
    "verbose": 0,
}
# Data for `loss='bce'` must lie in [0, 1]; this much float error is tolerated.
_BCE_SLACK = 1e-6


def _check_sizes(name, value, *, allow_empty):
    """Return ``value`` as a tuple of positive ints or raise naming ``name``."""
    if np.ndim(value) > 1:
        raise ValueError(f"{name} must hold positive integers, got {value!r}.")
    sizes = tuple(np.ravel(value).tolist()) if np.ndim(value) else (value,)
    if not allow_empty and not sizes:
        raise ValueError(f"{name} must not be empty, got {value!r}.")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, Integral) or size < 1:
            raise ValueError(f"{name} must hold positive integers, got {value!r}.")
    return tuple(int(size) for size in sizes)


class _BaseAutoencoder(
    CallbackSupportMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
):
    """Base of skae's autoencoders.

    Subclasses set the docstring and the signature, and may override the
    hooks, each of which returns what it makes: ``_start`` (the PCA start),
    ``_wrap_network`` (layers around the network), ``_validation_set`` (what
    early stopping watches), ``_criterion`` (the loss) and ``_training_pass``
    (the fitted attributes that need a pass over the training rows).

    With scikit-learn >= 1.9, ``set_callbacks`` registers callbacks of
    ``sklearn.callback``: ``fit`` is a root task with one sub-task per epoch.
    """

    _parameter_constraints: dict = {
        "n_components": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="neither"),
        ],
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "image_shape": ["array-like", None],
        "conv_channels": ["array-like"],
        "init": [StrOptions({"pca", "random"})],
        "loss": [StrOptions({"mse", "bce"})],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "learning_rate": [StrOptions({"constant", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "precision": [StrOptions({"float32", *AUTOCAST_DTYPES})],
        "callbacks": [list, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=DEFAULTS["hidden_layer_sizes"],
        activation=DEFAULTS["activation"],
        image_shape=DEFAULTS["image_shape"],
        conv_channels=DEFAULTS["conv_channels"],
        init=DEFAULTS["init"],
        loss=DEFAULTS["loss"],
        batch_size=DEFAULTS["batch_size"],
        learning_rate=DEFAULTS["learning_rate"],
        learning_rate_init=DEFAULTS["learning_rate_init"],
        alpha=DEFAULTS["alpha"],
        max_iter=DEFAULTS["max_iter"],
        tol=DEFAULTS["tol"],
        early_stopping=DEFAULTS["early_stopping"],
        validation_fraction=DEFAULTS["validation_fraction"],
        n_iter_no_change=DEFAULTS["n_iter_no_change"],
        device=DEFAULTS["device"],
        precision=DEFAULTS["precision"],
        callbacks=DEFAULTS["callbacks"],
        random_state=DEFAULTS["random_state"],
        verbose=DEFAULTS["verbose"],
    ):
        self._store_params(locals())

    def _store_params(self, values):
        """Set each parameter of the signature from ``__init__``'s ``locals()``."""
        for name in self._get_param_names():
            setattr(self, name, values[name])

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder to reconstruct ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows. Images are flat rows; see ``image_shape``.
        y : Ignored
            Not used, present so the estimator fits in a Pipeline with labels.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X_given = X
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        # One sub-task per epoch. The callbacks are torn down by _fit_context,
        # also when fit raises.
        callback_ctx = self._init_callback_context(max_subtasks=self.max_iter)
        callback_ctx.call_on_fit_task_begin(estimator=self, X=X_given, y=y)
        epoch_tasks = None
        if getattr(self, "_skl_callbacks", None):
            # The epochs are skorch's: the tasks run as a callback of the net.
            epoch_tasks = EpochTasks(self, callback_ctx, X_given, y)
        attributes_before = set(vars(self))
        try:
            self._fit(X, epoch_tasks)
        except BaseException:
            # A failed fit leaves no half-fitted state that would pass
            # check_is_fitted and predict garbage: fitted attributes and
            # whatever this fit added go.
            for key in list(vars(self)):
                if key not in attributes_before or (
                    key.endswith("_") and not key.startswith("__")
                ):
                    delattr(self, key)
            raise
        callback_ctx.call_on_fit_task_end(
            estimator=self, X=X_given, y=y, reconstruction_attributes={}
        )
        return self

    def _fit(self, X, epoch_tasks):
        rng = shared_random_state(self.random_state)
        train_idx, valid_idx = split_rows(
            len(X), self.early_stopping, self.validation_fraction, rng
        )
        rows, train = self._setup(X, rng, train_idx, valid_idx, epoch_tasks=epoch_tasks)
        self.net_.fit(train)
        # The validation rows are not part of the model: do not keep them.
        self.net_.train_split = None
        self._record_training(X, train if valid_idx is None else rows, valid_idx)
        stopper = dict(self.net_.callbacks_)["early_stopping"]
        if self.n_iter_ == self.max_iter and stopper.misses_ < self.n_iter_no_change:
            warnings.warn(
                f"{type(self).__name__} reached max_iter={self.max_iter} epochs "
                "before the loss stopped improving; increase max_iter.",
                ConvergenceWarning,
                # _fit <- fit <- _fit_context: point at the caller's line.
                stacklevel=4,
            )

    def _setup(self, X, rng, train_idx, valid_idx, *, stopping=True, epoch_tasks=None):
        """Fix the data's scaling, build the network and its (unfitted) net.

        Sets ``net_`` and the attributes known before training. Returns every
        row of ``X`` in model units (one tensor on the host) and the training
        rows where the net slices its batches from (see ``rows_to_device``).
        """
        n_features = X.shape[1]
        device = resolve_device(self.device)
        self._check_data_params(X)
        self.n_components_ = self._resolve_n_components(X, len(train_idx))
        self.mean_ = X.mean(axis=0)
        self.n_samples_seen_ = len(X)
        self._units = ModelUnits(X, self.loss)
        rows = self._units.to_model(X)
        # Without a hold-out every row trains: no second copy of the data.
        train = rows if valid_idx is None else rows[train_idx]

        with seeded_torch(torch_seed(rng)):
            network = self._build_network(n_features)
        start = self._start(network, train.numpy(), rng) if self.init == "pca" else None
        module = self._wrap_network(network, start, X, device, rng)
        if self.image_shape is not None:
            # oneDNN and cuDNN run convolutions fastest in channels-last
            # layout, with the same result.
            module = module.to(memory_format=torch.channels_last)
        valid = None
        if valid_idx is not None:
            valid_rows = rows_to_device(rows[valid_idx], device)
            valid = self._validation_set(module, valid_rows, device, rng)
        self.net_ = build_net(
            self,
            module,
            self._criterion(n_features),
            device,
            n_train=len(train_idx),
            valid=valid,
            rng=rng,
            stopping=stopping,
            epoch_tasks=epoch_tasks,
        )
        return rows, rows_to_device(train, device)

    def _record_training(self, X, rows, valid_idx):
        """Set the attributes learned by training, from the net and ``X``.

        ``rows`` holds ``X`` in model units, for the one pass that the
        attributes of ``_training_pass`` need.
        """
        history = self.net_.history
        self.n_iter_ = len(history)
        self.loss_curve_ = list(history[:, "train_loss"])
        self.validation_loss_curve_ = (
            list(history[:, "valid_loss"]) if valid_idx is not None else None
        )
        stopper = dict(self.net_.callbacks_).get("early_stopping")
        # Without a stopper (partial_fit) the latest weights are kept.
        self.best_epoch_ = self.n_iter_ if stopper is None else int(stopper.best_epoch_)
        for name, value in self._training_pass(X, rows, valid_idx).items():
            setattr(self, name, value)

    def _check_data_params(self, X):
        _check_sizes("hidden_layer_sizes", self.hidden_layer_sizes, allow_empty=True)
        if self.image_shape is not None:
            shape = _check_sizes("image_shape", self.image_shape, allow_empty=False)
            if len(shape) != 3:
                raise ValueError(
                    "image_shape must be (channels, height, width), got "
                    f"{self.image_shape!r}."
                )
            _check_sizes("conv_channels", self.conv_channels, allow_empty=True)
            if int(np.prod(shape)) != X.shape[1]:
                raise ValueError(
                    f"image_shape={shape} implies {int(np.prod(shape))} features, "
                    f"but X has {X.shape[1]} features."
                )
        if self.loss == "bce" and (X.min() < -_BCE_SLACK or X.max() > 1 + _BCE_SLACK):
            raise ValueError(
                "loss='bce' needs data in [0, 1], but X ranges over "
                f"[{X.min():.4g}, {X.max():.4g}]; scale X (e.g. MinMaxScaler) or "
                "use loss='mse'."
            )

    def _resolve_n_components(self, X, n_train):
        n_samples, n_features = X.shape
        if isinstance(self.n_components, Integral):
            limit, what = n_features, "n_features"
            if self.init == "pca":
                limit, what = (
                    min(n_train, n_features),
                    "min(n_train_samples, n_features)",
                )
            if self.n_components > limit:
                held_out = (
                    f", of which {n_samples - n_train} are held out for early stopping"
                    if n_train < n_samples
                    else ""
                )
                raise ValueError(
                    f"n_components={self.n_components} must be <= {what}={limit} "
                    f"with init={self.init!r} (X has n_samples={n_samples}, "
                    f"n_features={n_features}{held_out})."
                )
            return int(self.n_components)
        # A fraction means: as many components as PCA needs for that much variance.
        return int(PCA(n_components=self.n_components).fit(X).n_components_)

    def _build_network(self, n_features):
        linear_path = self.init == "pca"
        if self.image_shape is None or not len(self.conv_channels):
            return DenseAutoencoder(
                n_features,
                self.n_components_,
                hidden_layer_sizes=_check_sizes(
                    "hidden_layer_sizes", self.hidden_layer_sizes, allow_empty=True
                ),
                activation=self.activation,
                linear_path=linear_path,
            )
        return ConvAutoencoder(
            tuple(int(s) for s in self.image_shape),
            self.n_components_,
            channels=tuple(int(c) for c in self.conv_channels),
            activation=self.activation,
            linear_path=linear_path,
        )

    # ---------------------------------------------------------------- hooks

    def _criterion(self, n_features):
        """Return the training loss: a module ``loss(module_output, clean_rows)``."""
        return nn.MSELoss() if self.loss == "mse" else nn.BCEWithLogitsLoss()

    def _start(self, network, X_train, rng):
        """Put PCA's solution of the training rows in the network's linear path.

        Returns what the rest of the model needs from that start (here
        nothing), for ``_wrap_network``.
        """
        pca_start(
            network, X_train, self.n_components_, loss=self.loss, random_state=rng
        )

    def _wrap_network(self, network, start, X, device, rng):
        """Return the module to train: the network, or layers around it."""
        return network

    def _validation_set(self, module, X_valid, device, rng):
        """Return the held-out data early stopping watches: here the rows."""
        return X_valid

    def _training_pass(self, X, rows, valid_idx):
        """Fitted attributes that need the trained model on every training row.

        ``rows`` holds the rows of ``X`` in model units; ``valid_idx`` those
        held out for early stopping (None without). Returns a dict.
        """
        sse = float(np.sum(self._row_errors(rows))) * X.shape[1]
        sst = float(np.sum((X - self.mean_) ** 2))
        return {"explained_variance_score_": 1.0 - sse / sst if sst > 0 else 0.0}

    # ------------------------------------------------------------ inference

    def transform(self, X):
        """Encode ``X`` into the latent space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to encode.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The codes, in the input's float dtype.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        codes = self.net_.map_batches(
            X, lambda module, batch: module.encode(batch).float(), self._units.to_model
        )
        return codes.astype(X.dtype, copy=False)

    def inverse_transform(self, X):
        """Decode codes back to the input space, in the original units.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Reconstructed rows, in the codes' float dtype; a DataFrame with the
            original column names when pandas output is set and ``fit`` saw
            feature names.
        """
        check_is_fitted(self)
        codes = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        if codes.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {codes.shape[1]} features, but inverse_transform expects "
                f"codes of width n_components_={self.n_components_}."
            )
        decoded = self.net_.map_batches(
            codes,
            lambda module, batch: module.decode(batch).float(),
            lambda rows: torch.from_numpy(rows.astype(np.float32)),
        )
        result = self._units.from_model(decoded, codes.dtype)
        return wrap_like_input(
            self, result, X, getattr(self, "feature_names_in_", None)
        )

    def _residuals(self, module, batch):
        """Reconstruction residuals of a batch in model units, in data units."""
        return self._units.residuals(batch, module.decode(module.encode(batch)))

    def _row_errors(self, X):
        """Mean squared reconstruction error of each row, in data units."""
        return self.net_.map_batches(
            X,
            lambda module, batch: (
                (self._residuals(module, batch) ** 2).mean(dim=1).double()
            ),
            self._units.to_model,
        )

    def score_samples(self, X):
        """Negative mean squared reconstruction error of each row.

        Higher is better reconstructed; low values flag unusual rows, so this
        serves as an anomaly score.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``-mean((x - inverse_transform(transform(x))) ** 2)`` per row, in
            the data's units.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return -self._row_errors(X).astype(X.dtype)

    def score(self, X, y=None):
        """Mean of :meth:`score_samples` over ``X``: higher is better.

        For the transformers, the negative mean squared reconstruction
        error, so model selection (e.g. ``GridSearchCV``) can use it
        directly; note that it always prefers larger ``n_components``.

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

    @property
    def module_(self):
        """The fitted :class:`torch.nn.Module` (``net_.module_``).

        It works in model units: with ``loss='mse'`` on ``X - mean_`` divided
        by the root mean square of the centred training data; with
        ``loss='bce'`` on raw ``X``, returning logits. :meth:`transform` and
        :meth:`inverse_transform` do these conversions.
        """
        check_is_fitted(self)
        return self.net_.module_

    @property
    def _n_features_out(self):
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
