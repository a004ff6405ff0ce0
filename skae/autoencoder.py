"""AutoencoderTransformer: a nonlinear drop-in for PCA."""

from skae._base import PartialFitMixin, _BaseAutoencoder


class AutoencoderTransformer(PartialFitMixin, _BaseAutoencoder):
    """Autoencoder dimensionality reduction with PCA's transformer contract.

    A dense (or, with ``image_shape``, convolutional) PyTorch autoencoder,
    trained through skorch, that reduces rows to ``n_components`` features.
    It can replace :class:`~sklearn.decomposition.PCA` in a Pipeline or a
    search: ``fit`` ignores ``y``, ``transform`` encodes, ``inverse_transform``
    decodes back to the original units, and ``score`` is the negative mean
    squared reconstruction error.

    The data are seen as PCA sees them: centred, and divided internally by
    their overall root mean square, so the defaults work for tabular data of
    any scale and for images in [0, 1]. With ``init='pca'`` (the default) the
    network is PCA's linear map plus a nonlinear residual that starts at zero:
    training starts exactly at PCA's reconstruction and early stopping, which
    counts the starting state, keeps the better of the two on held-out rows.

    Parameters
    ----------
    n_components : int or float, default=2
        Width of the code. A float in (0, 1) means, as for PCA, as many
        components as PCA needs to explain that fraction of the variance.
    hidden_layer_sizes : int or tuple of int, default=(512, 256, 128)
        Hidden widths of the dense encoder; the decoder mirrors them. An int
        is one hidden layer, as for :class:`~sklearn.neural_network.MLPRegressor`.
        ``()`` gives a linear autoencoder. Ignored when ``image_shape`` is set.
    activation : {'silu', 'relu', 'elu', 'tanh', 'logistic', 'identity'}, default='silu'
        Nonlinearity of the hidden layers. ``'silu'`` is ``x * sigmoid(x)``
        (also called swish), ``'elu'`` the exponential linear unit. The
        smooth ``'silu'`` reconstructed better than ``'relu'`` in the
        benchmarks (:ref:`pca_vs_autoencoder`).
    image_shape : tuple of int (C, H, W), default=None
        Treat each row as a flattened image of this shape and use the
        convolutional network. ``C * H * W`` must equal the number of features.
    conv_channels : tuple of int, default=(16, 32, 64)
        Channels of the convolutional encoder's stages, each a 3x3 conv and a
        2x2 max-pool; the decoder mirrors them with transposed convolutions.
        ``()`` has no convolutional stage: image rows get the dense network.
    init : {'pca', 'random'}, default='pca'
        ``'pca'``: linear path initialised from PCA on the training rows, plus
        a residual that starts at zero. ``'random'``: the classical
        autoencoder with PyTorch's default initialisation.
    loss : {'mse', 'bce'}, default='mse'
        Mean squared error, or binary cross-entropy on a sigmoid output for
        data in [0, 1] (e.g. images).
    batch_size : int or 'auto', default='auto'
        Rows per training batch. ``'auto'`` is ``n_train // 16`` clipped to
        [32, 256]: at least 16 steps per epoch on small data sets.
    learning_rate : {'adaptive', 'constant'}, default='adaptive'
        Schedule of Adam's learning rate. ``'adaptive'`` starts at
        ``learning_rate_init`` and multiplies the rate by 0.3 each time the
        loss that early stopping monitors has not improved by ``tol`` for
        ``n_iter_no_change // 4`` epochs (skorch's ``LRScheduler`` with
        ``ReduceLROnPlateau``). ``'constant'`` keeps ``learning_rate_init``;
        choose it when ``callbacks`` bring their own schedule.
        :meth:`partial_fit` trains on at the rate ``fit`` ended with.
    learning_rate_init : float, default=1e-3
        Adam's learning rate.
    alpha : float, default=0.0
        L2 penalty (Adam's weight decay), as in MLPRegressor. Off by default:
        early stopping on held-out rows regularises, and a penalty held the
        reconstruction back in the benchmarks (:ref:`pca_vs_autoencoder`).
    max_iter : int, default=200
        Maximum number of epochs.
    tol : float, default=1e-4
        Relative improvement of the monitored loss that counts as progress.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows and stop when their loss
        has not improved by ``tol`` for ``n_iter_no_change`` epochs, restoring
        the best weights (the initial state included). When False, all rows
        train and the training loss is monitored the same way.
    validation_fraction : float, default=0.1
        Fraction of rows held out for early stopping.
    n_iter_no_change : int, default=20
        Epochs without improvement before training stops (twice
        MLPRegressor's 10: autoencoder losses improve slowly but steadily).
    device : str or torch.device, default='auto'
        ``'auto'`` (CUDA when available, else CPU), ``'cpu'``, ``'cuda'`` or
        ``'cuda:<index>'``.
    precision : {'float32', 'bfloat16', 'float16'}, default='float32'
        Format of the network's computations, in training and inference.
        ``'bfloat16'`` and ``'float16'`` are mixed precision
        (:func:`torch.autocast`): weights, gradients and optimizer state stay
        float32, so the fitted model pickles and loads like any other.
        ``'float16'`` adds loss scaling against underflow. Mixed precision
        speeds up training on GPUs with tensor cores; on the CPU it works,
        but it is faster than float32 only on CPUs with native bfloat16.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Extra skorch callbacks, cloned at each fit.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the weights and the batch order through
        local generators; a fixed value gives bit-identical fits on the CPU.
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
        Fraction of the training data's variance explained by the
        reconstruction, ``1 - SSE / SST``; compare with
        ``PCA(...).explained_variance_ratio_.sum()``.
    n_iter_ : int
        Number of epochs run.
    best_epoch_ : int
        Epoch whose weights were kept (0: the initial PCA state; a random
        start is never kept, so with ``init='random'`` it is at least 1).
    loss_curve_ : list of float
        Training loss per epoch (in model units).
    validation_loss_curve_ : list of float or None
        Held-out loss per epoch; None without early stopping.
    net_ : AutoencoderNet
        The fitted skorch net, with its ``history``.
    module_ : torch.nn.Module
        The fitted network (``net_.module_``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.decomposition.PCA : The linear reduction this one starts from.
    DenoisingAutoencoder : The same, trained to undo corruption.

    References
    ----------
    .. [1] G. E. Hinton and R. R. Salakhutdinov, "Reducing the dimensionality
       of data with neural networks", Science 313(5786), 2006.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(n_components=8, max_iter=5, random_state=0)
    >>> ae.fit_transform(X).shape
    (1797, 8)
    >>> ae.inverse_transform(ae.transform(X[:2])).shape
    (2, 64)
    """
