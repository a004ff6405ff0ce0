"""The training loss, summed in an order that does not depend on threads."""

import torch
from torch import nn


class RowMeanLoss(nn.Module):
    """An elementwise loss averaged over each row's features, then over rows.

    The value is the elementwise loss's own mean (every row has as many
    entries), but PyTorch sums a tensor of over 32,768 entries in one part
    per intra-op thread, so the mean of a whole batch in one go rounds
    differently on different thread counts. Each row's features, and then
    the rows' losses (up to 32,768 rows a batch), are summed in one part
    whatever the count: the gradients and the losses early stopping
    compares come out the same on any count.

    Parameters
    ----------
    loss : torch.nn.Module
        An elementwise loss with a ``reduction`` (``MSELoss``,
        ``BCEWithLogitsLoss``); it is set to ``'none'``.
    """

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss
        self.loss.reduction = "none"

    def rows(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return each row's loss, the mean over its features."""
        losses = self.loss(output, target)
        if losses.ndim < 2:
            # Else torch's "Dimension out of range" IndexError.
            raise ValueError(
                "RowMeanLoss averages elementwise losses of rows, shape (n, "
                f"n_features), but {self.loss!r} gave losses of shape "
                f"{tuple(losses.shape)}. Pass 2-D rows and an elementwise loss "
                "such as MSELoss."
            )
        return losses.mean(dim=1)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the mean of the rows' losses."""
        return self.rows(output, target).mean()
