"""The one map between the user's rows and the network's model units.

The networks train on rows centred and divided by one overall scale
(``loss='mse'``), or on the rows as given, returning logits
(``loss='bce'``). :class:`ModelUnits` converts rows to model units as one
float32 tensor, and the network's outputs and residuals back.
"""

import numpy as np
import torch
from scipy.special import expit


class ModelUnits:
    """Affine map from data units to model units: ``(X - offset) / scale``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The rows that fix the map: with ``loss='mse'``, the offset is their
        mean and the scale the root mean square of the centred rows (1 for
        constant rows); with ``loss='bce'``, the map is the identity and the
        network's outputs are logits.
    loss : {'mse', 'bce'}
        The estimator's loss.
    """

    def __init__(self, X, loss):
        self.loss = loss
        if loss == "mse":
            self.offset = X.mean(axis=0)
            rms = np.sqrt(np.mean((X - self.offset) ** 2))
            self.scale = float(rms) if rms > 0 else 1.0
        else:
            # BCE compares probabilities with data in [0, 1]: no rescaling.
            self.offset = np.zeros(X.shape[1])
            self.scale = 1.0

    def to_model(self, X):
        """Rows of ``X`` as one float32 tensor in model units, on the host.

        The offset is subtracted in X's own precision; torch rather than
        numpy, because its element-wise ops round as numpy's do and use every
        core. Torch takes neither negative strides nor (without a warning)
        read-only memory: such input is copied first.
        """
        rows = torch.from_numpy(np.require(X, requirements=["C", "W"]))
        offset = torch.from_numpy(self.offset).to(rows.dtype)
        return rows.sub(offset).div_(self.scale).to(torch.float32)

    def from_model(self, out, dtype):
        """Network outputs (an array in model units) as rows in data units."""
        if self.loss == "bce":
            return expit(out.astype(np.float64)).astype(dtype)
        return (out * self.scale + self.offset).astype(dtype)

    def residuals(self, batch, out):
        """Residual ``batch - out`` of a batch in model units, in data units.

        With ``loss='mse'`` model units are the data's divided by ``scale``;
        with ``loss='bce'`` ``out`` holds logits.
        """
        if self.loss == "bce":
            return batch - torch.sigmoid(out)
        return (batch - out) * self.scale
