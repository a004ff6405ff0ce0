"""AutoencoderTransformer: a nonlinear drop-in for PCA."""

from skae._base import _BaseAutoencoder
from skae._mixins import OrderedMixin, PartialFitMixin
from skae._params import fill_doc, make_init


@fill_doc
class AutoencoderTransformer(OrderedMixin, PartialFitMixin, _BaseAutoencoder):
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
    %(n_components, ordered, hidden_layer_sizes, activation, image_shape)s
    %(conv_channels, init, loss, batch_size, learning_rate)s
    %(learning_rate_init, alpha, max_iter, tol)s
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows and stop when their loss
        has not improved by ``tol`` for ``n_iter_no_change`` epochs, restoring
        the best weights (the initial state included). When False, all rows
        train and the training loss is monitored the same way.
    %(validation_fraction, n_iter_no_change, device, precision, callbacks)s
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the weights and the batch order through
        local generators; a fixed value gives bit-identical fits on the CPU.
    %(verbose)s

    Attributes
    ----------
    %(n_components_, n_components_pca_, mean_)s
    %(held_out_explained_variance_score_, explained_variance_)s
    %(n_iter_, training_plan_, best_epoch_)s
    loss_curve_ : list of float
        Training loss per epoch (in model units).
    validation_loss_curve_ : list of float or None
        Held-out loss per epoch; None without early stopping.
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
        "ordered": ["boolean"],
    }

    __init__ = make_init({"ordered": False})
