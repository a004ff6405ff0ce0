"""The parameters of skae's estimators: defaults, constraints, documentation.

One family, one set of defaults: :data:`DEFAULTS` holds the transformer's,
and every estimator's ``__init__`` is made from it by :func:`make_init`,
given only the estimator's own parameters and the defaults where it differs;
a sibling that differs says why in its docstring, in one sentence. Parameters and
attributes documented alike for several estimators or methods are written once
here and put into each docstring by :func:`fill_doc`, as scikit-learn's
``_docstring`` helpers do.
"""

import inspect
import re
from numbers import Integral, Real

import torch

from skae._networks import ACTIVATIONS
from skae._training import AUTOCAST_DTYPES
from skae._units import unit_pca
from skae._validation import Hidden, Interval, StrOptions

DEFAULTS = {
    "n_components": 2,
    "hidden_layer_sizes": (512, 256, 128),
    "activation": "silu",
    "image_shape": None,
    "conv_channels": (16, 32, 64),
    "init": "pca",
    "loss": "mse",
    "batch_size": "auto",
    "learning_rate": "auto",
    "learning_rate_init": "auto",
    "ema_decay": "auto",
    "alpha": 0.0,
    "max_iter": "auto",
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

# The denoiser, the detector and the VAE keep the network and schedule their
# benchmarks were measured with (their docstrings say so).
MEASURED_DEFAULTS = {
    "hidden_layer_sizes": (512, 256),
    "activation": "relu",
    "learning_rate": "constant",
    "alpha": 1e-4,
}


def make_init(own=None, differs=None):
    """Return an estimator's ``__init__``: it stores its arguments, nothing else.

    Its signature is explicit, as scikit-learn's ``get_params`` and ``clone``
    read it: ``n_components`` (the only positional parameter), then the
    estimator's ``own`` parameters, then the family's, keyword-only, with
    :data:`DEFAULTS` updated by ``differs``. Unknown or surplus arguments
    raise ``TypeError`` as for any function.
    """
    defaults = {**DEFAULTS, **(differs or {})}
    first, *rest = defaults
    keyword = inspect.Parameter.KEYWORD_ONLY
    signature = inspect.Signature(
        [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter(
                first, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=defaults[first]
            ),
            *(
                inspect.Parameter(name, keyword, default=default)
                for name, default in (own or {}).items()
            ),
            *(
                inspect.Parameter(name, keyword, default=defaults[name])
                for name in rest
            ),
        ]
    )

    def __init__(self, *args, **kwargs):
        try:
            arguments = signature.bind(self, *args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{type(self).__name__}() {error}") from None
        arguments.apply_defaults()
        for name, value in list(arguments.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = signature
    return __init__


PARAMETER_CONSTRAINTS = {
    "n_components": [
        Interval(Integral, 1, None, closed="left"),
        Interval(Real, 0, 1, closed="neither"),
        # PCA's values, let through to explain why they do not apply.
        Hidden(None),
        Hidden(StrOptions({"mle"})),
    ],
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "image_shape": ["array-like", None],
    "conv_channels": ["array-like"],
    "init": [StrOptions({"pca", "random"})],
    "loss": [StrOptions({"mse", "bce"})],
    "batch_size": [
        Interval(Integral, 1, None, closed="left"),
        StrOptions({"auto"}),
    ],
    "learning_rate": [StrOptions({"auto", "constant", "adaptive", "one_cycle"})],
    "learning_rate_init": [
        Interval(Real, 0, None, closed="neither"),
        StrOptions({"auto"}),
    ],
    "ema_decay": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"})],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
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


def resolve_n_components(n_components, init, X, n_train):
    """Return the network's code width: ``n_components``, or PCA's for a fraction.

    An int must not exceed the number of features, nor with ``init='pca'``
    the number of training rows; a fraction's width, with ``init='pca'``, is
    at most that number.
    """
    n_samples, n_features = X.shape
    if isinstance(n_components, Integral):
        limit, what = n_features, "n_features"
        if init == "pca":
            limit, what = min(n_train, n_features), "min(n_train_samples, n_features)"
        if n_components > limit:
            # The held-out rows limit the PCA start only.
            held_out = (
                f", of which {n_samples - n_train} are held out for early stopping"
                if n_train < n_samples and init == "pca"
                else ""
            )
            raise ValueError(
                f"n_components={n_components} must be <= {what}={limit} "
                f"with init={init!r} (X has n_samples={n_samples}, "
                f"n_features={n_features}{held_out})."
            )
        return int(n_components)
    # A fraction: as many components as PCA needs for that much variance; an
    # ordered model then keeps the prefix of its own code that explains it.
    # Centred and scaled first, as for the input axes (unit_pca): float32
    # rows offset by 1e4 counted half of float64's components, at 1e20 PCA
    # raised LinAlgError, at 1e-30 it counted one.
    count = int(unit_pca(X, n_components).n_components_)
    # The PCA start has no more components than training rows, which then
    # explain all of their variance.
    return min(count, n_train) if init == "pca" else count


_DOCS = {
    "n_components": """\
n_components : int or float, default=2
    Width of the code. A float in (0, 1) is a fraction of the variance:
    the network is built as wide as PCA needs to explain it
    (``n_components_pca_``). Where the estimator has ``ordered=True``, the
    model then keeps the shortest prefix of its own code whose held-out
    explained variance reaches the fraction (``n_components_``), else all
    of PCA's width.""",
    "ordered": """\
ordered : bool, default=False
    Order the code as PCA orders its components: train the decoder on
    every row twice, from its whole code and from a prefix of it (the
    other units dropped; nested dropout), so that the first ``k`` units of
    :meth:`transform` make a ``k``-component code; the dense decoder's
    hidden units are scaled and shifted by the prefix's length, so that
    one decoder serves every prefix. :meth:`truncate` then
    gives the ``k``-unit model without refitting, and a float
    ``n_components`` keeps the shortest prefix that explains that
    fraction. Off by default: in the benchmarks a fit took 1.8 to 4.1
    times as long, and the prefixes of 2 to 32 units reconstructed 1.07 to
    1.33 times worse than networks fitted at their width
    (:ref:`ordered_components`).""",
    "hidden_layer_sizes": """\
hidden_layer_sizes : int or tuple of int, default=(512, 256, 128)
    Hidden widths of the dense encoder; the decoder mirrors them. An int
    is one hidden layer, as for :class:`~sklearn.neural_network.MLPRegressor`.
    ``()`` gives a linear autoencoder. Ignored when ``image_shape`` and a
    non-empty ``conv_channels`` are set (image rows then go through the
    convolutional network).""",
    "measured_hidden_layer_sizes": """\
hidden_layer_sizes : int or tuple of int, default=(512, 256)
    Hidden widths of the dense encoder; the decoder mirrors them. An int
    is one hidden layer. ``()`` gives a linear autoencoder. Two layers, where
    :class:`AutoencoderTransformer` has three, because this estimator's
    benchmarks were measured with two.""",
    "activation": """\
activation : {'silu', 'relu', 'elu', 'tanh', 'logistic', 'identity'}, default='silu'
    Nonlinearity of the hidden layers. ``'silu'`` is ``x * sigmoid(x)``
    (also called swish), ``'elu'`` the exponential linear unit. The
    smooth ``'silu'`` reconstructed better than ``'relu'`` in the
    benchmarks (:ref:`pca_vs_autoencoder`).""",
    "measured_activation": """\
activation : {'relu', 'silu', 'elu', 'tanh', 'logistic', 'identity'}, default='relu'
    Nonlinearity of the hidden layers. ``'relu'``, where
    :class:`AutoencoderTransformer` has ``'silu'``, because this
    estimator's benchmarks were measured with it.""",
    "image_shape": """\
image_shape : tuple of int (C, H, W), default=None
    Treat each row as a flattened image of this shape and use the
    convolutional network. ``C * H * W`` must equal the number of features.""",
    "conv_channels": """\
conv_channels : tuple of int, default=(16, 32, 64)
    Channels of the convolutional encoder's stages, each a 3x3 conv and a
    2x2 max-pool; the decoder mirrors them with transposed convolutions.
    ``()`` has no convolutional stage: image rows get the dense network.""",
    "init": """\
init : {'pca', 'random'}, default='pca'
    ``'pca'``: linear path initialised from PCA on the training rows, plus
    a residual that starts at zero. ``'random'``: the classical
    autoencoder with PyTorch's default initialisation.""",
    "loss": """\
loss : {'mse', 'bce'}, default='mse'
    Mean squared error, or binary cross-entropy on a sigmoid output for
    data in [0, 1] (e.g. images).""",
    "batch_size": """\
batch_size : int or 'auto', default='auto'
    Rows per training batch. ``'auto'`` is ``n_train // 16`` clipped to
    [32, 256]: 16 steps per epoch from 512 to 4,096 training rows, more
    above, fewer below (batches of 32: 4 steps on 128 rows); 512 for a
    run that ``learning_rate='auto'`` planned (256 on input axes), the
    batches that plan was measured with. A batch is at most the training
    rows (``training_plan_`` holds the size used).""",
    "learning_rate": """\
learning_rate : {'auto', 'adaptive', 'one_cycle', 'constant'}, default='auto'
    Schedule of Adam's learning rate. ``'auto'`` picks by the number of
    training rows: ``'one_cycle'`` from 20,000, ``'adaptive'`` below
    (``'one_cycle'`` for an ordered fit: 100 epochs to 4e-3 in the
    adaptive run's batches, see ``ordered``), and
    the other ``'auto'`` parameters with it (``training_plan_`` holds what
    was chosen; a network on input axes, ``input_components_``, plans 40
    epochs of 256 rows to 7e-3, any other 60 of 512 to 4e-3). On
    Fashion-MNIST's 54,000 training rows the planned run on every feature
    took 0.41 to 0.72 of the adaptive one's epochs, for the same error at
    8 components and 2% more at 2 and 32; on fewer than about 20,000 rows
    it gained no time, and on the digits it reconstructed up to 15% worse
    (:ref:`fast_fits`). On CUDA ``'auto'`` is always
    ``'adaptive'``, whose steps replay as CUDA graphs; a one-cycle rate
    changes every step and trains eagerly, several times slower there.
    ``'adaptive'`` starts at ``learning_rate_init`` and multiplies the rate
    by 0.3 each time the loss that early stopping monitors has not
    improved by ``tol`` for more than ``max(1, n_iter_no_change // 4)``
    epochs (skorch's ``LRScheduler`` with torch's ``ReduceLROnPlateau``),
    and ends the fit, as early stopping does, when a plateau would cut it
    below ``learning_rate_init / 100`` (the fourth cut): each cut's small
    gain otherwise reset early stopping's patience, and a fit on all 1,797
    digits at 16 components trained at rates down to 2e-8 until
    ``max_iter``. ``'one_cycle'`` plans the whole run: the rate rises to
    ``learning_rate_init``, its peak, over the first 30% of
    ``max_iter`` epochs' batches and then anneals to almost zero (torch's
    ``OneCycleLR``, stepped every batch); the fit runs all ``max_iter``
    epochs, keeps the best of them on held-out rows (whatever ``tol``), and
    does not warn when it reaches ``max_iter``. ``'constant'`` keeps
    ``learning_rate_init``; choose it when ``callbacks`` bring their own
    schedule. :meth:`partial_fit` trains on at the rate ``fit`` ended with
    (after ``'one_cycle'``: at the rate the cycle started from,
    ``learning_rate_init / 25``).""",
    "planned_learning_rate": """\
learning_rate : {'one_cycle', 'constant', 'adaptive'}, default='one_cycle'
    Schedule of Adam's learning rate, as described for
    :class:`AutoencoderTransformer`: ``'one_cycle'`` warms the rate up
    to ``learning_rate_init`` and anneals it over ``max_iter`` epochs,
    all of which run (the best is kept), so ``tol`` and
    ``n_iter_no_change`` do not apply.""",
    "planned_learning_rate_init": """\
learning_rate_init : float or 'auto', default=4e-3
    Adam's learning rate; with ``'one_cycle'`` its peak. 4e-3, the value
    ``'auto'`` gives a planned run (measured in this estimator's
    benchmark, see ``learning_rate``).""",
    "measured_learning_rate": """\
learning_rate : {'constant', 'adaptive', 'one_cycle'}, default='constant'
    Schedule of Adam's learning rate: ``'constant'`` keeps
    ``learning_rate_init``, ``'adaptive'`` lowers it on plateaus and
    ``'one_cycle'`` plans it over ``max_iter`` epochs, as described for
    :class:`AutoencoderTransformer`. Constant, where the
    transformer adapts it, because this estimator's benchmarks were
    measured with a constant rate.""",
    "learning_rate_init": """\
learning_rate_init : float or 'auto', default='auto'
    Adam's learning rate; with ``'one_cycle'`` its peak. ``'auto'``: 4e-3
    for a one-cycle run (7e-3 on input axes), 2e-3 for the adaptive
    schedule where its weights are averaged (``ema_decay``), 1e-3
    otherwise.""",
    "ema_decay": """\
ema_decay : float in [0, 1) or 'auto', default='auto'
    Exponential moving average of the weights (Polyak averaging, as
    torch's ``get_ema_multi_avg_fn``): after each optimizer step the
    average moves towards the weights by ``1 - ema_decay``, and at the end
    of each epoch the averaged weights are the ones scored on the held-out
    rows, kept by early stopping and fitted; training goes on from its own
    weights. 0 turns it off. ``'auto'``: 0.99 with the ``'adaptive'``
    rate (whose ``'auto'`` start is 2e-3 with it, 1e-3 without) and early
    stopping, whose held-out rows score the average; off without early
    stopping (the schedule and the best epoch then follow the training
    loss, of the weights training runs on), for a one-cycle run, which
    anneals the rate to almost zero itself, and for a constant rate. On
    the digits the averaged weights at 2e-3 reconstructed held-out rows 1%
    to 4% better than the plain ones at 1e-3 at every ``n_components``
    from 2 to 32, in 13% fewer epochs (:ref:`defaults_chosen`).
    :meth:`partial_fit` keeps its latest weights.""",
    "alpha": """\
alpha : float, default=0.0
    L2 penalty (Adam's weight decay): ``alpha`` times each parameter, biases
    included, added to its gradient of the mean loss. Not MLPRegressor's
    scale: its ``alpha`` is divided by the batch's rows and spares the
    biases, so the same value penalises far harder here. Off by default:
    early stopping on held-out rows regularises, and a penalty held the
    reconstruction back in the benchmarks (:ref:`pca_vs_autoencoder`).""",
    "measured_alpha": """\
alpha : float, default=1e-4
    L2 penalty (Adam's weight decay): ``alpha`` times each parameter, biases
    included, added to its gradient of the mean loss (MLPRegressor's is
    divided by the batch's rows and spares the biases). On, where
    :class:`AutoencoderTransformer` has none, because this estimator's
    benchmarks were measured with it.""",
    "max_iter": """\
max_iter : int or 'auto', default='auto'
    Maximum number of epochs; with ``'one_cycle'`` the length of the
    planned run. ``'auto'``: 60 for a one-cycle run (40 on input axes),
    200 for the other schedules, which stop early.""",
    "tol": """\
tol : float, default=1e-4
    Relative improvement of the monitored loss that counts as progress: an
    epoch improves when its loss is below the best so far by ``tol`` times
    that best's magnitude (also for a negative loss, such as a VAE's).
    Early stopping and the ``'adaptive'`` rate count epochs without such
    progress; a ``'one_cycle'`` run keeps its best epoch whatever ``tol``.""",
    "validation_fraction": """\
validation_fraction : float, default=0.1
    Fraction of rows held out for early stopping, rounded to a number of
    rows, at least one; at least one row must be left to train.""",
    "n_iter_no_change": """\
n_iter_no_change : int, default=20
    Epochs without improvement before training stops (twice
    MLPRegressor's 10: autoencoder losses improve slowly but steadily).""",
    "device": """\
device : str or torch.device, default='auto'
    ``'auto'`` (CUDA when available, else CPU), ``'cpu'``, ``'cuda'`` or
    ``'cuda:<index>'``; other device types (``'mps'``, ``'xla'``) raise a
    ValueError.""",
    "precision": """\
precision : {'float32', 'bfloat16', 'float16'}, default='float32'
    Format of the network's computations in training, and in ``transform``
    and ``inverse_transform`` on the CPU (on a GPU these, and the scores on
    any device, run a float64 copy of the network, whose outputs do not
    depend on the batch).
    ``'bfloat16'`` and ``'float16'`` are mixed precision
    (:func:`torch.autocast`): weights, gradients and optimizer state stay
    float32, so the fitted model pickles and loads like any other.
    ``'float16'`` adds loss scaling against underflow. Mixed precision
    speeds up training on GPUs with tensor cores; on the CPU it works,
    but it is faster than float32 only on CPUs with native bfloat16.""",
    "callbacks": """\
callbacks : list of skorch callbacks or (name, callback) tuples, default=None
    Extra skorch callbacks (instances or classes), cloned at each fit. The
    names ``'epoch_timer'``, ``'intra_op_threads'``, ``'print_log'``,
    ``'progress_bar'``, ``'epoch_log'``, ``'sklearn_epoch_tasks'``,
    ``'early_stopping'`` and ``'lr_scheduler'`` are the estimator's own.
    A callback that monitors a ``valid_*`` key (skorch's ``EarlyStopping``
    and ``Checkpoint`` by default) needs rows held out: a ``fit`` with
    ``early_stopping=True``; ``partial_fit`` holds none out.""",
    "verbose": """\
verbose : int, default=0
    0 is silent; 1 prints a line per epoch (losses, learning rate, time
    taken and left), plain text unless stdout is a terminal; 2 adds a
    per-batch progress bar on a terminal.""",
    # The Parameters section of the methods that take rows X: each method's
    # summary says what it does with them.
    "parameters_X": """\
Parameters
----------
X : array-like of shape (n_samples, n_features)
    Rows, one sample each; an image is one flattened row (see
    ``image_shape``).""",
    "y": """\
y : Ignored
    Not used, present for API consistency.""",
    "n_components_": """\
n_components_ : int
    Width of the code.""",
    "mean_": """\
mean_ : ndarray of shape (n_features,)
    Per-feature mean of the rows passed to fit; after a further
    ``partial_fit``, the running mean of every row seen (the model's own
    centring stays the one it was set up with).""",
    "n_samples_seen_": """\
n_samples_seen_ : int
    Number of rows passed to fit (or to the first ``partial_fit``), plus
    those of every later ``partial_fit``.""",
    "explained_variance_score_": """\
explained_variance_score_ : float
    Fraction of the training data's variance explained by the reconstruction
    ``inverse_transform(transform(X))``, ``1 - SSE / SST``; compare with
    ``PCA(...).explained_variance_ratio_.sum()``.""",
    "held_out_explained_variance_score_": """\
explained_variance_score_ : float
    Fraction of the variance explained by the reconstruction
    ``inverse_transform(transform(X))``, ``1 - SSE / SST`` about ``mean_``,
    on the rows held out for early stopping (on the training rows without
    early stopping, or of the latest chunk after :meth:`partial_fit`), at
    most 1,024 of them, evenly spread; compare with
    ``PCA(...).explained_variance_ratio_.sum()``.""",
    "explained_variance_": """\
explained_variance_ : ndarray of shape (n_components,)
    What each code unit adds to the explained variance of the
    reconstruction, in the data's squared units, given the units before
    it (the later ones dropped): ``explained_variance_ratio_`` times the
    total variance of the same rows, like PCA's per-component variances.
explained_variance_ratio_ : ndarray of shape (n_components,)
    The same as fractions of the total variance: entry ``j`` is the
    explained variance of the first ``j + 1`` units' reconstruction minus
    that of the first ``j``'s (the first entry that of unit 0 alone), on the
    rows of ``explained_variance_score_``, which is their sum. Unlike
    PCA's, the entries need not fall with ``j``: a nonlinear network may
    put more in a later unit, even with ``ordered=True``, which only
    trains every prefix to reconstruct; and an entry can be negative, where
    a unit makes the held-out reconstruction worse.""",
    "n_components_pca_": """\
n_components_pca_ : int or None
    For a float ``n_components``, the number of components PCA needs for
    that fraction of the variance of the rows passed to fit (at most the
    number of training rows): the width the network was trained at. None
    for an int ``n_components``.""",
    "n_iter_": """\
n_iter_ : int
    Number of epochs run.""",
    "training_plan_": """\
training_plan_ : dict
    The training parameters the fit used, with each ``'auto'`` resolved
    for the training rows: ``learning_rate``, ``learning_rate_init``,
    ``max_iter``, ``batch_size`` and ``ema_decay``.""",
    "best_epoch_": """\
best_epoch_ : int
    Epoch whose weights were kept (0: the initial PCA state; a random
    start is never kept, so with ``init='random'`` it is at least 1).""",
    "net_": """\
net_ : AutoencoderNet
    The fitted skorch net, with its ``history``.""",
    "n_features_in_": """\
n_features_in_ : int
    Number of features seen during fit.""",
    "feature_names_in_": """\
feature_names_in_ : ndarray of shape (n_features,)
    Names of features seen during fit, when X has string column names.""",
}

# For the estimators with partial_fit.
_DOCS["partial_fit_training_plan_"] = (
    _DOCS["training_plan_"]
    + """ ``partial_fit`` trains one epoch per
    call at its ``batch_size``, with no schedule and no ``max_iter``."""
)

_PLACEHOLDER = re.compile(r"^( *)%\((.+)\)s$", re.MULTILINE)


def fill_doc(cls):
    """Class decorator: put the shared paragraphs into the docstrings.

    A line ``%(name, other_name)s`` of the docstring of ``cls`` or of a
    method defined in its body (also one that scikit-learn's
    ``available_if`` wraps, its ``fn``) becomes the paragraphs of those
    names in :data:`_DOCS`, at the line's indentation.
    """

    def paragraphs(match):
        indent, names = match.group(1), match.group(2).split(", ")
        text = "\n".join(_DOCS[name] for name in names)
        return "\n".join(indent + line if line else line for line in text.split("\n"))

    methods = [getattr(value, "fn", value) for value in vars(cls).values()]
    for owner in [cls, *filter(inspect.isfunction, methods)]:
        if owner.__doc__:
            owner.__doc__ = _PLACEHOLDER.sub(paragraphs, owner.__doc__)
    return cls
