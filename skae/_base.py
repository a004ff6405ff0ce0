"""Shared machinery of skae's estimators: parameters, fit, transform, score."""

import warnings
from numbers import Integral, Real

import numpy as np
import torch
import torch.distributed as dist
from scipy.special import expit
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import LRScheduler
from skorch.helper import predefined_split
from torch import nn

from skae._callbacks import CallbackSupportMixin, EpochTasks
from skae._networks import ACTIVATIONS, ConvAutoencoder, DenseAutoencoder
from skae._progress import EpochLog, TerminalProgressBar
from skae._training import (
    AUTOCAST_DTYPES,
    AutoencoderNet,
    _BestOfRunEarlyStopping,
    process_group,
)
from skae._validation import (
    Hidden,
    Interval,
    StrOptions,
    _fit_context,
    check_image_shape,
    check_n_components,
    check_rows_ndim,
    check_sizes,
    resolve_device,
    seeded_torch,
    torch_seed,
    wrap_like_input,
)

# Rows per forward pass at inference: large enough to keep the device busy,
# small enough that one batch of conv activations stays within a few hundred MB.
INFERENCE_BATCH_SIZE = 4096
# Data for `loss='bce'` must lie in [0, 1]; this much float error is tolerated.
_BCE_SLACK = 1e-6
# learning_rate='adaptive' multiplies the rate by this on each plateau.
_ADAPTIVE_FACTOR = 0.3


def logit_decoder(codes, X_train):
    """Least-squares linear map from ``codes`` to the logits of ``X_train``.

    Returns ``(weight, bias)`` for a ``Linear(n_components, n_features)``; the
    data are clipped to [1e-3, 1 - 1e-3] so that their logits are finite.
    """
    clipped = np.clip(X_train, 1e-3, 1 - 1e-3)
    logits = np.log(clipped) - np.log1p(-clipped)
    design = np.hstack([codes, np.ones((len(codes), 1))])
    solution = np.linalg.lstsq(design, logits, rcond=None)[0]
    return solution[:-1].T, solution[-1]


def set_linear_path(network, encoder, decoder):
    """Copy ``(weight, bias)`` pairs into the network's linear paths."""
    with torch.no_grad():
        for layer, (weight, bias) in (
            (network.encoder_linear, encoder),
            (network.decoder_linear, decoder),
        ):
            layer.weight.copy_(torch.as_tensor(weight))
            layer.bias.copy_(torch.as_tensor(bias))


class PartialFitMixin:
    """Training on chunks of rows, one epoch per call: ``partial_fit``.

    For autoencoders whose fitted state is the network alone; mixed in
    before :class:`_BaseAutoencoder`.
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
            rng = self._shared_random_state()
            X_train = self._setup(X, rng, np.arange(len(X)), None, stopping=False)
            self.net_.initialize()
        else:
            if "early_stopping" in dict(self.net_.callbacks_):
                # Fitted by fit: train on without its stopper, which watches
                # held-out rows that partial_fit does not have.
                self.net_.set_params(callbacks=self._net_callbacks(stopping=False))
                self.net_.initialize_callbacks()
            X_train = self._to_device(
                self._to_model_units(X), torch.device(self.net_.device)
            )
            # The running mean of every row seen; the model's own offset
            # stays the one it was set up with.
            self.n_samples_seen_ += len(X)
            self.mean_ = self.mean_ + (X.mean(axis=0) - self.mean_) * (
                len(X) / self.n_samples_seen_
            )
        self.net_.partial_fit(X_train, epochs=1)
        self._record_training(X, None)
        return self


class _BaseAutoencoder(
    CallbackSupportMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
):
    """Base of skae's autoencoders.

    Subclasses set the docstring and may wrap the network
    (``_wrap_network``); everything else lives here.

    With scikit-learn >= 1.9, ``set_callbacks`` registers callbacks of
    ``sklearn.callback``: ``fit`` is a root task with one sub-task per epoch.
    """

    _parameter_constraints: dict = {
        "n_components": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="neither"),
            # PCA's values, let through to explain why they do not apply.
            Hidden(None),
            Hidden(StrOptions({"mle"})),
        ],
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
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
        hidden_layer_sizes=(512, 256, 128),
        activation="silu",
        image_shape=None,
        conv_channels=(16, 32, 64),
        init="pca",
        loss="mse",
        batch_size="auto",
        learning_rate="adaptive",
        learning_rate_init=1e-3,
        alpha=0.0,
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
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.image_shape = image_shape
        self.conv_channels = conv_channels
        self.init = init
        self.loss = loss
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.precision = precision
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

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
        check_rows_ndim(X, self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        # One sub-task per epoch. The callbacks are torn down by _fit_context,
        # also when fit raises.
        callback_ctx = self._init_callback_context(max_subtasks=self.max_iter)
        callback_ctx.call_on_fit_task_begin(estimator=self, X=X_given, y=y)
        if getattr(self, "_skl_callbacks", None):
            # Consumed by _net_callbacks: the epochs are skorch's, in the net.
            self._epoch_tasks = EpochTasks(
                self, callback_ctx, X_given, y, self._reconstruction_attributes
            )
        attributes_before = set(vars(self))
        try:
            self._fit(X)
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
        finally:
            self.__dict__.pop("_epoch_tasks", None)
        callback_ctx.call_on_fit_task_end(
            estimator=self, X=X_given, y=y, reconstruction_attributes={}
        )
        return self

    def _fit(self, X):
        rng = self._shared_random_state()
        train_idx, valid_idx = self._split(len(X), rng)
        X_train = self._setup(X, rng, train_idx, valid_idx)
        self.net_.fit(X_train)
        # The validation rows are not part of the model: do not keep them.
        self.net_.train_split = None
        self._record_training(X, valid_idx)
        stopper = dict(self.net_.callbacks_)["early_stopping"]
        if self.n_iter_ == self.max_iter and stopper.misses_ < self.n_iter_no_change:
            warnings.warn(
                f"{type(self).__name__} reached max_iter={self.max_iter} epochs "
                "before the loss stopped improving; increase max_iter.",
                ConvergenceWarning,
                # _fit <- fit <- _fit_context: point at the caller's line.
                stacklevel=4,
            )
        return self

    def _shared_random_state(self):
        """Return the fit's random generator, the same in every process.

        Under torch.distributed every process must split the rows and start
        the network alike; without an int ``random_state``, rank 0's seed is
        shared.
        """
        rng = check_random_state(self.random_state)
        if process_group()[1] > 1 and not isinstance(self.random_state, Integral):
            seed = [int(rng.randint(np.iinfo(np.int32).max))]
            dist.broadcast_object_list(seed, src=0)
            rng = np.random.RandomState(seed[0])
        return rng

    def _setup(self, X, rng, train_idx, valid_idx, *, stopping=True):
        """Fix the data's scaling, build the network and its (unfitted) net.

        Sets ``net_`` and the attributes set before training; returns the
        training rows in model units, as one tensor (see ``_to_device``).
        Without ``stopping`` (partial_fit) the net has no early stopping.
        """
        n_features = X.shape[1]
        device = resolve_device(self.device)
        self._check_data_params(X)
        self.n_components_ = self._resolve_n_components(X, len(train_idx))
        self.mean_ = X.mean(axis=0)
        self.n_samples_seen_ = len(X)
        if self.loss == "mse":
            self._offset = self.mean_
            rms = np.sqrt(np.mean((X - self.mean_) ** 2))
            self._scale = float(rms) if rms > 0 else 1.0
        else:
            # BCE compares probabilities with data in [0, 1]: no rescaling.
            self._offset = np.zeros(n_features)
            self._scale = 1.0
        X_model = self._to_model_units(X)
        # Without a hold-out every row trains: no second copy of the data.
        X_train = X_model if valid_idx is None else X_model[train_idx]

        seed = torch_seed(rng)
        with seeded_torch(seed):
            network = self._build_network(n_features)
        if self.init == "pca":
            self._init_from_pca(network, X_train, rng)
        module = self._wrap_network(network, X, device, rng)
        if self.image_shape is not None:
            # Convolutions in channels-last layout: on the CPU (oneDNN) conv
            # training and inference ran about 1.5x as fast, with the same
            # result (benchmarks/levers.py, results/levers_cpu.md).
            module = module.to(memory_format=torch.channels_last)
        valid = None
        if valid_idx is not None:
            valid = self._validation_set(
                module, self._to_device(X_model[valid_idx], device), device, rng
            )

        self.net_ = AutoencoderNet(
            module=module,
            criterion=self._criterion(n_features),
            optimizer=torch.optim.Adam,
            optimizer__weight_decay=self.alpha,
            lr=self.learning_rate_init,
            max_epochs=self.max_iter,
            batch_size=self._batch_size(len(train_idx)),
            train_split=None if valid is None else predefined_split(valid),
            callbacks=self._net_callbacks(stopping=stopping),
            # EpochLog (in the callbacks) prints the epochs instead.
            callbacks__print_log=None,
            verbose=self.verbose,
            device=str(device),
            random_seed=torch_seed(rng),
            precision=self.precision,
        )
        return self._to_device(X_train, device)

    def _record_training(self, X, valid_idx):
        """Set the attributes learned by training, from the net and ``X``."""
        history = self.net_.history
        self.n_iter_ = len(history)
        self.loss_curve_ = list(history[:, "train_loss"])
        self.validation_loss_curve_ = (
            list(history[:, "valid_loss"]) if valid_idx is not None else None
        )
        stopper = dict(self.net_.callbacks_).get("early_stopping")
        # Without a stopper (partial_fit) the latest weights are kept.
        self.best_epoch_ = self.n_iter_ if stopper is None else int(stopper.best_epoch_)
        sse, sst = self._sum_squares(X)
        self.explained_variance_score_ = 1.0 - sse / sst if sst > 0 else 0.0
        self._after_fit(X, valid_idx)

    def _reconstruction_attributes(self, net, n_epochs):
        """Fitted attributes of the model after ``n_epochs`` epochs of ``net``.

        Called during fit, for a callback that asks for ``fitted_estimator``:
        set on a copy of the estimator, they let it transform, inverse-transform
        and score as the model stands then. The other attributes these need
        (``n_components_``, ``mean_``, the scaling) are set before training.
        """
        history = net.history[:n_epochs]
        return {
            "net_": net.snapshot(n_epochs),
            "n_iter_": n_epochs,
            "loss_curve_": [row["train_loss"] for row in history],
            "validation_loss_curve_": (
                [row["valid_loss"] for row in history] if self.early_stopping else None
            ),
        }

    def _check_data_params(self, X):
        check_n_components(self.n_components)
        check_sizes("hidden_layer_sizes", self.hidden_layer_sizes, allow_empty=True)
        if self.image_shape is not None:
            check_image_shape(self.image_shape, X.shape[1])
            check_sizes("conv_channels", self.conv_channels, allow_empty=True)
        if self.loss == "bce" and (X.min() < -_BCE_SLACK or X.max() > 1 + _BCE_SLACK):
            raise ValueError(
                "loss='bce' needs data in [0, 1], but X ranges over "
                f"[{X.min():.4g}, {X.max():.4g}]; scale X (e.g. MinMaxScaler) or "
                "use loss='mse'."
            )

    def _split(self, n_samples, rng):
        """Return training and validation row indices.

        The validation indices are None without early stopping.
        """
        if not self.early_stopping:
            return np.arange(n_samples), None
        n_valid = max(1, int(round(self.validation_fraction * n_samples)))
        if n_samples - n_valid < 1:
            raise ValueError(
                f"early_stopping with validation_fraction={self.validation_fraction} "
                f"leaves no training rows out of n_samples={n_samples}; pass more "
                "rows or set early_stopping=False."
            )
        order = rng.permutation(n_samples)
        return np.sort(order[n_valid:]), np.sort(order[:n_valid])

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
                raise ValueError(
                    f"n_components={self.n_components} must be <= {what}={limit} "
                    f"with init={self.init!r} (X has n_samples={n_samples}, "
                    f"n_features={n_features}"
                    + (
                        f", of which {n_samples - n_train} are held out for "
                        "early stopping)."
                        if n_train < n_samples
                        else ")."
                    )
                )
            return int(self.n_components)
        # A fraction means: as many components as PCA needs for that much variance.
        return int(PCA(n_components=self.n_components).fit(X).n_components_)

    def _batch_size(self, n_train):
        if self.batch_size == "auto":
            # Small sets get at least 16 steps per epoch, large ones 256 rows.
            return min(256, max(32, n_train // 16), n_train)
        return min(self.batch_size, n_train)

    def _build_network(self, n_features):
        linear_path = self.init == "pca"
        if self.image_shape is None or not len(self.conv_channels):
            return DenseAutoencoder(
                n_features,
                self.n_components_,
                hidden_layer_sizes=check_sizes(
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

    def _criterion(self, n_features):
        """Return the training loss: a module ``loss(module_output, clean_rows)``."""
        return nn.MSELoss() if self.loss == "mse" else nn.BCEWithLogitsLoss()

    def _wrap_network(self, network, X, device, rng):
        """Return the module to train: the network, or layers around it."""
        return network

    def _after_fit(self, X, valid_idx):
        """Finish fitting once the network is trained (a hook: nothing here).

        ``X`` holds the validated training rows and ``valid_idx`` those held
        out for early stopping (None without).
        """

    def _validation_set(self, module, X_valid, device, rng):
        """Return the held-out data early stopping watches: here the rows."""
        return X_valid

    def _init_from_pca(self, network, X_train, rng):
        """Set the linear path to the PCA solution of the training rows.

        With ``loss='mse'`` the network then reconstructs exactly as PCA does.
        With ``loss='bce'`` the decoder outputs logits, so its linear path is
        the least-squares map from PCA's codes to the logits of the (clipped)
        data: the best linear logit decoder for those codes.
        """
        pca = PCA(n_components=self.n_components_, random_state=rng).fit(X_train)
        components = pca.components_
        enc_weight, enc_bias = components, -components @ pca.mean_
        if self.loss == "mse":
            dec_weight, dec_bias = components.T, pca.mean_
        else:
            dec_weight, dec_bias = logit_decoder(pca.transform(X_train), X_train)
        set_linear_path(network, (enc_weight, enc_bias), (dec_weight, dec_bias))

    def _net_callbacks(self, *, stopping=True):
        monitor = "valid_loss" if self.early_stopping else "train_loss"
        callbacks = []
        if self.verbose >= 2:
            # Cleared at the end of each epoch, before the epoch's line.
            callbacks.append(("progress_bar", TerminalProgressBar()))
        # Before early stopping, which may end the loop after any epoch.
        # partial_fit trains one epoch per call: no count, no time left.
        callbacks.append(("epoch_log", EpochLog(self.max_iter if stopping else None)))
        if hasattr(self, "_epoch_tasks"):
            # Before early stopping, which may end the loop in on_epoch_end.
            callbacks.append(("sklearn_epoch_tasks", self._epoch_tasks))
        if stopping:
            callbacks.append(
                (
                    "early_stopping",
                    _BestOfRunEarlyStopping(
                        monitor=monitor,
                        patience=self.n_iter_no_change,
                        threshold=self.tol,
                        threshold_mode="rel",
                        load_best=True,
                        # A random start is never kept: do not score it.
                        initial_state=self.init == "pca",
                    ),
                )
            )
        if stopping and self.learning_rate == "adaptive":
            callbacks.append(
                (
                    "lr_scheduler",
                    LRScheduler(
                        policy="ReduceLROnPlateau",
                        monitor=monitor,
                        factor=_ADAPTIVE_FACTOR,
                        patience=max(1, self.n_iter_no_change // 4),
                        threshold=self.tol,
                        threshold_mode="rel",
                    ),
                )
            )
        for callback in self.callbacks or []:
            # Cloned, so fitting never changes the user's callback objects.
            if isinstance(callback, tuple):
                name, callback = callback
                callbacks.append((name, clone(callback)))
            else:
                callbacks.append(clone(callback))
        return callbacks

    @staticmethod
    def _to_device(X_model, device):
        """Put the training rows in one tensor.

        On the device when they fit there, else in pinned host memory, from
        which batches are copied.
        """
        tensor = torch.from_numpy(X_model)
        if device.type != "cuda":
            return tensor
        free, _ = torch.cuda.mem_get_info(device)
        if tensor.nbytes < 0.5 * free:
            return tensor.to(device)
        return tensor.pin_memory()

    # ------------------------------------------------------------ inference

    def _to_model_units(self, X):
        # In X's own precision: exact offsets for float64, no upcast for float32.
        # Torch's element-wise ops round as numpy's do, so the result is the
        # same to the bit, but they run on every core: on 2 threads transform
        # went from 88% to 95% of the bare module's speed (benchmarks/overhead.py).
        # Torch takes neither negative strides nor (without a warning)
        # read-only memory: such input is copied first.
        rows = torch.from_numpy(np.require(X, requirements=["C", "W"]))
        offset = torch.from_numpy(self._offset).to(rows.dtype)
        return rows.sub(offset).div_(self._scale).to(torch.float32).numpy()

    def _from_model_units(self, out, dtype):
        if self.loss == "bce":
            return expit(out.astype(np.float64)).astype(dtype)
        return (out * self._scale + self._offset).astype(dtype)

    def _batched(self, X, fn, *, to_model=None):
        """Apply ``fn`` to the rows of ``X`` in batches under inference mode.

        ``to_model`` turns a batch of ``X`` into float32 model inputs (by
        default, rows into model units); ``fn`` maps that batch, on the
        device, to a numpy array. Rows are independent, so the result does
        not depend on the batching.
        """
        to_model = self._to_model_units if to_model is None else to_model
        module = self.net_.module_
        module.eval()
        device = torch.device(self.net_.device)
        outputs = []
        with torch.inference_mode(), self.net_.autocast():
            for start in range(0, len(X), INFERENCE_BATCH_SIZE):
                rows = X[start : start + INFERENCE_BATCH_SIZE]
                batch = torch.from_numpy(to_model(rows)).to(device)
                outputs.append(fn(batch))
        return np.concatenate(outputs)

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
        check_rows_ndim(X, self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        module = self.net_.module_
        codes = self._batched(
            X, lambda batch: module.encode(batch).float().cpu().numpy()
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
        module = self.net_.module_
        decoded = self._batched(
            codes,
            lambda batch: module.decode(batch).float().cpu().numpy(),
            to_model=lambda rows: rows.astype(np.float32),
        )
        result = self._from_model_units(decoded, codes.dtype)
        return wrap_like_input(
            self, result, X, getattr(self, "feature_names_in_", None)
        )

    def _residuals(self, batch):
        """Reconstruction residual of every entry of a batch, in data units.

        ``batch`` holds rows in model units, on the device; so does the result.
        With ``loss='mse'`` the model units are the data's divided by
        ``scale``, so residuals scale by ``scale``; with ``loss='bce'`` they
        are the data's own.
        """
        module = self.net_.module_
        out = module.decode(module.encode(batch))
        if self.loss == "bce":
            return batch - torch.sigmoid(out)
        return (batch - out) * self._scale

    def _squared_errors(self, batch):
        """Squared reconstruction error of every entry of a batch, in data units."""
        return self._residuals(batch) ** 2

    def _row_errors(self, X):
        """Mean squared reconstruction error of each row, in data units."""
        return self._batched(
            X,
            lambda batch: (
                self._squared_errors(batch).mean(dim=1).double().cpu().numpy()
            ),
        )

    def _sum_squares(self, X):
        """Residual and total sums of squares of the reconstruction of ``X``."""
        sse = float(np.sum(self._row_errors(X))) * X.shape[1]
        sst = float(np.sum((X - self.mean_) ** 2))
        return sse, sst

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
        check_rows_ndim(X, self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return -self._row_errors(X).astype(X.dtype)

    def score(self, X, y=None):
        """Negative mean squared reconstruction error over ``X``.

        Higher is better, so model selection (e.g. ``GridSearchCV``) can use
        it directly; note that it always prefers larger ``n_components``.

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
