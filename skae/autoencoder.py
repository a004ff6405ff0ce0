"""AutoencoderTransformer: a nonlinear drop-in for PCA."""

from skae._base import _BaseAutoencoder
from skae._mixins import InputAxesMixin, OrderedMixin, PartialFitMixin
from skae._params import fill_doc, make_init
from skae._training import PLANNED_RUN_ROWS


@fill_doc
class AutoencoderTransformer(
    InputAxesMixin, OrderedMixin, PartialFitMixin, _BaseAutoencoder
):
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
    On 20,000 training rows or more, with more features than its widest
    hidden layer, the dense network trains on the rows' leading principal
    coordinates (``input_components``), which about halves the cost of an
    epoch.

    Parameters
    ----------
    %(n_components, ordered)s
    input_components : int, 'auto' or None, default='auto'
        Train the network on the rows' coordinates along their first
        ``input_components`` principal axes (PCA of the rows passed to fit,
        those held out for early stopping included, as a PCA step before the
        autoencoder in a Pipeline would be)
        instead of on every feature: its first and last layers shrink, and
        its reconstructions lie in the span of those axes
        (``input_components_``), which must not be fewer than
        ``n_components``. ``transform`` and ``inverse_transform`` project
        and map back, so codes and reconstructions keep X's features, and
        scores count the error outside the axes too. ``'auto'``, for dense
        networks with ``loss='mse'`` on 20,000 training rows or more, off
        CUDA (where ``learning_rate='auto'`` plans the run), with more
        features than the widest hidden layer (whose cost the axes cut), keeps
        the fewest axes outside which PCA leaves at most 0.15 times its own
        residual variance at ``n_components``, if they are at most half the
        features; otherwise, as with None, the network sees every feature.
        On Fashion-MNIST (784 pixels) that is 302 axes at 32 components
        (:ref:`fast_fits`). Not with the convolutional network or
        ``loss='bce'``.
        :meth:`partial_fit` keeps the axes of its first chunk.
    %(hidden_layer_sizes, activation, image_shape)s
    %(conv_channels, init, loss, batch_size, learning_rate)s
    %(learning_rate_init, ema_decay, alpha, max_iter, tol)s
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows and stop when their loss
        has not improved by ``tol`` for ``n_iter_no_change`` epochs, restoring
        the best weights (the initial state included). When False, all rows
        train and the training loss is monitored the same way.
    %(validation_fraction, n_iter_no_change, device, precision, callbacks)s
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the weights and the batch order through
        local generators; a fixed value gives bit-identical fits on the CPU,
        on any thread count (convolutional networks: on one thread).
    %(verbose)s

    Attributes
    ----------
    %(n_components_, n_components_pca_, mean_, n_samples_seen_)s
    input_components_ : ndarray of shape (n_axes, n_features) or None
        The principal axes the network sees (orthonormal rows), or None
        where it sees every feature.
    %(held_out_explained_variance_score_, explained_variance_)s
    %(n_iter_, partial_fit_training_plan_, best_epoch_)s
    loss_curve_ : list of float
        Training loss per epoch (in model units).
    validation_loss_curve_ : list of float or None
        Held-out loss per epoch; None without early stopping
        and once ``partial_fit`` has trained (it holds nothing out).
    %(net_)s
    module_ : torch.nn.Module
        The fitted network (``net_.module_``).
    %(n_features_in_, feature_names_in_)s

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

    _parameter_constraints: dict = {
        **_BaseAutoencoder._parameter_constraints,
        **InputAxesMixin._parameter_constraints,
        "ordered": ["boolean"],
    }

    __init__ = make_init({"ordered": False, "input_components": "auto"})

    def _auto_input_axes(self, n_train, device):
        # Where learning_rate='auto' plans the run: measured there.
        return n_train >= PLANNED_RUN_ROWS and device.type != "cuda"
