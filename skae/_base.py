"""Shared machinery of skae's estimators: parameters, fit, transform, score.

The data path: ``fit`` validates X once and turns it into one float32 tensor
in model units (:class:`~skae._units.ModelUnits`); the net trains on it, and
the attributes that need the trained model come from one pass over it.
Inference converts each batch of rows the same way and gathers the results
into one array at the end (:meth:`~skae.AutoencoderNet.map_batches`).
"""

import copy
import warnings
from contextlib import contextmanager
from functools import partial
from numbers import Integral

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    is_outlier_detector,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from skae._callbacks import CallbackSupportMixin, fit_task
from skae._losses import RowMeanLoss
from skae._networks import build_network, pca_start
from skae._ordering import (
    CURVE_ROWS,
    PrefixLoss,
    explained_variance_curve,
    keeping,
    nested_dropout,
    prefix_errors,
    prefix_weights,
    smallest_prefix,
)
from skae._params import (
    PARAMETER_CONSTRAINTS,
    fill_doc,
    make_init,
    resolve_n_components,
)
from skae._threads import one_blas_thread, training_threads
from skae._training import (
    agreed_validation,
    build_net,
    converged,
    rows_to_device,
    shared_random_state,
    split_rows,
    torch_training_state,
    training_plan,
)
from skae._units import ModelUnits, check_square_range, total_squares
from skae._validation import (
    _fit_context,
    check_bce_range,
    check_image_shape,
    check_n_components,
    check_rows_ndim,
    check_sizes,
    finite_float32,
    host_tensor,
    resolve_device,
    seeded_torch,
    torch_seed,
    user_stacklevel,
    wrap_like_input,
)


def _fitted_attribute(name):
    """Whether ``name`` is a fitted attribute: scikit-learn's trailing ``_``."""
    return name.endswith("_") and not name.startswith("__")


@fill_doc
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

    _parameter_constraints: dict = PARAMETER_CONSTRAINTS

    __init__ = make_init()

    # The estimators that can order their code have an ``ordered`` parameter;
    # for the others the machinery reads this.
    ordered = False

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder to reconstruct ``X``.

        %(parameters_X, y)s

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X_given = X
        with agreed_validation(self):
            check_rows_ndim(X, self)
            X = validate_data(
                self, X, dtype=[np.float64, np.float32], ensure_min_samples=2
            )
        # A callback whose setup, or whose hook at the end of the fit,
        # raises leaves the estimator unfitted too, as any failed fit: a
        # refit on rows of other features kept the old network with the new
        # n_features_in_. (The undo of the block itself stays inside the
        # callbacks' task, whose bookkeeping scikit-learn tears down after.)
        with (
            self._unfitted_on_error(),
            fit_task(self, X_given, y) as epoch_tasks,
            self._undone_on_error(),
            torch_training_state(),
        ):
            self._fit(X, epoch_tasks)
        return self

    @contextmanager
    def _unfitted_on_error(self):
        """Remove the fitted attributes when the block raises."""
        try:
            yield
        except BaseException:
            for key in list(vars(self)):
                if _fitted_attribute(key):
                    delattr(self, key)
            raise

    @contextmanager
    def _undone_on_error(self):
        """Leave no half-fitted state when the block raises.

        A failed fit would otherwise leave attributes that pass
        check_is_fitted and predict garbage: the fitted attributes and
        whatever the block added go.
        """
        attributes_before = set(vars(self))
        try:
            yield
        except BaseException:
            for key in list(vars(self)):
                if key not in attributes_before or _fitted_attribute(key):
                    delattr(self, key)
            raise

    def _fit(self, X, epoch_tasks):
        rng = shared_random_state(self.random_state)
        train_idx, valid_idx = split_rows(
            len(X), self.early_stopping, self.validation_fraction, rng
        )
        with one_blas_thread():
            train = self._setup(X, rng, train_idx, valid_idx, epoch_tasks=epoch_tasks)
        if epoch_tasks is not None:
            # A hook's fitted_estimator gets what the pass after training
            # sets, from the network as it stands then.
            epoch_tasks.training_pass = lambda net: self._snapshot_pass(
                net, X, valid_idx
            )
        self.net_.fit(train)
        # The validation rows are not part of the model: do not keep them.
        self.net_.train_split = None
        del train
        self._record_training(X, valid_idx)
        if not converged(self.net_):
            warnings.warn(
                f"{type(self).__name__} reached max_iter="
                f"{self.training_plan_['max_iter']} epochs "
                "before the loss stopped improving; increase max_iter.",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )

    def _setup(self, X, rng, train_idx, valid_idx, *, stopping=True, epoch_tasks=None):
        """Fix the scaling, build the network and its net (``net_``), unfitted.

        Returns the training rows in model units, where the net slices its
        batches from (see ``rows_to_device``). The rows are converted as
        they are selected (training, held out), so that X in model units is
        never held twice.
        """
        n_features = X.shape[1]
        device = resolve_device(self.device)
        self._check_data_params(X)
        self.n_components_ = resolve_n_components(
            self.n_components, self.init, X, len(train_idx)
        )
        fraction = not isinstance(self.n_components, Integral)
        self.n_components_pca_ = self.n_components_ if fraction else None
        self.mean_ = X.mean(axis=0)
        self.n_samples_seen_ = len(X)
        axes = self._input_axes(X, len(train_idx), device)
        self._units = ModelUnits(X, self.loss, axes)
        train = self._units.to_model(X, None if valid_idx is None else train_idx)

        with seeded_torch(torch_seed(rng)):
            network = build_network(
                train.shape[1],
                self.n_components_,
                hidden_layer_sizes=self._hidden_sizes(on_axes=axes is not None),
                activation=self.activation,
                image_shape=self.image_shape,
                conv_channels=self.conv_channels,
                linear_path=self.init == "pca",
                ordered=self.ordered,
            )
        start = self._start(network, train.numpy(), rng) if self.init == "pca" else None
        module = self._wrap_network(network, start, X, device, rng)
        if self.image_shape is not None:
            # oneDNN and cuDNN run convolutions fastest in channels-last
            # layout, with the same result.
            module = module.to(memory_format=torch.channels_last)
        criterion = self._criterion(n_features)
        if self.ordered:
            # The variance outside the input axes is every prefix's error too.
            outside = np.mean(self._units.outside(X)) / self._units.scale**2
            weights = prefix_weights(train, self.n_components_, outside)
            criterion = PrefixLoss(criterion, weights)
        valid = None
        if valid_idx is not None:
            valid_rows = rows_to_device(self._units.to_model(X, valid_idx), device)
            valid = self._validation_set(module, valid_rows, device, rng)
        self.training_plan_ = training_plan(
            self, len(train_idx), device, streaming=not stopping
        )
        self.net_ = build_net(
            self,
            module,
            criterion,
            device,
            plan=self.training_plan_,
            valid=valid,
            rng=rng,
            stopping=stopping,
            epoch_tasks=epoch_tasks,
        )
        return rows_to_device(train, device)

    def _record_training(self, X, valid_idx):
        """Set the attributes learned by training on ``X``."""
        history = self.net_.history
        self.n_iter_ = len(history)
        self.loss_curve_ = list(history[:, "train_loss"])
        self.validation_loss_curve_ = (
            list(history[:, "valid_loss"]) if valid_idx is not None else None
        )
        stopper = dict(self.net_.callbacks_).get("early_stopping")
        # Without a stopper (partial_fit) the latest weights are kept.
        self.best_epoch_ = self.n_iter_ if stopper is None else int(stopper.best_epoch_)
        with training_threads(self.net_), one_blas_thread():
            attributes = self._training_pass(X, valid_idx)
        for name, value in attributes.items():
            setattr(self, name, value)

    def _snapshot_pass(self, net, X, valid_idx):
        """Return the attributes :meth:`_training_pass` sets, for ``net``.

        ``net`` is a snapshot taken during training (for a callback's
        ``fitted_estimator``); this estimator and its net are left as they are.
        """
        estimator = copy.copy(self)
        estimator.net_ = net
        with training_threads(net), one_blas_thread():
            return estimator._training_pass(X, valid_idx)

    def _check_data_params(self, X):
        check_n_components(self.n_components)
        self._hidden_sizes(on_axes=False)
        # Checked without image_shape too, as hidden_layer_sizes is where the
        # conv network replaces it: a value never valid is refused wherever set.
        check_sizes("conv_channels", self.conv_channels, allow_empty=True)
        if self.image_shape is not None:
            check_image_shape(self.image_shape, X.shape[1])
        check_bce_range(X, self.loss)
        check_square_range(X)

    def _hidden_sizes(self, on_axes):
        """Return the dense network's hidden widths: ``hidden_layer_sizes``, checked.

        ``on_axes``: whether the network trains on input axes
        (``input_components_``), which an estimator's ``'auto'`` widths may
        depend on.
        """
        return check_sizes(
            "hidden_layer_sizes", self.hidden_layer_sizes, allow_empty=True
        )

    def _input_axes(self, X, n_train, device):
        """Return the principal axes the network sees (None: every feature)."""
        return None

    def _criterion(self, n_features):
        """Return the training loss: a module ``loss(module_output, clean_rows)``."""
        return RowMeanLoss(
            nn.MSELoss() if self.loss == "mse" else nn.BCEWithLogitsLoss()
        )

    def _start(self, network, X_train, rng):
        """Start the linear path at PCA; return what ``_wrap_network`` needs."""
        pca_start(
            network, X_train, self.n_components_, loss=self.loss, random_state=rng
        )

    def _wrap_network(self, network, start, X, device, rng):
        """Return the module to train: the network, or layers around it."""
        return network

    def _validation_set(self, module, X_valid, device, rng):
        """Return the held-out data early stopping watches: here the rows."""
        return X_valid

    def _training_pass(self, X, valid_idx):
        """Return the fitted attributes that need a pass over the training rows.

        ``X`` holds the rows of the fit (or of the partial_fit's chunk);
        ``valid_idx`` the rows held out for early stopping (None without).
        The explained variance of every prefix of the code is measured on
        the held-out rows when there are any, else on the rows given, at most
        ``CURVE_ROWS`` of them; with a float ``n_components``, an ordered
        model keeps the shortest prefix that reaches it when it is set up
        (a later partial_fit keeps the width).
        """
        # A partial_fit after fit or a first partial_fit: rows seen before.
        later_call = self.n_samples_seen_ > len(X)
        if valid_idx is not None:
            X = X[valid_idx]
        X = X[:: -(-len(X) // CURVE_ROWS)]
        sse = self.net_.map_batches(
            X,
            lambda module, batch: prefix_errors(module, batch, self._units.residuals),
            self._units.to_model,
        ).sum(axis=0) + np.sum(self._units.outside(X))
        sst = total_squares(X, self.mean_)
        curve = explained_variance_curve(sse, sst)
        n_components_pca = self.n_components_pca_
        if isinstance(self.n_components, Integral):
            # A truncated model keeps its width through partial_fit; an int
            # set after a fraction's fit has no PCA count, as after truncate.
            n_components = min(self.n_components, len(curve))
            n_components_pca = None
        elif later_call:
            # Training goes on at the fitted width: a width chosen anew on
            # each chunk would change what transform returns from call to
            # call (truncate narrows a model on purpose).
            n_components = self.n_components_
        elif nested_dropout(self.net_.module_).ordered:
            # The fitted network's order, which ``ordered`` set after fit
            # does not change.
            n_components = smallest_prefix(curve, self.n_components)
        else:
            n_components = len(curve)
        nested_dropout(self.net_.module_).kept = n_components
        ratio = np.diff(curve[:n_components], prepend=0.0)
        return {
            "n_components_": n_components,
            "n_components_pca_": n_components_pca,
            "explained_variance_ratio_": ratio,
            "explained_variance_": ratio * sst / max(len(X) - 1, 1),
            "explained_variance_score_": float(np.sum(ratio)),
        }

    def transform(self, X):
        """Encode ``X`` into the latent space.

        %(parameters_X)s

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The codes, in the input's float dtype.
        """
        check_is_fitted(self)
        check_rows_ndim(X, self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        # A model truncated to fewer components than its network's code
        # returns the leading units.
        n_components = self.n_components_
        codes = self.net_.map_batches(
            X,
            lambda module, batch: module.encode(batch)[:, :n_components].float(),
            self._units.to_model,
        )
        return codes.astype(X.dtype, copy=False)

    def inverse_transform(self, X):
        """Decode codes back to the input space, in the original units.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_codes)
            Codes, as returned by :meth:`transform`. A model fitted with
            ``ordered=True`` (where the estimator has that parameter) also
            takes the first ``n_codes < n_components_`` columns of a code,
            decoded with the missing units dropped, as in training.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Reconstructed rows, in the codes' float dtype; a DataFrame (pandas
            or polars, as ``set_output(transform=...)`` asks) with the
            original column names (and a pandas ``X``'s index) when ``fit``
            saw feature names.
        """
        check_is_fitted(self)
        codes = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        n_codes = codes.shape[1]
        # Whether the fitted code is ordered: the network's, not ``ordered``,
        # which set_params may have changed since the fit.
        layer = nested_dropout(self.net_.module_)
        if n_codes > self.n_components_ or (
            n_codes < self.n_components_ and not layer.ordered
        ):
            shorter = " or fewer, as the model is ordered" if layer.ordered else ""
            raise ValueError(
                f"X has {n_codes} features, but inverse_transform expects "
                f"codes of width n_components_={self.n_components_}{shorter}."
            )
        codes_in = codes
        if n_codes < layer.n_units:
            padding = np.zeros((len(codes), layer.n_units - n_codes), codes.dtype)
            codes = np.hstack([codes, padding])
        # Decoded by a copy that keeps n_codes units, not by setting the
        # fitted network's width and back: other threads may be decoding
        # and scoring with it meanwhile.
        result = self.net_.map_batches(
            codes,
            lambda module, batch: module.decode(batch).float(),
            lambda rows: finite_float32(
                host_tensor(rows), "X", "pass codes as transform gives them."
            ),
            finish=partial(self._units.from_model, dtype=codes_in.dtype),
            module=keeping(self.net_.module_, n_codes),
        )
        return wrap_like_input(
            self, result, X, getattr(self, "feature_names_in_", None)
        )

    def _residuals(self, module, batch):
        """Residuals of the network's reconstruction of a batch, in data units.

        The whole network in inference mode: ``decode(encode(x))``, plus a
        denoiser's skip path.
        """
        return self._units.residuals(batch, module(batch))

    def _row_errors(self, X):
        """Mean squared reconstruction error of each row, in data units.

        From a float64 copy of the network, also after training in reduced
        ``precision``, whose rounding would swamp small errors: a row's error
        is then the same alone or in a batch, which float32 matrix products
        do not promise (on GPUs, and on CPUs whose BLAS picks its kernel by
        the number of rows, such as Intel's with AMX).
        """
        along = self.net_.map_batches(
            X,
            lambda module, batch: (self._residuals(module, batch) ** 2).sum(dim=1),
            self._units.to_model,
            dtype=torch.float64,
        )
        return (along + self._units.outside(X)) / X.shape[1]

    def score_samples(self, X):
        """Negative mean squared reconstruction error of each row.

        Higher is better reconstructed; low values flag unusual rows, so this
        serves as an anomaly score.

        %(parameters_X)s

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``-mean((x - inverse_transform(transform(x))) ** 2)`` per row, in
            the data's units (for a denoiser, ``denoise(x)`` in place of the
            reconstruction). In ``X``'s float dtype, as the codes of
            :meth:`transform`: a float32 row far from the training rows
            (errors beyond about 3.4e38) scores ``-inf``; pass float64 rows
            to rank those.
        """
        check_is_fitted(self)
        check_rows_ndim(X, self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return -self._row_errors(X).astype(X.dtype)

    @available_if(lambda self: not is_outlier_detector(self))
    def score(self, X, y=None):
        """Mean of :meth:`score_samples` over ``X``: higher is better.

        Model selection without a ``scoring`` (e.g. ``GridSearchCV``) ranks
        by it. :class:`~skae.AutoencoderTransformer` and
        :class:`~skae.DenoisingAutoencoder` score the negative reconstruction
        error, which prefers larger ``n_components`` on rows like those
        trained on (on others, such as the folds of an unshuffled ``KFold``
        over rows sorted by class, a narrower code can score better), where
        ``PCA.score``, an average log-likelihood, need not; the
        :class:`~skae.VariationalAutoencoder`'s mean ELBO compares with
        ``PCA.score``. :class:`~skae.AutoencoderOutlierDetector` has no
        ``score``, as scikit-learn's outlier detectors have none: its
        anomaly scores are relative to its own training errors, so their mean
        would rank first the detector whose held-out rows look most like its
        training rows, often the one that reconstructs worst. A search over
        detectors needs a ``scoring``.

        %(parameters_X, y)s

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`, taken in float64.
        """
        # In float64: the sum of float32 scores, each in range, can overflow.
        return float(np.mean(self.score_samples(X), dtype=np.float64))

    @property
    def module_(self):
        """The fitted :class:`torch.nn.Module` (``net_.module_``).

        It works in model units: with ``loss='mse'`` on ``X`` minus the mean
        it was set up with (``mean_`` after ``fit``; the first chunk's after
        further ``partial_fit`` calls) divided by the root mean square of the
        centred training data (where ``input_components_`` is set, projected
        on those axes and divided by the root mean square of those
        coordinates); with
        ``loss='bce'`` on raw ``X``, returning logits. :meth:`transform` and
        :meth:`inverse_transform` do these conversions. Scores come from a
        float64 copy made once for each state of its weights: change them
        through torch (``load_state_dict``, in-place operations), not
        through their ``.data``, which the copy does not follow.
        """
        check_is_fitted(self)
        return self.net_.module_

    @property
    def _n_features_out(self):
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        # Probabilities in [0, 1] (check_bce_range).
        tags.input_tags.positive_only = self.loss == "bce"
        return tags
