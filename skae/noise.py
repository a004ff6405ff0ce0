"""Corruption layers for denoising autoencoders.

Torch only. Each layer behaves like :class:`torch.nn.Dropout`: in ``train()``
mode it returns a corrupted copy of its input, in ``eval()`` mode it returns
the input itself, unchanged. Noise is drawn from an optional
:class:`torch.Generator` set with ``set_generator`` (the estimator passes its
own seeded generator, living on the training device), so training is
reproducible without touching the global random state; without one, the
default generator of the input's device is used.

A "row" is one sample: the first dimension indexes samples and the remaining
dimensions, flattened, are its features. :func:`make_noise` builds a layer
from the estimator's ``noise`` and ``noise_level`` parameters.
"""

import inspect
import math
import numbers
import textwrap
from collections.abc import Callable, Sequence

import torch
from torch import nn

from skae._validation import generator_state, restore_generator

NOISE_KINDS = ("gaussian", "masking", "salt_pepper")


def _check_real(value, name: str) -> float:
    """Return ``value`` as a float, or raise TypeError if it is not a real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}.")
    return float(value)


def _check_std(value, name: str = "std") -> float:
    """Return ``value`` as a float if it is a finite number >= 0."""
    std = _check_real(value, name)
    if not (math.isfinite(std) and std >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    return std


def _check_fraction(value, name: str = "fraction") -> float:
    """Return ``value`` as a float if it lies in [0, 1]."""
    fraction = _check_real(value, name)
    if not 0 <= fraction <= 1:
        raise ValueError(f"{name} must be in the range [0, 1], got {value!r}.")
    return fraction


def _check_clip(clip) -> tuple[float, float] | None:
    """Return ``clip`` as a ``(low, high)`` tuple of floats with low < high."""
    if clip is None:
        return None
    message = f"clip must be None or a pair (low, high) with low < high, got {clip!r}."
    if isinstance(clip, str) or not isinstance(clip, Sequence) or len(clip) != 2:
        raise ValueError(message)
    low, high = (_check_real(bound, "each bound of clip") for bound in clip)
    if not low < high:
        raise ValueError(message)
    return low, high


# Paragraphs every corruption layer documents alike, written once: a layer's
# docstring names them as ``%(clip)s`` and ``%(attributes)s``. This module is
# a leaf, so it fills them itself rather than through skae._params.fill_doc.
_LAYER_DOCS = {
    "clip": """\
clip : tuple of (float, float), default=None
    If given, the corrupted output is clamped to ``[low, high]``, e.g.
    ``(0.0, 1.0)`` for pixel intensities.""",
    "attributes": """\
Attributes
----------
generator : torch.Generator or None
    The generator the noise is drawn from, set with ``set_generator``; None
    draws from the default generator of the input's device.""",
}


def _layer_doc(cls):
    """Class decorator: fill the shared paragraphs into ``cls.__doc__``."""
    cls.__doc__ %= {
        name: textwrap.indent(text, "    ").lstrip()
        for name, text in _LAYER_DOCS.items()
    }
    return cls


def _rows(x: torch.Tensor) -> torch.Tensor:
    """View ``x`` as (n_samples, n_features); a 1-D input is a single row."""
    return x.flatten(1) if x.ndim > 1 else x.reshape(1, -1)


def _stored(value: float, dtype: torch.dtype) -> float:
    """Return what a tensor of ``dtype`` stores for ``value``.

    Rounded, truncated or wrapped as torch's cast does: a float beyond the
    dtype's range becomes infinite.
    """
    return torch.tensor(value, dtype=torch.float64).to(dtype).item()


def _clamp(out: torch.Tensor, clip: tuple[float, float]) -> torch.Tensor:
    """Clamp ``out`` to ``clip`` in its own dtype.

    Float bounds made an integer or bool tensor's clamp return float32; such
    a tensor is clamped to the values of its dtype within ``[low, high]``.
    A floating tensor's bounds are rounded to its dtype as its values are,
    beyond its range to infinity: torch refused a bound it cannot hold
    ("value cannot be converted to type c10::Half without overflow").
    """
    if out.is_floating_point():
        return out.clamp(*(_stored(bound, out.dtype) for bound in clip))
    if out.is_complex():
        return out.clamp(*clip)
    low, high = clip
    # A bool tensor holds 0 and 1; torch clamps it only as a number.
    info = torch.iinfo(torch.uint8 if out.dtype == torch.bool else out.dtype)
    dtype_low, dtype_high = (0, 1) if out.dtype == torch.bool else (info.min, info.max)
    low = dtype_low if low == -math.inf else max(math.ceil(low), dtype_low)
    high = dtype_high if high == math.inf else min(math.floor(high), dtype_high)
    if low > high:
        raise ValueError(
            f"clip={clip} holds no value of the input's dtype {out.dtype}. Pass "
            "a floating point input, or a clip range that holds one."
        )
    if out.dtype == torch.bool:
        return out.to(torch.uint8).clamp(low, high).bool()
    return out.clamp(low, high)


class _Corruption(nn.Module):
    """Base class: train/eval switch, optional generator, optional clipping.

    Subclasses implement ``_corrupt(x)``, drawing their noise with
    ``generator=self.generator`` on ``x.device``.
    """

    def __init__(self, *, clip: tuple[float, float] | None = None) -> None:
        super().__init__()
        self.clip = _check_clip(clip)
        # A plain attribute, not a buffer: the generator is runtime state,
        # kept out of the state_dict.
        self.generator: torch.Generator | None = None

    def set_generator(self, generator: torch.Generator | None) -> "_Corruption":
        """Draw the noise from ``generator``, or from torch's default if None.

        Parameters
        ----------
        generator : torch.Generator or None
            A generator on the device of the inputs, such as
            ``torch.Generator(device="cuda")`` for CUDA tensors. It is used,
            not copied: its state advances with every corrupted batch.

        Returns
        -------
        self : nn.Module
            The layer itself.
        """
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {generator!r}."
            )
        self.generator = generator
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return a corrupted copy of ``x`` in train mode, ``x`` itself in eval."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"{type(self).__name__} corrupts torch tensors; got "
                f"{type(x).__name__}. Convert with torch.as_tensor(x)."
            )
        if not self.training:
            return x
        if self.generator is not None and self.generator.device.type != x.device.type:
            raise ValueError(
                f"The noise generator is on device '{self.generator.device}' but "
                f"the input is on '{x.device}'. Pass set_generator a generator "
                "created on the input's device, e.g. "
                "torch.Generator(device=x.device)."
            )
        out = self._corrupt(x)
        if self.clip is not None:
            out = _clamp(out, self.clip)
        return out

    def _corrupt(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __getstate__(self) -> dict:
        # The generator as its state: a copy draws the same noise next.
        state = super().__getstate__()
        state["generator"] = generator_state(self.generator)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.generator = restore_generator(self.generator)

    def _clip_repr(self) -> str:
        return "" if self.clip is None else f", clip={self.clip}"


@_layer_doc
class GaussianNoise(_Corruption):
    """Additive Gaussian noise: ``x + std * N(0, 1)``, optionally clipped.

    Active in ``train()`` mode; in ``eval()`` mode the input is returned
    unchanged, like :class:`torch.nn.Dropout`.

    Parameters
    ----------
    std : float
        Standard deviation of the noise, finite and >= 0.
    %(clip)s

    %(attributes)s

    See Also
    --------
    MaskingNoise : Set a random fraction of each row to a constant.
    make_noise : Build a corruption layer from a name and a level.

    Examples
    --------
    >>> import torch
    >>> from skae.noise import GaussianNoise
    >>> layer = GaussianNoise(0.1, clip=(0.0, 1.0))
    >>> layer
    GaussianNoise(std=0.1, clip=(0.0, 1.0))
    >>> _ = layer.set_generator(torch.Generator().manual_seed(0))
    >>> x = torch.full((2, 3), 0.5)
    >>> layer(x).shape
    torch.Size([2, 3])
    >>> layer.eval()(x) is x
    True
    """

    def __init__(self, std: float, *, clip: tuple[float, float] | None = None) -> None:
        super().__init__(clip=clip)
        self.std = _check_std(std)

    def _corrupt(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            raise TypeError(
                f"GaussianNoise needs a floating point input, got dtype {x.dtype}."
            )
        noise = torch.randn(
            x.shape, generator=self.generator, device=x.device, dtype=x.dtype
        )
        return x + self.std * noise

    def extra_repr(self) -> str:
        """Parameters shown when the layer is printed."""
        return f"std={self.std}{self._clip_repr()}"


def _check_fill(layer: nn.Module, x: torch.Tensor, **values: float) -> None:
    """Refuse fill values that ``x``'s dtype would store changed.

    An integer or bool ``x`` would store any other value changed; a floating
    one rounds values, as it does its own, but cannot hold a finite value
    beyond its range.
    """
    if x.is_complex():
        return
    for name, value in values.items():
        # masked_fill truncates, wraps or saturates an integer without a
        # word, and refuses a floating overflow with torch's "value cannot be
        # converted to type c10::Half without overflow".
        stored = _stored(value, x.dtype)
        changed = (
            math.isinf(stored) and not math.isinf(value)
            if x.is_floating_point()
            else stored != value
        )
        if changed:
            raise ValueError(
                f"{type(layer).__name__} cannot write {name}={value!r} into an "
                f"input of dtype {x.dtype}, which would store {stored!r}. Pass "
                f"an input of a dtype that holds it, or a {name} that {x.dtype} "
                "holds."
            )


def _n_replaced(fraction: float, n_features: int) -> int:
    """How many of a row's ``n_features`` entries a fraction corruption replaces."""
    return round(fraction * n_features)


class _FractionCorruption(_Corruption):
    """Base class of the layers that replace a fraction of each row's entries."""

    def __init__(
        self, fraction: float, *, clip: tuple[float, float] | None = None
    ) -> None:
        super().__init__(clip=clip)
        self.fraction = _check_fraction(fraction)

    def _choose(self, x: torch.Tensor) -> torch.Tensor:
        """Boolean mask of x's rows with exactly round(fraction * n) entries set.

        Ranking i.i.d. uniform keys gives a uniformly random subset per row,
        for all rows at once.
        """
        rows = _rows(x)
        n_chosen = _n_replaced(self.fraction, rows.shape[1])
        keys = torch.rand(rows.shape, generator=self.generator, device=x.device)
        chosen = keys.argsort(dim=1)[:, :n_chosen]
        mask = torch.zeros(rows.shape, dtype=torch.bool, device=x.device)
        return mask.scatter_(1, chosen, True).reshape(x.shape)


@_layer_doc
class MaskingNoise(_FractionCorruption):
    """Masking noise: set a random fraction of each row's entries to ``value``.

    Exactly ``round(fraction * n_features)`` entries of each row, chosen
    uniformly at random and independently per row, are replaced. Active in
    ``train()`` mode; in ``eval()`` mode the input is returned unchanged.

    Parameters
    ----------
    fraction : float
        Fraction of each row's entries to mask, in [0, 1].
    value : float, default=0.0
        Value written into the masked entries.
    %(clip)s

    %(attributes)s

    See Also
    --------
    SaltPepperNoise : Set a random fraction of each row to ``low`` or ``high``.
    make_noise : Build a corruption layer from a name and a level.

    Examples
    --------
    >>> import torch
    >>> from skae.noise import MaskingNoise
    >>> layer = MaskingNoise(0.5).set_generator(torch.Generator().manual_seed(0))
    >>> layer
    MaskingNoise(fraction=0.5, value=0.0)
    >>> x_noisy = layer(torch.ones(3, 4))
    >>> (x_noisy == 0).sum(dim=1)
    tensor([2, 2, 2])
    """

    def __init__(
        self,
        fraction: float,
        *,
        value: float = 0.0,
        clip: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(fraction, clip=clip)
        self.value = _check_real(value, "value")

    def _corrupt(self, x: torch.Tensor) -> torch.Tensor:
        _check_fill(self, x, value=self.value)
        return x.masked_fill(self._choose(x), self.value)

    def extra_repr(self) -> str:
        """Parameters shown when the layer is printed."""
        return f"fraction={self.fraction}, value={self.value}{self._clip_repr()}"


@_layer_doc
class SaltPepperNoise(_FractionCorruption):
    """Salt-and-pepper noise: set a random fraction of each row to low or high.

    Exactly ``round(fraction * n_features)`` entries of each row, chosen
    uniformly at random and independently per row, are replaced, each by
    ``low`` or ``high`` with probability 1/2. Active in ``train()`` mode; in
    ``eval()`` mode the input is returned unchanged.

    Parameters
    ----------
    fraction : float
        Fraction of each row's entries to replace, in [0, 1].
    low : float, default=0.0
        The "pepper" value.
    high : float, default=1.0
        The "salt" value.
    clip : tuple of (float, float), default=None
        If given, the corrupted output is clamped to ``[low, high]`` of the
        clip, which need not be this layer's ``low`` and ``high``.

    %(attributes)s

    See Also
    --------
    MaskingNoise : The same with one value for every chosen entry.

    Examples
    --------
    >>> import torch
    >>> from skae.noise import SaltPepperNoise
    >>> layer = SaltPepperNoise(0.25, low=-1.0, high=1.0)
    >>> layer
    SaltPepperNoise(fraction=0.25, low=-1.0, high=1.0)
    >>> _ = layer.set_generator(torch.Generator().manual_seed(0))
    >>> x_noisy = layer(torch.zeros(2, 8))
    >>> (x_noisy != 0).sum(dim=1)
    tensor([2, 2])
    """

    def __init__(
        self,
        fraction: float,
        *,
        low: float = 0.0,
        high: float = 1.0,
        clip: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(fraction, clip=clip)
        self.low = _check_real(low, "low")
        self.high = _check_real(high, "high")
        if math.isnan(self.low) or math.isnan(self.high):
            # NaN compares False with anything: it would pass the order check.
            raise ValueError(
                "low and high must be numbers with low <= high, got "
                f"low={low!r}, high={high!r}."
            )
        if self.low > self.high:
            raise ValueError(f"low={low!r} must not exceed high={high!r}.")

    def _corrupt(self, x: torch.Tensor) -> torch.Tensor:
        _check_fill(self, x, low=self.low, high=self.high)
        chosen = self._choose(x)
        salt = torch.rand(x.shape, generator=self.generator, device=x.device) < 0.5
        return x.masked_fill(chosen & salt, self.high).masked_fill(
            chosen & ~salt, self.low
        )

    def extra_repr(self) -> str:
        """Parameters shown when the layer is printed."""
        return (
            f"fraction={self.fraction}, low={self.low}, high={self.high}"
            f"{self._clip_repr()}"
        )


def _takes_two(signature: inspect.Signature) -> bool:
    """Whether a callable of this signature can be called as ``fn(x, generator)``."""
    try:
        signature.bind(None, None)
    except TypeError:
        return False
    return True


@_layer_doc
class FunctionNoise(_Corruption):
    """Corruption by a user function ``fn(x, generator) -> x_noisy``.

    Active in ``train()`` mode; in ``eval()`` mode the input is returned
    unchanged.

    Parameters
    ----------
    fn : callable
        Called as ``fn(x, generator)`` with the input tensor and the layer's
        generator (None when none is set, which torch's random functions
        accept as "use the default generator"). It must return a tensor of
        the same shape as ``x`` on its device, real for a real ``x`` (it
        comes back in ``x``'s dtype), finite where ``x`` is (after
        ``clip``, if given), and must not modify ``x`` in place; each is
        checked, outside the recording of a CUDA graph (under
        :func:`torch.inference_mode`, whose tensors keep no record of
        in-place writes, ``fn`` gets a copy of ``x`` instead). To be picklable,
        ``fn`` must be a module-level function, not a lambda.
    %(clip)s

    %(attributes)s

    See Also
    --------
    GaussianNoise : Additive Gaussian noise.
    make_noise : Build a corruption layer from a name and a level.

    Examples
    --------
    >>> import torch
    >>> from skae.noise import FunctionNoise
    >>> def flip_sign(x, generator):
    ...     keep = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
    ...     return torch.where(keep, x, -x)
    >>> layer = FunctionNoise(flip_sign)
    >>> layer
    FunctionNoise(fn=flip_sign)
    >>> layer(torch.ones(2, 3)).abs()
    tensor([[1., 1., 1.],
            [1., 1., 1.]])
    """

    def __init__(
        self,
        fn: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor],
        *,
        clip: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(clip=clip)
        if not callable(fn):
            raise TypeError(
                f"fn must be a callable fn(x, generator) -> tensor, got {fn!r}."
            )
        try:
            # A module's __call__ takes (*args, **kwargs): its forward says
            # what it takes (nn.Dropout failed in the first epoch with
            # "forward() takes 2 positional arguments but 3 were given").
            signature = inspect.signature(
                fn.forward if isinstance(fn, nn.Module) else fn
            )
        except (TypeError, ValueError):
            # Some builtins have none: they are called as they are.
            signature = None
        if signature is not None and not _takes_two(signature):
            # Else the first epoch fails with "takes 1 positional argument".
            name = getattr(fn, "__name__", repr(fn))
            raise TypeError(
                f"The noise function {name} must take (x, generator), but its "
                f"signature is {signature}; draw the noise from generator, e.g. "
                "torch.randn(x.shape, generator=generator, device=x.device)."
            )
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``fn(x, generator)``, clipped, in train mode; ``x`` in eval."""
        out = super().forward(x)
        # A host-side check, which a CUDA graph being recorded cannot hold;
        # the eager steps before the recording still check. NaN from the
        # input is not the function's doing.
        recording = x.is_cuda and torch.cuda.is_current_stream_capturing()
        if (
            self.training
            and not recording
            and not torch.isfinite(out).all()
            and torch.isfinite(x).all()
        ):
            raise ValueError(
                f"The noise function {self._fn_name()} returned NaN or infinite "
                "values for a finite input; the network cannot train on them. "
                "Return finite values, or pass clip to bound infinities."
            )
        return out

    def _corrupt(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_inference():
            # A tensor made under torch.inference_mode keeps no version
            # counter: the function gets a copy, so x stays clean anyway.
            return self._checked(x, self.fn(x.clone(), self.generator))
        # The version counter moves with every in-place write, at no cost.
        version = x._version
        out = self.fn(x, self.generator)
        if x._version != version:
            raise ValueError(
                f"The noise function {self._fn_name()} modified its input in "
                "place; the input is the clean target. Return a new tensor, "
                "e.g. x + noise rather than x.add_(noise)."
            )
        return self._checked(x, out)

    def _checked(self, x: torch.Tensor, out) -> torch.Tensor:
        """Return the function's ``out`` in ``x``'s dtype, once it fits ``x``."""
        if not isinstance(out, torch.Tensor):
            raise TypeError(
                f"The noise function {self._fn_name()} must return a torch.Tensor, "
                f"got {type(out).__name__}."
            )
        if out.shape != x.shape:
            raise ValueError(
                f"The noise function {self._fn_name()} must return a tensor of "
                f"the input's shape {tuple(x.shape)}, got shape {tuple(out.shape)}."
            )
        if out.device != x.device:
            raise ValueError(
                f"The noise function {self._fn_name()} must return a tensor on "
                f"the input's device {x.device}, got one on {out.device}."
            )
        if out.is_complex() and not x.is_complex():
            # The cast below would drop the imaginary part, with only torch's
            # warning.
            raise TypeError(
                f"The noise function {self._fn_name()} returned complex values "
                f"(dtype {out.dtype}) for an input of dtype {x.dtype}; return "
                "real values, e.g. the real part or the magnitude."
            )
        # The network computes in the input's precision: float64, integer or
        # bool noise comes back in it.
        return out.to(x.dtype)

    def _fn_name(self) -> str:
        return getattr(self.fn, "__name__", repr(self.fn))

    def extra_repr(self) -> str:
        """Parameters shown when the layer is printed."""
        return f"fn={self._fn_name()}{self._clip_repr()}"


def make_noise(
    noise: str | Callable[[torch.Tensor, torch.Generator | None], torch.Tensor],
    noise_level: float,
    *,
    clip: tuple[float, float] | None = None,
    low: float = 0.0,
    high: float = 1.0,
) -> _Corruption:
    """Build the corruption layer for a denoising autoencoder.

    Parameters
    ----------
    noise : {"gaussian", "masking", "salt_pepper"} or callable
        The kind of corruption: :class:`GaussianNoise`, :class:`MaskingNoise`
        (entries set to 0), :class:`SaltPepperNoise` (entries set to 0 or 1),
        or a callable ``fn(x, generator) -> x_noisy`` wrapped in
        :class:`FunctionNoise`.
    noise_level : float
        The standard deviation for ``"gaussian"`` (>= 0), the fraction of
        each row's entries masked or flipped for ``"masking"`` and
        ``"salt_pepper"`` (in [0, 1]). Ignored when ``noise`` is callable.
    clip : tuple of (float, float), default=None
        If given, the corrupted output is clamped to ``[low, high]``,
        whatever the kind of noise.
    low, high : float, default=0.0, 1.0
        The pepper and salt values of ``"salt_pepper"``.

    Returns
    -------
    layer : nn.Module
        The corruption layer, in train mode and without a generator; call its
        ``set_generator`` for reproducible noise.

    See Also
    --------
    GaussianNoise, MaskingNoise, SaltPepperNoise, FunctionNoise

    Examples
    --------
    >>> from skae.noise import make_noise
    >>> make_noise("gaussian", 0.2, clip=(0.0, 1.0))
    GaussianNoise(std=0.2, clip=(0.0, 1.0))
    >>> make_noise("masking", 0.3)
    MaskingNoise(fraction=0.3, value=0.0)
    """
    if isinstance(noise, _Corruption):
        # A layer is callable, but as layer(x): it is not fn(x, generator).
        raise TypeError(
            f"noise={noise!r} is a corruption layer; pass its kind and level "
            f"instead (noise in {NOISE_KINDS} with noise_level), or a "
            "function fn(x, generator)."
        )
    if callable(noise):
        return FunctionNoise(noise, clip=clip)
    if not isinstance(noise, str):
        raise TypeError(
            f"noise must be one of {NOISE_KINDS} or a callable fn(x, generator), "
            f"got {noise!r}."
        )
    if noise == "gaussian":
        return GaussianNoise(
            _check_std(noise_level, "noise_level (the std of noise='gaussian')"),
            clip=clip,
        )
    if noise == "masking":
        return MaskingNoise(
            _check_fraction(noise_level, "noise_level (the fraction masked)"),
            clip=clip,
        )
    if noise == "salt_pepper":
        return SaltPepperNoise(
            _check_fraction(noise_level, "noise_level (the fraction flipped)"),
            low=low,
            high=high,
            clip=clip,
        )
    raise ValueError(
        f"noise must be one of {NOISE_KINDS} or a callable fn(x, generator), "
        f"got {noise!r}."
    )
