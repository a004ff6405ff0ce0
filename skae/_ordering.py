"""Ordered codes: nested dropout, and what each code unit explains.

Torch only, besides numpy. A network decodes its code through a
:class:`NestedDropout` layer. Trained with ``ordered=True``, the layer passes
the decoder every row twice: with its whole code, and with only its first
``k`` units, the others set to zero, their value when absent, ``k`` spread
over the rows of each batch; :class:`PrefixLoss` scores both against the
row. The decoder thus learns to reconstruct from every prefix of the code,
which pushes the first units to carry the most (nested dropout, Rippel et
al. 2014), while the whole code is trained on every row, as without
ordering. In eval mode the layer keeps the first ``kept`` units (all by
default): a fitted model truncated to ``k`` components is the same network
with ``kept=k``.

:func:`prefix_errors` decodes every prefix of a batch's codes, and
:func:`explained_variance_curve` turns the summed errors into the explained
variance of each prefix: the spectrum of the model, as PCA's
``explained_variance_ratio_`` is of PCA.
"""

import copy
import math
import numbers

import numpy as np
import torch
from torch import nn

from skae._threads import one_thread

# The explained-variance curve decodes every prefix of the code, a decoder
# pass per unit: it is measured on at most this many rows, evenly spread, so
# that its cost does not grow with the data.
CURVE_ROWS = 1024


def prefix_lengths(n_rows: int, n_units: int, device) -> torch.Tensor:
    """Prefix lengths for a batch of rows in ordered training, shape (n_rows,).

    Spread log-uniformly over 1..n_units by the rows' positions in the
    batch: each doubling of the length is as common as the next, so the
    short prefixes, where each unit matters most, are not rare. The
    training rows are shuffled every epoch, so each row is decoded from a
    different prefix from epoch to epoch.

    A batch of at least ``n_units`` rows has every length: where a length's
    log-uniform share is under one row, as much of a uniform spread is mixed
    in as gives each length a row. Spread log-uniformly alone, 75 rows
    of a 32-unit code (the digits' batches) never had lengths 27 and 31,
    and those prefixes, never trained, reconstructed worse than the shorter
    ones before them.
    """
    lengths = torch.arange(1, n_units + 1, device=device, dtype=torch.float64)
    share = torch.log1p(1 / lengths) / math.log(n_units + 1)
    # The least share is the longest length's; a mix of a uniform share
    # 1 / n_units lifts it to (just over) one row's. Fewer rows than lengths
    # keep the log-uniform spread. In Python numbers: reading the tensor
    # would wait on the device, which a CUDA graph's recording refuses.
    least = math.log1p(1 / n_units) / math.log(n_units + 1)
    row = 1.001 / n_rows
    uniform = 0.0
    if least < row and n_rows >= n_units > 1:
        uniform = (row - least) / (1 / n_units - least)
    share = (1 - uniform) * share + uniform / n_units
    bounds = torch.cumsum(share, 0)
    quantiles = (
        torch.arange(n_rows, device=device, dtype=torch.float64) + 0.5
    ) / n_rows
    # A quantile at a bound (or past the last, by rounding) takes the next
    # length up, at most n_units.
    chosen = torch.searchsorted(bounds, quantiles, right=True)
    return chosen.clamp(max=n_units - 1).long() + 1


class NestedDropout(nn.Module):
    """Zero the code units after a prefix: in ordered training, and in eval.

    Parameters
    ----------
    n_units : int
        Width of the code.
    ordered : bool, default=False
        In train mode, return the codes followed by a copy that keeps only
        a prefix of each row (:func:`prefix_lengths`): twice the rows. So
        does eval mode while ``kept`` is None, as it is until a fit picks
        its prefix: the held-out loss that early stopping watches is then
        the loss that training lowers, prefixes included, rather than the
        whole code's alone, which converges long before the short prefixes.
        False: train mode passes the codes through.

    Attributes
    ----------
    kept : int or None
        In eval mode, the number of leading units kept; None keeps all
        (an ordered layer: see ``ordered``).

    Examples
    --------
    >>> import torch
    >>> from skae._ordering import NestedDropout
    >>> layer = NestedDropout(4, ordered=True).eval()
    >>> layer.kept = 2
    >>> layer(torch.ones(1, 4))  # the kept code, then which units are kept
    tensor([[1., 1., 0., 0., 1., 1., 0., 0.]])
    """

    def __init__(self, n_units: int, ordered: bool = False) -> None:
        super().__init__()
        self.n_units = n_units
        self.ordered = ordered
        self.kept: int | None = None

    @property
    def n_outputs(self) -> int:
        """Width of the output: the code, and for an ordered layer its mask."""
        return 2 * self.n_units if self.ordered else self.n_units

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Return ``z`` with the units after each row's prefix set to zero.

        An ordered layer also returns, after the codes' columns, a mask of
        the units each row keeps (1) and drops (0): zero is a common value
        of a centred code unit, so without the mask the decoder could not
        tell a unit that is absent from one that is zero. In ordered
        training (or eval while ``kept`` is None), ``z`` itself comes first,
        with a full mask, then the prefixes.
        """
        if self.kept is not None and (
            isinstance(self.kept, bool)
            or not isinstance(self.kept, numbers.Integral)
            or self.kept < 1
        ):
            # A negative or zero width kept no unit, a fraction compared as
            # a count: codes decoded from nothing, silently.
            raise ValueError(
                "kept must be None or an int of at least 1 (the leading code "
                f"units kept), got {self.kept!r}."
            )
        whole = self.training or self.kept is None or self.kept >= self.n_units
        if not self.ordered and whole:
            # The common case, every forward pass of an unordered network.
            return z
        units = torch.arange(self.n_units, device=z.device)
        if self.ordered and (self.training or self.kept is None):
            lengths = prefix_lengths(len(z), self.n_units, z.device)
            kept = torch.cat([torch.full_like(lengths, self.n_units), lengths])
            z = z.repeat(2, 1)
        elif self.kept is None or self.kept >= self.n_units:
            kept = torch.full((len(z),), self.n_units, device=z.device)
        else:
            kept = torch.full((len(z),), self.kept, device=z.device)
        mask = (units < kept[:, None]).to(z.dtype)
        if not self.ordered:
            return z * mask
        return torch.cat([z * mask, mask], dim=1)

    def extra_repr(self) -> str:
        return f"n_units={self.n_units}, ordered={self.ordered}, kept={self.kept}"


class PrefixConditioned(nn.Sequential):
    """Layers whose hidden units are scaled and shifted by the prefix's length.

    A :class:`torch.nn.Sequential` of linear layers and activations, the
    decoder of an ordered dense network, whose input ends with the
    :class:`NestedDropout` layer's mask of ``n_units`` columns. After every
    linear layer but the last, each row's units are multiplied by ``1 +
    gain[k]`` and shifted by ``shift[k]``, ``k`` the number of units its
    mask keeps (feature-wise linear modulation, FiLM, Perez et al. 2018):
    one decoder serves every prefix, and the mask alone, an input among the
    codes, shifted its first layer only. Gains and shifts start at zero, so
    the layers start as the plain ones. The prefixes of one 32-unit fit
    reconstruct held-out rows better than without (user guide, "How the
    defaults were chosen").

    Parameters
    ----------
    layers : sequence of torch.nn.Module
        The linear layers and activations, in order.
    n_units : int
        Width of the code, and of the mask that ends the input.
    """

    def __init__(self, layers, n_units: int) -> None:
        super().__init__(*layers)
        self.n_units = n_units
        widths = [m.out_features for m in layers if isinstance(m, nn.Linear)]
        # Parameters, not modules: indexing and iterating the layers as a
        # Sequential (decoder[-1], the last linear layer) stays as it was.
        for i, width in enumerate(widths[:-1]):
            self.register_parameter(
                f"gain_{i}", nn.Parameter(torch.zeros(n_units + 1, width))
            )
            self.register_parameter(
                f"shift_{i}", nn.Parameter(torch.zeros(n_units + 1, width))
            )
        self.n_conditioned = len(widths) - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layers, each hidden one modulated by its row's prefix."""
        lengths = x[:, -self.n_units :].sum(dim=1).round().long()
        # Rows of the gains picked by a product with one-hot rows, not by
        # indexing: the gradient of an index sums the rows of each length
        # in an order that depends on the thread count, and the fit did.
        pick = nn.functional.one_hot(lengths, self.n_units + 1).to(x.dtype)
        conditioned = 0
        for layer in self:
            x = layer(x)
            if isinstance(layer, nn.Linear) and conditioned < self.n_conditioned:
                gain = pick @ getattr(self, f"gain_{conditioned}")
                shift = pick @ getattr(self, f"shift_{conditioned}")
                x = x * (1 + gain) + shift
                conditioned += 1
        return x


def prefix_weights(
    rows: torch.Tensor, n_units: int, outside: float = 0.0
) -> torch.Tensor:
    """Weights that make the prefixes' losses comparable, shape (n_units,).

    A row reconstructed from ``k`` units errs about as much as PCA's
    residual variance after ``k`` components, which falls steeply with
    ``k``: unweighted, the shortest prefixes would drown the rest. Weight
    ``k - 1`` is the square root of PCA's residual variance of ``rows``
    after ``n_units`` components over that after ``k`` (each floored at
    0.1% of the total variance), so the whole code weighs 1. The square
    root sits halfway: with the full ratio, every prefix scored relative to
    PCA's error at its length, training kept the short prefixes near PCA
    (held-out MSE at k = 2, 8, 16 of a 32-unit code on digits 1.7-2.1x that
    of fits at k); unweighted, the long ones fall behind (1.8x at k = 32);
    the square root leaves every length at 1.3-1.4x. ``outside`` is the
    variance of a row outside the columns of ``rows`` (their input axes,
    :class:`~skae._units.ModelUnits`), part of every prefix's residual.
    """
    centred = rows - rows.mean(dim=0)
    with one_thread():
        eigenvalues = torch.linalg.eigvalsh(centred.T @ centred / len(rows)).flip(0)
    total = eigenvalues.clamp_min(0).sum() + outside
    if total <= 0:
        # Constant rows: every prefix reconstructs them alike (the floor
        # below would be zero, and the ratios 0 / 0).
        return torch.ones(n_units, device=rows.device)
    residual = total - torch.cumsum(eigenvalues, 0)[:n_units]
    residual = residual.clamp_min(0) + 1e-3 * total
    return torch.sqrt(residual[-1] / residual).float()


class PrefixLoss(nn.Module):
    """A reconstruction loss that also scores the prefix reconstructions.

    In ordered training the network returns each batch's reconstructions
    from the whole codes followed by those from their prefixes; both are
    compared with the batch's rows, each prefix row weighted by ``weights``
    at its length (:func:`prefix_weights`), and the prefixes weigh twice the
    whole codes: in planned runs of 100 epochs on the digits (32 units),
    the same weight left the prefixes further from fits at their width,
    and three times the whole code further from an unordered fit. In eval
    mode, with the whole codes only, it is the plain loss.

    Parameters
    ----------
    loss : RowMeanLoss
        The reconstruction loss of a row.
    weights : torch.Tensor of shape (n_units,)
        The weight of a prefix of each length.
    """

    def __init__(self, loss: nn.Module, weights: torch.Tensor) -> None:
        super().__init__()
        self.loss = loss
        self.register_buffer("weights", weights)

    def forward(self, output: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Mean loss over the whole codes' and the prefixes' reconstructions."""
        n_rows = len(rows)
        if len(output) == n_rows:
            return self.loss(output, rows)
        errors = self.loss.rows(output, rows.repeat(2, 1))
        lengths = prefix_lengths(n_rows, len(self.weights), rows.device)
        prefix = errors[n_rows:] * self.weights[lengths - 1]
        return (errors[:n_rows].mean() + 2 * prefix.mean()) / 3


def nested_dropout(module: nn.Module) -> NestedDropout:
    """Return the :class:`NestedDropout` layer of a network or of its wrapper."""
    return next(m for m in module.modules() if isinstance(m, NestedDropout))


def keeping(module: nn.Module, kept: int | None) -> nn.Module:
    """Return ``module`` decoding in eval mode from its first ``kept`` code units.

    The module itself when its :class:`NestedDropout` layer keeps ``kept``
    already; else a shallow copy of the modules from ``module`` down to that
    layer, with ``kept`` set on the copy's layer, and every other module,
    parameter and buffer shared. The module is left as it is: setting
    ``kept`` on it for one call, and back after, would change what other
    threads decode and score with the same fitted model meanwhile, and two
    such calls ending in the wrong order would leave the wrong width for good.
    """
    layer = nested_dropout(module)
    if layer.kept == kept:
        return module
    return _copied_down_to(module, layer, kept)


def _copied_down_to(module, layer, kept):
    """Shallow copies of the modules from ``module`` down to ``layer``."""
    copied = copy.copy(module)
    if module is layer:
        copied.kept = kept
        return copied
    # A dict of its own: the children on the way to the layer are copies.
    copied._modules = {
        name: child
        if child is None or not any(m is layer for m in child.modules())
        else _copied_down_to(child, layer, kept)
        for name, child in module._modules.items()
    }
    return copied


def prefix_errors(module, batch, residuals):
    """Squared error of each row reconstructed from each prefix of its code.

    ``residuals(batch, decoded)`` gives the residuals in data units. Returns
    a float64 tensor of shape (n_rows, n_units): column ``k - 1`` is the
    row's sum of squared errors from its first ``k`` units. The network's
    ``kept`` is left as it was.
    """
    layer = nested_dropout(module)
    kept, codes = layer.kept, module.encode(batch)
    columns = []
    try:
        for k in range(1, layer.n_units + 1):
            layer.kept = k
            # Squared in float64: data units far from 1 (1e20, 1e-20) would
            # overflow or flush to zero in float32.
            errors = residuals(batch, module.decode(codes)).double() ** 2
            columns.append(errors.sum(dim=1).double())
    finally:
        layer.kept = kept
    return torch.stack(columns, dim=1)


def explained_variance_curve(sse, sst):
    """Explained variance ``1 - SSE_k / SST`` of each prefix length ``k``.

    ``sse`` holds the summed squared errors per prefix length; ``sst`` the
    total sum of squares of the same rows. Zero variance explains nothing.
    """
    if sst <= 0:
        return np.zeros_like(sse)
    return 1.0 - sse / sst


def smallest_prefix(curve, fraction):
    """Return the smallest ``k`` whose prefix explains ``fraction``, else the width."""
    reached = np.flatnonzero(curve >= fraction)
    return int(reached[0]) + 1 if len(reached) else len(curve)
