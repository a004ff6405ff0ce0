"""Input validation, array/tensor conversion and seeding.

The one module that imports scikit-learn's private helpers, so that a change
in them touches one file.
"""

import functools
import math
import os
import sys
import threading
import zlib
from contextlib import contextmanager
from numbers import Integral

import numpy as np
import sklearn
import skorch
import torch
from sklearn import get_config
from sklearn.base import _fit_context
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils._set_output import (
    _get_adapter_from_container,
    _get_container_adapter,
)
from sklearn.utils.validation import _is_fitted, _num_samples

__all__ = [
    "Hidden",
    "Interval",
    "StrOptions",
    "_fit_context",
    "_num_samples",
    "_safe_indexing",
    "check_bce_range",
    "check_flag",
    "check_image_shape",
    "check_n_components",
    "check_rows_ndim",
    "check_sizes",
    "finite_float32",
    "generator_state",
    "host_tensor",
    "in_container_of",
    "looks_channels_last",
    "partial_fit_context",
    "resolve_device",
    "restore_generator",
    "seeded_torch",
    "torch_seed",
    "user_stacklevel",
    "wrap_like_input",
]

# Where the frames between a warning and the user's line live.
_LIBRARY_DIRS = tuple(
    os.path.dirname(module.__file__) + os.sep for module in (sklearn, skorch)
) + (os.path.dirname(__file__) + os.sep,)


def user_stacklevel():
    """Return the ``stacklevel`` that points a warning at the user's line.

    For ``warnings.warn`` in the function that calls this one: the first
    frame outside skae, scikit-learn and skorch, whether the user called
    ``fit``, scikit-learn's ``fit_transform`` or a Pipeline's ``fit``.
    (Python 3.12's ``skip_file_prefixes`` does this; skae supports 3.10.)
    """
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(
        _LIBRARY_DIRS
    ):
        frame, level = frame.f_back, level + 1
    return level


def partial_fit_context(partial_fit):
    """Decorate ``partial_fit`` as ``_fit_context`` does, validating at every call.

    scikit-learn's ``_fit_context`` validates the parameters at the first
    call only, to save the check on each of many calls; a ``set_params``
    between calls then reached the network unchecked (``batch_size=0``
    crashed in the batch loop, ``alpha=-1`` trained with a negative weight
    decay). The check takes microseconds, an epoch far longer.
    """
    decorated = _fit_context(prefer_skip_nested_validation=True)(partial_fit)

    @functools.wraps(partial_fit)
    def wrapper(estimator, *args, **kwargs):
        if _is_fitted(estimator) and not get_config()["skip_parameter_validation"]:
            estimator._validate_params()
        return decorated(estimator, *args, **kwargs)

    return wrapper


def resolve_device(device: str) -> torch.device:
    """Turn the ``device`` parameter into a :class:`torch.device`.

    ``'auto'`` is CUDA when available, else the CPU. A CUDA device that is
    not there, or a device type skae does not train on, is a clear error
    rather than a failure deep inside torch.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' "
            "or 'cuda:<index>'."
        ) from exc
    if resolved.type not in ("cpu", "cuda"):
        # MPS, for one, has no float64, in which skae scores rows.
        raise ValueError(
            f"device={device!r}: skae trains on 'cpu' and 'cuda' devices, not "
            f"{resolved.type!r}; use device='auto' or 'cpu'."
        )
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} asks for CUDA, but torch sees no CUDA device; "
                "use device='auto' or 'cpu'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}, but only {torch.cuda.device_count()} CUDA "
                "device(s) are visible."
            )
    return resolved


# Data for `loss='bce'` must lie in [0, 1]; this much float error is tolerated.
_BCE_SLACK = 1e-6


def check_bce_range(X, loss):
    """Raise unless ``X`` lies in [0, 1] where ``loss='bce'``."""
    if loss == "bce" and (X.min() < -_BCE_SLACK or X.max() > 1 + _BCE_SLACK):
        # scikit-learn's words for data that its positive_only tag refuses.
        negative = "Negative values in data: " if X.min() < -_BCE_SLACK else ""
        raise ValueError(
            f"{negative}loss='bce' needs data in [0, 1], but X ranges over "
            f"[{X.min():.4g}, {X.max():.4g}]; scale X (e.g. MinMaxScaler) or "
            "use loss='mse'."
        )


def host_tensor(array: np.ndarray) -> torch.Tensor:
    """``array`` as a CPU tensor, sharing its memory where torch can.

    Torch refuses negative strides and warns on read-only arrays (a pandas 3
    DataFrame's values): those are copied first.
    """
    return torch.from_numpy(np.require(array, requirements=["C", "W"]))


def finite_float32(rows: torch.Tensor, name: str, hint: str) -> torch.Tensor:
    """Return ``rows`` as float32, or raise if a value leaves float32's range.

    The networks compute in float32: a finite float64 input beyond about
    3.4e38 would turn into inf, and every score and code of its row into
    NaN. ``name`` and ``hint`` make the message.
    """
    converted = rows.to(torch.float32)
    # In chunks of rows: torch.isfinite's temporaries over a whole large X
    # would take more memory than X itself.
    if not all(torch.isfinite(chunk).all() for chunk in converted.split(8_192)):
        raise ValueError(
            f"{name} holds values beyond float32's range (about 3.4e38), in "
            f"which the network computes; {hint}"
        )
    return converted


def generator_state(generator):
    """Return what :func:`restore_generator` rebuilds ``generator`` from.

    For pickling (and deep copies) of the modules that hold a
    :class:`torch.Generator`, which not every supported torch pickles: its
    device and state, so that a copy draws the same numbers next.
    """
    if generator is None:
        return None
    return str(generator.device), generator.get_state()


def restore_generator(saved):
    """Rebuild the generator :func:`generator_state` saved, or return None.

    A CUDA generator loaded on a CPU-only machine, where its module lands
    on the CPU, comes back as a CPU generator seeded from its state: the
    copy goes on drawing noise of its own, the same at every load, rather
    than from torch's global RNG, which training would then advance.
    """
    if saved is None:
        return None
    device, state = saved
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        return torch.Generator().manual_seed(zlib.crc32(state.numpy().tobytes()))
    generator = torch.Generator(device=device)
    generator.set_state(state)
    return generator


def torch_seed(random_state: np.random.RandomState) -> int:
    """Draw a seed for torch generators from a numpy RandomState."""
    return int(random_state.randint(np.iinfo(np.int32).max))


# Held while a fit draws from torch's global RNG (seeded_torch).
_GLOBAL_RNG_LOCK = threading.Lock()


@contextmanager
def seeded_torch(seed: int):
    """Run a block under a seeded torch RNG, restoring the global state after.

    Module constructors draw their initial weights from torch's global RNG;
    this makes them reproducible without changing the user's global state.
    The RNG is one for the process: fits in threads (a threading backend of
    joblib, a thread pool) take turns, or their seeds and restores would
    interleave and their weights depend on timing. Only the CPU generator
    is seeded, the one the constructors draw from on the host:
    ``torch.manual_seed`` would also seed every CUDA device (at CUDA's first
    use, where it has none yet), whose state the fork does not restore.
    """
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        yield


def wrap_like_input(estimator, data, original_input, columns):
    """Wrap ``data`` in the container that ``set_output(transform=...)`` asks for.

    Used by ``inverse_transform``, whose columns are the input's features, not
    the transformer's output names. Without names to restore, ``data`` is
    returned as is.
    """
    adapter = _get_container_adapter("transform", estimator)
    if adapter is None or columns is None:
        return data
    return adapter.create_container(data, original_input, columns=columns)


def in_container_of(rows, original):
    """``rows`` in the container of ``original``, with its columns and index.

    A DataFrame (pandas or polars) gets back a DataFrame of ``rows``, so
    that an estimator fitted on named features sees their names; anything
    else gets ``rows`` as they are. ``original`` has as many rows as ``rows``.
    """
    try:
        adapter = _get_adapter_from_container(original)
    except ValueError:
        return rows
    return adapter.create_container(
        rows, original, columns=original.columns, inplace=False
    )


def check_flag(name, value):
    """Return ``value`` as a bool, or raise a TypeError naming ``name``.

    Truthiness read the strings ``"no"`` and ``"False"`` as True (an ordered
    network returning twice the rows, a fetcher downloading). ``np.bool_``
    is a bool, as scikit-learn's ``'boolean'`` constraint has it.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}.")
    return bool(value)


def check_sizes(name, value, *, allow_empty):
    """Return ``value`` as a tuple of positive ints or raise naming ``name``.

    A single int is a one-element tuple, as ``MLPRegressor`` reads
    ``hidden_layer_sizes=100``.
    """
    message = f"{name} must hold positive integers, got {value!r}."
    try:
        ndim = np.ndim(value)
    except ValueError:
        # Ragged nesting, such as (16, (2,)), is no array at all.
        raise ValueError(message) from None
    if ndim > 1:
        raise ValueError(message)
    # As objects, so that a bool stays a bool rather than becoming 1.
    sizes = (
        tuple(np.ravel(np.asarray(value, dtype=object)).tolist()) if ndim else (value,)
    )
    if not allow_empty and not sizes:
        raise ValueError(f"{name} must not be empty, got {value!r}.")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, Integral) or size < 1:
            raise ValueError(message)
    return tuple(int(size) for size in sizes)


def check_image_shape(image_shape, n_features=None, *, input_name="X"):
    """Return ``image_shape`` as a ``(C, H, W)`` tuple of ints.

    The one check of ``image_shape``, for the estimators, the displays and
    the convolutional network: three positive ints whose product is
    ``n_features``, the width of the rows of ``input_name`` (not checked
    where ``n_features`` is None).
    """
    shape = check_sizes("image_shape", image_shape, allow_empty=False)
    if len(shape) != 3:
        hint = ""
        if len(shape) == 2:
            hint = f"; for single-channel images pass image_shape={(1, *shape)}"
        raise ValueError(
            f"image_shape must be (channels, height, width), got {image_shape!r}{hint}."
        )
    # math.prod: Python ints, which numpy's int64 product would wrap.
    size = math.prod(shape)
    if n_features is not None and size != n_features:
        raise ValueError(
            f"image_shape={shape} implies {size} features, but {input_name} has "
            f"{n_features} features."
        )
    return shape


def looks_channels_last(image_axes):
    """Return whether image axes read as (H, W, C), as image libraries give them.

    A last axis as short as a colour axis (at most 4) after a longer first
    one.
    """
    return image_axes[-1] <= 4 < image_axes[0]


def _channels_last(image_axes, estimator):
    """Whether images of ``image_axes`` hold their channels last.

    Against the estimator's own ``image_shape`` (C, H, W) where it names
    one of these axes' orders, else by their lengths
    (:func:`looks_channels_last`): images of one channel, (H, W, 1), were
    otherwise read as 1-pixel-wide images of H channels.
    """
    image_shape = getattr(estimator, "image_shape", None)
    try:
        c, h, w = (int(s) for s in image_shape)
    except (TypeError, ValueError):
        return looks_channels_last(image_axes)
    if image_axes == (c, h, w):
        return False
    if image_axes == (h, w, c):
        return True
    return looks_channels_last(image_axes)


def check_rows_ndim(X, estimator):
    """Refuse arrays of more than 2 dimensions with a hint to flatten them.

    scikit-learn's own error ("Found array with dim 3") does not say that
    images go in as flat rows. Only containers with an ``ndim`` are looked
    at: the check costs no conversion.
    """
    ndim = getattr(X, "ndim", None)
    if ndim is None or ndim <= 2:
        return
    shape = tuple(X.shape)
    n_features = math.prod(shape[1:])
    hint = ""
    if ndim == 3:
        hint = (
            " For the convolutional network, also pass "
            f"image_shape={(1, *shape[1:])} (channels, height, width)."
        )
    elif ndim == 4 and _channels_last(shape[1:], estimator):
        # (n, H, W, C), as image libraries give them: the plain reshape
        # would interleave the channels.
        hint = (
            " Its last axis looks like channels: flatten it channels first, "
            "X.transpose(0, 3, 1, 2).reshape(len(X), -1), and for the "
            "convolutional network pass "
            f"image_shape={(shape[3], *shape[1:3])} (channels, height, width)."
        )
    elif ndim == 4:
        hint = (
            " For the convolutional network, also pass "
            f"image_shape={shape[1:]} (channels, height, width); images with "
            "the channels last need X.transpose(0, 3, 1, 2) before the reshape."
        )
    raise ValueError(
        f"X has shape {shape}, but {type(estimator).__name__} takes a 2-D array "
        "of shape (n_samples, n_features), images as flat rows. Reshape it with "
        f"X.reshape(len(X), -1), to shape ({shape[0]}, {n_features}).{hint}"
    )


def check_n_components(n_components):
    """Refuse PCA's ``n_components=None`` and ``'mle'`` with the reason why.

    The parameter constraints let these two through (hidden), so that this
    message, not the generic one, tells a PCA user what to pass instead.
    A bool is refused too: the constraints take ``True`` for the int 1, and
    the fitted ``n_components_`` would be ``True``.
    """
    if isinstance(n_components, bool | np.bool_):
        raise TypeError(
            "n_components must be an int or a float, got the bool "
            f"{n_components!r}; pass n_components=1 for a one-unit code."
        )
    if n_components is None:
        what = "keep every component"
    elif isinstance(n_components, str):
        what = "estimate the number of components (Minka's MLE)"
    else:
        return
    raise ValueError(
        f"n_components={n_components!r} is PCA's way to {what}, but an "
        "autoencoder needs the width of its code up front, to build its "
        "network. Pass an int >= 1, the width, or a float in (0, 1), for as "
        "many components as PCA needs to explain that fraction of the "
        "variance: e.g. n_components=0.95."
    )
