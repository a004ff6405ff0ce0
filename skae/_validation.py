"""Input validation, array/tensor conversion and seeding.

The one module that imports scikit-learn's private helpers, so that a change
in them touches one file.
"""

from contextlib import contextmanager

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._set_output import _get_container_adapter

__all__ = [
    "Interval",
    "StrOptions",
    "_fit_context",
    "resolve_device",
    "seeded_torch",
    "torch_seed",
    "wrap_like_input",
]


def resolve_device(device: str) -> torch.device:
    """Turn the ``device`` parameter into a :class:`torch.device`.

    ``'auto'`` is CUDA when available, else the CPU. A CUDA device that is not
    there is a clear error rather than a failure deep inside torch.
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


def torch_seed(random_state: np.random.RandomState) -> int:
    """Draw a seed for torch generators from a numpy RandomState."""
    return int(random_state.randint(np.iinfo(np.int32).max))


@contextmanager
def seeded_torch(seed: int):
    """Run a block under a seeded torch RNG, restoring the global state after.

    Module constructors draw their initial weights from torch's global RNG;
    this makes them reproducible without changing the user's global state.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
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
